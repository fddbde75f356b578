import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { sweepSlotSwitch, sweepStepwiseCompaction } from '../helpers/powercut-scenario.js';

serveJson((req: { stepwise?: boolean; noRewrite?: boolean }) => (req.stepwise === true ? sweepStepwiseCompaction(nobleCrypto, req.noRewrite === true) : sweepSlotSwitch(nobleCrypto)));
