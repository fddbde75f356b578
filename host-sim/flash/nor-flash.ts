// A simulated SPI NOR flash implementing the firmware's BlockStore port, with
// power cuts that tear the operation in flight.
//
// This file is bundled into XS tests as well as run on Node: it uses only what
// both engines provide (no Node built-ins, no Buffer, no process, no
// Math.random). Everything random comes from a seeded PRNG, so the same seed
// and the same operations give the same torn bytes on both engines.
//
// NOR rules modelled:
// - fresh flash reads 0xFF; eraseBlock(n) sets block n to 0xFF;
// - write() ANDs data into the cells (it can only clear bits; writing 1 over
//   0 leaves 0); byte-granular unless noRewrite is set;
// - noRewrite (ESP32 flash-encryption mode): writes must be aligned to
//   programUnit (16 bytes) in offset and length, and a unit written since its
//   last complete erase cannot be written again (FlashMisuseError);
// - a power cut during a write clears a seeded-random subset of the bits the
//   write meant to clear (possibly none, possibly all); during an erase it sets
//   a seeded-random subset of the block's 0 bits to 1 (a partially erased
//   block). The operation then throws PowerCutError, and so does every later
//   operation until restore() (the reboot).

import type { BlockStore } from '../../firmware/ports.js';

/** A caller broke the flash contract: out of range, misaligned, bad block, rewrite in noRewrite mode, bad option. */
export class FlashMisuseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlashMisuseError';
  }
}

/** Power was cut: during this operation (it was torn) or earlier (restore() not called yet). */
export class PowerCutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerCutError';
  }
}

export interface NorFlashTiming {
  /** Modelled duration of one eraseBlock(), ms. */
  readonly eraseMs: number;
  /** Modelled duration of programming one 256-byte page (or part of one), ms. */
  readonly programMsPerPage: number;
}

/**
 * Default timing: typical values from Winbond W25Q-series SPI NOR datasheets
 * (W25Q32/64/128 "FV"/"JV" AC characteristics: 4 KiB sector erase tSE typ.
 * 45 ms, max 400 ms; page program tPP typ. 0.7 ms, max 3 ms). ESP32 modules
 * ship with such parts (Winbond, GigaDevice, XMC, ...) whose typical figures
 * are of the same order. These are typical, not worst-case, values: a test
 * that needs worst-case latency should pass its own timing. eraseMs is per
 * eraseBlock() whatever the blockSize (it models the 4 KiB sector erase).
 */
export const DEFAULT_TIMING: NorFlashTiming = { eraseMs: 45, programMsPerPage: 0.7 };

/** Page size of the program command; a write is charged once per page it touches. */
export const PAGE_SIZE = 256;

export interface NorFlashOptions {
  /** Bytes; a positive multiple of blockSize. */
  readonly size: number;
  /** Erase-block size in bytes (default 4096). */
  readonly blockSize?: number;
  /** PRNG seed for torn operations (default 1). */
  readonly seed?: number;
  /** Flash-encryption mode: aligned writes only, no second write to a unit before its erase (default false). */
  readonly noRewrite?: boolean;
  /** Write unit for noRewrite, bytes (default 16); must divide blockSize. */
  readonly programUnit?: number;
  /** Timing model (defaults: DEFAULT_TIMING). */
  readonly timing?: Partial<NorFlashTiming>;
  /** Initial contents (copied); length must equal size. Default: all 0xFF. */
  readonly initial?: Uint8Array;
  /** Initial erase counts per block (wear), e.g. when loading a saved flash. Default: zeros. */
  readonly wear?: ArrayLike<number>;
  /** Called with the modelled duration (ms) of each completed erase or write, to advance a virtual clock. */
  readonly charge?: (ms: number) => void;
}

