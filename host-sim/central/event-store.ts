// The central's event store: every journal record a gate uploads, stored
// exactly once by (gate, epoch, seq), with the hash chain checked wherever a
// batch meets what is already stored (docs/SYNC.md "Events").
//
//   chain(0) = 32 zero bytes;  chain(i) = SHA-256(chain(i-1) ‖ record i)
//
// Each stored row keeps chain(seq), so any stored prefix can be audited on
// its own and every join is checked against an exact value.
//
// ingest(batch):
//  1. records must be count × RECORD_BYTES (16, protocol/event-record.ts) ('bad_length'), and the batch's own
//     chain must run from prev to chain ('bad_chain'); otherwise nothing is stored.
//  2. Where the batch meets stored rows it must agree with them: prev =
//     chain(first − 1) when that is stored (or first = 1 and prev is zero),
//     identical records and chain values on every overlapping seq
//     ('overlap_mismatch' for different record bytes, 'chain_break' for a
//     different chain), and the stored record after the batch must chain
//     from the batch's last value ('chain_break'). Any mismatch: nothing stored.
//  3. The seqs not yet stored are inserted, in one transaction.
//  4. The ack is the highest contiguous seq from 1 and its chain value.
//
// A batch that starts beyond contiguous + 1 (an earlier batch was lost or
// overtaken) is stored too, exactly once, after the same checks against
// whatever neighbours are stored; the ack stays at the contiguous seq and the
// result says 'gap_before'. When the gap is filled the contiguous seq jumps
// over everything stored after it. The gate re-sends from ack + 1 anyway, and
// those re-sent records are duplicates, checked and ignored.
//
// Conflicts. A batch refused for 'overlap_mismatch' or 'chain_break' carries
// records that differ from what is held (a gate that restarted its journal in
// an epoch it had used: firmware without the format counter, or a gate whose
// provisioning partition was erased with its data, docs/SYNC.md "Conflicting
// records"). Each of its records that is not identical to the one held at its
// seq is kept in `event_conflicts`, next to the held record (or null), once
// per distinct record bytes; the held rows are never touched. The result's
// `conflicts` counts the records newly kept; the central counts them per gate.

import type { EventBatchMessage } from '../../protocol/messages.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { bytesEqual, toHex } from '../../protocol/hex.js';
import { sha256Pair } from '../node-crypto.js';
import { bytes, dialect, type SqlDb, type SqlValue } from './store/sql-db.js';
import { emptyColumns, gatePlace, holdersOf, pushColumns, type EventColumns } from './event-columns.js';

const ZERO_CHAIN = new Uint8Array(32);

export type IngestProblem = 'bad_length' | 'bad_chain' | 'chain_break' | 'overlap_mismatch' | 'gap_before';

export interface EventAckValue {
  readonly epoch: number;
  readonly seq: number;
  readonly chain: Uint8Array;
}

export interface IngestResult {
  /** Records newly stored by this batch. */
  readonly stored: number;
  /** Records of the batch that were already stored (identical). */
  readonly duplicates: number;
  /** Highest contiguous seq of (gate, epoch) and its chain value; null while nothing from seq 1 on is stored. */
  readonly ack: EventAckValue | null;
  /** Why (part of) the batch was not taken; 'gap_before': stored, but not joined to the contiguous part yet. */
  readonly problem?: IngestProblem;
  /** Records of a refused batch newly kept in the conflicts table (they differ from the records held at their seqs). */
  readonly conflicts?: number;
}

export interface ConflictRow {
  readonly gate: string;
  readonly epoch: number;
  readonly seq: number;
  /** The record the gate sent. */
  readonly record: Uint8Array;
  /** chain(seq) as the refused batch computes it. */
  readonly chain: Uint8Array;
  /** The record held at (gate, epoch, seq) when the conflict was seen, null when none was. */
  readonly stored: Uint8Array | null;
  readonly problem: IngestProblem;
  readonly receivedAt: number;
}

export interface EventRow {
  readonly gate: string;
  readonly epoch: number;
  readonly seq: number;
  readonly record: Uint8Array;
  /** chain(seq). */
  readonly chain: Uint8Array;
  /** Milliseconds since 1970 (the central's clock). */
  readonly receivedAt: number;
}

