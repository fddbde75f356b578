import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { CONTROLLER_SCENARIOS, LANE_SCENARIOS, runLaneScenario } from '../helpers/lane-scenario.js';

serveJson(() => ({
  lanes: LANE_SCENARIOS.map((s) => runLaneScenario(s, nobleCrypto)),
  controller: CONTROLLER_SCENARIOS.map((s) => runLaneScenario(s, nobleCrypto)),
}));
