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

interface Head {
  contiguous: number;
  chain: Uint8Array;
  maxSeq: number;
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
    const n = b.count;
    if (b.records.length !== n * RECORD_BYTES || b.first + n - 1 > 0xffffffff) return { stored: 0, duplicates: 0, ack: this.ack(b.gate, b.epoch), problem: 'bad_length' };
    const chains: Uint8Array[] = new Array<Uint8Array>(n);
    let c = b.prev;
    for (let i = 0; i < n; i++) {
      c = sha256Pair(c, b.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES));
      chains[i] = c;
    }
    if (!bytesEqual(c, b.chain)) return { stored: 0, duplicates: 0, ack: this.ack(b.gate, b.epoch), problem: 'bad_chain' };
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
    return r === undefined ? { contiguous: 0, chain: ZERO_CHAIN, maxSeq: 0 } : { contiguous: r[0], chain: new Uint8Array(r[1]), maxSeq: r[2] };
  }

  #ingest(b: EventBatchMessage, chains: Uint8Array[]): IngestResult {
    const { gate, epoch, first, count } = b;
    const last = first + count - 1;
    const head = this.#readHead(gate, epoch);
    const now = this.#clock();
    const rec = (i: number) => buf(b.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES));

    // Hot path: the batch continues the contiguous chain and nothing is stored beyond it.
    if (first === head.contiguous + 1 && head.maxSeq <= head.contiguous) {
      if (!bytesEqual(b.prev, head.chain)) return { stored: 0, duplicates: 0, ack: this.#ackOf(epoch, head), problem: 'chain_break', conflicts: this.#keep(b, chains, new Map(), 'chain_break', now) };
      for (let i = 0; i < count; i++) this.#insert.run(gate, epoch, first + i, rec(i), buf(chains[i] as Uint8Array), now);
      const chain = chains[count - 1] as Uint8Array;
      this.#setHead.run(gate, epoch, last, buf(chain), last);
      return { stored: count, duplicates: 0, ack: { epoch, seq: last, chain } };
    }

    // General path: check against every stored neighbour and overlap, then insert what is new.
    const rows = this.#range.all(gate, epoch, first - 1, last + 1) as [number, Buffer, Buffer][];
    const stored = new Map<number, [Buffer, Buffer]>();
    for (const [seq, r, c] of rows) stored.set(seq, [r, c]);
    const reject = (problem: 'chain_break' | 'overlap_mismatch'): IngestResult => ({ stored: 0, duplicates: 0, ack: this.#ackOf(epoch, head), problem, conflicts: this.#keep(b, chains, stored, problem, now) });
    if (first === 1) {
      if (!bytesEqual(b.prev, ZERO_CHAIN)) return reject('chain_break');
    } else {
      const before = stored.get(first - 1);
      if (before !== undefined && !bytesEqual(before[1], b.prev)) return reject('chain_break');
    }
    let duplicates = 0;
    for (let i = 0; i < count; i++) {
      const s = stored.get(first + i);
      if (s === undefined) continue;
      if (!bytesEqual(s[0], rec(i))) return reject('overlap_mismatch');
      if (!bytesEqual(s[1], chains[i] as Uint8Array)) return reject('chain_break');
      duplicates++;
    }
    const after = stored.get(last + 1);
    if (after !== undefined && !bytesEqual(sha256Pair(chains[count - 1] as Uint8Array, after[0]), after[1])) return reject('chain_break');

    for (let i = 0; i < count; i++) if (!stored.has(first + i)) this.#insert.run(gate, epoch, first + i, rec(i), buf(chains[i] as Uint8Array), now);
    const next: Head = { contiguous: head.contiguous, chain: head.chain, maxSeq: Math.max(head.maxSeq, last) };
    if (first <= head.contiguous + 1 && last > head.contiguous) {
      // The batch joined the contiguous part: walk over it and anything stored after it.
      next.contiguous = last;
      next.chain = chains[count - 1] as Uint8Array;
      if (next.maxSeq > last) {
        for (const [seq, c] of this.#after.iterate(gate, epoch, last) as IterableIterator<[number, Buffer]>) {
          if (seq !== next.contiguous + 1) break;
          next.contiguous = seq;
          next.chain = new Uint8Array(c);
        }
      }
    }
    this.#setHead.run(gate, epoch, next.contiguous, buf(next.chain), next.maxSeq);
    const result: IngestResult = { stored: count - duplicates, duplicates, ack: this.#ackOf(epoch, next) };
    return first > next.contiguous + 1 ? { ...result, problem: 'gap_before' } : result;
  }

  /** Keeps the records of a refused batch that differ from the held ones (`stored`: held rows of the batch's range, where read). Returns how many are new. */
  #keep(b: EventBatchMessage, chains: Uint8Array[], stored: Map<number, [Buffer, Buffer]>, problem: IngestProblem, now: number): number {
    const { gate, epoch, first, count } = b;
    if (stored.size === 0) for (const [seq, r, c] of this.#range.all(gate, epoch, first, first + count - 1) as [number, Buffer, Buffer][]) stored.set(seq, [r, c]);
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const r = b.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES);
      const held = stored.get(first + i);
      if (held !== undefined && bytesEqual(held[0], r)) continue;
      kept += this.#conflict.run(gate, epoch, first + i, buf(r), buf(chains[i] as Uint8Array), held === undefined ? null : held[0], problem, now).changes;
    }
    return kept;
  }

  #ackOf(epoch: number, h: Head): EventAckValue | null {
    return h.contiguous === 0 ? null : { epoch, seq: h.contiguous, chain: h.chain };
  }
}