export interface EventStoreOptions {
  /** Milliseconds, for received_at (default Date.now). */
  readonly clock?: () => number;
}

/** Per (gate, epoch): the highest contiguous seq from 1, its chain value, the highest stored seq. */
export interface EventHead {
  contiguous: number;
  chain: Uint8Array;
  maxSeq: number;
}
type Head = EventHead;

/** A record of a refused batch to keep in event_conflicts (insert-or-ignore: once per distinct bytes). */
export interface ConflictToKeep {
  readonly seq: number;
  readonly record: Uint8Array;
  readonly chain: Uint8Array;
  readonly stored: Uint8Array | null;
  readonly problem: IngestProblem;
}

/** What one ingest does, decided before anything is written; each store engine applies it in one transaction. */
export interface IngestPlan {
  /** The result, without `conflicts` (the engine counts the rows it newly kept). */
  readonly result: IngestResult;
  /** Indices into the batch of the records to insert; 'all' on the hot path (no array per batch). */
  readonly inserts: readonly number[] | 'all';
  /** The new head, or null when it does not change. */
  readonly head: EventHead | null;
  /** Set when the batch was refused for what is held ('chain_break', 'overlap_mismatch'). */
  readonly keep: readonly ConflictToKeep[] | null;
}

export const EMPTY_HEAD: EventHead = { contiguous: 0, chain: ZERO_CHAIN, maxSeq: 0 };

export function recordOf(b: EventBatchMessage, i: number): Uint8Array {
  return b.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES);
}

/** The batch's chain values from its prev; a problem when the records are not whole or do not chain to its `chain`. */
export function batchChains(b: EventBatchMessage): Uint8Array[] | 'bad_length' | 'bad_chain' {
  const n = b.count;
  if (b.records.length !== n * RECORD_BYTES || b.first + n - 1 > 0xffffffff) return 'bad_length';
  const chains: Uint8Array[] = new Array<Uint8Array>(n);
  let c = b.prev;
  for (let i = 0; i < n; i++) {
    c = sha256Pair(c, recordOf(b, i));
    chains[i] = c;
  }
  return bytesEqual(c, b.chain) ? chains : 'bad_chain';
}

/**
 * The ingest rules of the file comment over reads the engine provides:
 * `range(from, to)` the stored (record, chain) by seq in from..to, `after(seq)`
 * the stored (seq, chain) above seq in order. Pure: writes nothing.
 */
export function planIngest(b: EventBatchMessage, chains: readonly Uint8Array[], head: EventHead, range: (from: number, to: number) => Map<number, [Uint8Array, Uint8Array]>, after: (seq: number) => Iterable<[number, Uint8Array]>): IngestPlan {
  const { epoch, first, count } = b;
  const last = first + count - 1;
  const ackOf = (h: EventHead): EventAckValue | null => (h.contiguous === 0 ? null : { epoch, seq: h.contiguous, chain: h.chain });
  const keepOf = (stored: Map<number, [Uint8Array, Uint8Array]>, problem: IngestProblem): ConflictToKeep[] => {
    const keep: ConflictToKeep[] = [];
    for (let i = 0; i < count; i++) {
      const r = recordOf(b, i);
      const held = stored.get(first + i);
      if (held !== undefined && bytesEqual(held[0], r)) continue;
      keep.push({ seq: first + i, record: r, chain: chains[i] as Uint8Array, stored: held === undefined ? null : held[0], problem });
    }
    return keep;
  };

  // Hot path: the batch continues the contiguous chain and nothing is stored beyond it.
  if (first === head.contiguous + 1 && head.maxSeq <= head.contiguous) {
    if (!bytesEqual(b.prev, head.chain)) return { result: { stored: 0, duplicates: 0, ack: ackOf(head), problem: 'chain_break' }, inserts: [], head: null, keep: keepOf(range(first, last), 'chain_break') };
    const chain = chains[count - 1] as Uint8Array;
    return { result: { stored: count, duplicates: 0, ack: { epoch, seq: last, chain } }, inserts: 'all', head: { contiguous: last, chain, maxSeq: last }, keep: null };
  }

  // General path: check against every stored neighbour and overlap, then insert what is new.
  const stored = range(first - 1, last + 1);
  const reject = (problem: 'chain_break' | 'overlap_mismatch'): IngestPlan => ({ result: { stored: 0, duplicates: 0, ack: ackOf(head), problem }, inserts: [], head: null, keep: keepOf(stored, problem) });
  if (first === 1) {
    if (!bytesEqual(b.prev, ZERO_CHAIN)) return reject('chain_break');
  } else {
    const before = stored.get(first - 1);
    if (before !== undefined && !bytesEqual(before[1], b.prev)) return reject('chain_break');
  }
  let duplicates = 0;
  const inserts: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = stored.get(first + i);
    if (s === undefined) {
      inserts.push(i);
      continue;
    }
    if (!bytesEqual(s[0], recordOf(b, i))) return reject('overlap_mismatch');
    if (!bytesEqual(s[1], chains[i] as Uint8Array)) return reject('chain_break');
    duplicates++;
  }
  const afterRow = stored.get(last + 1);
  if (afterRow !== undefined && !bytesEqual(sha256Pair(chains[count - 1] as Uint8Array, afterRow[0]), afterRow[1])) return reject('chain_break');

  const next: EventHead = { contiguous: head.contiguous, chain: head.chain, maxSeq: Math.max(head.maxSeq, last) };
  if (first <= head.contiguous + 1 && last > head.contiguous) {
    // The batch joined the contiguous part: walk over it and anything stored after it.
    next.contiguous = last;
    next.chain = chains[count - 1] as Uint8Array;
    if (next.maxSeq > last) {
      for (const [seq, c] of after(last)) {
        if (seq !== next.contiguous + 1) break;
        next.contiguous = seq;
        next.chain = new Uint8Array(c);
      }
    }
  }
  const result: IngestResult = { stored: count - duplicates, duplicates, ack: ackOf(next) };
  return { result: first > next.contiguous + 1 ? { ...result, problem: 'gap_before' } : result, inserts, head: next, keep: null };
}

