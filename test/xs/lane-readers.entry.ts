import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { READER_SCENARIOS, runLaneScenario } from '../helpers/lane-scenario.js';

serveJson(() => READER_SCENARIOS.map((s) => runLaneScenario(s, nobleCrypto)));
