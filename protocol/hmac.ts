// HMAC-SHA256 (RFC 2104) over the Crypto port's SHA-256, so the device
// computes it with its native Digest (two hashes per MAC) and no second
// SHA-256 implementation is needed anywhere. Keys longer than the block are
// hashed first, as the RFC says; the gate's keys are 32 bytes.

const BLOCK = 64;

/** HMAC-SHA256(key, data) with the given SHA-256. Allocates two small buffers per call. */
export function hmacSha256With(sha256: (data: Uint8Array) => Uint8Array, key: Uint8Array, data: Uint8Array): Uint8Array {
  const k = key.length > BLOCK ? sha256(key) : key;
  const inner = new Uint8Array(BLOCK + data.length);
  for (let i = 0; i < BLOCK; i++) inner[i] = (k[i] ?? 0) ^ 0x36;
  inner.set(data, BLOCK);
  const ih = sha256(inner);
  const outer = new Uint8Array(BLOCK + ih.length);
  for (let i = 0; i < BLOCK; i++) outer[i] = (k[i] ?? 0) ^ 0x5c;
  outer.set(ih, BLOCK);
  return sha256(outer);
}
