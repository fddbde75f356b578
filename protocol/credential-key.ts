// Credential key: 8 bytes of SHA-256(deploymentKey[32] | "SLCK" | kind | len | rawId).
// Raw card UIDs and EPCs are hashed the moment they are read: they are neither
// stored nor sent. The deployment key (32 secret bytes from provisioning)
// makes the keys useless outside this deployment.
//
// Why a keyed prefix and not HMAC: one SHA-256 block for ids up to 18 bytes
// (native Digest on the device), and the 8-byte truncation hides the internal
// state, so length extension gives an attacker nothing.
//
// Collisions: with n credentials the chance that any two share a key is about
// n^2 / 2^65: 2.7e-8 at 1M, 1.7e-9 at 250k; the image builder refuses an
// image with a collision. The chance that one unknown card matches some
// enrolled key is n / 2^64 = 5.4e-14 per tap at 1M.

import type { Crypto } from './crypto.js';

export const CREDENTIAL_KEY_BYTES = 8;
export const DEPLOYMENT_KEY_BYTES = 32;
export const MAX_RAW_ID_BYTES = 64;
export type CredentialKindCode = 1 | 2; // 1 card, 2 UHF tag

const DOMAIN = [0x53, 0x4c, 0x43, 0x4b]; // "SLCK"

/** Writes the key into `out` (8 bytes) and returns it; `scratch` avoids allocation on the tap path. */
export function credentialKey(crypto: Crypto, deploymentKey: Uint8Array, kind: CredentialKindCode, rawId: Uint8Array, out = new Uint8Array(CREDENTIAL_KEY_BYTES), scratch?: Uint8Array): Uint8Array {
  if (deploymentKey.length !== DEPLOYMENT_KEY_BYTES) throw new Error('deployment key must be 32 bytes');
  if (rawId.length === 0 || rawId.length > MAX_RAW_ID_BYTES) throw new Error(`raw credential id must be 1-${MAX_RAW_ID_BYTES} bytes`);
  const n = DEPLOYMENT_KEY_BYTES + DOMAIN.length + 2 + rawId.length;
  const buf = scratch !== undefined && scratch.length >= n ? scratch.subarray(0, n) : new Uint8Array(n);
  buf.set(deploymentKey, 0);
  buf.set(DOMAIN, DEPLOYMENT_KEY_BYTES);
  buf[DEPLOYMENT_KEY_BYTES + 4] = kind;
  buf[DEPLOYMENT_KEY_BYTES + 5] = rawId.length;
  buf.set(rawId, DEPLOYMENT_KEY_BYTES + 6);
  const digest = crypto.sha256(buf);
  for (let i = 0; i < CREDENTIAL_KEY_BYTES; i++) out[i] = digest[i] as number;
  return out;
}
