// The one database interface the central's stores are written against
// (registry, events, gate identities, presence, refusals, stamp): SQLite
// (sqlite-db.ts, embedded, the default) and PostgreSQL (pg-db.ts) implement
// it. Every operation returns a promise.
//
// SQL is written once, in the subset both engines read: `?` placeholders (the
// PostgreSQL driver numbers them), INSERT ... ON CONFLICT, COALESCE, CAST,
// row values. Where the engines differ the store asks `dialect` (two-argument
// max, hex of a blob). DDL is written for SQLite; `ddlFor` turns it into
// PostgreSQL's (BLOB -> BYTEA, INTEGER -> BIGINT, TEXT compared bytewise like
// SQLite's, no WITHOUT ROWID).
//
// Transactions. `transaction(fn)` runs fn in one transaction; every query on
// this database made inside fn (in its async context: AsyncLocalStorage) joins
// it, and a transaction inside fn is a savepoint. So a store method does not
// need to know whether a caller's transaction is open: `registry.bulk()` and a
// single `registry.revoke()` run the same code. `{ lock: true }` takes the
// database's writer lock first (SQLite BEGIN IMMEDIATE; PostgreSQL an advisory
// transaction lock): registry changes of every process are serialized, as
// they must be (one change = one list version).

/** A parameter; arrays only where PostgreSQL reads them (unnest). */
export type SqlValue = string | number | bigint | null | Uint8Array | readonly number[] | readonly (Uint8Array | null)[];
export type Engine = 'sqlite' | 'postgres';

export interface TransactionOptions {
  /** Serialize with every other locking transaction on this database (registry changes). */
  readonly lock?: boolean;
  /** The transaction will write: SQLite takes the write lock at BEGIN (IMMEDIATE); PostgreSQL locks rows as it goes. */
  readonly write?: boolean;
}

export interface SqlDb {
  readonly engine: Engine;
  /** Where the data is, for messages: a file path, or the URL without its password. */
  readonly where: string;
  readonly open: boolean;
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Rows as arrays of column values (no object per row: large reads). */
  rows(sql: string, params?: readonly SqlValue[]): Promise<unknown[][]>;
  /** Runs one statement; the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs one statement once per parameter list, in order; the rows changed in all (SQLite: one call, no await per row). */
  runMany(sql: string, params: readonly (readonly SqlValue[])[]): Promise<number>;
  /** Runs several statements without parameters (DDL). */
  exec(sql: string): Promise<void>;
  transaction<T>(fn: () => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** The tables that exist (lower case). */
  tables(): Promise<Set<string>>;
  /** The columns of a table (lower case; empty when it does not exist). */
  columns(table: string): Promise<Set<string>>;
  /** After a disk-full episode: give space back (SQLite: checkpoint and truncate the WAL; false while a reader holds it). True elsewhere. */
  reclaim(): Promise<boolean>;
  close(): Promise<void>;
}

/** SQL that differs between the engines. */
export interface Dialect {
  /** The larger of two values (SQLite's two-argument MAX, PostgreSQL's GREATEST). */
  max2(a: string, b: string): string;
  /** Upper-case hex digits of a blob. */
  hex(column: string): string;
  /** Appended to a SELECT that must lock its rows to the commit (PostgreSQL; SQLite's write lock covers the database). */
  forUpdate: string;
}

export function dialect(engine: Engine): Dialect {
  return engine === 'sqlite'
    ? { max2: (a, b) => `MAX(${a}, ${b})`, hex: (c) => `hex(${c})`, forUpdate: '' }
    : { max2: (a, b) => `GREATEST(${a}, ${b})`, hex: (c) => `upper(encode(${c}, 'hex'))`, forUpdate: ' FOR UPDATE' };
}

/** The engine's form of DDL written for SQLite. */
export function ddlFor(engine: Engine, sql: string): string {
  if (engine === 'sqlite') return sql;
  return sql
    .replace(/\s+WITHOUT ROWID/g, '')
    .replace(/\bBLOB\b/g, 'BYTEA')
    .replace(/\bINTEGER\b/g, 'BIGINT')
    // Bytewise order and equality, as SQLite's default BINARY collation.
    .replace(/\bTEXT\b/g, 'TEXT COLLATE "C"');
}

/** The write failed because the disk (or a quota) is full: SQLITE_FULL, or PostgreSQL's disk_full (53100). */
export function isDiskFull(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const code = (e as { code?: unknown }).code;
  return code === 'SQLITE_FULL' || code === '53100';
}

/** A URL or path with any password replaced, for messages and logs. */
export function redactUrl(target: string): string {
  return target.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

export const isPostgresUrl = (target: string): boolean => /^postgres(ql)?:\/\//.test(target);

export const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
export const bytes = (u: Uint8Array): Uint8Array => new Uint8Array(u); // a copy the caller owns
