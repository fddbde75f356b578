// The event store on PostgreSQL (issue 18): the same rules as the SQLite
// EventStore (event-store.ts: planIngest decides, this applies), with async
// operations and any number of writers. One transaction per batch; the
// per-(gate, epoch) head row is created if missing and locked (SELECT ... FOR
// UPDATE), so two centrals ingesting batches of the same gate serialize on it,
// and every insert is ON CONFLICT DO NOTHING: a record is stored once by
// (gate, epoch, seq) whoever writes it.

import pg from 'pg';
import type { EventBatchMessage } from '../../protocol/messages.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { batchChains, EMPTY_HEAD, planIngest, recordOf, type ConflictRow, type EventAckValue, type EventHead, type EventRow, type IngestProblem, type IngestResult } from './event-store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  gate TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  record BYTEA NOT NULL CHECK (length(record) = ${RECORD_BYTES}),
  chain BYTEA NOT NULL CHECK (length(chain) = 32),
  received_at BIGINT NOT NULL,
  PRIMARY KEY (gate, epoch, seq));
CREATE TABLE IF NOT EXISTS event_heads (
  gate TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  contiguous BIGINT NOT NULL,
  chain BYTEA NOT NULL,
  max_seq BIGINT NOT NULL,
  PRIMARY KEY (gate, epoch));
CREATE TABLE IF NOT EXISTS event_conflicts (
  gate TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  record BYTEA NOT NULL CHECK (length(record) = ${RECORD_BYTES}),
  chain BYTEA NOT NULL CHECK (length(chain) = 32),
  stored BYTEA,
  problem TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (gate, epoch, seq, record));
