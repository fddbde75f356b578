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

import Database from 'better-sqlite3';
import type { EventBatchMessage } from '../../protocol/messages.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { bytesEqual } from '../../protocol/hex.js';
import { sha256Pair } from '../node-crypto.js';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  gate TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  record BLOB NOT NULL CHECK (length(record) = ${RECORD_BYTES}),
  chain BLOB NOT NULL CHECK (length(chain) = 32),
  received_at INTEGER NOT NULL,
  PRIMARY KEY (gate, epoch, seq)) WITHOUT ROWID;
-- per (gate, epoch): highest contiguous seq from 1, chain(contiguous), highest stored seq
CREATE TABLE IF NOT EXISTS event_heads (
  gate TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  contiguous INTEGER NOT NULL,
  chain BLOB NOT NULL,
  max_seq INTEGER NOT NULL,
  PRIMARY KEY (gate, epoch)) WITHOUT ROWID;
-- records of refused batches that differ from the held ones (never silently dropped)
CREATE TABLE IF NOT EXISTS event_conflicts (
  gate TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  record BLOB NOT NULL CHECK (length(record) = ${RECORD_BYTES}),
  chain BLOB NOT NULL CHECK (length(chain) = 32),
  stored BLOB,
  problem TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (gate, epoch, seq, record)) WITHOUT ROWID;
