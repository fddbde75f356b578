// Node only: a simulated NOR flash whose every write and erase also goes to a
// file, at once, so that killing the process (kill -9: the host's model of a
// power cut) leaves the file holding exactly the operations that completed.
// flash-file.ts saves a whole flash at the end of a run; this one is for a
// gate that must survive being killed at any moment (`subline gate run`).
//
// File layout (fixed offsets, so one operation is one positioned write):
//   8 bytes   magic "SLFLRAW1"
//   4 bytes   size, unsigned little-endian
//   4 bytes   blockSize, unsigned little-endian
//   4 × n     erase count per block (n = size / blockSize), little-endian
//   ...       0xFF up to DATA_ALIGN
//   size      the flash contents, from the first multiple of DATA_ALIGN
// No checksum over the contents: they change a few bytes at a time, and the
// firmware's own structures carry their CRCs (that is what a power cut tests).
//
// Durability: each operation is written to the file before write()/eraseBlock()
// returns, so the kernel holds it even if the process dies on the next
// instruction. sync() (fdatasync) makes it survive a host crash too; the
// owner calls it on a timer and at close().

import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { NorFlash } from './nor-flash.js';

const MAGIC = 'SLFLRAW1';
const FIXED_HEADER = 16;
const DATA_ALIGN = 4096;

export class FileBackedFlashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileBackedFlashError';
  }
}

const dataOffset = (blocks: number): number => Math.ceil((FIXED_HEADER + 4 * blocks) / DATA_ALIGN) * DATA_ALIGN;

export class FileBackedFlash extends NorFlash {
  readonly path: string;
  readonly #fd: number;
  readonly #data: number;
  #dirty = false;
  #closed = false;

  private constructor(path: string, fd: number, size: number, blockSize: number, contents: Uint8Array, wear: Uint32Array) {
    super({ size, blockSize, initial: contents, wear });
    this.path = path;
    this.#fd = fd;
    this.#data = dataOffset(size / blockSize);
  }

  /** Writes a new flash file holding `contents` (atomically: a crash leaves no half file). */
  static create(path: string, contents: Uint8Array, blockSize = 4096): void {
    if (contents.length === 0 || contents.length % blockSize !== 0) throw new FileBackedFlashError(`${path}: size ${contents.length} is not a positive multiple of ${blockSize}`);
    const blocks = contents.length / blockSize;
    const header = new Uint8Array(dataOffset(blocks)).fill(0xff);
    header.set(new TextEncoder().encode(MAGIC));
    const v = new DataView(header.buffer);
    v.setUint32(8, contents.length, true);
    v.setUint32(12, blockSize, true);
    for (let b = 0; b < blocks; b++) v.setUint32(FIXED_HEADER + 4 * b, 0, true);
    writeFileAtomic(path, [header, contents], { mode: 0o600 });
  }

  /** Opens a flash file made by create(); throws FileBackedFlashError if it is not one, or is truncated. */
  static open(path: string): FileBackedFlash {
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (e) {
      throw new FileBackedFlashError(`${path}: cannot be opened (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      const length = fstatSync(fd).size;
      const fixed = new Uint8Array(FIXED_HEADER);
      if (length < FIXED_HEADER || readSync(fd, fixed, 0, FIXED_HEADER, 0) !== FIXED_HEADER || new TextDecoder().decode(fixed.subarray(0, 8)) !== MAGIC) {
        throw new FileBackedFlashError(`${path}: not a gate flash file (no "${MAGIC}" magic)`);
      }
      const v = new DataView(fixed.buffer);
      const size = v.getUint32(8, true);
      const blockSize = v.getUint32(12, true);
      if (blockSize === 0 || size === 0 || size % blockSize !== 0) throw new FileBackedFlashError(`${path}: bad size ${size} / block size ${blockSize}`);
      const blocks = size / blockSize;
      const data = dataOffset(blocks);
      if (length !== data + size) throw new FileBackedFlashError(`${path}: ${length} bytes, expected ${data + size} for a ${size}-byte flash (truncated or damaged)`);
      const wearBytes = new Uint8Array(4 * blocks);
      readFully(fd, wearBytes, FIXED_HEADER);
      const wv = new DataView(wearBytes.buffer);
      const wear = new Uint32Array(blocks);
      for (let b = 0; b < blocks; b++) wear[b] = wv.getUint32(4 * b, true);
      const contents = new Uint8Array(size);
      readFully(fd, contents, data);
      return new FileBackedFlash(path, fd, size, blockSize, contents, wear);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  override write(offset: number, data: Uint8Array): void {
    super.write(offset, data);
    if (data.length === 0) return;
    // What the cells hold now (NOR ANDs the data in), not the data asked for.
    this.#put(this.map().subarray(offset, offset + data.length), this.#data + offset);
  }

  override eraseBlock(block: number): void {
    super.eraseBlock(block);
    const start = block * this.blockSize;
    this.#put(this.map().subarray(start, start + this.blockSize), this.#data + start);
    const wear = new Uint8Array(4);
    new DataView(wear.buffer).setUint32(0, this.stats.eraseCountPerBlock[block] ?? 0, true);
    this.#put(wear, FIXED_HEADER + 4 * block);
  }

  /** fdatasync when anything was written since the last one. */
  sync(): void {
    if (this.#closed || !this.#dirty) return;
    this.#dirty = false;
    fdatasyncSync(this.#fd);
  }

  /** Syncs and closes the file; the flash must not be used after. */
  close(): void {
    if (this.#closed) return;
    this.sync();
    this.#closed = true;
    closeSync(this.#fd);
  }

  #put(bytes: Uint8Array, position: number): void {
    if (this.#closed) throw new FileBackedFlashError(`${this.path}: written after close()`);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done, position + done);
    this.#dirty = true;
  }
}

function readFully(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new FileBackedFlashError('unexpected end of file');
    done += n;
  }
}
