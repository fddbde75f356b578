// Local timed anti-passback: per (credential, group) the direction and time
// of the last granted passage. A second passage in the same direction within
// the window is refused. Bounded: a fixed table with short probe runs; when
// a run is full of live entries the oldest is evicted (an evicted entry only
// weakens passback for that credential, it never blocks anyone wrongly).
// Persistence: the owner appends each record() to a RecordLog and replays it
// at boot (PassbackStore below); the maintenance scheduler compacts the log.

import type { Direction } from '../../protocol/whitelist-format.js';
import type { CompactionTask } from './maintenance.js';
import { RecordLog } from './record-log.js';

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
  #count = 0;

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

  /** Live entries. */
  get size(): number {
    return this.#count;
  }

  /** True if the table holds exactly this passage (a persisted entry still live). */
  holds(hi: number, lo: number, group: number, direction: Direction, time: number): boolean {
    const i = this.#find(hi, lo, group);
    return i >= 0 && this.#dir[i] === (direction === 'in' ? DIR_IN : DIR_OUT) && this.#time[i] === time;
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
      if (this.#group[slot] === 0) this.#count++;
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
    this.#count = 0;
  }
}

const ENTRY = 1;

/**
 * PassbackTable persisted in a RecordLog: each record() is appended before it
 * returns (durable unless the log is out of room, see `unpersisted`). The log
 * is compacted by the maintenance scheduler, never here.
 */
export class PassbackStore implements CompactionTask {
  readonly name = 'passback';
  readonly table: PassbackTable;
  readonly #log: RecordLog;
  readonly #buf = new Uint8Array(16);
  readonly #v = new DataView(this.#buf.buffer);
  /**
   * Records that could not be persisted: the log ran out before its
   * compaction finished. The decision was taken and the passage recorded in
   * RAM; only a power cut before the next record of that card forgets it.
   */
  unpersisted = 0;
  readonly #keep = (type: number, p: Uint8Array): boolean => {
    if (type !== ENTRY || p.length !== 16) return false;
    const v = new DataView(p.buffer, p.byteOffset, 16);
    return this.table.holds(v.getUint32(0, false), v.getUint32(4, false), v.getUint8(8), v.getUint8(9) === DIR_IN ? 'in' : 'out', v.getUint32(12, true));
  };

  constructor(log: RecordLog, table = new PassbackTable()) {
    this.#log = log;
    this.table = table;
  }

  /** Replays the log into the table (boot). A sealed log is compacted at once: nothing could be appended to it. */
  open(): void {
    this.table.clear();
    const r = this.#log.open((type, p) => {
      if (type !== ENTRY || p.length !== 16) return;
      const v = new DataView(p.buffer, p.byteOffset, 16);
      this.table.record(v.getUint32(0, false), v.getUint32(4, false), v.getUint8(8), v.getUint8(9) === DIR_IN ? 'in' : 'out', v.getUint32(12, true));
    });
    if (r.sealed) this.#log.compactNow(this.#keep);
  }

  /** On the tap path: one append, never an erase. */
  record(hi: number, lo: number, group: number, direction: Direction, now: number): void {
    if (group === 0) return;
    this.table.record(hi, lo, group, direction, now);
    this.#encode(hi, lo, group, direction, now);
    if (!this.#log.append(ENTRY, this.#buf)) this.unpersisted++;
  }

  get compactionDue(): boolean {
    return this.#log.compactionDue(this.table.size * RecordLog.entryBytes(16));
  }
  get appendsBlocked(): boolean {
    return this.#log.blocked;
  }
  /** Background work (the maintenance scheduler): copies the entries the table still holds. */
  compactStep(budget: number): number {
    return this.#log.compactStep(budget, this.#keep);
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
