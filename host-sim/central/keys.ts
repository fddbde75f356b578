// The central's secrets: the Ed25519 signing key (heads, deltas, commands),
// the deployment key (credential keys) and the gate master key (every gate's
// MAC key is derived from it: gate-keys.ts). Kept in a JSON file with hex values,
// readable by its owner only (mode 0600). Gates get the public key and the
// deployment key through provisioning.

import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { bytesEqual, fromHex, toHex } from '../../protocol/hex.js';
import { Ed25519Signer, randomKey } from '../node-crypto.js';

export interface CentralKeys {
  /** Ed25519 secret key (RFC 8032 seed), 32 bytes. */
  readonly signingKey: Uint8Array;
  /** Its public key, 32 bytes (what gates trust). */
  readonly publicKey: Uint8Array;
  /** 32 secret bytes for credential keys (protocol/credential-key.ts). */
  readonly deploymentKey: Uint8Array;
  /** 32 secret bytes: gate MAC keys are HKDF(gateMasterKey, gate id, key id) (docs/decisions/0011). */
  readonly gateMasterKey: Uint8Array;
}

export const KEY_FILE_FORMAT = 'subline-central-keys';
export const KEY_FILE_VERSION = 2;

export class KeyFileError extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(`key file ${path}: ${message}`);
    this.name = 'KeyFileError';
    this.path = path;
  }
}

export function publicKeyOf(signingKey: Uint8Array): Uint8Array {
  return new Ed25519Signer(signingKey).publicKey;
}

export function generateKeys(): CentralKeys {
  const signingKey = randomKey(32);
  return { signingKey, publicKey: publicKeyOf(signingKey), deploymentKey: randomKey(32), gateMasterKey: randomKey(32) };
}

/** Writes the keys (mode 0600, atomically through a temporary file). Refuses to replace an existing file unless `overwrite`. */
export function writeKeyFile(path: string, keys: CentralKeys, options: { readonly overwrite?: boolean } = {}): void {
  const body = `${JSON.stringify(
    {
      format: KEY_FILE_FORMAT,
      version: KEY_FILE_VERSION,
      signingKey: toHex(keys.signingKey),
      publicKey: toHex(publicKeyOf(keys.signingKey)),
      deploymentKey: toHex(keys.deploymentKey),
      gateMasterKey: toHex(keys.gateMasterKey),
    },
    null,
    2,
  )}\n`;
  if (keys.deploymentKey.length !== 32) throw new KeyFileError(path, 'deploymentKey must be 32 bytes');
  if (keys.gateMasterKey.length !== 32) throw new KeyFileError(path, 'gateMasterKey must be 32 bytes');
  if (options.overwrite !== true && existsSync(path)) throw new KeyFileError(path, 'already exists (not replaced: pass overwrite to replace the keys)');
  writeFileAtomic(path, new TextEncoder().encode(body), { mode: 0o600 });
}

function hexField(path: string, o: Record<string, unknown>, field: string): Uint8Array {
  const v = o[field];
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw new KeyFileError(path, `field '${field}' must be 64 hex digits (32 bytes)`);
  return fromHex(v);
}

export function readKeyFile(path: string): CentralKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyFileError(path, 'not found (create one with generateKeys() and writeKeyFile())');
    throw new KeyFileError(path, `cannot be read (${code ?? String(e)})`);
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new KeyFileError(path, 'is not valid JSON (corrupt?)');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new KeyFileError(path, 'must hold a JSON object');
  const rec = o as Record<string, unknown>;
  if (rec.format !== KEY_FILE_FORMAT) throw new KeyFileError(path, `field 'format' must be '${KEY_FILE_FORMAT}'`);
  if (rec.version === 1) throw new KeyFileError(path, "is version 1, from before gate authentication: it has no 'gateMasterKey', so no gate could be verified (create a new data directory with `subline central init`, then provision the gates again)");
  if (rec.version !== KEY_FILE_VERSION) throw new KeyFileError(path, `field 'version' must be ${KEY_FILE_VERSION}`);
  const signingKey = hexField(path, rec, 'signingKey');
  const deploymentKey = hexField(path, rec, 'deploymentKey');
  const gateMasterKey = hexField(path, rec, 'gateMasterKey');
  const publicKey = publicKeyOf(signingKey);
  if (rec.publicKey !== undefined && !bytesEqual(hexField(path, rec, 'publicKey'), publicKey)) throw new KeyFileError(path, "field 'publicKey' does not belong to 'signingKey' (corrupt?)");
  return { signingKey, publicKey, deploymentKey, gateMasterKey };
}