`;

export interface PgEventStoreOptions {
  /** postgres://user@host:port/db */
  readonly url: string;
  /** Milliseconds, for received_at (default Date.now). */
  readonly clock?: () => number;
  /** Connections in the pool (default 4). */
  readonly connections?: number;
  /** Told when an idle pooled connection fails (the server went away); the store carries on. */
  readonly onIdleError?: (e: Error) => void;
}

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
/** BIGINT arrives as a string; every value here fits a double exactly (seq ≤ 2^32, ms since 1970). */
const num = (v: string | number): number => Number(v);

export class PgEventStore {
  readonly #pool: pg.Pool;
  readonly #clock: () => number;

  private constructor(pool: pg.Pool, clock: () => number) {
    this.#pool = pool;
    this.#clock = clock;
  }

  /** Connects and creates the tables if they are missing. */
  static async open(options: PgEventStoreOptions): Promise<PgEventStore> {
    const pool = new pg.Pool({ connectionString: options.url, max: options.connections ?? 4 });
    // An idle connection the server ends (restart, shutdown) is an 'error' on the pool: without a
    // listener it would end the process. The pool drops that client; the next query connects again.
    pool.on('error', (e) => options.onIdleError?.(e));
    try {
      await pool.query(SCHEMA);
    } catch (e) {
      await pool.end();
      throw e;
    }
    return new PgEventStore(pool, options.clock ?? Date.now);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** Stores a decoded batch exactly once (the rules of event-store.ts). Never throws for bad content. */
  async ingest(b: EventBatchMessage): Promise<IngestResult> {
    const chains = batchChains(b);
    if (typeof chains === 'string') return { stored: 0, duplicates: 0, ack: await this.ack(b.gate, b.epoch), problem: chains };
    const { gate, epoch, first, count } = b;
    const last = first + count - 1;
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      // The head row is the lock of (gate, epoch): made if missing, then held to the commit.
      await c.query('INSERT INTO event_heads (gate, epoch, contiguous, chain, max_seq) VALUES ($1, $2, 0, $3, 0) ON CONFLICT DO NOTHING', [gate, epoch, buf(EMPTY_HEAD.chain)]);
      const h = await c.query<{ contiguous: string; chain: Buffer; max_seq: string }>('SELECT contiguous, chain, max_seq FROM event_heads WHERE gate = $1 AND epoch = $2 FOR UPDATE', [gate, epoch]);
      const row = h.rows[0];
      const head: EventHead = row === undefined ? EMPTY_HEAD : { contiguous: num(row.contiguous), chain: u8(row.chain), maxSeq: num(row.max_seq) };
      // Every read planIngest may make, done before it runs (it is synchronous).
      const near = new Map<number, [Uint8Array, Uint8Array]>();
      const r = await c.query<{ seq: string; record: Buffer; chain: Buffer }>('SELECT seq, record, chain FROM events WHERE gate = $1 AND epoch = $2 AND seq BETWEEN $3 AND $4', [gate, epoch, first - 1, last + 1]);
      for (const x of r.rows) near.set(num(x.seq), [u8(x.record), u8(x.chain)]);
      let after: [number, Uint8Array][] = [];
      if (first <= head.contiguous + 1 && last > head.contiguous && head.maxSeq > last) {
        const a = await c.query<{ seq: string; chain: Buffer }>('SELECT seq, chain FROM events WHERE gate = $1 AND epoch = $2 AND seq > $3 ORDER BY seq', [gate, epoch, last]);
        after = a.rows.map((x) => [num(x.seq), u8(x.chain)]);
      }
      const plan = planIngest(b, chains, head, (from, to) => new Map([...near].filter(([seq]) => seq >= from && seq <= to)), () => after);
      const now = this.#clock();
      const inserts = plan.inserts === 'all' ? Array.from({ length: count }, (_, i) => i) : plan.inserts;
      if (inserts.length > 0) {
        await c.query('INSERT INTO events (gate, epoch, seq, record, chain, received_at) SELECT $1, $2, s, r, ch, $6 FROM unnest($3::bigint[], $4::bytea[], $5::bytea[]) AS t(s, r, ch) ON CONFLICT DO NOTHING', [
          gate,
          epoch,
          inserts.map((i) => first + i),
          inserts.map((i) => buf(recordOf(b, i))),
          inserts.map((i) => buf(chains[i] as Uint8Array)),
          now,
        ]);
      }
      if (plan.head !== null) await c.query('UPDATE event_heads SET contiguous = $3, chain = $4, max_seq = $5 WHERE gate = $1 AND epoch = $2', [gate, epoch, plan.head.contiguous, buf(plan.head.chain), plan.head.maxSeq]);
      let result = plan.result;
      if (plan.keep !== null) {
        let kept = 0;
        for (const k of plan.keep) {
          const ins = await c.query('INSERT INTO event_conflicts (gate, epoch, seq, record, chain, stored, problem, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING', [gate, epoch, k.seq, buf(k.record), buf(k.chain), k.stored === null ? null : buf(k.stored), k.problem, now]);
          kept += ins.rowCount ?? 0;
        }
        result = { ...result, conflicts: kept };
      }
      await c.query('COMMIT');
      return result;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  /** The ack for (gate, epoch): highest contiguous seq and chain(seq), or null if seq 1 is not stored. */
  async ack(gate: string, epoch: number): Promise<EventAckValue | null> {
    const r = await this.#pool.query<{ contiguous: string; chain: Buffer }>('SELECT contiguous, chain FROM event_heads WHERE gate = $1 AND epoch = $2', [gate, epoch]);
    const h = r.rows[0];
    return h === undefined || num(h.contiguous) === 0 ? null : { epoch, seq: num(h.contiguous), chain: u8(h.chain) };
  }

  async count(gate?: string): Promise<number> {
    const r = gate === undefined ? await this.#pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM events') : await this.#pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM events WHERE gate = $1', [gate]);
    return num(r.rows[0]?.n ?? 0);
  }

  /** Stored rows in (gate, epoch, seq) order. */
  async export(gate?: string, epoch?: number): Promise<EventRow[]> {
    const r = await this.#pool.query<{ gate: string; epoch: string; seq: string; record: Buffer; chain: Buffer; received_at: string }>(
      'SELECT gate, epoch, seq, record, chain, received_at FROM events WHERE ($1::text IS NULL OR gate = $1) AND ($2::bigint IS NULL OR epoch = $2) ORDER BY gate COLLATE "C", epoch, seq',
      [gate ?? null, epoch ?? null],
    );
    return r.rows.map((x) => ({ gate: x.gate, epoch: num(x.epoch), seq: num(x.seq), record: new Uint8Array(x.record), chain: new Uint8Array(x.chain), receivedAt: num(x.received_at) }));
  }

  /** Records kept as conflicts, in (gate, epoch, seq) order. */
  async conflicts(gate?: string): Promise<ConflictRow[]> {
    const r = await this.#pool.query<{ gate: string; epoch: string; seq: string; record: Buffer; chain: Buffer; stored: Buffer | null; problem: IngestProblem; received_at: string }>(
      'SELECT gate, epoch, seq, record, chain, stored, problem, received_at FROM event_conflicts WHERE ($1::text IS NULL OR gate = $1) ORDER BY gate COLLATE "C", epoch, seq, received_at, record',
      [gate ?? null],
    );
    return r.rows.map((x) => ({ gate: x.gate, epoch: num(x.epoch), seq: num(x.seq), record: new Uint8Array(x.record), chain: new Uint8Array(x.chain), stored: x.stored === null ? null : new Uint8Array(x.stored), problem: x.problem, receivedAt: num(x.received_at) }));
  }
}
