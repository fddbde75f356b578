// Node only: persists a simulated flash so a simulated gate survives a
// simulator restart.
//
// File layout (one file, so that the atomic rename covers everything):
//   8 bytes   magic "SLFLASH1"
//   4 bytes   header length H, unsigned little-endian
//   H bytes   JSON header: { format: 1, size, blockSize, wear: number[], sha256 }
//             (wear = erase count per block; sha256 = hex digest of the contents)
//   size bytes  the flash contents
// The write goes to a temporary file in the same directory, is fsynced, then
// renamed over the target (and the directory fsynced where possible); a crash
// leaves either the old or the new file.

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '../atomic-file.js';
import { NorFlash, type NorFlashOptions } from './nor-flash.js';

const MAGIC = 'SLFLASH1';
const FORMAT = 1;

export class FlashFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlashFileError';
  }
}

interface Header {
  format: number;
  size: number;
  blockSize: number;
  wear: number[];
  sha256: string;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes the contents and wear counters of `flash` to `path` atomically. */
export function saveFlash(flash: NorFlash, path: string): void {
  const contents = flash.snapshot();
  const header: Header = {
    format: FORMAT,
    size: flash.size,
    blockSize: flash.blockSize,
    wear: Array.from(flash.stats.eraseCountPerBlock),
    sha256: sha256Hex(contents),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(12);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(8, json.length, true);
  writeFileAtomic(path, [prefix, json, contents]);
}

/**
 * Loads a flash saved by saveFlash. `options` configures the new NorFlash
 * (seed, noRewrite, timing, charge, ...); if it gives size or blockSize they
 * must match the file. Throws FlashFileError if the file is missing, is not a
 * flash file, is truncated or corrupt, or does not match.
 */
export function loadFlash(path: string, options: Omit<NorFlashOptions, 'size' | 'initial' | 'wear'> & { readonly size?: number } = {}): NorFlash {
  let file: Uint8Array;
  try {
    file = readFileSync(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new FlashFileError(`flash file not found: ${path}`);
    throw new FlashFileError(`cannot read flash file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bad = (why: string): FlashFileError => new FlashFileError(`corrupt flash file ${path}: ${why}`);
  if (file.length < 12 || new TextDecoder().decode(file.subarray(0, 8)) !== MAGIC) throw bad(`no "${MAGIC}" magic (not a flash file)`);
  const headerLength = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(8, true);
  if (12 + headerLength > file.length) throw bad(`header length ${headerLength} runs past the end of the file (${file.length} bytes)`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(12, 12 + headerLength))) as Header;
  } catch (e) {
    throw bad(`header is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof header !== 'object' || header === null) throw bad('header is not an object');
  if (header.format !== FORMAT) throw bad(`unknown format ${String(header.format)}`);
  const { size, blockSize, wear, sha256 } = header;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(blockSize) || size <= 0 || blockSize <= 0 || size % blockSize !== 0) throw bad(`bad size ${String(size)} / blockSize ${String(blockSize)}`);
  if (!Array.isArray(wear) || wear.length !== size / blockSize) throw bad(`wear has ${Array.isArray(wear) ? wear.length : 'no'} counters for ${size / blockSize} blocks`);
  if (typeof sha256 !== 'string') throw bad('no sha256');
  const contents = file.subarray(12 + headerLength);
  if (contents.length !== size) throw bad(`holds ${contents.length} content bytes, header says ${size} (truncated?)`);
  if (sha256Hex(contents) !== sha256) throw bad('contents do not match their SHA-256');
  if (options.size !== undefined && options.size !== size) throw new FlashFileError(`flash file ${path}: size mismatch: file holds ${size} bytes, expected ${options.size}`);
  if (options.blockSize !== undefined && options.blockSize !== blockSize) throw new FlashFileError(`flash file ${path}: block size mismatch: file has ${blockSize}, expected ${options.blockSize}`);
  try {
    return new NorFlash({ ...options, size, blockSize, initial: contents, wear });
  } catch (e) {
    throw bad(e instanceof Error ? e.message : String(e));
  }
}
