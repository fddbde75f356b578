export { referenceRun } from '../../host-sim/simulation/whitelist-reference.js';
