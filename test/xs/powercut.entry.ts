import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { sweepSlotSwitch } from '../helpers/powercut-scenario.js';

serveJson(() => sweepSlotSwitch(nobleCrypto));
