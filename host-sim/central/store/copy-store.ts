// Moves a central's data between databases (`subline central copy --to URL`,
// e.g. SQLite to PostgreSQL): every table of the schema, row for row — list
// versions and epochs, signed deltas byte for byte, registry rows, events with
// their chain values, heads, conflicts, presence, gate identities, refusals
// and the stamp. The source is read in one transaction (a consistent
// snapshot) a page at a time by primary key; the target is written in one
// transaction, so a copy that fails leaves the target as it was (empty).

import { COPY_ORDER, migrate, schemaVersion, SCHEMA_VERSION, TABLE_KEYS, checkSchema } from './schema.js';
import type { SqlDb, SqlValue } from './sql-db.js';

export interface CopyProgress {
  readonly table: string;
  /** Rows of this table copied so far. */
  readonly rows: number;
  /** Rows of every table copied so far. */
  readonly total: number;
}

export interface CopyResult {
  /** Rows copied, per table. */
  readonly tables: Record<string, number>;
  readonly total: number;
}

export class CopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyError';
  }
}

const PAGE = 2000;
const ROWS_PER_INSERT = 200;

/** Copies every row of `from` (at this build's schema) into `to` (empty: no central schema). */
export async function copyStore(from: SqlDb, to: SqlDb, progress?: (p: CopyProgress) => void): Promise<CopyResult> {
  await checkSchema(from);
  const v = await schemaVersion(to);
  if (v !== null) throw new CopyError(`${to.where} already holds a subline central (schema ${v}): copy only into an empty database`);
  const tables: Record<string, number> = {};
  let total = 0;
  await from.transaction(async () => {
    await to.transaction(async () => {
      await migrate(to);
      for (const table of COPY_ORDER) {
        const keys = TABLE_KEYS[table] as readonly string[];
        const columns = [...(await from.columns(table))].sort();
        if (columns.length === 0) continue;
        const list = columns.join(', ');
        const tuple = `(${columns.map(() => '?').join(', ')})`;
        // Many rows per statement (one round trip per ROWS_PER_INSERT rows on a server).
        const insert = (rows: number): string => `INSERT INTO ${table} (${list}) VALUES ${Array.from({ length: rows }, () => tuple).join(', ')}${table === 'meta' ? ' ON CONFLICT (key) DO NOTHING' : ''}`;
        let n = 0;
        let after: SqlValue[] | null = null;
        for (;;) {
          const where = after === null ? '' : ` WHERE (${keys.join(', ')}) > (${keys.map(() => '?').join(', ')})`;
          const page = await from.all<Record<string, SqlValue>>(`SELECT ${list} FROM ${table}${where} ORDER BY ${keys.join(', ')} LIMIT ${PAGE}`, after ?? []);
          for (let i = 0; i < page.length; i += ROWS_PER_INSERT) {
            const rows = page.slice(i, i + ROWS_PER_INSERT);
            await to.run(insert(rows.length), rows.flatMap((row) => columns.map((c) => row[c] ?? null)));
          }
          n += page.length;
          total += page.length;
          progress?.({ table, rows: n, total });
          if (page.length < PAGE) break;
          const last = page[page.length - 1] as Record<string, SqlValue>;
          after = keys.map((k) => last[k] ?? null);
        }
        tables[table] = n;
      }
      if ((await schemaVersion(to)) !== SCHEMA_VERSION) throw new CopyError('the copy changed the schema version (meta): refused');
    }, { lock: true });
  });
  return { tables, total };
}