`;

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

/** The plan's result with `conflicts`: `keep(k)` stores one conflict row and returns 1 if it was new. */
export function withConflicts(plan: IngestPlan, keep: (k: ConflictToKeep) => number): IngestResult {
  if (plan.keep === null) return plan.result;
  let kept = 0;
  for (const k of plan.keep) kept += keep(k);
  return { ...plan.result, conflicts: kept };
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

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class EventStore {
  readonly db: Database.Database;
  readonly #ownDb: boolean;
  readonly #clock: () => number;
  readonly #insert: Database.Statement;
  readonly #head: Database.Statement;
  readonly #setHead: Database.Statement;
  readonly #range: Database.Statement;
  readonly #after: Database.Statement;
  readonly #conflict: Database.Statement;
  readonly #ingestTx: Database.Transaction<(b: EventBatchMessage, chains: Uint8Array[]) => IngestResult>;

  /** On a path (or ':memory:'), or on an open database (the registry's) whose lifetime the caller keeps. */
  constructor(db: string | Database.Database, options: EventStoreOptions = {}) {
    this.#ownDb = typeof db === 'string';
    this.db = typeof db === 'string' ? new Database(db) : db;
    if (this.#ownDb) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.db.exec(SCHEMA);
    this.#clock = options.clock ?? Date.now;
    this.#insert = this.db.prepare('INSERT INTO events (gate, epoch, seq, record, chain, received_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.#head = this.db.prepare('SELECT contiguous, chain, max_seq FROM event_heads WHERE gate = ? AND epoch = ?').raw();
    this.#setHead = this.db.prepare(
      'INSERT INTO event_heads (gate, epoch, contiguous, chain, max_seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (gate, epoch) DO UPDATE SET contiguous = excluded.contiguous, chain = excluded.chain, max_seq = excluded.max_seq',
    );
    this.#range = this.db.prepare('SELECT seq, record, chain FROM events WHERE gate = ? AND epoch = ? AND seq >= ? AND seq <= ? ORDER BY seq').raw();
    this.#after = this.db.prepare('SELECT seq, chain FROM events WHERE gate = ? AND epoch = ? AND seq > ? ORDER BY seq').raw();
    this.#conflict = this.db.prepare('INSERT OR IGNORE INTO event_conflicts (gate, epoch, seq, record, chain, stored, problem, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.#ingestTx = this.db.transaction((b: EventBatchMessage, chains: Uint8Array[]) => this.#ingest(b, chains));
  }

  close(): void {
    if (this.#ownDb && this.db.open) this.db.close();
  }

  /** Stores a decoded batch exactly once; see the file comment. Never throws for bad content. */
  ingest(b: EventBatchMessage): IngestResult {
    const chains = batchChains(b);
    if (typeof chains === 'string') return { stored: 0, duplicates: 0, ack: this.ack(b.gate, b.epoch), problem: chains };
    return this.#ingestTx.immediate(b, chains);
  }

  /** The ack for (gate, epoch): highest contiguous seq and chain(seq), or null if seq 1 is not stored. */
  ack(gate: string, epoch: number): EventAckValue | null {
    const h = this.#readHead(gate, epoch);
    return h.contiguous === 0 ? null : { epoch, seq: h.contiguous, chain: h.chain };
  }

  count(gate?: string): number {
    const r = (gate === undefined ? this.db.prepare('SELECT COUNT(*) AS n FROM events').get() : this.db.prepare('SELECT COUNT(*) AS n FROM events WHERE gate = ?').get(gate)) as { n: number };
    return r.n;
  }

  /** Stored rows in (gate, epoch, seq) order. */
  export(gate?: string, epoch?: number): EventRow[] {
    return [...this.rows(gate, epoch)];
  }

  /** The same rows as export(), one at a time (for large exports). */
  *rows(gate?: string, epoch?: number): Generator<EventRow> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (gate !== undefined) {
      where.push('gate = ?');
      args.push(gate);
    }
    if (epoch !== undefined) {
      where.push('epoch = ?');
      args.push(epoch);
    }
    const sql = `SELECT gate, epoch, seq, record, chain, received_at FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY gate, epoch, seq`;
    for (const r of this.db.prepare(sql).iterate(...args) as IterableIterator<{ gate: string; epoch: number; seq: number; record: Buffer; chain: Buffer; received_at: number }>) {
      yield { gate: r.gate, epoch: r.epoch, seq: r.seq, record: new Uint8Array(r.record), chain: new Uint8Array(r.chain), receivedAt: r.received_at };
    }
  }

  /** Records kept as conflicts, in (gate, epoch, seq) order. */
  conflicts(gate?: string): ConflictRow[] {
    const sql = `SELECT gate, epoch, seq, record, chain, stored, problem, received_at FROM event_conflicts${gate !== undefined ? ' WHERE gate = ?' : ''} ORDER BY gate, epoch, seq, received_at`;
    const rows = this.db.prepare(sql).all(...(gate !== undefined ? [gate] : [])) as { gate: string; epoch: number; seq: number; record: Buffer; chain: Buffer; stored: Buffer | null; problem: IngestProblem; received_at: number }[];
    return rows.map((r) => ({ gate: r.gate, epoch: r.epoch, seq: r.seq, record: new Uint8Array(r.record), chain: new Uint8Array(r.chain), stored: r.stored === null ? null : new Uint8Array(r.stored), problem: r.problem, receivedAt: r.received_at }));
  }

  /** How many records are kept as conflicts (of one gate, or all). */
  conflictCount(gate?: string): number {
    const r = (gate === undefined ? this.db.prepare('SELECT COUNT(*) AS n FROM event_conflicts').get() : this.db.prepare('SELECT COUNT(*) AS n FROM event_conflicts WHERE gate = ?').get(gate)) as { n: number };
    return r.n;
  }

  /** Recomputes the chain of (gate, epoch) from seq 1 over the stored rows; the first seq whose stored chain disagrees, or null. */
  audit(gate: string, epoch: number): number | null {
    let c: Uint8Array = ZERO_CHAIN;
    let expect = 1;
    for (const r of this.export(gate, epoch)) {
      if (r.seq !== expect) return r.seq;
      c = sha256Pair(c, r.record);
      if (!bytesEqual(c, r.chain)) return r.seq;
      expect++;
    }
    return null;
  }

  #readHead(gate: string, epoch: number): Head {
    const r = this.#head.get(gate, epoch) as [number, Buffer, number] | undefined;
    return r === undefined ? EMPTY_HEAD : { contiguous: r[0], chain: new Uint8Array(r[1]), maxSeq: r[2] };
  }

  #ingest(b: EventBatchMessage, chains: Uint8Array[]): IngestResult {
    const { gate, epoch } = b;
    const now = this.#clock();
    const plan = planIngest(b, chains, this.#readHead(gate, epoch), (from, to) => {
      const m = new Map<number, [Uint8Array, Uint8Array]>();
      for (const [seq, r, c] of this.#range.all(gate, epoch, from, to) as [number, Buffer, Buffer][]) m.set(seq, [r, c]);
      return m;
    }, (after) => this.#after.iterate(gate, epoch, after) as IterableIterator<[number, Buffer]>);
    const n = plan.inserts === 'all' ? b.count : plan.inserts.length;
    for (let j = 0; j < n; j++) {
      const i = plan.inserts === 'all' ? j : (plan.inserts[j] as number);
      this.#insert.run(gate, epoch, b.first + i, buf(recordOf(b, i)), buf(chains[i] as Uint8Array), now);
    }
    if (plan.head !== null) this.#setHead.run(gate, epoch, plan.head.contiguous, buf(plan.head.chain), plan.head.maxSeq);
    return withConflicts(plan, (k) => this.#conflict.run(gate, epoch, k.seq, buf(k.record), buf(k.chain), k.stored === null ? null : buf(k.stored), k.problem, now).changes);
  }
}
