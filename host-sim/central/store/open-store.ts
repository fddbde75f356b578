// Opens the central's data wherever it is: a SQLite file (the default, a path)
// or a PostgreSQL database (a postgres:// URL). Creating it (`central init`)
// applies the schema; opening it refuses a database that is missing, empty,
// not a central's, or of another schema version (store/schema.ts), before
// anything is written.

import { existsSync, statSync } from 'node:fs';
import { EventStore } from '../event-store.js';
import { CentralState } from '../central-state.js';
import { GateRegistry } from '../gate-registry.js';
import { Registry, type RegistryOptions } from '../registry.js';
import { PgDb } from './pg-db.js';
import { checkSchema, migrate, type MigrationResult } from './schema.js';
import { isPostgresUrl, redactUrl, type SqlDb } from './sql-db.js';
import { SqliteDb } from './sqlite-db.js';

/** The database cannot be opened as a central's: missing, not a database, unreachable. */
export class StoreOpenError extends Error {
  constructor(
    message: string,
    readonly code: 'missing' | 'not_initialised' | 'unreachable',
  ) {
    super(message);
    this.name = 'StoreOpenError';
  }
}

export interface OpenDbOptions {
  /** Create a missing SQLite file (only `central init` and tests do). */
  readonly create?: boolean;
  readonly readonly?: boolean;
  /** PostgreSQL pool size (default 4). */
  readonly connections?: number;
  /** PostgreSQL: told when an idle connection fails; the pool carries on. */
  readonly onIdleError?: (e: Error) => void;
}

/** The database at `target` (a path or a postgres:// URL), connected; no schema check. */
export async function openDb(target: string, options: OpenDbOptions = {}): Promise<SqlDb> {
  if (isPostgresUrl(target)) {
    try {
      return await PgDb.connect({ url: target, connections: options.connections, onIdleError: options.onIdleError });
    } catch (e) {
      throw new StoreOpenError(e instanceof Error ? e.message : String(e), 'unreachable');
    }
  }
  if (options.create !== true) {
    if (!existsSync(target)) throw new StoreOpenError(`no database at ${target}`, 'missing');
    if (statSync(target).size === 0) throw new StoreOpenError(`${target} is an empty file, not a database made by \`subline central init\``, 'not_initialised');
  }
  try {
    const db = new SqliteDb(target, { readonly: options.readonly, fileMustExist: options.create !== true });
    await db.tables(); // a file that is not a database fails here
    return db;
  } catch (e) {
    throw new StoreOpenError(`${target} cannot be opened as a database (${e instanceof Error ? e.message : String(e)})`, 'not_initialised');
  }
}

/** Every store of the central on one database. */
export interface CentralStore {
  readonly db: SqlDb;
  readonly registry: Registry;
  readonly events: EventStore;
  readonly identities: GateRegistry;
  readonly state: CentralState;
  /** Set when this open created or migrated the schema. */
  readonly migration: MigrationResult | null;
  close(): Promise<void>;
}

export interface OpenStoreOptions extends OpenDbOptions {
  readonly registry?: RegistryOptions;
  /** Milliseconds, for events' received_at. */
  readonly eventClock?: () => number;
}

/**
 * The central's stores on `target` (or on an open SqlDb, whose lifetime the
 * store then owns). With `create`, the schema is created or migrated first;
 * otherwise a database of another schema version is refused (SchemaError).
 */
export async function openCentralStore(target: string | SqlDb, options: OpenStoreOptions = {}): Promise<CentralStore> {
  const db = typeof target === 'string' ? await openDb(target, options) : target;
  try {
    const migration = options.create === true ? await migrate(db) : null;
    if (migration === null) await checkSchema(db);
    const registry = await Registry.open(db, options.registry);
    return {
      db,
      registry,
      events: new EventStore(db, { clock: options.eventClock }),
      identities: new GateRegistry(db),
      state: new CentralState(db),
      migration,
      close: () => db.close(),
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}

/** For messages: where a target is, without a password. */
export const describeTarget = (target: string): string => redactUrl(target);
