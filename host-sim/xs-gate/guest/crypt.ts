// Guest shim for Moddable's `crypt` module, the part the gate uses: Digest
// (modules/crypt/digest) with reset / write / close, SHA-256 only, in pure
// JavaScript (@noble/hashes) where the device has the native kcl code.

import { sha256 } from '@noble/hashes/sha2.js';

type Hash = ReturnType<typeof sha256.create>;

export class Digest {
  #h: Hash;
  readonly #type: string;

  constructor(type: string) {
    if (type !== 'SHA256') throw new Error(`Digest "${type}" is not simulated (SHA256 only)`);
    this.#type = type;
    this.#h = sha256.create();
  }

  get blockSize(): number {
    return 64;
  }

  get outputSize(): number {
    return 32;
  }

  reset(): void {
    this.#h = sha256.create();
  }

  write(message: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(bytesOf(message));
  }

  update(message: string | ArrayBuffer | ArrayBufferView): void {
    this.write(message);
  }

  /** The digest as an ArrayBuffer; the context must be reset() before reuse. */
  close(): ArrayBuffer {
    const d = this.#h.digest();
    return d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
  }

  toString(): string {
    return `[Digest ${this.#type}]`;
  }
}

function bytesOf(m: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof m === 'string') return new TextEncoder().encode(m);
  if (m instanceof ArrayBuffer) return new Uint8Array(m);
  return new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
}
