// SqlDb on PostgreSQL (node-postgres, a pool of connections). A transaction
// holds one pooled connection from BEGIN to COMMIT; queries outside one use
// any connection of the pool, so readers never wait for a writer. `?`
// placeholders are numbered ($1, $2, ...) once per SQL text. BIGINT (and
// COUNT) arrive as numbers: every value the stores keep (seq <= 2^32, ms since
// 1970, ids) is a safe integer; a larger one throws rather than round.

import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { redactUrl, type SqlDb, type SqlValue, type TransactionOptions } from './sql-db.js';

/** pg_advisory_xact_lock key of registry changes (any constant shared by every process). */
const WRITER_LOCK = 0x5ab11e;
const INT8_OID = 20;

const int8 = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`postgres: integer ${v} is beyond 2^53`);
  return n;
};
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown => (oid === INT8_OID && format !== 'binary' ? int8 : pg.types.getTypeParser(oid, format))) as pg.CustomTypesConfig['getTypeParser'],
};

interface Tx {
  readonly db: PgDb;
  readonly client: pg.PoolClient;
  depth: number;
  done: boolean;
}

export interface PgDbOptions {
  /** postgres://user[:password]@host:port/database */
  readonly url: string;
  /** Connections in the pool (default 4). */
  readonly connections?: number;
  /** Told when an idle pooled connection fails (the server went away); the pool carries on. */
  readonly onIdleError?: (e: Error) => void;
}

const bind = (params: readonly SqlValue[]): unknown[] => params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));

/** `?` -> `$n` outside quoted strings and identifiers. */
function numbered(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote !== null) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '?') {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  return out;
}

export class PgDb implements SqlDb {
  readonly engine = 'postgres' as const;
  readonly where: string;
  readonly #pool: pg.Pool;
  readonly #context = new AsyncLocalStorage<Tx>();
  readonly #sql = new Map<string, string>();
  #open = true;
  /** Requests on the pool not yet settled: close() waits for them (pg-pool drops a request still waiting for a client at end(); it would never settle). */
  #pending = 0;
  readonly #settled: (() => void)[] = [];

  private constructor(url: string, pool: pg.Pool) {
    this.where = redactUrl(url);
    this.#pool = pool;
  }

  /** Connects (one round trip, so a wrong URL fails here with the server's message). */
  static async connect(options: PgDbOptions): Promise<PgDb> {
    const pool = new pg.Pool({ connectionString: options.url, max: options.connections ?? 4, types });
    // An idle connection the server ends is an 'error' on the pool: without a listener it would
    // end the process. The pool drops that client; the next query connects again.
    pool.on('error', (e) => options.onIdleError?.(e));
    try {
      await pool.query('SELECT 1');
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw new Error(`cannot connect to ${redactUrl(options.url)}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return new PgDb(options.url, pool);
  }

  get open(): boolean {
    return this.#open;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    const r = await this.#tracked(() => this.#client().query({ text: this.#text(sql), values: bind(params) }));
    return r.rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async rows(sql: string, params: readonly SqlValue[] = []): Promise<unknown[][]> {
    const r = await this.#tracked(() => this.#client().query({ text: this.#text(sql), values: bind(params), rowMode: 'array' }));
    return r.rows as unknown[][];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const r = await this.#tracked(() => this.#client().query({ text: this.#text(sql), values: bind(params) }));
    return r.rowCount ?? 0;
  }

  async runMany(sql: string, params: readonly (readonly SqlValue[])[]): Promise<number> {
    let n = 0;
    for (const p of params) n += await this.run(sql, p);
    return n;
  }

  async exec(sql: string): Promise<void> {
    await this.#tracked(() => this.#client().query(sql));
  }

  async tables(): Promise<Set<string>> {
    const r = await this.all<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()");
    return new Set(r.map((x) => x.name.toLowerCase()));
  }

  async columns(table: string): Promise<Set<string>> {
    const r = await this.all<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table]);
    return new Set(r.map((x) => x.name.toLowerCase()));
  }

  reclaim(): Promise<boolean> {
    return Promise.resolve(true); // the server manages its own space
  }

  async transaction<T>(fn: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const inner = this.#current();
    if (inner !== null) return this.#savepoint(inner, fn);
    return this.#tracked(() => this.#transaction(fn, options));
  }

  async #transaction<T>(fn: () => Promise<T>, options: TransactionOptions): Promise<T> {
    const client = await this.#pool.connect();
    const tx: Tx = { db: this, client, depth: 0, done: false };
    let broken = false;
    try {
      await client.query('BEGIN');
      if (options.lock === true) await client.query('SELECT pg_advisory_xact_lock($1)', [WRITER_LOCK]);
      let result: T;
      try {
        result = await this.#context.run(tx, fn);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw e;
      }
      await client.query('COMMIT');
      return result;
    } catch (e) {
      broken ||= isConnectionError(e);
      throw e;
    } finally {
      tx.done = true;
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    while (this.#pending > 0) await new Promise<void>((resolve) => this.#settled.push(resolve));
    await this.#pool.end();
  }

  async #tracked<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    try {
      return await fn();
    } finally {
      if (--this.#pending === 0) for (const w of this.#settled.splice(0)) w();
    }
  }

  #current(): Tx | null {
    const tx = this.#context.getStore();
    return tx !== undefined && tx.db === this && !tx.done ? tx : null;
  }

  #client(): pg.Pool | pg.PoolClient {
    return this.#current()?.client ?? this.#pool;
  }

  async #savepoint<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
    const name = `sp${++tx.depth}`;
    await tx.client.query(`SAVEPOINT ${name}`);
    try {
      const r = await fn();
      await tx.client.query(`RELEASE SAVEPOINT ${name}`);
      return r;
    } catch (e) {
      await tx.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      await tx.client.query(`RELEASE SAVEPOINT ${name}`);
      throw e;
    } finally {
      tx.depth--;
    }
  }

  #text(sql: string): string {
    let t = this.#sql.get(sql);
    if (t === undefined) {
      t = numbered(sql);
      if (this.#sql.size < 10_000) this.#sql.set(sql, t);
    }
    return t;
  }
}

function isConnectionError(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE' || (typeof code === 'string' && code.startsWith('08'));
}
