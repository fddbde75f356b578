// Which central a database belongs to. `subline central init` stamps a new
// database with its format and the public key of the key file it was created
// with (table central_meta); every other command checks the stamp before it
// opens the database for real, so a 0-byte or foreign file is refused instead
// of being silently initialised (which once made a central start a new list
// epoch at version 0 and gates install an empty whitelist), and a key file
// that is not the database's is refused instead of signing with the wrong key.
// Databases made before the stamp existed are recognised by their lists.

import { toHex } from '../../protocol/hex.js';
import type { SqlDb } from './store/sql-db.js';

const FORMAT = 'subline-central';

export type StampCheck =
  | { readonly ok: true; readonly legacy: boolean }
  | { readonly ok: false; readonly code: 'missing' | 'not_initialised' | 'foreign_key'; readonly message: string };

/** Writes the stamp (replaces an older stamp, e.g. after `init --force`). */
export async function stampDatabase(db: SqlDb, publicKey: Uint8Array, at: number): Promise<void> {
  const put = 'INSERT INTO central_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
  await db.transaction(async () => {
    await db.run(put, ['format', FORMAT]);
    await db.run(put, ['public_key', toHex(publicKey)]);
    await db.run(put, ['stamped_at', String(at)]);
  }, { write: true });
}

/**
 * Checks an open database without changing it: it must be stamped by
 * `central init` (or be an older central's, with lists), and — when
 * `publicKey` is given — belong to that key.
 */
export async function checkStamp(db: SqlDb, publicKey?: Uint8Array): Promise<StampCheck> {
  const where = db.where;
  try {
    const tables = await db.tables();
    if (!tables.has('central_meta') || (await db.get('SELECT 1 AS x FROM central_meta')) === undefined) {
      const legacy = tables.has('lists') && ((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM lists'))?.n ?? 0) > 0;
      return legacy ? { ok: true, legacy: true } : { ok: false, code: 'not_initialised', message: `${where} was not made by \`subline central init\` (no central stamp, no lists)` };
    }
    const meta = new Map((await db.all<{ key: string; value: string }>('SELECT key, value FROM central_meta')).map((r) => [r.key, r.value]));
    if (meta.get('format') !== FORMAT) return { ok: false, code: 'not_initialised', message: `${where} carries the stamp of '${meta.get('format') ?? '?'}', not of a subline central` };
    if (publicKey !== undefined && meta.get('public_key') !== toHex(publicKey)) {
      return { ok: false, code: 'foreign_key', message: `${where} was created with the key ${meta.get('public_key') ?? '?'}, not with this key file's ${toHex(publicKey)} (a key file from another data directory?)` };
    }
    return { ok: true, legacy: false };
  } catch (e) {
    return { ok: false, code: 'not_initialised', message: `${where} cannot be read as a database (${e instanceof Error ? e.message : String(e)})` };
  }
}
