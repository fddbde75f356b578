// The format counter: how many times this gate has found its data partition
// holding no journal of its own and started one. It lives outside the data
// partition (the last two blocks of the provisioning partition, see
// firmware/moddable/provisioning-image.ts), so it survives a data wipe; the
// journal epoch is the provisioned journalEpoch + counter - 1, so a gate whose
// data flash was erased never reuses an (epoch, seq) for a different record
// (docs/decisions/0013-format-counter.md, docs/JOURNAL.md "Epochs").
//
// Layout: two blocks of 16-byte slots, no header.
//   slot: magic "SGFC" u32, count u32, ~count u32, CRC-32 of bytes 0..11 seeded with (block * slots + slot)
// The counter is the highest count of a valid slot in either block (0 when
// none). bump() writes count + 1 into the first slot after the last
// non-erased one of the block holding the highest count, reads it back, and
// only then returns; a torn or refused slot is skipped (never written twice,
// as flash encryption requires). When that block is full, the other block is
// erased and written from slot 0: a cut during that erase leaves the full
// block, which still holds the highest count. So a cut anywhere leaves the
// counter at the old value or the new one, never lower. Writes happen only
// on a format (a few times in a gate's life), never per message.
// Device code: no Node APIs, no Buffer.

import { crc32 } from '../../protocol/crc32.js';
import { getU32, putU32 } from '../../protocol/event-record.js';
import type { BlockStore } from '../ports.js';

const MAGIC = 0x4346_4753; // "SGFC" little-endian
const SLOT = 16;
/** Blocks the counter takes (at the end of the provisioning partition). */
export const FORMAT_LOG_BLOCKS = 2;
/** Slots one bump() tries after a failed read-back. */
const RETRIES = 4;

/** The port the gate uses (Gate options.formats). */
export interface FormatCounter {
  /** Formats begun so far (0 when never). */
  read(): number;
  /** Durably counts one more format and returns the new count; throws when it cannot be written. */
  bump(): number;
}

function allFF(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0xff) return false;
  return true;
}

export class FormatLog implements FormatCounter {
  readonly store: BlockStore;
  readonly slotsPerBlock: number;
  readonly #slot = new Uint8Array(SLOT);
  readonly #check = new Uint8Array(SLOT);
  #count = 0;
  #block = -1; // block holding the highest count, -1 when none
  #next = [0, 0]; // first slot after the last non-erased one, per block
  #scanned = false;

  /** `store` is the counter's region: exactly FORMAT_LOG_BLOCKS blocks. */
  constructor(store: BlockStore) {
    if (store.size !== FORMAT_LOG_BLOCKS * store.blockSize || store.blockSize % SLOT !== 0) throw new RangeError(`format log: needs ${FORMAT_LOG_BLOCKS} blocks of a multiple of ${SLOT} bytes, got ${store.size} bytes`);
    this.store = store;
    this.slotsPerBlock = store.blockSize / SLOT;
  }

  read(): number {
    this.#scan();
    return this.#count;
  }

  bump(): number {
    this.#scan();
    const next = this.#count + 1;
    if (next > 0xffffffff) throw new Error('format log: the counter is at its maximum');
    let block = this.#block < 0 ? 0 : this.#block;
    let slot = this.#next[block] as number;
    for (let attempt = 0; attempt <= RETRIES; attempt++) {
      if (slot >= this.slotsPerBlock) {
        // This block is full: start the other one over (its count is lower; the full block keeps the highest until this write lands).
        block = 1 - block;
        this.store.eraseBlock(block);
        slot = 0;
      }
      const at = block * this.store.blockSize + slot * SLOT;
      encode(next, block * this.slotsPerBlock + slot, this.#slot);
      try {
        this.store.write(at, this.#slot);
      } catch {
        // A refused write: the read-back decides (a power cut throws again there).
      }
      this.store.read(at, SLOT, this.#check);
      slot++;
      this.#next[block] = slot;
      if (equal(this.#slot, this.#check)) {
        this.#count = next;
        this.#block = block;
        return next;
      }
    }
    throw new Error(`format log: ${RETRIES + 1} slots failed to program`);
  }

  #scan(): void {
    if (this.#scanned) return;
    this.#count = 0;
    this.#block = -1;
    for (let k = 0; k < FORMAT_LOG_BLOCKS; k++) {
      const b = this.store.read(k * this.store.blockSize, this.store.blockSize);
      let next = 0;
      for (let s = 0; s < this.slotsPerBlock; s++) {
        const at = s * SLOT;
        if (allFF(b, at, at + SLOT)) continue;
        next = s + 1;
        const c = decode(b, at, k * this.slotsPerBlock + s);
        if (c > this.#count) {
          this.#count = c;
          this.#block = k;
        }
      }
      this.#next[k] = next;
    }
    this.#scanned = true;
  }
}

function encode(count: number, index: number, out: Uint8Array): void {
  putU32(out, 0, MAGIC);
  putU32(out, 4, count);
  putU32(out, 8, ~count >>> 0);
  putU32(out, 12, crc32(out, 0, 12, index));
}

/** The count in a valid slot, else -1. */
function decode(b: Uint8Array, at: number, index: number): number {
  if (getU32(b, at) !== MAGIC || getU32(b, at + 12) !== crc32(b, at, at + 12, index)) return -1;
  const c = getU32(b, at + 4);
  return getU32(b, at + 8) === (~c >>> 0) ? c : -1;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
