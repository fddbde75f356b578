// Shared by the Node and XS protocol benchmarks: the same messages, the same loops.
import { decodeEventBatch, decodeHead, encodeEventBatch, encodeHead, KeyRing, openSigned, Head, sealSigned, publicKeyOf, type Crypto } from '../protocol/index.js';
import { EventAck, EventBatch } from '../protocol/messages.js';
import { openMaced, sealMaced } from '../protocol/mac-envelope.js';

/** The MAC cases (issue 12): sealing a full upload batch (256 records, the gate's batchMax) and opening an ack, with a 32-byte gate key. */
export function macCases(crypto: Crypto): [string, () => unknown][] {
  const key = new Uint8Array(32).fill(9);
  const batch = { gate: 'fl-in-t01', epoch: 1, first: 1, count: 256, records: new Uint8Array(256 * 16).fill(7), prev: new Uint8Array(32), chain: new Uint8Array(32) };
  const ackTopic = 'subline/v1/gates/fl-in-t01/ack';
  const ack = sealMaced(EventAck, { gate: 'fl-in-t01', epoch: 1, seq: 256, chain: new Uint8Array(32).fill(1) }, ackTopic, key, 1, crypto);
  return [
    ['mac_batch', () => ({ ok: sealMaced(EventBatch, batch, 'subline/v1/gates/fl-in-t01/events', key, 1, crypto).length > 0 })],
    ['mac_ack', () => openMaced(EventAck, ack, ackTopic, () => key, crypto)],
  ];
}

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
    ...macCases(crypto).map(([n, fn]): [string, () => unknown, number] => [n, fn, iterations]),
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
