// The central's schema, one owner for every table (the stores only query):
// the registry (docs/SYNC.md), the event store, gate identities, presence,
// refusal counts and the stamp. Its version is `meta.schema`.
//
// Versions and migrations. A database is created at SCHEMA_VERSION by
// `central init`; an older one is brought up by `central migrate` (or `init`),
// one step at a time, each step in one transaction. Any other command refuses
// a database whose version is not this build's: an older one with "run
// `subline central migrate`", a newer one with "upgrade subline" (a build
// must never write into a layout it does not know).
//
//   1  the layout before schema versions were enforced: tables created by
//      each module on first use, columns added on open (SQLite only).
//   2  every table created at init; credentials.revoked_at, lists.capacity,
//      gates.journal/conn/refused always present. The first PostgreSQL schema.
//   3  events carry decoded, indexed columns next to the raw record (time,
//      type, reason, credential key; the gate's site, line and direction; the
//      subject and institution that held the key), filled at ingest; the
//      step decodes the rows already stored (event-query.ts reads them).
//   4  operators: the people who log in to the console (host-sim/console/),
//      their role and scrypt password hash; a partial index of alarm events.

import { EventType, RECORD_BYTES } from '../../../protocol/event-record.js';
import { ddlFor, type SqlDb } from './sql-db.js';
import { backfillEventColumns } from '../event-columns.js';

export const SCHEMA_VERSION = 4;

/** Schema 4: the console's operators (operator-store.ts). `password`: scrypt$N$r$p$salt$hash (base64url). */
const OPERATORS_4 = `
CREATE TABLE IF NOT EXISTS operators (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  password TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
-- the console's fleet counts each gate's recent alarms every second: a partial index (alarms are few: ingest barely pays for it)
CREATE INDEX IF NOT EXISTS events_alarms ON events(gate, at) WHERE type = ${EventType.alarm};
`;