export interface NorFlashStats {
  /** read() calls that returned. */
  reads: number;
  /** write() calls that reached the chip (including a torn one; not zero-length or refused ones). */
  writes: number;
  /** eraseBlock() calls that reached the chip (including a torn one). */
  erases: number;
  /** Sum of the lengths of the writes counted in `writes`. */
  bytesWritten: number;
  /** Erases per block (including torn ones: the cells were stressed). */
  readonly eraseCountPerBlock: Uint32Array;
  /** Sum of the modelled durations of completed erases and writes (torn ones are not charged). */
  busyMs: number;
}

export type CutMode = 'write' | 'erase' | 'any';

const ERASED = 0xff;

/** mulberry32: a small 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 32-bit finaliser (MurmurHash3 fmix32): mixes the seed and the op number into one PRNG seed. */
function mix(seed: number, op: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(op >>> 0, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A random byte whose bits are each 1 with probability p. */
function randomMask(rng: () => number, p: number): number {
  let m = 0;
  for (let b = 0; b < 8; b++) if (rng() < p) m |= 1 << b;
  return m;
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export class NorFlash implements BlockStore {
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly programUnit: number;
  readonly noRewrite: boolean;
  readonly seed: number;
  readonly timing: NorFlashTiming;
  readonly stats: NorFlashStats;
  private readonly bytes: Uint8Array;
  /** noRewrite only: one flag per programUnit, set when written, cleared by a complete erase. */
  private readonly written: Uint8Array | undefined;
  private readonly charge: ((ms: number) => void) | undefined;
  private ops = 0;
  private cut: { remaining: number; mode: CutMode } | undefined;
  private off = false;

  constructor(options: NorFlashOptions) {
    const blockSize = options.blockSize ?? 4096;
    const programUnit = options.programUnit ?? 16;
    const { size } = options;
    if (!isUint(blockSize) || blockSize === 0) throw new FlashMisuseError(`blockSize must be a positive integer, got ${String(blockSize)}`);
    if (!isUint(size) || size === 0 || size % blockSize !== 0) throw new FlashMisuseError(`size must be a positive multiple of blockSize ${blockSize}, got ${String(size)}`);
    if (!isUint(programUnit) || programUnit === 0 || blockSize % programUnit !== 0) throw new FlashMisuseError(`programUnit must be a positive divisor of blockSize ${blockSize}, got ${String(programUnit)}`);
    const timing = { ...DEFAULT_TIMING, ...options.timing };
    if (!(timing.eraseMs >= 0) || !(timing.programMsPerPage >= 0)) throw new FlashMisuseError('timing values must be non-negative numbers');
    this.size = size;
    this.blockSize = blockSize;
    this.blockCount = size / blockSize;
    this.programUnit = programUnit;
    this.noRewrite = options.noRewrite ?? false;
    this.seed = (options.seed ?? 1) >>> 0;
    this.timing = timing;
    this.charge = options.charge;
    this.bytes = new Uint8Array(size);
    if (options.initial !== undefined) {
      if (options.initial.length !== size) throw new FlashMisuseError(`initial contents are ${options.initial.length} bytes, size is ${size}`);
      this.bytes.set(options.initial);
    } else {
      this.bytes.fill(ERASED);
    }
    const wear = new Uint32Array(this.blockCount);
    if (options.wear !== undefined) {
      if (options.wear.length !== this.blockCount) throw new FlashMisuseError(`wear has ${options.wear.length} counters, flash has ${this.blockCount} blocks`);
      for (let i = 0; i < this.blockCount; i++) {
        const w = options.wear[i];
        if (!isUint(w) || w > 0xffffffff) throw new FlashMisuseError(`wear[${i}] is not a 32-bit unsigned integer`);
        wear[i] = w;
      }
    }
    this.stats = { reads: 0, writes: 0, erases: 0, bytesWritten: 0, eraseCountPerBlock: wear, busyMs: 0 };
    if (this.noRewrite) {
      // Contents that are not erased must have been written: mark those units.
      // (An all-0xFF unit may also have been written, but nothing tells.)
      this.written = new Uint8Array(size / programUnit);
      for (let u = 0; u < this.written.length; u++) {
        for (let i = u * programUnit; i < (u + 1) * programUnit; i++) {
          if (this.bytes[i] !== ERASED) {
            this.written[u] = 1;
            break;
          }
        }
      }
    }
  }

  /** A new flash holding a copy of `bytes`; options.size, if given, must match. */
  static fromSnapshot(bytes: Uint8Array, options: Omit<NorFlashOptions, 'size' | 'initial'> & { readonly size?: number } = {}): NorFlash {
    if (options.size !== undefined && options.size !== bytes.length) throw new FlashMisuseError(`snapshot is ${bytes.length} bytes, size option is ${options.size}`);
    return new NorFlash({ ...options, size: bytes.length, initial: bytes });
  }

  /** Mutating operations (writes and erases) that reached the chip so far, torn ones included. */
  get opCount(): number {
    return this.ops;
  }

  /** True between a power cut and restore(). */
  get poweredOff(): boolean {
    return this.off;
  }

  /** True while a cut is armed and has not fired. */
  get cutArmed(): boolean {
    return this.cut !== undefined;
  }

  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    this.powered('read');
    this.range('read', offset, length);
    let out: Uint8Array;
    if (into !== undefined) {
      if (!(into instanceof Uint8Array)) throw new FlashMisuseError('read: into must be a Uint8Array');
      if (into.length < length) throw new FlashMisuseError(`read: into holds ${into.length} bytes, ${length} requested`);
      into.set(this.bytes.subarray(offset, offset + length));
      out = into;
    } else {
      out = this.bytes.slice(offset, offset + length);
    }
    this.stats.reads++;
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    this.powered('write');
    if (!(data instanceof Uint8Array)) throw new FlashMisuseError('write: data must be a Uint8Array');
    this.range('write', offset, data.length);
    const length = data.length;
    if (length === 0) return; // no program command is issued
    if (this.written !== undefined) {
      const unit = this.programUnit;
      if (offset % unit !== 0 || length % unit !== 0) {
        throw new FlashMisuseError(`write: noRewrite mode needs ${unit}-byte aligned offset and length, got offset ${hex(offset)} length ${length}`);
      }
      for (let u = offset / unit; u < (offset + length) / unit; u++) {
        if (this.written[u] === 1) throw new FlashMisuseError(`write: unit at ${hex(u * unit)} was already written since its last erase (noRewrite mode)`);
      }
    }
    // The source may alias the flash (a subarray of map()): copy it first.
    const src = data.buffer === this.bytes.buffer ? data.slice() : data;
    this.ops++;
    this.stats.writes++;
    this.stats.bytesWritten += length;
    this.markWritten(offset, length);
    if (this.fires('write')) {
      this.tearWrite(offset, src);
      this.powerOff(`power cut during write at ${hex(offset)} (${length} bytes), op ${this.ops}`);
    }
    const b = this.bytes;
    for (let i = 0; i < length; i++) b[offset + i] = (b[offset + i] as number) & (src[i] as number);
    const pages = Math.floor((offset + length - 1) / PAGE_SIZE) - Math.floor(offset / PAGE_SIZE) + 1;
    this.busy(pages * this.timing.programMsPerPage);
  }

  eraseBlock(block: number): void {
    this.powered('eraseBlock');
    if (!isUint(block) || block >= this.blockCount) {
      throw new FlashMisuseError(`eraseBlock: bad block index ${String(block)} (flash has ${this.blockCount} blocks of ${this.blockSize} bytes)`);
    }
    this.ops++;
    this.stats.erases++;
    this.stats.eraseCountPerBlock[block]!++;
    const start = block * this.blockSize;
    if (this.fires('erase')) {
      // A partial erase does not count as an erase for noRewrite: the units keep their marks.
      this.tearErase(start);
      this.powerOff(`power cut during erase of block ${block}, op ${this.ops}`);
    }
    this.bytes.fill(ERASED, start, start + this.blockSize);
    if (this.written !== undefined) this.written.fill(0, start / this.programUnit, (start + this.blockSize) / this.programUnit);
    this.busy(this.timing.eraseMs);
  }

  /** The backing array itself: live, read-only by convention. */
  map(): Uint8Array {
    this.powered('map');
    return this.bytes;
  }

  /**
   * Arms a power cut at the n-th (1-based) subsequent mutating operation of
   * the given kind ('any': writes and erases). Replaces an armed cut.
   */
  cutAfter(n: number, mode: CutMode = 'any'): void {
    if (!isUint(n) || n < 1) throw new FlashMisuseError(`cutAfter: n must be a positive integer, got ${String(n)}`);
    if (mode !== 'write' && mode !== 'erase' && mode !== 'any') throw new FlashMisuseError(`cutAfter: bad mode ${String(mode)}`);
    this.cut = { remaining: n, mode };
  }

  /** Disarms a cut that has not fired yet. */
  cancelCut(): void {
    this.cut = undefined;
  }

  /** The reboot: power is back, the contents are as the cut left them. A no-op when powered. */
  restore(): void {
    this.off = false;
  }

  /** A copy of the contents (works while powered off: it is the test's view, not the device's). */
  snapshot(): Uint8Array {
    return this.bytes.slice();
  }

  private powered(op: string): void {
    if (this.off) throw new PowerCutError(`${op}: power is off (a cut happened; call restore())`);
  }

  private range(op: string, offset: number, length: number): void {
    if (!isUint(offset) || !isUint(length) || offset + length > this.size) {
      throw new FlashMisuseError(`${op}: range offset ${String(offset)} length ${String(length)} is outside the flash (size ${this.size})`);
    }
  }

  private markWritten(offset: number, length: number): void {
    if (this.written === undefined) return;
    this.written.fill(1, offset / this.programUnit, (offset + length) / this.programUnit);
  }

  private fires(kind: 'write' | 'erase'): boolean {
    const c = this.cut;
    if (c === undefined || (c.mode !== 'any' && c.mode !== kind)) return false;
    if (--c.remaining > 0) return false;
    this.cut = undefined;
    return true;
  }

  private powerOff(message: string): never {
    this.off = true;
    throw new PowerCutError(message);
  }

  private busy(ms: number): void {
    this.stats.busyMs += ms;
    if (this.charge !== undefined) this.charge(ms);
  }

  /** The PRNG for the tear of the current op: a function of the seed and the op number only. */
  private tearRng(): () => number {
    return mulberry32(mix(this.seed, this.ops));
  }

  private tearWrite(offset: number, data: Uint8Array): void {
    const rng = this.tearRng();
    const b = this.bytes;
    const n = data.length;
    const r = rng();
    if (r < 0.125) return; // nothing programmed
    if (r < 0.25) {
      for (let i = 0; i < n; i++) b[offset + i] = (b[offset + i] as number) & (data[i] as number);
      return;
    }
    if (r < 0.5) {
      // Cut mid-stream: bytes before the cut programmed, one byte partly, the rest untouched.
      const at = Math.floor(rng() * n);
      for (let i = 0; i < at; i++) b[offset + i] = (b[offset + i] as number) & (data[i] as number);
      const old = b[offset + at] as number;
      b[offset + at] = old & ~(old & ~(data[at] as number) & randomMask(rng, 0.5));
      return;
    }
    // Random subset anywhere in the range, with a random density.
    const p = rng();
    for (let i = 0; i < n; i++) {
      const old = b[offset + i] as number;
      const clear = old & ~(data[i] as number);
      if (clear !== 0) b[offset + i] = old & ~(clear & randomMask(rng, p));
    }
  }

  private tearErase(start: number): void {
    const rng = this.tearRng();
    const b = this.bytes;
    const r = rng();
    if (r < 0.125) return; // erase never started
    if (r < 0.25) {
      b.fill(ERASED, start, start + this.blockSize); // finished, but not reported
      return;
    }
    // Cells cross the erase threshold at different times: a random subset of 0 bits become 1.
    const p = rng();
    for (let i = start; i < start + this.blockSize; i++) {
      const old = b[i] as number;
      if (old !== ERASED) b[i] = old | (~old & 0xff & randomMask(rng, p));
    }
  }
}
