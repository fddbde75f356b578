// EM4100 (125 kHz) cards through an RDM6300-style reader (UART 9600 8N1).
// One frame per read, 14 bytes:
//   0x02 | 10 ASCII hex digits: version/customer byte + 4-byte card number |
//   2 ASCII hex digits: XOR of those 5 bytes | 0x03
//   e.g. 02 "62E3086CED" "08" 03 → id 62 e3 08 6c ed
// Digits may be upper or lower case. id = the 5 data bytes.
//
// Rejects: 'format' (a non-hex byte among the 12 digits; the rest up to ETX is
// dropped), 'length' (ETX early or not at byte 13, or a new STX cutting the
// frame), 'checksum'. Frames have a fixed size, so there is no 'overflow'.
// STX never occurs inside a good frame, so every STX is a resync point; bytes
// outside frames are noise.

import type { FrameDecoder, FrameDecoderOptions, FrameRejectReason, FrameStats } from './frame.js';
import { newFrameStats } from './frame.js';

export type Em4100AsciiOptions = FrameDecoderOptions;

const STX = 0x02;
const ETX = 0x03;
/** Hex digits per frame: 5 data bytes + 1 checksum byte. */
const DIGITS = 12;

const HUNT = 0; // waiting for STX
const FRAME = 1; // after STX, reading digits
const DISCARD = 2; // after a bad digit or a missing ETX: dropping up to ETX

function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

export class Em4100AsciiDecoder implements FrameDecoder {
  readonly #onRead: FrameDecoderOptions['onRead'];
  readonly #onReject: FrameDecoderOptions['onReject'];
  readonly #stats = newFrameStats();
  /** The 5 data bytes and the checksum byte, filled a nibble at a time. */
  readonly #data = new Uint8Array(DIGITS / 2);
  #digits = 0;
  #state = HUNT;
  #closed = false;

  constructor(options: Em4100AsciiOptions) {
    this.#onRead = options.onRead;
    this.#onReject = options.onReject;
  }

  get stats(): FrameStats {
    return this.#stats;
  }

  push(bytes: Uint8Array, atMs: number): void {
    for (let i = 0; i < bytes.length; i++) {
      if (this.#closed) return;
      this.#byte(bytes[i] as number, atMs);
    }
  }

  close(): void {
    this.#closed = true;
    this.#state = HUNT;
    this.#digits = 0;
  }

  #byte(c: number, atMs: number): void {
    if (c === STX) {
      const cut = this.#state === FRAME;
      this.#state = FRAME;
      this.#digits = 0;
      if (cut) this.#reject('length', atMs);
      return;
    }
    if (this.#state === HUNT) {
      this.#stats.noise++;
    } else if (this.#state === DISCARD) {
      if (c === ETX) this.#state = HUNT;
    } else if (this.#digits < DIGITS) {
      const n = nibble(c);
      if (n < 0) {
        // ETX early: the frame is short; anything else: a byte that is not a digit.
        this.#state = c === ETX ? HUNT : DISCARD;
        this.#reject(c === ETX ? 'length' : 'format', atMs);
        return;
      }
      const i = this.#digits >> 1;
      this.#data[i] = this.#digits & 1 ? (this.#data[i] as number) | n : n << 4;
      this.#digits++;
    } else if (c === ETX) {
      this.#state = HUNT;
      const d = this.#data;
      const x = (d[0] as number) ^ (d[1] as number) ^ (d[2] as number) ^ (d[3] as number) ^ (d[4] as number);
      if (x !== d[5]) return this.#reject('checksum', atMs);
      this.#stats.ok++;
      this.#onRead({ kind: 'card', id: d.slice(0, 5), atMs });
    } else {
      this.#state = DISCARD;
      this.#reject('length', atMs);
    }
  }

  #reject(reason: FrameRejectReason, atMs: number): void {
    this.#stats.rejected[reason]++;
    this.#onReject?.(reason, atMs);
  }
}
