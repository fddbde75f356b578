import { readFileSync, readdirSync } from 'node:fs';
import { fromHex } from '../../protocol/hex.js';
import type { VectorFile } from '../../protocol/vectors.js';

const dir = new URL('../../protocol/vectors/', import.meta.url);

export function loadVectorFiles(): VectorFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'keys.json')
    .sort()
    .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as VectorFile);
}

export function loadTrustedKeysHex(): string[] {
  return (JSON.parse(readFileSync(new URL('keys.json', dir), 'utf8')) as { trustedPublicKeys: string[] }).trustedPublicKeys;
}

export function loadTrustedKeys(): Uint8Array[] {
  return loadTrustedKeysHex().map(fromHex);
}
