// A power-cut-safe log of small entries in a flash region, used for the
// whitelist store's state (slot commits, accepted heads), the overlay (deltas)
// and anti-passback. The region is split into two halves; one is active.
//
//   half:  [header 32 B: magic, generation, kind, crc] [entry] [entry] ... [FF ...]
//   entry: [16 B: magic u16, type u8, 0, length u16, 0 u16, seq u32, crc32 u32] [payload, padded to 16]
//
// An entry counts once its single write returned and read back equal: its CRC
// covers header and payload, so a torn entry is recognised at recovery and
// everything before it is kept. A torn or dirty tail seals the half: nothing
// more is appended there (NOR cannot rewrite it) until compaction copies the
// live entries into the other half — erased first, header written last, so a
// cut during compaction leaves the old half in charge. Erases happen only in
// format and compaction, never in append.

import { crc32 } from '../../protocol/crc32.js';
import type { BlockStore } from '../ports.js';

const HALF_MAGIC = 0x4c52_4c53; // "SLRL"
const ENTRY_MAGIC = 0x5245;
const HALF_HEADER = 32;
const ENTRY_HEADER = 16;

export interface RecordLogOptions {
  /** Distinguishes logs so a region reused for another purpose is not misread. */
  readonly kind: number;
  /** Largest payload accepted (bytes). */
  readonly maxPayload: number;
  /**
   * Write-once flash (ESP32 flash encryption): a unit touched by a write cut
   * short may read as erased yet refuse a second write, so after a reboot the
   * log appends nothing more to the active half until it is compacted.
   */
  readonly writeOnce?: boolean;
}

export type EntryVisitor = (type: number, payload: Uint8Array, seq: number) => void;

const pad16 = (n: number) => (n + 15) & ~15;

export class RecordLog {
  readonly store: BlockStore;
  readonly kind: number;
  readonly maxPayload: number;
  readonly halfBytes: number;
  readonly writeOnce: boolean;
  #active = 0; // half index
  #generation = 0;
  #end = HALF_HEADER; // next append offset within the active half
  #seq = 0;
  #sealed = false;
  #scratch: Uint8Array;
  #check: Uint8Array;

  constructor(store: BlockStore, options: RecordLogOptions) {
    const blocks = Math.floor(store.size / store.blockSize);
    if (blocks < 2) throw new Error('a record log needs at least two erase blocks');
    this.store = store;
    this.kind = options.kind;
    this.maxPayload = options.maxPayload;
    this.writeOnce = options.writeOnce === true;
    this.halfBytes = Math.floor(blocks / 2) * store.blockSize;
    if (pad16(options.maxPayload) + ENTRY_HEADER + HALF_HEADER > this.halfBytes) throw new Error('maxPayload does not fit in half the region');
    this.#scratch = new Uint8Array(ENTRY_HEADER + pad16(options.maxPayload));
    this.#check = new Uint8Array(this.#scratch.length);
  }

  get sealed(): boolean {
    return this.#sealed;
  }
  get generation(): number {
    return this.#generation;
  }
  /** Payload bytes that still fit in the active half (0 when sealed). */
  get freeBytes(): number {
    return this.#sealed ? 0 : Math.max(0, this.halfBytes - this.#end - ENTRY_HEADER);
  }
  get usedBytes(): number {
    return this.#end;
  }

