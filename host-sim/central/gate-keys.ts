// Per-gate MAC keys, derived, never stored: key = HKDF-SHA256(master key,
// salt "subline-gate-key-v1", info gate id ‖ 0 ‖ kid (decimal)), 32 bytes. The
// central keeps one master key in its key file; the database holds only each
// gate's key id (docs/decisions/0011). A new kid (re-provisioning) gives the
// gate a new key and makes its old record worthless.

import { hkdfSync } from 'node:crypto';

const SALT = 'subline-gate-key-v1';

export function deriveGateKey(masterKey: Uint8Array, gate: string, kid: number): Uint8Array {
  if (masterKey.length !== 32) throw new Error('gate keys: the master key must be 32 bytes');
  if (!Number.isInteger(kid) || kid < 0 || kid > 0xffff) throw new Error(`gate keys: kid ${kid} out of range 0..65535`);
  return new Uint8Array(hkdfSync('sha256', masterKey, SALT, `${gate}\u0000${kid}`, 32));
}
