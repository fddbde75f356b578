// Local timed anti-passback: per (credential, group) the direction and time
// of the last granted passage. A second passage in the same direction within
// the window is refused. Bounded: a fixed table with short probe runs; when
// a run is full of live entries the oldest is evicted (an evicted entry only
// weakens passback for that credential, it never blocks anyone wrongly).
// Persistence: the owner appends each record() to a RecordLog and replays it
// at boot (PassbackStore below).

import type { Direction } from '../../protocol/whitelist-format.js';
import type { RecordLog } from './record-log.js';

const PROBES = 8;
const DIR_IN = 1;
const DIR_OUT = 2;

export class PassbackTable {
  readonly capacity: number;
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  readonly #group: Uint8Array; // 0 = empty
  readonly #dir: Uint8Array;
  readonly #time: Uint32Array;
  readonly #mask: number;

  constructor(capacity = 2048) {
    let size = 16;
    while (size < capacity) size *= 2;
    this.capacity = size;
    this.#hi = new Uint32Array(size);
    this.#lo = new Uint32Array(size);
    this.#group = new Uint8Array(size);
    this.#dir = new Uint8Array(size);
    this.#time = new Uint32Array(size);
    this.#mask = size - 1;
  }

  #start(hi: number, lo: number, group: number): number {
    return (lo ^ Math.imul(hi, 0x9e3779b1) ^ Math.imul(group, 0x85ebca6b)) & this.#mask;
  }

  #find(hi: number, lo: number, group: number): number {
    let i = this.#start(hi, lo, group);
    for (let p = 0; p < PROBES; p++) {
      if (this.#group[i] === group && this.#lo[i] === lo && this.#hi[i] === hi) return i;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }

  violates(hi: number, lo: number, group: number, direction: Direction, now: number, windowSeconds: number): boolean {
    const i = this.#find(hi, lo, group);
    if (i < 0) return false;
    return this.#dir[i] === (direction === 'in' ? DIR_IN : DIR_OUT) && now - (this.#time[i] as number) < windowSeconds;
  }

  record(hi: number, lo: number, group: number, direction: Direction, now: number): void {
    if (group === 0) return;
    let slot = this.#find(hi, lo, group);
    if (slot < 0) {
      let i = this.#start(hi, lo, group);
      let oldest = i;
      for (let p = 0; p < PROBES; p++) {
        if (this.#group[i] === 0) {
          oldest = i;
          break;
        }
        if ((this.#time[i] as number) < (this.#time[oldest] as number)) oldest = i;
        i = (i + 1) & this.#mask;
      }
      slot = oldest;
    }
    this.#hi[slot] = hi;
    this.#lo[slot] = lo;
    this.#group[slot] = group;
    this.#dir[slot] = direction === 'in' ? DIR_IN : DIR_OUT;
    this.#time[slot] = now;
  }

  /** Live entries (for compaction of the persisted log). */
  forEach(visit: (hi: number, lo: number, group: number, direction: Direction, time: number) => void): void {
    for (let i = 0; i <= this.#mask; i++) if (this.#group[i] !== 0) visit(this.#hi[i] as number, this.#lo[i] as number, this.#group[i] as number, this.#dir[i] === DIR_IN ? 'in' : 'out', this.#time[i] as number);
  }

  clear(): void {
    this.#group.fill(0);
  }
}

const ENTRY = 1;

/** PassbackTable persisted in a RecordLog: each record() is durable before it returns. */
export class PassbackStore {
  readonly table: PassbackTable;
  readonly #log: RecordLog;
  readonly #buf = new Uint8Array(16);
  readonly #v = new DataView(this.#buf.buffer);
  /** Records that could not be persisted (log full until the next compaction). */
  unpersisted = 0;

  constructor(log: RecordLog, table = new PassbackTable()) {
    this.#log = log;
    this.table = table;
  }

  /** Replays the log into the table (boot). Compacts first if the log is sealed. */
  open(): void {
    this.table.clear();
    const r = this.#log.open((type, p) => {
      if (type !== ENTRY || p.length !== 16) return;
      const v = new DataView(p.buffer, p.byteOffset, 16);
      this.table.record(v.getUint32(0, false), v.getUint32(4, false), v.getUint8(8), v.getUint8(9) === DIR_IN ? 'in' : 'out', v.getUint32(12, true));
    });
    if (r.sealed) this.compact();
  }

  record(hi: number, lo: number, group: number, direction: Direction, now: number): void {
    if (group === 0) return;
    this.table.record(hi, lo, group, direction, now);
    this.#encode(hi, lo, group, direction, now);
    if (!this.#log.append(ENTRY, this.#buf)) this.unpersisted++;
  }

  /** Background work: rewrite live entries (erases, so never on the tap path). */
  compact(): boolean {
    return this.#log.compact((emit) => {
      this.table.forEach((hi, lo, group, dir, time) => {
        this.#encode(hi, lo, group, dir, time);
        emit(ENTRY, this.#buf);
      });
    });
  }

  get needsCompaction(): boolean {
    return this.#log.sealed || this.#log.freeBytes < this.#log.halfBytes / 4;
  }

  #encode(hi: number, lo: number, group: number, direction: Direction, time: number): void {
    this.#v.setUint32(0, hi, false);
    this.#v.setUint32(4, lo, false);
    this.#v.setUint8(8, group);
    this.#v.setUint8(9, direction === 'in' ? DIR_IN : DIR_OUT);
    this.#v.setUint16(10, 0, true);
    this.#v.setUint32(12, time, true);
  }
}
