// Shared by the Node and XS protocol benchmarks: the same messages, the same loops.
import { decodeEventBatch, decodeHead, encodeEventBatch, encodeHead, KeyRing, openSigned, Head, sealSigned, publicKeyOf, type Crypto } from '../protocol/index.js';

export interface CaseTimes {
  name: string;
  samplesUs: number[];
}

export function runProtocolCases(crypto: Crypto, now: () => number, iterations: number): CaseTimes[] {
  const sk = new Uint8Array(32).fill(3);
  const head = { list: 'people', epoch: 1, version: 9, issuedAt: 1795000000, expires: 1795086400, imageSize: 4194304, chunkSize: 16384, imageRoot: new Uint8Array(32).fill(1) };
  const headBytes = encodeHead(head);
  const signed = sealSigned(Head, head, sk, crypto);
  const ring = new KeyRing(crypto, [publicKeyOf(sk)]);
  const batch = encodeEventBatch({ gate: 'fl-in-t01', epoch: 1, first: 1, count: 1024, records: new Uint8Array(32 * 1024).fill(7), prev: new Uint8Array(32), chain: new Uint8Array(32) });
  const cases: [string, () => unknown, number][] = [
    ['decode_head', () => decodeHead(headBytes), iterations],
    ['decode_event_batch_32k', () => decodeEventBatch(batch), Math.max(5, iterations / 10)],
    ['open_signed_head', () => openSigned(Head, signed, ring), Math.max(5, iterations / 50)],
  ];
  return cases.map(([name, fn, n]) => {
    const samplesUs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = now();
      const r = fn() as { ok: boolean };
      samplesUs.push((now() - t0) * 1000);
      if (!r.ok) throw new Error(`${name} failed`);
    }
    return { name, samplesUs };
  });
}
