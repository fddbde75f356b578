// SqlDb on SQLite (better-sqlite3: WAL, synchronous FULL, so a commit and
// the ack it allows survive a power cut). One connection per SqliteDb;
// statements are prepared once per SQL text.
//
// better-sqlite3 is synchronous, a transaction here spans awaits: while one is
// open on the connection, a query from another async context waits for it to
// end (it would otherwise run inside it, and see or join its writes). Queries
// when none is open run at once.
//
// Another connection's lock (another process, or another SqliteDb of this
// one) is waited for asynchronously: SQLite's own busy wait would block the
// event loop, which the lock holder may need to finish its transaction.

import { AsyncLocalStorage } from 'node:async_hooks';
import Database from 'better-sqlite3';
import type { SqlDb, SqlValue, TransactionOptions } from './sql-db.js';

interface Tx {
  readonly db: SqliteDb;
  depth: number;
  done: boolean;
}

export interface SqliteDbOptions {
  readonly readonly?: boolean;
  readonly fileMustExist?: boolean;
  /** ms a writer waits for another process's write lock (default 5,000). */
  readonly busyTimeoutMs?: number;
}

const isBusy = (e: unknown): boolean => {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED';
};

const bind = (params: readonly SqlValue[]): unknown[] => params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));

export class SqliteDb implements SqlDb {
  readonly engine = 'sqlite' as const;
  readonly where: string;
  /** The better-sqlite3 handle, for SQLite-only tools (tests, `PRAGMA max_page_count`). */
  readonly raw: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #context = new AsyncLocalStorage<Tx>();
  /** A transaction is open on the connection (between BEGIN and its end). */
  #open = false;
  /** Tail of the queue of transactions (and of queries that arrived while one was open). */
  #tail: Promise<void> = Promise.resolve();
  /** How long a statement is retried while another connection holds the lock (ms). */
  readonly #busyMs: number;

  constructor(path: string, options: SqliteDbOptions = {}) {
    this.where = path;
    this.#busyMs = options.busyTimeoutMs ?? 5000;
    // A short synchronous wait covers the open (journal mode); after it, statements use none (see above).
    this.raw = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.fileMustExist ?? false, timeout: this.#busyMs });
    if (options.readonly !== true) {
      this.raw.pragma('journal_mode = WAL');
      // FULL: a commit (and so an event ack) survives a power cut.
      this.raw.pragma('synchronous = FULL');
    }
    this.raw.pragma('foreign_keys = ON');
    this.raw.pragma('busy_timeout = 0');
  }

  get open(): boolean {
    return this.raw.open;
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#query(() => this.#statement(sql).all(...bind(params)) as T[]);
  }

  get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#query(() => this.#statement(sql).get(...bind(params)) as T | undefined);
  }

  rows(sql: string, params: readonly SqlValue[] = []): Promise<unknown[][]> {
    return this.#query(() => this.#statement(sql, true).all(...bind(params)) as unknown[][]);
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#query(() => this.#statement(sql).run(...bind(params)).changes);
  }

  runMany(sql: string, params: readonly (readonly SqlValue[])[]): Promise<number> {
    return this.#query(() => {
      const s = this.#statement(sql);
      let n = 0;
      for (const p of params) n += s.run(...bind(p)).changes;
      return n;
    });
  }

  exec(sql: string): Promise<void> {
    return this.#query(() => void this.raw.exec(sql));
  }

  async tables(): Promise<Set<string>> {
    const r = await this.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'");
    return new Set(r.map((x) => x.name.toLowerCase()));
  }

  async columns(table: string): Promise<Set<string>> {
    const r = await this.all<{ name: string }>('SELECT name FROM pragma_table_info(?)', [table]);
    return new Set(r.map((x) => x.name.toLowerCase()));
  }

  async reclaim(): Promise<boolean> {
    return this.#query(() => {
      const r = this.raw.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return (r[0]?.busy ?? 0) === 0;
    });
  }

  async transaction<T>(fn: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const inner = this.#current();
    if (inner !== null) return this.#savepoint(inner, fn);
    const release = await this.#acquire();
    const tx: Tx = { db: this, depth: 0, done: false };
    try {
      // IMMEDIATE: take the write lock first, so a writer in another process makes this
      // wait (busy timeout) instead of failing with SQLITE_BUSY on a read-to-write upgrade.
      const begin = options.lock === true || options.write === true ? 'BEGIN IMMEDIATE' : 'BEGIN';
      await this.#whileBusy(() => this.raw.exec(begin));
      this.#open = true;
      let result: T;
      try {
        result = await this.#context.run(tx, fn);
      } catch (e) {
        if (this.raw.inTransaction) this.raw.exec('ROLLBACK');
        throw e;
      }
      this.raw.exec('COMMIT');
      return result;
    } finally {
      tx.done = true;
      this.#open = false;
      release();
    }
  }

  async close(): Promise<void> {
    // Wait for the open transaction (if any) to end.
    const release = await this.#acquire();
    try {
      if (this.raw.open) this.raw.close();
    } finally {
      release();
    }
  }

  #current(): Tx | null {
    const tx = this.#context.getStore();
    return tx !== undefined && tx.db === this && !tx.done ? tx : null;
  }

  async #savepoint<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
    const name = `sp${++tx.depth}`;
    this.raw.exec(`SAVEPOINT ${name}`);
    try {
      const r = await fn();
      this.raw.exec(`RELEASE ${name}`);
      return r;
    } catch (e) {
      if (this.raw.inTransaction) {
        this.raw.exec(`ROLLBACK TO ${name}`);
        this.raw.exec(`RELEASE ${name}`);
      }
      throw e;
    } finally {
      tx.depth--;
    }
  }

  #query<T>(fn: () => T): Promise<T> {
    const inside = this.#current() !== null;
    if (!this.#open || inside) {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        // Inside our transaction we hold the lock (BEGIN IMMEDIATE) or it is a read: a busy error is real.
        // Outside one: another connection holds the lock; wait for it in the queue (no transaction of ours opens meanwhile).
        if (inside || !isBusy(e)) return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return this.#acquire().then(async (release) => {
      try {
        return await this.#whileBusy(fn);
      } finally {
        release();
      }
    });
  }

  /** fn, again after a pause (1 ms doubling to 100 ms) while another connection holds the lock, up to the busy timeout. */
  async #whileBusy<T>(fn: () => T): Promise<T> {
    // The clock is read only once the lock is found held: an uncontended database (the deterministic simulation's) never reads it.
    let deadline = 0;
    for (let wait = 1; ; wait = Math.min(wait * 2, 100)) {
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e)) throw e;
        if (deadline === 0) deadline = Date.now() + this.#busyMs;
        if (Date.now() + wait > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  #acquire(): Promise<() => void> {
    const before = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    return before.then(() => release);
  }

  #statement(sql: string, arrays = false): Database.Statement {
    const key = arrays ? `\u0000${sql}` : sql;
    let s = this.#statements.get(key);
    if (s === undefined) {
      s = this.raw.prepare(sql);
      if (arrays) s.raw(true);
      this.#statements.set(key, s);
    }
    return s;
  }
}
