// Wraps the flash BlockStore port and records every erase issued while a
// guarded section runs (a tap, a message handler): the gate must never erase
// there (an erase blocks the event loop for tens of ms on NOR flash).

import type { BlockStore } from '../../firmware/ports.js';

export class EraseGuard implements BlockStore {
  readonly size: number;
  readonly blockSize: number;
  /** Erases issued inside a guarded section: "where: block". */
  readonly violations: string[] = [];
  /** Every erase (block index in the wrapped store), guarded or not. */
  readonly erased: number[] = [];
  #where: string | null = null;

  constructor(readonly inner: BlockStore) {
    this.size = inner.size;
    this.blockSize = inner.blockSize;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    return this.inner.read(offset, length, into);
  }
  write(offset: number, data: Uint8Array): void {
    this.inner.write(offset, data);
  }
  eraseBlock(block: number): void {
    if (this.#where !== null) this.violations.push(`${this.#where}: erase of block ${block}`);
    this.erased.push(block);
    this.inner.eraseBlock(block);
  }
  map(): Uint8Array | undefined {
    return this.inner.map?.();
  }
  /** Runs fn as a guarded section named `where` (nesting keeps the outer name). */
  during<T>(where: string, fn: () => T): T {
    const outer = this.#where;
    this.#where ??= where;
    try {
      return fn();
    } finally {
      this.#where = outer;
    }
  }
}
