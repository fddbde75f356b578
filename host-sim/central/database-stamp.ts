// Which central a database belongs to. `subline central init` stamps a new
// database with its format and the public key of the key file it was created
// with (table central_meta); every other command checks the stamp before it
// opens the database for real, so a 0-byte or foreign file is refused instead
// of being silently initialised (which once made a central start a new list
// epoch at version 0 and gates install an empty whitelist), and a key file
// that is not the database's is refused instead of signing with the wrong key.
// Databases made before the stamp existed are recognised by their lists.

import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { toHex } from '../../protocol/hex.js';

const FORMAT = 'subline-central';

export type StampCheck =
  | { readonly ok: true; readonly legacy: boolean }
  | { readonly ok: false; readonly code: 'missing' | 'not_initialised' | 'foreign_key'; readonly message: string };

/** Writes the stamp (on an open database; replaces an older stamp, e.g. after `init --force`). */
export function stampDatabase(db: Database.Database, publicKey: Uint8Array, at: number): void {
  db.exec('CREATE TABLE IF NOT EXISTS central_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
  const put = db.prepare('INSERT INTO central_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  db.transaction(() => {
    put.run('format', FORMAT);
    put.run('public_key', toHex(publicKey));
    put.run('stamped_at', String(at));
  })();
}

/**
 * Checks the database file at `path` without changing it: it must exist, be
 * a SQLite database stamped by `central init` (or an older central's, with
 * lists), and — when `publicKey` is given — belong to that key.
 */
export function checkDatabase(path: string, publicKey?: Uint8Array): StampCheck {
  if (!existsSync(path)) return { ok: false, code: 'missing', message: `no database at ${path}` };
  if (statSync(path).size === 0) return { ok: false, code: 'not_initialised', message: `${path} is an empty file, not a database made by \`subline central init\`` };
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    return { ok: false, code: 'not_initialised', message: `${path} cannot be opened as a database (${e instanceof Error ? e.message : String(e)})` };
  }
  try {
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (!tables.has('central_meta')) {
      const legacy = tables.has('lists') && (db.prepare('SELECT COUNT(*) AS n FROM lists').get() as { n: number }).n > 0;
      return legacy ? { ok: true, legacy: true } : { ok: false, code: 'not_initialised', message: `${path} was not made by \`subline central init\` (no central stamp, no lists)` };
    }
    const meta = new Map((db.prepare('SELECT key, value FROM central_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    if (meta.get('format') !== FORMAT) return { ok: false, code: 'not_initialised', message: `${path} carries the stamp of '${meta.get('format') ?? '?'}', not of a subline central` };
    if (publicKey !== undefined && meta.get('public_key') !== toHex(publicKey)) {
      return { ok: false, code: 'foreign_key', message: `${path} was created with the key ${meta.get('public_key') ?? '?'}, not with this key file's ${toHex(publicKey)} (a key file from another data directory?)` };
    }
    return { ok: true, legacy: false };
  } catch (e) {
    return { ok: false, code: 'not_initialised', message: `${path} cannot be read as a database (${e instanceof Error ? e.message : String(e)})` };
  } finally {
    db.close();
  }
}