const TABLES = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS central_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS industries (id INTEGER PRIMARY KEY, name TEXT NOT NULL, code TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS institutions (id INTEGER PRIMARY KEY, name TEXT NOT NULL, industry INTEGER REFERENCES industries(id));
CREATE TABLE IF NOT EXISTS subjects (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('person', 'vehicle', 'goods')),
  institution INTEGER REFERENCES institutions(id),
  name TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (
  key BLOB PRIMARY KEY CHECK (length(key) = 8),
  subject TEXT NOT NULL REFERENCES subjects(id),
  kind TEXT NOT NULL CHECK (kind IN ('card', 'uhf')),
  revoked INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS credentials_subject ON credentials(subject);
-- spec and record are NULL for a retired grant (its id is never reused)
CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY, spec TEXT, record BLOB UNIQUE);
CREATE TABLE IF NOT EXISTS grant_assignments (
  level TEXT NOT NULL CHECK (level IN ('individual', 'institution', 'industry')),
  target TEXT NOT NULL,
  grant_id INTEGER NOT NULL REFERENCES grants(id),
  PRIMARY KEY (level, target)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grant_assignments_grant ON grant_assignments(grant_id);
CREATE TABLE IF NOT EXISTS suspensions (
  level TEXT NOT NULL CHECK (level IN ('subject', 'institution', 'industry')),
  target TEXT NOT NULL,
  active INTEGER NOT NULL,
  PRIMARY KEY (level, target)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedules (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL CHECK (length(bytes) = 48));
CREATE TABLE IF NOT EXISTS lists (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL, version INTEGER NOT NULL, capacity INTEGER);
CREATE TABLE IF NOT EXISTS deltas (
  list TEXT NOT NULL REFERENCES lists(name),
  epoch INTEGER NOT NULL,
  version INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  records BLOB NOT NULL,
  PRIMARY KEY (list, epoch, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  gate TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  record BLOB NOT NULL CHECK (length(record) = ${RECORD_BYTES}),
  chain BLOB NOT NULL CHECK (length(chain) = 32),
  received_at INTEGER NOT NULL,
  -- decoded at ingest (schema 3): the record's time (UTC s; 0 for a gap or an invalid record),
  -- type (-1: invalid), reason, credential key (NULL: none); the gate's site, line, direction
  -- and the subject and institution that held the key, as the registry was when it was stored
  at INTEGER NOT NULL DEFAULT 0,
  type INTEGER NOT NULL DEFAULT -1,
  reason INTEGER NOT NULL DEFAULT 0,
  credential BLOB,
  site TEXT,
  line TEXT,
  direction TEXT,
  subject TEXT,
  institution INTEGER,
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
CREATE TABLE IF NOT EXISTS gates (
  gate TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  journal INTEGER NOT NULL DEFAULT 0,
  boot INTEGER NOT NULL,
  conn INTEGER NOT NULL DEFAULT 0,
  at INTEGER NOT NULL,
  firmware TEXT NOT NULL,
  line TEXT NOT NULL,
  direction TEXT NOT NULL,
  lane TEXT NOT NULL,
  lists TEXT NOT NULL,
  backlog INTEGER NOT NULL,
  refused TEXT NOT NULL DEFAULT '[]',
  received_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS published (
  list TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL,
  version INTEGER NOT NULL,
  at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gate_identities (
  gate TEXT PRIMARY KEY,
  site TEXT NOT NULL,
  list TEXT NOT NULL,
  line TEXT NOT NULL,
  direction TEXT NOT NULL,
  lane TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'decommissioned')),
  key_id INTEGER NOT NULL,
  provisioned_at INTEGER NOT NULL,
  decommissioned_at INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
  gate TEXT NOT NULL,
  cause TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  PRIMARY KEY (gate, cause)) WITHOUT ROWID;
`;

/**
 * The indexes of the decoded event columns (after TABLES: a schema 1 events table gets its
 * columns first). Two only: each one costs ingest a B-tree insert per event (measured: four
 * indexes took SQLite ingest from about 125,000 to 100,000 events/s). A subject's events are
 * found through its credentials' keys; a follower reads by the primary key (event-query.ts).
 */
const EVENT_INDEXES_3 = `
CREATE INDEX IF NOT EXISTS events_at ON events(at, gate, epoch, seq);
-- partial: about half the records (boots, passages, alarms, commands) carry no key
CREATE INDEX IF NOT EXISTS events_credential ON events(credential, at) WHERE credential IS NOT NULL;
`;

/** Every table's primary key (keyset pagination: `central copy`, exports). */
export const TABLE_KEYS: Readonly<Record<string, readonly string[]>> = {
  meta: ['key'],
  central_meta: ['key'],
  industries: ['id'],
  institutions: ['id'],
  subjects: ['id'],
  credentials: ['key'],
  grants: ['id'],
  grant_assignments: ['level', 'target'],
  suspensions: ['level', 'target'],
  schedules: ['id'],
  lists: ['name'],
  deltas: ['list', 'epoch', 'version'],
  events: ['gate', 'epoch', 'seq'],
  event_heads: ['gate', 'epoch'],
  event_conflicts: ['gate', 'epoch', 'seq', 'record'],
  gates: ['gate'],
  published: ['list'],
  gate_identities: ['gate'],
  refusals: ['gate', 'cause'],
  operators: ['name'],
};

/** The tables in an order that satisfies their foreign keys (a copy inserts in this order). */
export const COPY_ORDER: readonly string[] = Object.keys(TABLE_KEYS);

/** The decoded event columns of schema 3 (event-query.ts): column, definition. */
const EVENT_COLUMNS_3: readonly (readonly [string, string])[] = [
  ['at', 'INTEGER NOT NULL DEFAULT 0'],
  ['type', 'INTEGER NOT NULL DEFAULT -1'],
  ['reason', 'INTEGER NOT NULL DEFAULT 0'],
  ['credential', 'BLOB'],
  ['site', 'TEXT'],
  ['line', 'TEXT'],
  ['direction', 'TEXT'],
  ['subject', 'TEXT'],
  ['institution', 'INTEGER'],
];

/** Columns schema 1 databases may lack (added on open by older builds): table, column, definition. */
const ADDED_IN_2: readonly (readonly [string, string, string])[] = [
  ['credentials', 'revoked_at', 'INTEGER'],
  ['lists', 'capacity', 'INTEGER'],
  ['gates', 'journal', 'INTEGER NOT NULL DEFAULT 0'],
  ['gates', 'conn', 'INTEGER NOT NULL DEFAULT 0'],
  ['gates', 'refused', "TEXT NOT NULL DEFAULT '[]'"],
];

export class SchemaError extends Error {
  constructor(
    message: string,
    readonly code: 'not_initialised' | 'older' | 'newer',
    readonly version: number | null,
  ) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** The database's schema version; null when it holds no central (no meta table or no version). */
export async function schemaVersion(db: SqlDb): Promise<number | null> {
  if (!(await db.tables()).has('meta')) return null;
  const r = await db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'");
  if (r === undefined) return null;
  const v = Number(r.value);
  return Number.isSafeInteger(v) && v > 0 ? v : null;
}

/** Refuses a database this build must not read or write (see the file comment). */
export async function checkSchema(db: SqlDb): Promise<void> {
  const v = await schemaVersion(db);
  if (v === null) throw new SchemaError(`${db.where} holds no subline central (no schema version): run \`subline central init\``, 'not_initialised', null);
  if (v < SCHEMA_VERSION) throw new SchemaError(`${db.where} has schema ${v}, this build reads ${SCHEMA_VERSION}: run \`subline central migrate\` (back the database up first)`, 'older', v);
  if (v > SCHEMA_VERSION) throw new SchemaError(`${db.where} has schema ${v}, newer than this build reads (${SCHEMA_VERSION}): upgrade subline; nothing was changed`, 'newer', v);
}

export interface MigrationResult {
  /** null: the database was empty and is now created. */
  readonly from: number | null;
  readonly to: number;
  /** One line per step applied (empty when already current). */
  readonly steps: readonly string[];
}

/**
 * Creates the schema in an empty database, or applies the migrations from its
 * version up to SCHEMA_VERSION (each step one transaction). Refuses a newer one.
 */
export async function migrate(db: SqlDb): Promise<MigrationResult> {
  const from = await schemaVersion(db);
  if (from !== null && from > SCHEMA_VERSION) await checkSchema(db);
  const steps: string[] = [];
  if (from === null) {
    // An empty database, or a schema 1 registry that never recorded its version (none did: 1 was always written).
    await db.transaction(async () => {
      await db.exec(ddlFor(db.engine, TABLES + EVENT_INDEXES_3 + OPERATORS_4));
      await db.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', ['schema', String(SCHEMA_VERSION)]);
    }, { lock: true });
    steps.push(`created schema ${SCHEMA_VERSION}`);
    return { from, to: SCHEMA_VERSION, steps };
  }
  let v = from;
  while (v < SCHEMA_VERSION) {
    const next = v + 1;
    await db.transaction(async () => {
      if (next === 2) steps.push(await migrate1to2(db));
      if (next === 3) steps.push(await migrate2to3(db));
      if (next === 4) {
        await db.exec(ddlFor(db.engine, OPERATORS_4));
        steps.push('3 -> 4: operators table and alarm index created');
      }
      await db.run("UPDATE meta SET value = ? WHERE key = 'schema'", [String(next)]);
    }, { lock: true });
    v = next;
  }
  return { from, to: SCHEMA_VERSION, steps };
}

async function migrate1to2(db: SqlDb): Promise<string> {
  const added: string[] = [];
  // Tables a schema 1 database made on first use (events, gates, ...) may be missing.
  const before = await db.tables();
  await db.exec(ddlFor(db.engine, TABLES));
  const created = [...(await db.tables())].filter((t) => !before.has(t));
  for (const [table, column, def] of ADDED_IN_2) {
    if ((await db.columns(table)).has(column)) continue;
    await db.exec(ddlFor(db.engine, `ALTER TABLE ${table} ADD COLUMN ${column} ${def}`));
    added.push(`${table}.${column}`);
  }
  return `1 -> 2: ${created.length} table(s) created${created.length > 0 ? ` (${created.sort().join(', ')})` : ''}, ${added.length} column(s) added${added.length > 0 ? ` (${added.join(', ')})` : ''}`;
}

/** 2 -> 3: the decoded event columns and their indexes; every stored row decoded (event-columns.ts). */
async function migrate2to3(db: SqlDb): Promise<string> {
  const have = await db.columns('events');
  let added = 0;
  for (const [column, def] of EVENT_COLUMNS_3) {
    if (have.has(column)) continue;
    await db.exec(ddlFor(db.engine, `ALTER TABLE events ADD COLUMN ${column} ${def}`));
    added++;
  }
  await db.exec(ddlFor(db.engine, EVENT_INDEXES_3));
  const rows = await backfillEventColumns(db);
  return `2 -> 3: ${added} event column(s) added, ${rows} stored event(s) decoded`;
}
