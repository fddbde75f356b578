// A window onto a larger BlockStore: one data partition split into the
// whitelist slots A/B, the overlay log, the journal and the state region.
// Offsets and block indices are translated; anything outside the window is
// refused before it reaches the parent (a bug there would corrupt a
// neighbouring region). Device code: no Node APIs.

import type { BlockStore } from '../ports.js';

/** An access outside a region, or a region that does not fit its parent. */
export class RegionError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'RegionError';
  }
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export interface RegionSpec<N extends string = string> {
  readonly name: N;
  /** Size in parent blocks (> 0). */
  readonly blocks: number;
}

export class Region implements BlockStore {
  readonly blockSize: number;
  readonly blockCount: number;
  private readonly firstBlock: number;

  /**
   * @param parent the store to window onto
   * @param offset start in the parent, bytes (a multiple of parent.blockSize)
   * @param size bytes (a positive multiple of parent.blockSize; offset + size <= parent.size)
   * @param name used in error messages
   */
  constructor(
    readonly parent: BlockStore,
    readonly offset: number,
    readonly size: number,
    readonly name = 'region',
  ) {
    const bs = parent.blockSize;
    this.blockSize = bs;
    if (!isUint(offset) || offset % bs !== 0) throw new RegionError(`region "${name}": offset ${String(offset)} is not a multiple of the block size ${bs}`);
    if (!isUint(size) || size === 0 || size % bs !== 0) throw new RegionError(`region "${name}": size ${String(size)} is not a positive multiple of the block size ${bs}`);
    if (offset + size > parent.size) throw new RegionError(`region "${name}": [${hex(offset)}, ${hex(offset + size)}) does not fit in the parent (size ${hex(parent.size)})`);
    this.blockCount = size / bs;
    this.firstBlock = offset / bs;
  }

  /**
   * Splits `parent` into consecutive regions from its start, in the order
   * given, each a whole number of blocks. Blocks left over at the end are not
   * assigned. Throws if the regions do not fit or a name repeats.
   */
  static split<N extends string>(parent: BlockStore, specs: readonly RegionSpec<N>[]): Record<N, Region> {
    const out = {} as Record<N, Region>;
    let at = 0;
    for (const s of specs) {
      if (Object.prototype.hasOwnProperty.call(out, s.name)) throw new RegionError(`region "${s.name}" is named twice`);
      if (!isUint(s.blocks) || s.blocks === 0) throw new RegionError(`region "${s.name}": blocks must be a positive integer, got ${String(s.blocks)}`);
      const size = s.blocks * parent.blockSize;
      out[s.name] = new Region(parent, at, size, s.name);
      at += size;
    }
    return out;
  }

  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    this.check('read', offset, length);
    return this.parent.read(this.offset + offset, length, into);
  }

  write(offset: number, data: Uint8Array): void {
    this.check('write', offset, data.length);
    this.parent.write(this.offset + offset, data);
  }

  eraseBlock(block: number): void {
    if (!isUint(block) || block >= this.blockCount) {
      throw new RegionError(`region "${this.name}": erase of block ${String(block)} is outside the region (${this.blockCount} blocks)`);
    }
    this.parent.eraseBlock(this.firstBlock + block);
  }

  /** The parent's live map narrowed to this region, or undefined if the parent cannot map. */
  map(): Uint8Array | undefined {
    const whole = this.parent.map?.();
    return whole?.subarray(this.offset, this.offset + this.size);
  }

  private check(op: string, offset: number, length: number): void {
    if (!isUint(offset) || !isUint(length) || offset + length > this.size) {
      throw new RegionError(`region "${this.name}": ${op} at ${String(offset)} length ${String(length)} is outside the region (size ${hex(this.size)})`);
    }
  }
}
