// SqlDb on SQLite (better-sqlite3: WAL, synchronous FULL, so a commit and
// the ack it allows survive a power cut). One connection per SqliteDb;
// statements are prepared once per SQL text.
//
// better-sqlite3 is synchronous, a transaction here spans awaits: while one is
// open on the connection, a query from another async context waits for it to
// end (it would otherwise run inside it, and see or join its writes). Queries
// when none is open run at once.

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

  constructor(path: string, options: SqliteDbOptions = {}) {
    this.where = path;
    this.raw = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.fileMustExist ?? false, timeout: options.busyTimeoutMs ?? 5000 });
    if (options.readonly !== true) {
      this.raw.pragma('journal_mode = WAL');
      // FULL: a commit (and so an event ack) survives a power cut.
      this.raw.pragma('synchronous = FULL');
    }
    this.raw.pragma('foreign_keys = ON');
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
      this.raw.exec(options.lock === true || options.write === true ? 'BEGIN IMMEDIATE' : 'BEGIN');
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
    if (!this.#open || this.#current() !== null) {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    return this.#acquire().then((release) => {
      try {
        return fn();
      } finally {
        release();
      }
    });
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
