// The protocol's Crypto interface on Node (host side only), plus Ed25519
// signing for the central.
//
// - SHA-256: node:crypto (OpenSSL), several times faster than the pure-JS
//   hash on the hot paths of the central (event chains, image chunk hashes).
// - Ed25519 verification: delegated to protocol/crypto-noble.ts on purpose.
//   The gate verifies with noble's strict RFC 8032 mode (not ZIP-215), and
//   OpenSSL's verifier differs from it on crafted edge cases (cofactorless
//   equation, small-order keys); a host tool that says "valid" must mean what
//   the gate means. Verification is not on any hot path of the central.
// - Ed25519 signing: node:crypto. RFC 8032 signatures are deterministic, so
//   the bytes are identical to noble's (checked by test/central.test.ts).

import { createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { keyIdOf, type Crypto } from '../protocol/crypto.js';
import { nobleCrypto } from '../protocol/crypto-noble.js';
import { encodeEnvelope } from '../protocol/envelope.js';
import { encodeMessage, type MessageOf, type MessageSchema } from '../protocol/schema.js';

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export const nodeCrypto: Crypto = {
  sha256(data: Uint8Array): Uint8Array {
    return u8(createHash('sha256').update(data).digest());
  },
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return u8(createHmac('sha256', key).update(data).digest());
  },
  verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    return nobleCrypto.verifyEd25519(signature, message, publicKey);
  },
};

/** SHA-256 of a ‖ b without concatenating (the event chain step). */
export function sha256Pair(a: Uint8Array, b: Uint8Array): Uint8Array {
  return u8(createHash('sha256').update(a).update(b).digest());
}

// DER prefixes for raw 32-byte Ed25519 keys (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 signing key (the 32-byte RFC 8032 secret seed) with its public key and key id. */
export class Ed25519Signer {
  readonly publicKey: Uint8Array;
  readonly kid: Uint8Array;
  readonly #key: KeyObject;

  constructor(secretKey: Uint8Array) {
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) throw new Error('an Ed25519 secret key is 32 bytes');
    this.#key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(this.#key).export({ format: 'der', type: 'spki' });
    this.publicKey = new Uint8Array(spki.subarray(spki.length - 32));
    this.kid = keyIdOf(nodeCrypto, this.publicKey);
  }

  sign(message: Uint8Array): Uint8Array {
    return u8(sign(null, message, this.#key));
  }

  /** The signed envelope of a message: the same bytes as protocol/envelope.ts sealSigned. */
  seal<M extends MessageSchema>(schema: M, value: MessageOf<M>): Uint8Array {
    const payload = encodeMessage(schema, value);
    return encodeEnvelope({ kid: this.kid, sig: this.sign(payload), payload });
  }
}

export function randomKey(bytes = 32): Uint8Array {
  return u8(randomBytes(bytes));
}