/** The rows one batch inserts, as column arrays. */
interface BatchRows {
  readonly seqs: number[];
  readonly records: Uint8Array[];
  readonly chains: Uint8Array[];
  readonly columns: EventColumns;
}

/** Rows per INSERT on SQLite: one statement of many rows costs less than as many single-row ones (15 x 64 parameters). */
const SQLITE_ROWS_PER_INSERT = 64;
const sqliteInsert = (rows: number): string =>
  `INSERT INTO events (gate, epoch, seq, record, chain, received_at, at, type, reason, credential, site, line, direction, subject, institution) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`;
const SQLITE_INSERT_MANY = sqliteInsert(SQLITE_ROWS_PER_INSERT);
const SQLITE_INSERT_ONE = sqliteInsert(1);

/**
 * PostgreSQL inserts a batch in one statement of arrays, the gate's place and the credentials'
 * holders joined in by the server (event-columns.ts says what each column holds).
 */
const PG_INSERT = `INSERT INTO events (gate, epoch, seq, record, chain, received_at, at, type, reason, credential, site, line, direction, subject, institution)
  SELECT ?, ?, t.s, t.r, t.ch, ?, t.at, t.ty, t.re, t.k, gi.site, gi.line, gi.direction, c.subject, sub.institution
  FROM unnest(?::bigint[], ?::bytea[], ?::bytea[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bytea[]) AS t(s, r, ch, at, ty, re, k)
  LEFT JOIN credentials c ON c.key = t.k LEFT JOIN subjects sub ON sub.id = c.subject LEFT JOIN gate_identities gi ON gi.gate = ?`;

const pgInsertParams = (gate: string, epoch: number, now: number, r: BatchRows): SqlValue[] => [
  gate, epoch, now, r.seqs, r.records, r.chains, r.columns.at, r.columns.type, r.columns.reason, r.columns.credential, gate,
];

/** Rows of a ranged read, by seq. */
type Near = Map<number, [Uint8Array, Uint8Array]>;

/**
 * The event store on either engine (store/sql-db.ts). One transaction per
 * batch. On PostgreSQL the (gate, epoch) head row is created if missing and
 * locked to the commit (SELECT ... FOR UPDATE), so two centrals ingesting the
 * same gate serialize on it while other gates go on; on SQLite the write lock
 * serializes every writer. Inserts are ON CONFLICT DO NOTHING: a record is
 * stored once by (gate, epoch, seq) whoever writes it.
 */
