// What every reader frame decoder shares: the reject reasons, the counters and
// the callback options. The decoders (wiegand-uart.ts, em4100-ascii.ts,
// uhf-frame.ts) are byte-stream parsers with fixed buffers that never throw
// on input; docs/READERS.md has the wire formats.

import type { CredentialRead } from '../ports.js';

/** Why a frame was refused. Stable strings (logged and counted); never rename. */
export type FrameRejectReason =
  | 'parity' // Wiegand: a parity bit does not match
  | 'checksum' // EM4100 XOR / UHF sum checksum does not match
  | 'crc' // UHF: the tag's CRC-16 over PC+EPC does not match
  | 'length' // wrong or unknown length, or the end marker is not where the length puts it
  | 'format' // a byte that cannot appear there (non-hex, non-0/1, bad header field)
  | 'overflow'; // longer than the decoder's fixed buffer

export const FRAME_REJECT_REASONS: readonly FrameRejectReason[] = ['parity', 'checksum', 'crc', 'length', 'format', 'overflow'];

export interface FrameStats {
  /** Frames delivered through onRead. */
  readonly ok: number;
  /** Bytes seen outside any frame (before a start marker). */
  readonly noise: number;
  /** Frames refused, per reason. */
  readonly rejected: Readonly<Record<FrameRejectReason, number>>;
}

export interface FrameDecoderOptions {
  /** One good frame. Called synchronously from push(). */
  onRead: (read: CredentialRead) => void;
  /** One bad frame (never reaches onRead). */
  onReject?: (reason: FrameRejectReason, atMs: number) => void;
}

/** The common surface, so a lane can take any reader. */
export interface FrameDecoder {
  /** Feeds bytes as they arrive from the UART, in any split; atMs is the monotonic time of arrival. */
  push(bytes: Uint8Array, atMs: number): void;
  /** Drops any partial frame and stops reporting; later pushes are ignored. */
  close(): void;
  readonly stats: FrameStats;
}

/** Mutable counters behind a decoder's read-only `stats`. */
export interface MutableFrameStats {
  ok: number;
  noise: number;
  rejected: Record<FrameRejectReason, number>;
}

export function newFrameStats(): MutableFrameStats {
  return { ok: 0, noise: 0, rejected: { parity: 0, checksum: 0, crc: 0, length: 0, format: 0, overflow: 0 } };
}
