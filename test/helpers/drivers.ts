// Runs reader frame decoders over streams given as hex chunks and returns what
// they reported, as plain JSON. Shared by test/drivers.test.ts (Node) and
// test/xs/drivers.entry.ts (XS), so both engines run the same code on the
// same input. Device-safe: no Node APIs.

import { fromHex, toHex } from '../../protocol/hex.js';
import type { FrameDecoder, FrameRejectReason } from '../../firmware/drivers/frame.js';
import { WiegandUartDecoder } from '../../firmware/drivers/wiegand-uart.js';
import { Em4100AsciiDecoder } from '../../firmware/drivers/em4100-ascii.js';
import { UhfFrameDecoder, type UhfFrameOptions } from '../../firmware/drivers/uhf-frame.js';

export type DecoderName = 'wiegand' | 'em4100' | 'uhf';

export interface StreamCase {
  readonly decoder: DecoderName;
  readonly options?: Pick<UhfFrameOptions, 'duplicateWindowMs' | 'duplicateCapacity'>;
  readonly chunks: readonly { readonly hex: string; readonly atMs: number }[];
}

export type DecoderEvent = { read: { kind: string; id: string; atMs: number } } | { reject: FrameRejectReason; atMs: number };

export interface StreamOutcome {
  /** Reads and rejects in the order the decoder reported them. */
  events: DecoderEvent[];
  /** A copy of the decoder's stats after the last chunk. */
  stats: unknown;
}

export function makeDecoder(name: DecoderName, events: DecoderEvent[], options: StreamCase['options'] = {}): FrameDecoder {
  const callbacks = {
    onRead: (r: { kind: string; id: Uint8Array; atMs: number }) => void events.push({ read: { kind: r.kind, id: toHex(r.id), atMs: r.atMs } }),
    onReject: (reason: FrameRejectReason, atMs: number) => void events.push({ reject: reason, atMs }),
  };
  if (name === 'wiegand') return new WiegandUartDecoder(callbacks);
  if (name === 'em4100') return new Em4100AsciiDecoder(callbacks);
  return new UhfFrameDecoder({ ...callbacks, ...options });
}

/** Pushes the chunks (already bytes) through a fresh decoder. */
export function runChunks(name: DecoderName, chunks: readonly { bytes: Uint8Array; atMs: number }[], options?: StreamCase['options']): StreamOutcome {
  const events: DecoderEvent[] = [];
  const decoder = makeDecoder(name, events, options);
  for (const c of chunks) decoder.push(c.bytes, c.atMs);
  return { events, stats: JSON.parse(JSON.stringify(decoder.stats)) as unknown };
}

export function runStream(c: StreamCase): StreamOutcome {
  return runChunks(
    c.decoder,
    c.chunks.map((k) => ({ bytes: fromHex(k.hex), atMs: k.atMs })),
    c.options,
  );
}

export function runStreams(cases: readonly StreamCase[]): StreamOutcome[] {
  return cases.map(runStream);
}