export class EventStore {
  readonly db: SqlDb;
  readonly #clock: () => number;
  readonly #headSql: string;
  readonly #bulk: boolean;

  /** On an open database of the current schema (store/open-store.ts), whose lifetime the caller keeps. */
  constructor(db: SqlDb, options: EventStoreOptions = {}) {
    this.db = db;
    this.#clock = options.clock ?? Date.now;
    this.#headSql = `SELECT contiguous, chain, max_seq FROM event_heads WHERE gate = ? AND epoch = ?${dialect(db.engine).forUpdate}`;
    // One INSERT of arrays per batch on PostgreSQL (a round trip a row would cost ~100x);
    // SQLite runs prepared rows in-process.
    this.#bulk = db.engine === 'postgres';
  }

  /** Stores a decoded batch exactly once; see the file comment. Never throws for bad content. */
  async ingest(b: EventBatchMessage): Promise<IngestResult> {
    const chains = batchChains(b);
    if (typeof chains === 'string') return { stored: 0, duplicates: 0, ack: await this.ack(b.gate, b.epoch), problem: chains };
    if (this.#bulk) {
      const hot = await this.#ingestContinuing(b, chains);
      if (hot !== null) return hot;
    }
    return this.db.transaction(() => this.#ingest(b, chains), { write: true });
  }

  /**
   * PostgreSQL's hot path in one statement (one round trip instead of five): the head moves
   * only if it is exactly where the batch continues it (contiguous = first - 1, its chain =
   * the batch's prev, nothing stored beyond), and the rows go in only if it moved. The UPDATE
   * locks the head row, so a second writer with the same batch waits, re-reads the moved
   * head, matches nothing and takes the general path (where it finds duplicates). null: the
   * head was elsewhere (first batch of an epoch, a gap, a retry, a chain break): nothing
   * was written.
   */
  async #ingestContinuing(b: EventBatchMessage, chains: Uint8Array[]): Promise<IngestResult | null> {
    const { gate, epoch, first, count } = b;
    const last = first + count - 1;
    if (first === 1) return null;
    const chain = chains[count - 1] as Uint8Array;
    const rows = this.#rowsOf(b, chains, 'all', count);
    const inserted = await this.db.run(
      `WITH moved AS (UPDATE event_heads SET contiguous = ?, chain = ?, max_seq = ? WHERE gate = ? AND epoch = ? AND contiguous = ? AND chain = ? AND max_seq <= contiguous RETURNING 1)
       ${PG_INSERT} WHERE EXISTS (SELECT 1 FROM moved) ON CONFLICT DO NOTHING`,
      [last, chain, last, gate, epoch, first - 1, b.prev, ...pgInsertParams(gate, epoch, this.#clock(), rows)],
    );
    if (inserted === 0) return null;
    // The head said nothing is stored beyond first - 1, so every row is new; anything else is a broken head row.
    if (inserted !== count) throw new Error(`event store: head of ${gate} epoch ${epoch} said nothing was stored after seq ${first - 1}, but ${count - inserted} of seqs ${first}..${last} were`);
    return { stored: count, duplicates: 0, ack: { epoch, seq: last, chain } };
  }

  /** The ack for (gate, epoch): highest contiguous seq and chain(seq), or null if seq 1 is not stored. */
  async ack(gate: string, epoch: number): Promise<EventAckValue | null> {
    const h = await this.#readHead(gate, epoch, false);
    return h.contiguous === 0 ? null : { epoch, seq: h.contiguous, chain: h.chain };
  }

  /** Stored records (of one gate, or of one gate's epoch, or all). */
  async count(gate?: string, epoch?: number): Promise<number> {
    const r =
      gate === undefined
        ? await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events')
        : epoch === undefined
          ? await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE gate = ?', [gate])
          : await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM events WHERE gate = ? AND epoch = ?', [gate, epoch]);
    return r?.n ?? 0;
  }

  /** Stored rows in (gate, epoch, seq) order. */
  async export(gate?: string, epoch?: number): Promise<EventRow[]> {
    const out: EventRow[] = [];
    for await (const r of this.rows(gate, epoch)) out.push(r);
    return out;
  }

  /** The same rows as export(), a page at a time (large exports hold one page). */
  async *rows(gate?: string, epoch?: number, pageSize = 5000): AsyncGenerator<EventRow> {
    const where: string[] = [];
    const args: SqlValue[] = [];
    if (gate !== undefined) {
      where.push('gate = ?');
      args.push(gate);
    }
    if (epoch !== undefined) {
      where.push('epoch = ?');
      args.push(epoch);
    }
    // Keyset pagination on the primary key: each page starts after the last row of the one before.
    let after: [string, number, number] | null = null;
    for (;;) {
      const w = [...where];
      const a = [...args];
      if (after !== null) {
        w.push('(gate, epoch, seq) > (?, ?, ?)');
        a.push(...after);
      }
      const sql = `SELECT gate, epoch, seq, record, chain, received_at FROM events${w.length > 0 ? ` WHERE ${w.join(' AND ')}` : ''} ORDER BY gate, epoch, seq LIMIT ${pageSize}`;
      const page = (await this.db.rows(sql, a)) as [string, number, number, Uint8Array, Uint8Array, number][];
      for (const [g, e, seq, record, chain, receivedAt] of page) yield { gate: g, epoch: e, seq, record: bytes(record), chain: bytes(chain), receivedAt };
      if (page.length < pageSize) return;
      const last = page[page.length - 1] as [string, number, number, ...unknown[]];
      after = [last[0], last[1], last[2]];
    }
  }

  /** Records kept as conflicts, in (gate, epoch, seq) order. */
  async conflicts(gate?: string): Promise<ConflictRow[]> {
    const sql = `SELECT gate, epoch, seq, record, chain, stored, problem, received_at FROM event_conflicts${gate !== undefined ? ' WHERE gate = ?' : ''} ORDER BY gate, epoch, seq, received_at, record`;
    const rows = await this.db.all<{ gate: string; epoch: number; seq: number; record: Uint8Array; chain: Uint8Array; stored: Uint8Array | null; problem: IngestProblem; received_at: number }>(sql, gate !== undefined ? [gate] : []);
    return rows.map((r) => ({ gate: r.gate, epoch: r.epoch, seq: r.seq, record: bytes(r.record), chain: bytes(r.chain), stored: r.stored === null ? null : bytes(r.stored), problem: r.problem, receivedAt: r.received_at }));
  }

  /** How many records are kept as conflicts (of one gate, or all). */
  async conflictCount(gate?: string): Promise<number> {
    const r = gate === undefined ? await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM event_conflicts') : await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM event_conflicts WHERE gate = ?', [gate]);
    return r?.n ?? 0;
  }

  /** Recomputes the chain of (gate, epoch) from seq 1 over the stored rows; the first seq whose stored chain disagrees, or null. */
  async audit(gate: string, epoch: number): Promise<number | null> {
    let c: Uint8Array = ZERO_CHAIN;
    let expect = 1;
    for await (const r of this.rows(gate, epoch)) {
      if (r.seq !== expect) return r.seq;
      c = sha256Pair(c, r.record);
      if (!bytesEqual(c, r.chain)) return r.seq;
      expect++;
    }
    return null;
  }

  /** The rows a batch inserts (every one, or the plan's indices) with their decoded columns. */
  #rowsOf(b: EventBatchMessage, chains: readonly Uint8Array[], inserts: 'all' | readonly number[], n: number): BatchRows {
    const rows: BatchRows = { seqs: [], records: [], chains: [], columns: emptyColumns() };
    for (let j = 0; j < n; j++) {
      const i = inserts === 'all' ? j : (inserts[j] as number);
      const record = recordOf(b, i);
      rows.seqs.push(b.first + i);
      rows.records.push(record);
      rows.chains.push(chains[i] as Uint8Array);
      pushColumns(record, b.first + i, b.epoch, rows.columns);
    }
    return rows;
  }

