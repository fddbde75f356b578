import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { LANE_SCENARIOS, runLaneScenario } from '../helpers/lane-scenario.js';

serveJson(() => LANE_SCENARIOS.map((s) => runLaneScenario(s, nobleCrypto)));