  #halfHeader(half: number): number {
    // Returns the generation of a valid half header, or -1.
    const h = this.store.read(half * this.halfBytes, HALF_HEADER);
    const v = new DataView(h.buffer, h.byteOffset, HALF_HEADER);
    if (v.getUint32(0, true) !== HALF_MAGIC || v.getUint32(8, true) !== this.kind) return -1;
    if (crc32(h, 0, 28) !== v.getUint32(28, true)) return -1;
    return v.getUint32(4, true);
  }

  /**
   * Recovers the log: picks the valid half with the highest generation and
   * replays its entries in order. Formats the region if neither half is valid
   * (first boot), which erases.
   */
  open(visit: EntryVisitor): { entries: number; sealed: boolean } {
    const g0 = this.#halfHeader(0);
    const g1 = this.#halfHeader(1);
    if (g0 < 0 && g1 < 0) {
      this.#format(0, 1);
      return { entries: 0, sealed: false };
    }
    this.#active = g1 > g0 ? 1 : 0;
    this.#generation = Math.max(g0, g1);
    this.#sealed = false;
    const entries = this.#scan(visit);
    if (this.writeOnce) this.#sealed = true;
    return { entries, sealed: this.#sealed };
  }

  #scan(visit: EntryVisitor | null): number {
    const base = this.#active * this.halfBytes;
    let pos = HALF_HEADER;
    let count = 0;
    this.#seq = 0;
    while (pos + ENTRY_HEADER <= this.halfBytes) {
      const head = this.store.read(base + pos, ENTRY_HEADER);
      if (allFF(head, 0, ENTRY_HEADER)) break;
      const v = new DataView(head.buffer, head.byteOffset, ENTRY_HEADER);
      const len = v.getUint16(4, true);
      const total = ENTRY_HEADER + pad16(len);
      if (v.getUint16(0, true) !== ENTRY_MAGIC || len > this.maxPayload || pos + total > this.halfBytes) {
        this.#sealed = true;
        break;
      }
      const entry = this.store.read(base + pos, ENTRY_HEADER + len);
      const crc = crc32(entry, 0, 12, crc32(entry, ENTRY_HEADER, ENTRY_HEADER + len));
      if (crc !== v.getUint32(12, true)) {
        this.#sealed = true;
        break;
      }
      const seq = v.getUint32(8, true);
      this.#seq = seq;
      if (visit !== null) visit(v.getUint8(2), entry.subarray(ENTRY_HEADER), seq);
      count++;
      pos += total;
    }
    this.#end = pos;
    // Everything after the last good entry must still be erased; otherwise a
    // torn write left bits behind and the next append would be corrupted.
    if (!this.#sealed) this.#sealed = !this.#erasedFrom(base + pos, base + this.halfBytes);
    return count;
  }

  #erasedFrom(start: number, end: number): boolean {
    const chunk = 256;
    for (let at = start; at < end; at += chunk) {
      const n = Math.min(chunk, end - at);
      if (!allFF(this.store.read(at, n, this.#check.length >= n ? this.#check : undefined), 0, n)) return false;
    }
    return true;
  }

  /**
   * Appends one entry durably. Returns false when the half is full or sealed,
   * or the read-back differs (the half is then sealed): compact, then retry.
   */
  append(type: number, payload: Uint8Array): boolean {
    if (payload.length > this.maxPayload) throw new Error(`payload of ${payload.length} bytes exceeds ${this.maxPayload}`);
    const total = ENTRY_HEADER + pad16(payload.length);
    if (this.#sealed || this.#end + total > this.halfBytes) return false;
    const buf = this.#scratch.subarray(0, total);
    buf.fill(0xff);
    const v = new DataView(buf.buffer, buf.byteOffset, total);
    const seq = this.#seq + 1;
    v.setUint16(0, ENTRY_MAGIC, true);
    v.setUint8(2, type);
    v.setUint8(3, 0);
    v.setUint16(4, payload.length, true);
    v.setUint16(6, 0, true);
    v.setUint32(8, seq, true);
    buf.set(payload, ENTRY_HEADER);
    v.setUint32(12, crc32(buf, 0, 12, crc32(buf, ENTRY_HEADER, ENTRY_HEADER + payload.length)), true);
    const at = this.#active * this.halfBytes + this.#end;
    this.store.write(at, buf);
    const back = this.store.read(at, total, this.#check);
    for (let i = 0; i < total; i++) {
      if (back[i] !== buf[i]) {
        this.#sealed = true;
        return false;
      }
    }
    this.#end += total;
    this.#seq = seq;
    return true;
  }

  /**
   * Rewrites the live entries into the other half and makes it active.
   * `live` calls `emit` for each entry to keep; emit returns false if the
   * entry does not fit (the compaction is then abandoned and false returned).
   */
  compact(live: (emit: (type: number, payload: Uint8Array) => boolean) => void): boolean {
    const target = 1 - this.#active;
    this.#eraseHalf(target);
    const previous = { active: this.#active, end: this.#end, seq: this.#seq, sealed: this.#sealed };
    this.#active = target;
    this.#end = HALF_HEADER;
    this.#sealed = false;
    let fits = true;
    live((type, payload) => {
      if (!fits) return false;
      fits = this.append(type, payload);
      return fits;
    });
    if (!fits) {
      this.#active = previous.active;
      this.#end = previous.end;
      this.#seq = previous.seq;
      this.#sealed = previous.sealed;
      return false;
    }
    this.#writeHalfHeader(target, this.#generation + 1);
    this.#generation += 1;
    return true;
  }

  #eraseHalf(half: number): void {
    const first = (half * this.halfBytes) / this.store.blockSize;
    const n = this.halfBytes / this.store.blockSize;
    for (let b = 0; b < n; b++) this.store.eraseBlock(first + b);
  }

  #writeHalfHeader(half: number, generation: number): void {
    const h = new Uint8Array(HALF_HEADER).fill(0xff);
    const v = new DataView(h.buffer);
    v.setUint32(0, HALF_MAGIC, true);
    v.setUint32(4, generation, true);
    v.setUint32(8, this.kind, true);
    v.setUint32(28, crc32(h, 0, 28), true);
    this.store.write(half * this.halfBytes, h);
  }

  #format(half: number, generation: number): void {
    this.#eraseHalf(half);
    this.#writeHalfHeader(half, generation);
    this.#active = half;
    this.#generation = generation;
    this.#end = HALF_HEADER;
    this.#seq = 0;
    this.#sealed = false;
  }
}

function allFF(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0xff) return false;
  return true;
}
