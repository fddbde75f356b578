// Installs the Web text codecs as globals. XS has no TextEncoder/TextDecoder;
// Moddable provides them as the modules "text/encoder" and "text/decoder"
// (modules/data/text/). protocol/hex.ts and cbor-x use the globals, and cbor-x
// probes for them while its module body runs, so main.ts imports this module
// first: ES module bodies run in import order, depth first, so this one runs
// before anything that reaches cbor-x.

import TextDecoder from 'text/decoder';
import TextEncoder from 'text/encoder';

const g = globalThis as unknown as Record<string, unknown>;
if (g['TextEncoder'] === undefined) g['TextEncoder'] = TextEncoder;
if (g['TextDecoder'] === undefined) g['TextDecoder'] = TextDecoder;

export {};