  async #readHead(gate: string, epoch: number, lock: boolean): Promise<Head> {
    const r = (await this.db.rows(lock ? this.#headSql : 'SELECT contiguous, chain, max_seq FROM event_heads WHERE gate = ? AND epoch = ?', [gate, epoch]))[0] as [number, Uint8Array, number] | undefined;
    return r === undefined ? EMPTY_HEAD : { contiguous: r[0], chain: bytes(r[1]), maxSeq: r[2] };
  }

  async #ingest(b: EventBatchMessage, chains: Uint8Array[]): Promise<IngestResult> {
    const { gate, epoch, first, count } = b;
    const last = first + count - 1;
    // The head row is the lock of (gate, epoch) on PostgreSQL: made if missing, then held to the commit.
    let head = await this.#readHead(gate, epoch, true);
    if (this.#bulk && head === EMPTY_HEAD) {
      await this.db.run('INSERT INTO event_heads (gate, epoch, contiguous, chain, max_seq) VALUES (?, ?, 0, ?, 0) ON CONFLICT DO NOTHING', [gate, epoch, ZERO_CHAIN]);
      head = await this.#readHead(gate, epoch, true);
    }
    // Every read planIngest may make, done before it runs (it is synchronous); none on the hot path.
    const hot = first === head.contiguous + 1 && head.maxSeq <= head.contiguous && bytesEqual(b.prev, head.chain);
    const near: Near = new Map();
    let after: [number, Uint8Array][] = [];
    if (!hot) {
      for (const [seq, r, c] of (await this.db.rows('SELECT seq, record, chain FROM events WHERE gate = ? AND epoch = ? AND seq >= ? AND seq <= ? ORDER BY seq', [gate, epoch, first - 1, last + 1])) as [number, Uint8Array, Uint8Array][]) near.set(seq, [r, c]);
      if (first <= head.contiguous + 1 && last > head.contiguous && head.maxSeq > last) {
        after = ((await this.db.rows('SELECT seq, chain FROM events WHERE gate = ? AND epoch = ? AND seq > ? ORDER BY seq', [gate, epoch, last])) as [number, Uint8Array][]);
      }
    }
    const plan = planIngest(b, chains, head, (from, to) => {
      const m: Near = new Map();
      for (const [seq, v] of near) if (seq >= from && seq <= to) m.set(seq, v);
      return m;
    }, () => after);
    const now = this.#clock();
    const n = plan.inserts === 'all' ? count : plan.inserts.length;
    if (n > 0 && this.#bulk) {
      await this.db.run(`${PG_INSERT} ON CONFLICT DO NOTHING`, pgInsertParams(gate, epoch, now, this.#rowsOf(b, chains, plan.inserts, n)));
    } else if (n > 0) {
      const rows = this.#rowsOf(b, chains, plan.inserts, n);
      const [site, line, direction] = await gatePlace(this.db, gate);
      const holders = await holdersOf(this.db, rows.columns.credential);
      // Full statements of SQLITE_ROWS_PER_INSERT rows, then single rows for the rest.
      const many: SqlValue[][] = [];
      const one: SqlValue[][] = [];
      const full = n - (n % SQLITE_ROWS_PER_INSERT);
      let params: SqlValue[] = [];
      for (let j = 0; j < n; j++) {
        const key = rows.columns.credential[j] ?? null;
        const holder = key === null ? undefined : holders.get(toHex(key));
        params.push(
          gate, epoch, rows.seqs[j] as number, rows.records[j] as Uint8Array, rows.chains[j] as Uint8Array, now,
          rows.columns.at[j] as number, rows.columns.type[j] as number, rows.columns.reason[j] as number, key, site, line, direction, holder?.[0] ?? null, holder?.[1] ?? null,
        );
        if (j < full ? (j + 1) % SQLITE_ROWS_PER_INSERT === 0 : true) {
          (j < full ? many : one).push(params);
          params = [];
        }
      }
      if (many.length > 0) await this.db.runMany(SQLITE_INSERT_MANY, many);
      if (one.length > 0) await this.db.runMany(SQLITE_INSERT_ONE, one);
    }
    if (plan.head !== null) {
      await this.db.run(
        'INSERT INTO event_heads (gate, epoch, contiguous, chain, max_seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (gate, epoch) DO UPDATE SET contiguous = excluded.contiguous, chain = excluded.chain, max_seq = excluded.max_seq',
        [gate, epoch, plan.head.contiguous, plan.head.chain, plan.head.maxSeq],
      );
    }
    if (plan.keep === null) return plan.result;
    let kept = 0;
    for (const k of plan.keep) {
      kept += await this.db.run('INSERT INTO event_conflicts (gate, epoch, seq, record, chain, stored, problem, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [gate, epoch, k.seq, k.record, k.chain, k.stored, k.problem, now]);
    }
    return { ...plan.result, conflicts: kept };
  }
}
