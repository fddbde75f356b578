// EPC Gen2 UHF tag reports from an M100-family reader module (Magic RF M100
// and its clones: YRM100, JRD-100, ...), UART 115200 8N1. Frame:
//   BB | type | command | PL (2 bytes, big-endian) | PL parameter bytes | checksum | 7E
//   checksum = (type + command + both PL bytes + parameters) mod 256
// A tag report is type 0x02 (notification), command 0x22 (inventory), with
//   parameters RSSI (1) | PC (2, big-endian) | EPC (2 × (PC >> 11) bytes) |
//   CRC (2): the tag's CRC-16/GENIBUS over PC + EPC, as backscattered,
// so PL = 5 + EPC length. Example (M100 manual):
//   BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E
//   → EPC 30 75 1f eb 70 5c 59 04 e3 d5 0d 70
// id = the EPC bytes. Other well-formed frames from the reader (type 0x01
// responses, e.g. BB 01 FF 00 01 15 16 7E "no tag") are counted as ignored.
//
// Rejects: 'format' (type not 0x01/0x02, or a notification that is not an
// inventory report), 'overflow' (PL > MAX_PARAMS, the largest tag report: a
// 31-word EPC), 'length' (no 7E where PL puts it, or a tag report whose PL is
// not 5 + the EPC length its PC announces, or an empty EPC), 'checksum',
// 'crc'. After a reject the decoder rescans the bytes it holds from the one
// after the refused header, so a stray 0xBB in noise cannot swallow the good
// frame behind it (that frame is read once the false header's PL has arrived,
// at most FRAME_CAPACITY bytes later).
//
// Duplicate window: a reader reports a tag in the field many times a second.
// An EPC reported less than duplicateWindowMs ago is dropped (stats.duplicate);
// the window runs from the last *reported* read, so a tag that stays in the
// field is reported again once per window rather than never. The table of
// recent EPCs has a fixed capacity; when full, the oldest entry is evicted.

import type { FrameDecoder, FrameDecoderOptions, FrameRejectReason, FrameStats, MutableFrameStats } from './frame.js';
import { newFrameStats } from './frame.js';

export interface UhfFrameOptions extends FrameDecoderOptions {
  /** A repeat of an EPC within this many ms of its last report is dropped (default 2000; 0 turns it off). */
  duplicateWindowMs?: number;
  /** EPCs remembered for the duplicate window (default 64; each slot holds MAX_EPC bytes). */
  duplicateCapacity?: number;
}

export interface UhfFrameStats extends FrameStats {
  /** Good tag reports dropped by the duplicate window. */
  readonly duplicate: number;
  /** Well-formed frames that are not tag reports (command responses, errors). */
  readonly ignored: number;
}

const HEADER = 0xbb;
const END = 0x7e;
const TYPE_RESPONSE = 0x01;
const TYPE_NOTIFICATION = 0x02;
const CMD_INVENTORY = 0x22;
/** Longest EPC a PC word can announce: 31 words. */
const MAX_EPC = 62;
/** Largest parameter block kept: RSSI + PC + longest EPC + CRC. */
const MAX_PARAMS = 5 + MAX_EPC;
/** Header, type, command, PL, parameters, checksum, end. */
const FRAME_CAPACITY = MAX_PARAMS + 7;
const NEED_MORE = 0;
const REJECT = -1;

