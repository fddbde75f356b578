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
//
// Compaction is stepwise (compactStep, from the maintenance scheduler): a step
// erases one block of the other half, or copies up to one block of entries
// from the active half (verbatim: an entry's CRC does not depend on where it
// sits), or — once the copy has caught up with the active half's end — writes
// the other half's header, which is the switch. Appends keep going to the
// active half meanwhile and are copied too. Every step is power-cut safe: until
// the header's single write, recovery finds the old half (higher generation)
// and everything appended to it.

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
/**
 * Decides, while compaction copies, whether an entry is still live. Must not
 * append to the log (the payload is a view of the copy buffer).
 */
export type KeepEntry = (type: number, payload: Uint8Array, seq: number) => boolean;

const IDLE = 0;
const ERASE = 1;
const COPY = 2;

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
  readonly #header = new Uint8Array(HALF_HEADER);
  // Compaction in progress: phase, next block to erase, copy cursors (offsets in the active and the target half).
  #phase = IDLE;
  #eraseNext = 0;
  #from = HALF_HEADER;
  #to = HALF_HEADER;
  #blocked = false; // an append was refused for lack of room since the last compaction
  #abandonedAt = -1; // #end when a compaction found the live entries too large for a half
  /** Compactions finished, and restarted because a write in the target half read back wrong. */
  compactions = 0;
  restarts = 0;

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
  /** Seq of the newest entry appended or replayed (0 = none). */
  get lastSeq(): number {
    return this.#seq;
  }
  /** A compaction has started and not finished. */
  get compacting(): boolean {
    return this.#phase !== IDLE;
  }
  /** An append was refused (sealed or out of room) since the last compaction: appends wait for it. */
  get blocked(): boolean {
    return this.#blocked || this.#sealed;
  }
  /** The owner refused something for lack of room here (as a refused append does). */
  markBlocked(): void {
    this.#blocked = true;
  }
  /** Bytes an entry of `payloadBytes` takes in a half. */
  static entryBytes(payloadBytes: number): number {
    return ENTRY_HEADER + pad16(payloadBytes);
  }
  /** Bytes a half can hold in entries. */
  get capacityBytes(): number {
    return this.halfBytes - HALF_HEADER;
  }
  /** True if an entry of `payloadBytes` can be appended now. */
  fits(payloadBytes: number): boolean {
    return !this.#sealed && this.#end + ENTRY_HEADER + pad16(payloadBytes) <= this.halfBytes;
  }

  /**
   * The owner's policy, given the bytes its live entries take (as entries):
   * compaction is due when one is running, the half is sealed, an append was
   * refused and compaction would free something, or the half is three
   * quarters full and at least an eighth of it is dead. Never again for the
   * same contents after a compaction found the live entries too large.
   */
  compactionDue(liveEntryBytes: number): boolean {
    if (this.#phase !== IDLE) return true;
    if (this.#abandonedAt === this.#end) return false;
    if (this.#sealed) return true;
    const dead = this.#end - HALF_HEADER - liveEntryBytes;
    if (dead <= 0) return false;
    return this.#blocked || (this.freeBytes < this.halfBytes / 4 && dead >= this.halfBytes / 8);
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
    // A compaction interrupted by a reboot starts over (its half has no header yet).
    this.#phase = IDLE;
    this.#blocked = false;
    this.#abandonedAt = -1;
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

  /** Visits the active half's entries again, in order (reads only; the log is unchanged). */
  forEach(visit: EntryVisitor): number {
    const { end, seq, sealed } = { end: this.#end, seq: this.#seq, sealed: this.#sealed };
    const n = this.#scan(visit, end);
    this.#end = end;
    this.#seq = seq;
    this.#sealed = sealed;
    return n;
  }

  #scan(visit: EntryVisitor | null, limit = this.halfBytes): number {
    const base = this.#active * this.halfBytes;
    let pos = HALF_HEADER;
    let count = 0;
    this.#seq = 0;
    while (pos + ENTRY_HEADER <= limit) {
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
    if (this.#sealed || this.#end + total > this.halfBytes) {
      this.#blocked = true;
      return false;
    }
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
   * Does at most `budget` steps of compaction (starting one if none runs):
   * a step erases one block of the other half, or copies entries kept by
   * `keep` until about one block has been read. When the copy reaches the
   * active half's end the other half's header is written and it becomes
   * active (in the same step). Returns the steps used; `compacting` is false
   * once done. Bounded: each step handles at most one block or one entry.
   */
  compactStep(budget: number, keep: KeepEntry): number {
    let used = 0;
    if (this.#phase === IDLE) this.#begin();
    const blocks = this.halfBytes / this.store.blockSize;
    while (used < budget && this.#phase !== IDLE) {
      used++;
      if (this.#phase === ERASE) {
        this.store.eraseBlock(((1 - this.#active) * this.halfBytes) / this.store.blockSize + this.#eraseNext);
        this.#eraseNext++;
        if (this.#eraseNext >= blocks) {
          this.#phase = COPY;
          this.#from = HALF_HEADER;
          this.#to = HALF_HEADER;
        }
      } else this.#copySlice(keep);
    }
    return used;
  }

  /** Runs a whole compaction now (boot only: it erases a whole half). Returns false if the live entries do not fit. */
  compactNow(keep: KeepEntry): boolean {
    const blocks = this.halfBytes / this.store.blockSize;
    // Bounded: erases, plus one step per entry at most, plus a few restarts.
    const limit = 4 * (blocks + this.halfBytes / ENTRY_HEADER) + 4;
    this.#begin();
    for (let i = 0; i < limit && this.#phase !== IDLE; i++) this.compactStep(1, keep);
    if (this.#phase !== IDLE) throw new Error('record log: compaction does not finish (a block does not program)');
    return this.#abandonedAt !== this.#end;
  }

  #begin(): void {
    if (this.#phase !== IDLE) return;
    this.#phase = ERASE;
    this.#eraseNext = 0;
  }

  /** One copy step: entries from #from on, until a block's worth was read or the end is reached. */
  #copySlice(keep: KeepEntry): void {
    const src = this.#active * this.halfBytes;
    const dst = (1 - this.#active) * this.halfBytes;
    const stop = this.#from + this.store.blockSize;
    while (this.#from < this.#end && this.#from < stop) {
      const head = this.store.read(src + this.#from, ENTRY_HEADER, this.#check);
      const v = new DataView(head.buffer, head.byteOffset, ENTRY_HEADER);
      const len = v.getUint16(4, true);
      const total = ENTRY_HEADER + pad16(len);
      // Entries below #end were checked when appended or replayed; one that rotted since cannot be followed.
      if (v.getUint16(0, true) !== ENTRY_MAGIC || len > this.maxPayload || this.#from + total > this.#end) {
        this.#from = this.#end;
        break;
      }
      const type = v.getUint8(2);
      const seq = v.getUint32(8, true);
      const crc = v.getUint32(12, true);
      const entry = this.store.read(src + this.#from, total, this.#scratch);
      this.#from += total;
      if (crc32(entry, 0, 12, crc32(entry, ENTRY_HEADER, ENTRY_HEADER + len)) !== crc) continue; // rotted: not carried
      if (!keep(type, entry.subarray(ENTRY_HEADER, ENTRY_HEADER + len), seq)) continue;
      if (this.#to + total > this.halfBytes) {
        // The live entries do not fit in a half: give up until something changes.
        this.#abandonedAt = this.#end;
        this.#phase = IDLE;
        return;
      }
      const out = entry.subarray(0, total);
      this.store.write(dst + this.#to, out);
      if (!this.#readsBack(dst + this.#to, out)) return this.#restart();
      this.#to += total;
      if (total >= this.store.blockSize) break; // one large entry is a step of its own
    }
    if (this.#from < this.#end) return;
    // Caught up with the active half: the header switches (the only write recovery looks at first).
    const gen = this.#generation + 1;
    this.#fillHeader(gen);
    this.store.write(dst, this.#header);
    if (!this.#readsBack(dst, this.#header)) return this.#restart();
    this.#active = 1 - this.#active;
    this.#generation = gen;
    this.#end = this.#to;
    this.#sealed = false;
    this.#blocked = false;
    this.#abandonedAt = -1;
    this.#phase = IDLE;
    this.compactions++;
  }

  #readsBack(at: number, data: Uint8Array): boolean {
    const back = this.store.read(at, data.length, this.#check);
    for (let i = 0; i < data.length; i++) if (back[i] !== data[i]) return false;
    return true;
  }

  /** A write in the target half read back wrong: erase it again (at most one block per step). */
  #restart(): void {
    this.restarts++;
    this.#phase = ERASE;
    this.#eraseNext = 0;
  }

  #eraseHalf(half: number): void {
    const first = (half * this.halfBytes) / this.store.blockSize;
    const n = this.halfBytes / this.store.blockSize;
    for (let b = 0; b < n; b++) this.store.eraseBlock(first + b);
  }

  #fillHeader(generation: number): void {
    const h = this.#header;
    h.fill(0xff);
    const v = new DataView(h.buffer);
    v.setUint32(0, HALF_MAGIC, true);
    v.setUint32(4, generation, true);
    v.setUint32(8, this.kind, true);
    v.setUint32(28, crc32(h, 0, 28), true);
  }

  #writeHalfHeader(half: number, generation: number): void {
    this.#fillHeader(generation);
    this.store.write(half * this.halfBytes, this.#header);
  }

  #format(half: number, generation: number): void {
    this.#phase = IDLE;
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
