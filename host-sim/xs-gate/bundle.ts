// Bundles the device entry, firmware/moddable/main.ts, unchanged, with the
// simulated provider (guest/) into one classic script for the XS worker.
//
// Module specifiers are resolved the way the device build resolves them:
//   - the Moddable / ECMA-419 modules main.ts and its adapters import
//     ('embedded:*', 'flash', 'timer', 'time', 'mc/config', 'modules', 'net',
//     'wifi', 'sntp', 'crypt', 'text/decoder', 'text/encoder') go to the guest
//     shims, by exact name (an 'embedded:' module without a shim is an error);
//   - bare npm specifiers that manifest.json maps (cbor-x through
//     firmware/moddable/npm/cbor-x.ts, cbor-x/encode, @noble/...) go where the
//     manifest says;
//   - everything else (relative imports) as esbuild resolves it.
// The entry installs the command channel (guest/runtime.ts) and hands it
// main's default export; main() itself runs on the `start` command.

import { XS_BUILD_OPTIONS } from '../xs/bundle.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));
const guest = fileURLToPath(new URL('./guest/', import.meta.url));

/** Moddable module specifier -> guest shim file. */
export const SHIMS: Readonly<Record<string, string>> = {
  'embedded:provider/builtin': 'provider-builtin.ts',
  'embedded:io/socket/tcp': 'tcp.ts',
  'embedded:network/mqtt/client': 'mqtt-client.ts',
  flash: 'flash.ts',
  timer: 'timer.ts',
  time: 'time.ts',
  'mc/config': 'mc-config.ts',
  modules: 'modules.ts',
  net: 'net.ts',
  wifi: 'wifi.ts',
  sntp: 'sntp.ts',
  crypt: 'crypt.ts',
  'text/decoder': 'text-decoder.ts',
  'text/encoder': 'text-encoder.ts',
};

/** Bare specifiers the manifest maps to files of this repository (not $(MODDABLE)). */
function manifestModules(): Map<string, string> {
  const m = JSON.parse(readFileSync(`${root}manifest.json`, 'utf8')) as { modules?: Record<string, string> };
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(m.modules ?? {})) {
    if (v.startsWith('$(') || k.startsWith('firmware/') || k.startsWith('protocol/')) continue;
    const file = `${root}${v.replace(/^\.\//, '')}`;
    out.set(k, /\.[cm]?js$/.test(file) ? file : `${file}.ts`);
  }
  return out;
}

/** The specifiers main.ts reached through a shim in the last build (for tests and docs). */
export const shimmedSpecifiers = new Set<string>();

function moddablePlugin(): Plugin {
  const mapped = manifestModules();
  return {
    name: 'moddable-provider',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        const shim = SHIMS[args.path];
        if (shim !== undefined) {
          shimmedSpecifiers.add(args.path);
          return { path: `${guest}${shim}` };
        }
        if (args.path.startsWith('embedded:')) return { errors: [{ text: `no simulated module for "${args.path}" (host-sim/xs-gate/guest/)` }] };
        const file = mapped.get(args.path) ?? mapped.get(args.path.replace(/\.js$/, ''));
        if (file !== undefined) return { path: file };
        return undefined;
      });
    },
  };
}

let cached: Promise<string> | null = null;

/** The bundle (built once per process). */
export function bundleXsGate(): Promise<string> {
  cached ??= (async () => {
    const entry = [
      `import { install } from ${JSON.stringify(`${guest}runtime.ts`)};`,
      `import main, { running } from ${JSON.stringify(`${root}firmware/moddable/main.ts`)};`,
      'install(main, running);',
    ].join('\n');
    const result = await build({
      stdin: { contents: entry, resolveDir: root, sourcefile: 'xs-gate-entry.js', loader: 'js' },
      ...XS_BUILD_OPTIONS,
      mainFields: [...XS_BUILD_OPTIONS.mainFields],
      conditions: [...XS_BUILD_OPTIONS.conditions],
      plugins: [moddablePlugin()],
    });
    const out = result.outputFiles[0];
    if (out === undefined) throw new Error('esbuild produced nothing for the XS gate');
    return out.text;
  })();
  cached.catch(() => {
    cached = null;
  });
  return cached;
}
