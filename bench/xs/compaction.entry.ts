import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { runCompactionDue } from '../compaction-cases.js';

declare const issueCommand: (request: ArrayBuffer) => ArrayBuffer;
declare const performance: { now(): number };
const te = new TextEncoder();
const fetchBytes = (what: string): Uint8Array => {
  const b = te.encode(what);
  return new Uint8Array(issueCommand(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
};
serveJson((req: { n: number }) => runCompactionDue(fetchBytes('flash'), req.n, fetchBytes('ids'), fetchBytes('messages'), nobleCrypto, () => performance.now()));
