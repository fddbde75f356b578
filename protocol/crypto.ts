// The cryptography the protocol needs, behind an interface: the device plugs
// in Moddable's native Digest for SHA-256, the host plugs in node:crypto, and
// crypto-noble.ts is a pure-JS implementation that runs anywhere.

export interface Crypto {
  sha256(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (RFC 2104): the MAC of gate <-> central messages (protocol/mac-envelope.ts). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** RFC 8032 Ed25519 verification; false (never a throw) for malformed keys or signatures. */
  verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** Key id: the first 8 bytes of SHA-256(public key). */
export const KEY_ID_BYTES = 8;

export function keyIdOf(crypto: Crypto, publicKey: Uint8Array): Uint8Array {
  return crypto.sha256(publicKey).slice(0, KEY_ID_BYTES);
}
