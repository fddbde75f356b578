// npm run build: bundles the device code for the XS engine into dist/, the
// same way the XS harness does (host-sim/xs/bundle.ts), and reports sizes.
// The Moddable device build itself is `mcconfig` with manifest.json (docs/FLASHING.md, later).

import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleForXs } from '../host-sim/xs/bundle.js';

const targets: [string, string][] = [['protocol/index.ts', 'protocol.xs.js']];
const dist = new URL('../dist/', import.meta.url);
mkdirSync(dist, { recursive: true });
for (const [entry, out] of targets) {
  const code = await bundleForXs(fileURLToPath(new URL(`../${entry}`, import.meta.url)));
  writeFileSync(new URL(out, dist), code);
  console.log(`dist/${out}  ${(code.length / 1024).toFixed(1)} KiB  (from ${entry})`);
}
