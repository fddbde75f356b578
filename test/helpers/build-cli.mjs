// Bundles the `subline` command for the test helpers (test/helpers/cli.ts):
//   node test/helpers/build-cli.mjs OUTDIR
// writes OUTDIR/subline.mjs (and the chunks its commands import when they run)
// from host-sim/cli/subline.ts and the sources it reaches, as they are now. npm
// packages stay imports, so OUTDIR must be inside the repository (they resolve
// from its node_modules/ as the sources' do).
//
// Each module's `import.meta.url` is the URL of its source file, as when run
// through tsx: modules that find the repository, the XS guest shims, the
// console's assets or bin/ from it find them wherever the bundle is. Any other
// use of import.meta would see the bundle's URL, so it fails the build.
//
// A script of its own: esbuild runs plugins only in its asynchronous API, and
// the helpers start commands synchronously.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const outdir = process.argv[2];
if (outdir === undefined) throw new Error('usage: node test/helpers/build-cli.mjs OUTDIR');

const META_URL = /\bimport\.meta\.url\b/g;

/** @type {import('esbuild').Plugin} */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
      if (args.path.includes('/node_modules/')) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta')) return undefined;
      if (text.replace(META_URL, '').includes('import.meta')) return { errors: [{ text: `${args.path}: import.meta other than import.meta.url (teach test/helpers/build-cli.mjs about it)` }] };
      return { contents: text.replace(META_URL, JSON.stringify(pathToFileURL(args.path).href)), loader: /ts$/.test(args.path) ? 'ts' : 'js' };
    });
  },
};

await build({
  entryPoints: [join(root, 'host-sim', 'cli', 'subline.ts')],
  absWorkingDir: root,
  bundle: true,
  // Modules the commands import when they run (store drivers, MQTT, the PKI, the simulator) stay chunks of their own.
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: `node${process.versions.node}`,
  packages: 'external',
  outdir,
  outExtension: { '.js': '.mjs' },
  plugins: [sourceUrls],
  logLevel: 'error',
});
