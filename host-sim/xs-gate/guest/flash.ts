// Guest shim for Moddable's classic `flash` module (modules/files/flash) over
// the simulated NOR flash partitions of runtime.ts (host-sim/flash/nor-flash.ts,
// the same NorFlash the Node gates and the power-cut tests use).
//
// new Flash(name) finds the partition by label (throws "can't find partition"
// as the ESP32 implementation does); byteLength, blockSize (4096); read()
// returns a fresh ArrayBuffer; write(offset, byteLength, buffer) refuses
// byteLength <= 0; erase(block); map() returns the partition's backing
// ArrayBuffer itself, so it stays current with writes as the ESP32's cache
// mapping does. (Unlike the device, the mapping is not read-only.)

import type { NorFlash } from '../../flash/nor-flash.js';
import { partitions } from './runtime.js';

type BufferLike = ArrayBuffer | ArrayBufferView;

function bytesOf(b: BufferLike, length: number): Uint8Array {
  const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (length > u.length) throw new RangeError('buffer too small');
  return u.subarray(0, length);
}

export default class Flash {
  readonly #p: NorFlash;

  constructor(partition?: string | number, byteLength?: number) {
    if (typeof partition !== 'string') throw new Error(`simulated flash opens partitions by name only (got ${String(partition)}, ${String(byteLength)})`);
    const p = partitions.get(partition);
    if (p === undefined) throw new Error("can't find partition");
    this.#p = p;
  }

  get byteLength(): number {
    return this.#p.size;
  }

  get blockSize(): number {
    return this.#p.blockSize;
  }

  read(offset: number, byteLength: number): ArrayBuffer {
    if (byteLength <= 0) throw new RangeError('invalid length');
    const b = this.#p.read(offset, byteLength);
    return b.buffer as ArrayBuffer;
  }

  write(offset: number, byteLength: number, buffer: BufferLike): void {
    if (byteLength <= 0) throw new RangeError('invalid length');
    this.#p.write(offset, bytesOf(buffer, byteLength));
  }

  erase(block: number): void {
    this.#p.eraseBlock(block);
  }

  map(): ArrayBuffer {
    return this.#p.map().buffer as ArrayBuffer;
  }
}
