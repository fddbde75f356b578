// npm run bench [-- name ...]: runs the named benchmarks (all by default).
import { benchProtocol } from './protocol.js';
import { benchStore } from './store.js';
import { benchJournal } from './journal.js';
import { benchSync } from './sync.js';
import { benchXsGate } from './xs-gate.js';
import { benchSdk } from './sdk.js';
import { benchImport } from './import.js';
import { benchScale } from './scale.js';
import { benchTls } from './tls.js';
import { benchSimulate } from './simulate.js';
import { benchConsole } from './console.js';
import { locateSdk } from '../host-sim/moddable-sdk/sdk.js';

const benches: Record<string, () => Promise<string>> = { protocol: benchProtocol, store: benchStore, journal: benchJournal, sync: benchSync, xs: benchXsGate, sdk: benchSdk, import: benchImport, scale: benchScale, tls: benchTls, simulate: benchSimulate, console: benchConsole };
const wanted = process.argv.slice(2);
if (wanted.includes('--help') || wanted.includes('-h')) {
  console.log(`usage: npm run bench [-- <name> ...]\nbenchmarks: ${Object.keys(benches).join(', ')}\nresults: JSON lines on stdout and in bench/results/<name>.json`);
  process.exit(0);
}
const unknown = wanted.filter((w) => !(w in benches));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
let names = wanted.length > 0 ? wanted : Object.keys(benches);
const sdk = locateSdk();
if (wanted.length === 0 && !sdk.ok) {
  console.error(`sdk: not run (${sdk.reason})`);
  names = names.filter((n) => n !== 'sdk' && n !== 'tls');
}
for (const name of names) {
  const file = await benches[name]!();
  console.error(`${name}: results in ${file}`);
}
