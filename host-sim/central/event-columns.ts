// The decoded columns of a stored event (schema 3, store/schema.ts): what the
// event queries (event-query.ts) filter and sort on, next to the raw record
// that stays the truth. The record's own fields (time, type, reason,
// credential key) come from decoding it; the gate's site, line and direction
// from its identity; the subject and institution from the credential as the
// registry holds it when the event is stored (a key moves to another subject
// only after a revocation, so this is the holder at the time of the passage
// unless the key was re-issued between the tap and the upload).

import { createRecord, decodeRecord, EventType, type EventRecord } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import type { SqlDb } from './store/sql-db.js';

/** Column arrays of a batch, one entry per inserted row. */
export interface EventColumns {
  /** UTC seconds; 0 for a gap tombstone or an invalid record. */
  readonly at: number[];
  /** EventType; -1 for an invalid record. */
  readonly type: number[];
  /** The reason byte; for an invalid record, the decoder's status. */
  readonly reason: number[];
  /** The 8-byte credential key; null when the record has none. */
  readonly credential: (Uint8Array | null)[];
}

export const emptyColumns = (): EventColumns => ({ at: [], type: [], reason: [], credential: [] });

const scratch: EventRecord = createRecord();

/** Decodes the record stored at (epoch, seq) and appends its columns. */
export function pushColumns(record: Uint8Array, seq: number, epoch: number, c: EventColumns): void {
  const status = decodeRecord(record, 0, seq, epoch, scratch);
  if (status !== 0) {
    c.at.push(0);
    c.type.push(-1);
    c.reason.push(status);
    c.credential.push(null);
    return;
  }
  c.at.push(scratch.type === EventType.gap ? 0 : scratch.time);
  c.type.push(scratch.type);
  c.reason.push(scratch.reason);
  let zero = true;
  for (let i = 0; i < scratch.key.length; i++) if (scratch.key[i] !== 0) zero = false;
  c.credential.push(zero ? null : scratch.key.slice());
}

/** Where a gate is (its identity), or nulls for a gate the central has no identity of. */
export async function gatePlace(db: SqlDb, gate: string): Promise<[string | null, string | null, string | null]> {
  const r = await db.get<{ site: string; line: string; direction: string }>('SELECT site, line, direction FROM gate_identities WHERE gate = ?', [gate]);
  return r === undefined ? [null, null, null] : [r.site, r.line, r.direction];
}

/** The subject and institution holding each key (hex), as the registry is now. */
export async function holdersOf(db: SqlDb, keys: readonly (Uint8Array | null)[]): Promise<Map<string, [string, number | null]>> {
  const distinct = new Map<string, Uint8Array>();
  for (const k of keys) if (k !== null) distinct.set(toHex(k), k);
  const out = new Map<string, [string, number | null]>();
  if (distinct.size === 0) return out;
  const list = [...distinct.values()];
  // Bounded IN lists (SQLite's default limit on parameters is 32,766; batches are far smaller).
  for (let i = 0; i < list.length; i += 500) {
    const part = list.slice(i, i + 500);
    const rows = (await db.rows(`SELECT c.key, c.subject, s.institution FROM credentials c JOIN subjects s ON s.id = c.subject WHERE c.key IN (${part.map(() => '?').join(', ')})`, part)) as [Uint8Array, string, number | null][];
    for (const [key, subject, institution] of rows) out.set(toHex(key), [subject, institution]);
  }
  return out;
}

/** Schema 2 -> 3: decodes every stored event into its columns (inside the migration's transaction). */
export async function backfillEventColumns(db: SqlDb): Promise<number> {
  let n = 0;
  let after: [string, number, number] | null = null;
  const page = 5000;
  for (;;) {
    const rows = (await db.rows(
      `SELECT gate, epoch, seq, record FROM events${after === null ? '' : ' WHERE (gate, epoch, seq) > (?, ?, ?)'} ORDER BY gate, epoch, seq LIMIT ${page}`,
      after ?? [],
    )) as [string, number, number, Uint8Array][];
    for (const [gate, epoch, seq, record] of rows) {
      const c = emptyColumns();
      pushColumns(record, seq, epoch, c);
      const key = c.credential[0] ?? null;
      await db.run(
        `UPDATE events SET at = ?, type = ?, reason = ?, credential = ?,
           site = (SELECT site FROM gate_identities WHERE gate = ?), line = (SELECT line FROM gate_identities WHERE gate = ?), direction = (SELECT direction FROM gate_identities WHERE gate = ?),
           subject = (SELECT subject FROM credentials WHERE key = ?), institution = (SELECT s.institution FROM credentials c JOIN subjects s ON s.id = c.subject WHERE c.key = ?)
         WHERE gate = ? AND epoch = ? AND seq = ?`,
        [c.at[0] as number, c.type[0] as number, c.reason[0] as number, key, gate, gate, gate, key, key, gate, epoch, seq],
      );
      n++;
    }
    if (rows.length < page) return n;
    const last = rows[rows.length - 1] as [string, number, number, Uint8Array];
    after = [last[0], last[1], last[2]];
  }
}
