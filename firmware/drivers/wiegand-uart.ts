// Wiegand 26 / 34 / 35 / 37-bit frames as delivered by a Wiegand-to-UART
// interface (Moddable's digital interrupts coalesce edges, so the D0/D1
// pulses are timed by the interface, not by us).
//
// Interface line format, one frame per line, ASCII:
//   'W' <bit count: 1-2 decimal digits> ':' <the bits as '0'/'1', first received first> [CR] LF
//   e.g.  W26:00110010100001111111111111\r\n     (H10301, FC 101, card 4095)
//
// Formats (bit 0 = first bit on the wire):
//   26  H10301          bit 0 even over 1-12, bit 25 odd over 13-24; FC 1-8, card 9-24
//   34  H10306          bit 0 even over 1-16, bit 33 odd over 17-32; FC 1-16, card 17-32
//   35  Corporate 1000  bit 1 even over 2,3,5,6,...,32,33; bit 34 odd over 1,2,4,5,...,31,32;
//                       bit 0 odd over 1-34 (checked after the other two); company 2-13, card 14-33
//   37  H10304          bit 0 even over 1-18, bit 36 odd over 18-35 (bit 18 is in both); FC 1-16, card 17-35
//
// id = [bit count, payload (FC + card bits) right-aligned big-endian], e.g.
// 26-bit FC 101 card 4095 → 1a 65 0f ff. The leading count keeps a 26-bit and
// a 34-bit credential with the same payload value apart.
//
// Rejects: 'format' (not W<digits>:, a character other than 0/1, or a line cut
// by the next 'W' before its LF), 'length' (unknown bit count, or the count of
// bits differs from the declared one), 'parity', 'overflow' (line over
// LINE_CAPACITY; the rest up to LF is dropped). Bytes outside a line are noise.
// 'W' never occurs inside a good line, so every 'W' is a resync point.

import type { FrameDecoder, FrameDecoderOptions, FrameRejectReason, FrameStats } from './frame.js';
import { newFrameStats } from './frame.js';

export type WiegandUartOptions = FrameDecoderOptions;

const W = 0x57;
const COLON = 0x3a;
const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const NINE = 0x39;

/** "W37:" + 37 bits + CR is 42 bytes; the spare bytes make a slightly long line 'length' rather than 'overflow'. */
const LINE_CAPACITY = 48;

const HUNT = 0; // waiting for 'W'
const LINE = 1; // inside a line
const DISCARD = 2; // after an overflow: dropping the rest of the line

export class WiegandUartDecoder implements FrameDecoder {
  readonly #onRead: FrameDecoderOptions['onRead'];
  readonly #onReject: FrameDecoderOptions['onReject'];
  readonly #stats = newFrameStats();
  readonly #line = new Uint8Array(LINE_CAPACITY);
  #len = 0;
  #state = HUNT;
  #closed = false;

  constructor(options: WiegandUartOptions) {
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
    this.#len = 0;
  }

  #byte(c: number, atMs: number): void {
    if (this.#state === LINE) {
      if (c === LF) {
        this.#state = HUNT;
        this.#finish(atMs);
      } else if (c === W) {
        this.#start();
        this.#reject('format', atMs);
      } else if (this.#len === LINE_CAPACITY) {
        this.#state = DISCARD;
        this.#reject('overflow', atMs);
      } else {
        this.#line[this.#len++] = c;
      }
    } else if (c === W) {
      this.#start();
    } else if (this.#state === DISCARD) {
      if (c === LF) this.#state = HUNT;
    } else {
      this.#stats.noise++;
    }
  }

  #start(): void {
    this.#line[0] = W;
    this.#len = 1;
    this.#state = LINE;
  }

  /** A complete line (without its LF) is in #line[0, #len). */
  #finish(atMs: number): void {
    const line = this.#line;
    let end = this.#len;
    if (line[end - 1] === CR) end--;
    let p = 1;
    let declared = 0;
    while (p < 3 && p < end && (line[p] as number) >= ZERO && (line[p] as number) <= NINE) {
      declared = declared * 10 + (line[p] as number) - ZERO;
      p++;
    }
    if (p === 1 || p >= end || line[p] !== COLON) return this.#reject('format', atMs);
    const o = p + 1; // bit 0
    for (let i = o; i < end; i++) {
      const ch = line[i] as number;
      if (ch !== ZERO && ch !== ZERO + 1) return this.#reject('format', atMs);
    }
    if (end - o !== declared) return this.#reject('length', atMs);
    let from: number;
    let to: number;
    let parity: boolean;
    switch (declared) {
      case 26:
        from = 1;
        to = 24;
        parity = this.#xor(o, 0, 12) === 0 && this.#xor(o, 13, 25) === 1;
        break;
      case 34:
        from = 1;
        to = 32;
        parity = this.#xor(o, 0, 16) === 0 && this.#xor(o, 17, 33) === 1;
        break;
      case 35:
        from = 2;
        to = 33;
        parity = (this.#bit(o, 1) ^ this.#xorPairs(o, 2, 33)) === 0 && (this.#bit(o, 34) ^ this.#xorPairs(o, 1, 32)) === 1 && this.#xor(o, 0, 34) === 1;
        break;
      case 37:
        from = 1;
        to = 35;
        parity = this.#xor(o, 0, 18) === 0 && (this.#bit(o, 36) ^ this.#xor(o, 18, 35)) === 1;
        break;
      default:
        return this.#reject('length', atMs);
    }
    if (!parity) return this.#reject('parity', atMs);
    const n = to - from + 1;
    const id = new Uint8Array(1 + ((n + 7) >> 3));
    id[0] = declared;
    // Right-aligned: payload bit k (MSB first) has weight 2^(n-1-k).
    for (let k = 0; k < n; k++) {
      if (this.#bit(o, from + k) === 1) {
        const w = n - 1 - k;
        const j = id.length - 1 - (w >> 3);
        id[j] = (id[j] as number) | (1 << (w & 7));
      }
    }
    this.#stats.ok++;
    this.#onRead({ kind: 'card', id, atMs });
  }

  #bit(o: number, i: number): number {
    return (this.#line[o + i] as number) - ZERO;
  }

  /** XOR of bits from..to inclusive. */
  #xor(o: number, from: number, to: number): number {
    let x = 0;
    for (let i = from; i <= to; i++) x ^= this.#bit(o, i);
    return x;
  }

  /** XOR of bits from..to taking two of every three (from, from+1, skip from+2, ...): the Corporate 1000 masks. */
  #xorPairs(o: number, from: number, to: number): number {
    let x = 0;
    for (let i = from; i <= to; i++) if ((i - from) % 3 !== 2) x ^= this.#bit(o, i);
    return x;
  }

  #reject(reason: FrameRejectReason, atMs: number): void {
    this.#stats.rejected[reason]++;
    this.#onReject?.(reason, atMs);
  }
}