/** CRC-16/GENIBUS (the EPC Gen2 CRC): poly 0x1021, init 0xFFFF, output inverted. */
function crc16(b: Uint8Array, from: number, to: number): number {
  let crc = 0xffff;
  for (let i = from; i < to; i++) {
    crc ^= (b[i] as number) << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return ~crc & 0xffff;
}

/** EPC length in bytes announced by the PC word at b[6..7]: (PC >> 11) words. */
function epcBytes(b: Uint8Array): number {
  return ((b[6] as number) >> 3) * 2;
}

export class UhfFrameDecoder implements FrameDecoder {
  readonly #onRead: FrameDecoderOptions['onRead'];
  readonly #onReject: FrameDecoderOptions['onReject'];
  readonly #stats: MutableFrameStats & { duplicate: number; ignored: number } = { ...newFrameStats(), duplicate: 0, ignored: 0 };
  /** The candidate frame, from its header byte. */
  readonly #buf = new Uint8Array(FRAME_CAPACITY);
  #len = 0;
  #reason: FrameRejectReason = 'format';
  #closed = false;
  readonly #window: number;
  readonly #capacity: number;
  /** Recent EPCs: slot s holds #seenLen[s] bytes (0 = free) at #seenEpc[s * MAX_EPC], last reported at #seenAt[s]. */
  readonly #seenEpc: Uint8Array;
  readonly #seenLen: Uint8Array;
  readonly #seenAt: Float64Array;

  constructor(options: UhfFrameOptions) {
    const window = options.duplicateWindowMs ?? 2000;
    const capacity = options.duplicateCapacity ?? 64;
    if (!(window >= 0 && window <= 86_400_000)) throw new RangeError('duplicateWindowMs: 0 to 86400000');
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) throw new RangeError('duplicateCapacity: an integer from 1 to 1024');
    this.#onRead = options.onRead;
    this.#onReject = options.onReject;
    this.#window = window;
    this.#capacity = capacity;
    this.#seenEpc = new Uint8Array(capacity * MAX_EPC);
    this.#seenLen = new Uint8Array(capacity);
    this.#seenAt = new Float64Array(capacity);
  }

  get stats(): UhfFrameStats {
    return this.#stats;
  }

  push(bytes: Uint8Array, atMs: number): void {
    for (let i = 0; i < bytes.length; i++) {
      if (this.#closed) return;
      const c = bytes[i] as number;
      if (this.#len === 0 && c !== HEADER) {
        this.#stats.noise++;
        continue;
      }
      // Room is guaranteed: #process leaves fewer bytes than the candidate's length, which is at most FRAME_CAPACITY.
      this.#buf[this.#len++] = c;
      this.#process(atMs);
    }
  }

  close(): void {
    this.#closed = true;
    this.#len = 0;
  }

  /** Settles the buffered candidate(s) as far as the bytes allow. */
  #process(atMs: number): void {
    for (;;) {
      const f = this.#examine();
      if (f === NEED_MORE) return;
      if (f === REJECT) {
        const reason = this.#reason;
        this.#drop(1); // rescan from the byte after the refused header
        this.#reject(reason, atMs);
        continue;
      }
      this.#frame(f, atMs);
    }
  }

  /** NEED_MORE, REJECT (reason in #reason), or the length of a well-formed frame at #buf[0]. */
  #examine(): number {
    const b = this.#buf;
    const len = this.#len;
    if (len < 2) return NEED_MORE;
    const tag = b[1] === TYPE_NOTIFICATION;
    if (!tag && b[1] !== TYPE_RESPONSE) return this.#fail('format');
    if (len < 3) return NEED_MORE;
    if (tag && b[2] !== CMD_INVENTORY) return this.#fail('format');
    if (len < 5) return NEED_MORE;
    const pl = ((b[3] as number) << 8) | (b[4] as number);
    if (pl > MAX_PARAMS) return this.#fail('overflow');
    // Check a tag report's length against its PC as soon as the PC is in:
    // a false header in noise is then refused after a few bytes, not after PL.
    if (tag && pl < 7) return this.#fail('length');
    if (tag && len >= 8 && pl !== 5 + epcBytes(b)) return this.#fail('length');
    const f = pl + 7;
    if (len < f) return NEED_MORE;
    if (b[f - 1] !== END) return this.#fail('length');
    let sum = 0;
    for (let i = 1; i < f - 2; i++) sum += b[i] as number;
    if ((sum & 0xff) !== b[f - 2]) return this.#fail('checksum');
    return f;
  }

  #fail(reason: FrameRejectReason): number {
    this.#reason = reason;
    return REJECT;
  }

  /** A well-formed frame of f bytes (header, end and checksum good). */
  #frame(f: number, atMs: number): void {
    const b = this.#buf;
    if (b[1] !== TYPE_NOTIFICATION) {
      this.#drop(f);
      this.#stats.ignored++;
      return;
    }
    const epcLen = f - 12; // #examine checked PL = 5 + the PC's EPC length
    // The tag's CRC covers PC + EPC (bytes 6 .. 8 + epcLen), and follows them big-endian.
    const crc = ((b[8 + epcLen] as number) << 8) | (b[9 + epcLen] as number);
    if (crc16(b, 6, 8 + epcLen) !== crc) {
      this.#drop(f);
      return this.#reject('crc', atMs);
    }
    const id = b.slice(8, 8 + epcLen);
    this.#drop(f);
    if (this.#isDuplicate(id, atMs)) {
      this.#stats.duplicate++;
      return;
    }
    this.#stats.ok++;
    this.#onRead({ kind: 'uhf', id, atMs });
  }

  /** Removes n bytes from the front, then anything before the next header. */
  #drop(n: number): void {
    const b = this.#buf;
    let i = n;
    while (i < this.#len && b[i] !== HEADER) i++;
    b.copyWithin(0, i, this.#len);
    this.#len -= i;
  }

  /** True if epc was reported within the window; otherwise records it as reported now. */
  #isDuplicate(epc: Uint8Array, atMs: number): boolean {
    if (this.#window === 0) return false;
    const n = epc.length;
    let free = -1;
    let oldest = -1;
    for (let s = 0; s < this.#capacity; s++) {
      const l = this.#seenLen[s] as number;
      if (l === 0) {
        if (free < 0) free = s;
        continue;
      }
      if (l === n && this.#sameEpc(s, epc)) {
        // A clock that went back counts as inside the window.
        if (atMs - (this.#seenAt[s] as number) < this.#window) return true;
        this.#seenAt[s] = atMs;
        return false;
      }
      if (oldest < 0 || (this.#seenAt[s] as number) < (this.#seenAt[oldest] as number)) oldest = s;
    }
    const slot = free >= 0 ? free : oldest;
    this.#seenEpc.set(epc, slot * MAX_EPC);
    this.#seenLen[slot] = n;
    this.#seenAt[slot] = atMs;
    return false;
  }

  #sameEpc(slot: number, epc: Uint8Array): boolean {
    const base = slot * MAX_EPC;
    for (let i = 0; i < epc.length; i++) if (this.#seenEpc[base + i] !== epc[i]) return false;
    return true;
  }

  #reject(reason: FrameRejectReason, atMs: number): void {
    this.#stats.rejected[reason]++;
    this.#onReject?.(reason, atMs);
  }
}
