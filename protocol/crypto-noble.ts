// Pure-JS Crypto (noble): runs unchanged on XS and on Node. On the device,
// prefer native SHA-256 (Moddable Digest) and keep this only for Ed25519.

import * as ed from '@noble/ed25519';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import type { Crypto } from './crypto.js';
import { hmacSha256With } from './hmac.js';

// noble-ed25519 v3 needs a synchronous SHA-512 for its sync API.
ed.hashes.sha512 = sha512;

export const nobleCrypto: Crypto = {
  sha256(data: Uint8Array): Uint8Array {
    return sha256(data);
  },
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return hmacSha256With(sha256, key, data);
  },
  verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      // zip215: false -> strict RFC 8032 / FIPS 186-5 verification (canonical encodings only).
      return ed.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

/** Signing, for the central side and for tests. Secret keys never reach a gate. */
export function signEd25519(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed.sign(message, secretKey);
}

export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey);
}
