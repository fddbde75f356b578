import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { runProtocolCases } from '../protocol-cases.js';

declare const performance: { now(): number };
serveJson((req: { iterations: number }) => runProtocolCases(nobleCrypto, () => performance.now(), req.iterations));
