// XS side of the whitelist tests: the same scenario runner, on XS.
import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { runScenario, type Scenario } from '../helpers/whitelist-scenario.js';

serveJson((req: { scenarios: Scenario[] }) => req.scenarios.map((s) => runScenario(s, nobleCrypto)));
