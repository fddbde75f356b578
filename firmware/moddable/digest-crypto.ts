// Crypto on the device: SHA-256 from Moddable's native Digest (modules/crypt/
// digest: the kcl FIPS 180 implementation in C), Ed25519 verification in pure
// JavaScript (protocol/crypto-noble.ts; Moddable has no native Ed25519).
//
// One Digest instance is reused: reset(), write(), close() — the sequence of
// Digest.prototype.process() in crypt.js; close() returns the 32-byte digest
// as an ArrayBuffer and leaves the context reusable after reset().

import { Digest } from 'crypt';
import type { Crypto } from '../../protocol/crypto.js';
import { nobleCrypto } from '../../protocol/crypto-noble.js';
import { hmacSha256With } from '../../protocol/hmac.js';

type Verify = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean;

export interface DigestCryptoOptions {
  /** Ed25519 verification (default: the pure-JS one of protocol/crypto-noble.ts). */
  readonly verifyEd25519?: Verify;
}

export class DigestCrypto implements Crypto {
  #digest: Digest | null;
  readonly #verify: Verify;

  constructor(options: DigestCryptoOptions = {}) {
    this.#digest = new Digest('SHA256');
    this.#verify = options.verifyEd25519 ?? ((signature, message, publicKey) => nobleCrypto.verifyEd25519(signature, message, publicKey));
  }

  sha256(data: Uint8Array): Uint8Array {
    const d = this.#digest;
    if (d === null) throw new Error('DigestCrypto is closed');
    d.reset();
    // The typing says string | ArrayBuffer; the native write takes any byte
    // buffer, views included (xs_crypt_Digest_write -> xsmcGetBufferReadable),
    // so the view is passed without a copy.
    d.write(data as unknown as ArrayBuffer);
    return new Uint8Array(d.close());
  }

  /** HMAC-SHA256 from two native SHA-256 runs (protocol/hmac.ts). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return hmacSha256With((d) => this.sha256(d), key, data);
  }

  verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    return this.#verify(signature, message, publicKey);
  }

  /**
   * Makes the first real verification fast and fails early if memory is short:
   * noble's verify computes s·G with a precomputed table of 33 × 128 multiples
   * of the base point, built on first use and kept for the life of the program
   * (~20k slots and ~0.7 MB of BigInts; manifest.json creation is sized for
   * it). A signature (R = publicKey, s = 2) over an empty message is enough to
   * build it; it does not verify. Returns the milliseconds it took.
   */
  warmUp(publicKey: Uint8Array): number {
    const sig = new Uint8Array(64);
    sig.set(publicKey.subarray(0, 32), 0);
    sig[32] = 2;
    const t0 = Date.now();
    this.verifyEd25519(sig, new Uint8Array(0), publicKey);
    return Date.now() - t0;
  }

  close(): void {
    this.#digest = null;
  }
}
