// The central's registry: industries, institutions, subjects, credentials,
// grants, suspensions and schedules in SQLite (better-sqlite3, WAL), and the
// whitelist lists built from them (docs/SYNC.md).
//
// Every mutation is one transaction that validates its input first (a
// RegistryError names the field; nothing is half-applied), writes the change,
// computes the delta records a gate needs (protocol/whitelist-format.ts
// DeltaOp), bumps the version of every list by one, and stores the signed
// delta. Listeners (the Central) hear about each commit after it is durable.
//
// Choices worth knowing:
// - Ids of industries, institutions, grants and schedules are assigned once,
//   densely from 0, and never reused: the id is the index in every image. A
//   grant that nothing refers to any more is retired (kept as a null entry).
// - Grants are deduplicated by their 16-byte record: the same rights share
//   one id.
// - A change that changes nothing (suspending what is suspended, resuming or
//   removing a grant of what has none, the same grant again, revoking what is
//   revoked) makes no version and writes nothing: the CLI says "unchanged".
// - A change that means nothing to a gate (a subject without credentials, a
//   schedule, ...) still makes a version, whose delta is the no-op record
//   NOOP_RECORD (DeltaOp.noop): the protocol has no empty delta, and one
//   version per committed change keeps image bytes fixed per version.
// - A delta holds at most 1,024 records (16 KiB); a larger transaction (an
//   import through bulk()) becomes several consecutive versions committed in
//   the same SQLite transaction, split only between record groups (a
//   credential's addCredential and its suspendSubject stay together).
// - Images cannot say "subject suspended" or "revoked": credentials in either
//   state are left out of the image (the gate answers unknown_credential);
//   deltas say revoked / subject_suspended precisely.
// - Raw credential ids are hashed with the deployment key on the way in and
//   never stored.
// - Limits of the delta format: no op carries a schedule (48 bytes), so gates
//   that follow deltas learn a new schedule from their next image; a grant
//   referring to a schedule a gate does not hold never opens (fails closed).

import { AsyncLocalStorage } from 'node:async_hooks';
import { credentialKey, MAX_RAW_ID_BYTES, type CredentialKindCode } from '../../protocol/credential-key.js';
import { Delta } from '../../protocol/messages.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { DELTA_RECORD_BYTES, NONE16, NONE8, SCHEDULE_BYTES, UNBOUNDED_UNTIL, type Direction, type LaneKind, type Line } from '../../protocol/whitelist-format.js';
import { isValidId } from '../../protocol/topics.js';
import { Ed25519Signer, nodeCrypto } from '../node-crypto.js';
import { encodeDeltaRecords, encodeGrant, type DeltaOpSpec, type GrantSpec, type TableModel } from './image-builder.js';
import { dialect, type Dialect, type SqlDb } from './store/sql-db.js';

export type SubjectKind = 'person' | 'vehicle' | 'goods';
export type CredentialKind = 'card' | 'uhf';
export type GrantLevel = 'individual' | 'institution' | 'industry';
export type SuspensionLevel = 'subject' | 'institution' | 'industry';

/** A credential by its raw id (hex string or bytes, hashed with the deployment key) or by its 8-byte key. */
export type CredentialRef = { readonly kind: CredentialKind; readonly rawId: Uint8Array | string } | { readonly key: Uint8Array };

export interface RegistryOptions {
  /** 32 bytes; needed to enrol or revoke credentials by raw id. */
  readonly deploymentKey?: Uint8Array;
  /** Ed25519 secret key (32 bytes) that signs the deltas; needed for any mutation. */
  readonly signingKey?: Uint8Array;
  /** UTC seconds, for delta issuedAt and new list epochs. */
  readonly clock?: () => number;
  /** A list to create if missing (default: 'main' when the database has none). */
  readonly list?: string;
}

export interface ListInfo {
  readonly name: string;
  readonly epoch: number;
  readonly version: number;
}

export interface StoredDelta {
  readonly list: string;
  readonly epoch: number;
  readonly version: number;
  readonly issuedAt: number;
  /** The signed envelope, byte for byte what is broadcast and served. */
  readonly envelope: Uint8Array;
  readonly records: Uint8Array;
}

/** One list's part of a committed transaction: the new versions' deltas in order (none for a re-created list). */
export interface CommitInfo {
  readonly list: string;
  readonly epoch: number;
  readonly version: number;
  readonly deltas: readonly StoredDelta[];
  /** True when the list was (re)created with a new epoch. */
  readonly newEpoch: boolean;
}

export interface SubjectInfo {
  readonly id: string;
  readonly kind: SubjectKind;
  readonly institution: number | null;
  readonly name: string;
  readonly suspended: boolean;
  readonly grant: number | null;
}

export interface CredentialInfo {
  readonly key: Uint8Array;
  readonly subject: string;
  readonly kind: CredentialKind;
  readonly revoked: boolean;
}

export class RegistryError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'RegistryError';
    this.field = field;
  }
}

/** The record a version carries when its change means nothing to a gate (DeltaOp.noop). */
export const NOOP_RECORD: DeltaOpSpec = { op: 'noop' };
/** Records in one delta: the message carries at most 16 KiB of them. */
export const MAX_DELTA_RECORDS = 1024;

const SUBJECT_KINDS: readonly SubjectKind[] = ['person', 'vehicle', 'goods'];
const CREDENTIAL_KINDS: readonly CredentialKind[] = ['card', 'uhf'];
const GRANT_LEVELS: readonly GrantLevel[] = ['individual', 'institution', 'industry'];
const SUSPENSION_LEVELS: readonly SuspensionLevel[] = ['subject', 'institution', 'industry'];
const LINES: readonly Line[] = ['first', 'second'];
const DIRECTIONS: readonly Direction[] = ['in', 'out'];
const LANES: readonly LaneKind[] = ['person', 'vehicle', 'goods'];
const SUBJECT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const CODE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MAX_ID = NONE16 - 1; // 0xFFFF means "none"
const MAX_SCHEDULES = NONE8 - 1;


const bytesOf = (b: Uint8Array): Uint8Array => new Uint8Array(b);
const defaultClock = (): number => Math.floor(Date.now() / 1000);
/** An upper-case hex digit from SQLite's hex(). */
const nibble = (c: number): number => (c <= 57 ? c - 48 : c - 55);

interface TxContext {
  /** Record groups of the mutations since the last compaction (a failed mutation drops its own). */
  groups: DeltaOpSpec[][];
  /** Packed records of the current delta, not yet encoded (< MAX_DELTA_RECORDS + one group). */
  pack: DeltaOpSpec[];
  /** Encoded full deltas' records: 16 bytes a record, so a million-row import stays small. */
  packs: Uint8Array[];
  mutations: number;
  /** A credential was enrolled: the lists' capacity is checked before the commit. */
  enrolled: boolean;
}

/** The registry's change open in an async context: depth 0 is the outermost mutation (or bulk). */
interface TxState {
  readonly ctx: TxContext;
  readonly depth: number;
  closed: boolean;
}

/** What one mutation tells its transaction: its records go to ctx; unchanged = it makes no version. */
interface Frame {
  readonly ctx: TxContext;
  unchanged: boolean;
}

/** Credentials a list may hold unless a change is allowed over it (`central init --capacity`). */
export const DEFAULT_LIST_CAPACITY = 250_000;

/** A change would make a list hold more credentials than its capacity: nothing was committed. */
export class CapacityError extends Error {
  constructor(
    readonly list: string,
    readonly credentials: number,
    readonly capacity: number,
    /** Where a streamed change stopped as soon as it crossed the capacity: `credentials` is then a lower bound. */
    readonly stoppedAt?: string,
  ) {
    super(stoppedAt === undefined
      ? `list '${list}' would hold ${credentials} credentials, over its capacity of ${capacity} (${credentials - capacity} too many)`
      : `list '${list}' would hold more than its capacity of ${capacity} credentials (${credentials} at ${stoppedAt}, where the import stopped)`);
    this.name = 'CapacityError';
  }
}

/** Moves the context's groups into deltas' records, never splitting a group. */
function compact(ctx: TxContext): void {
  for (const g of ctx.groups) {
    if (ctx.pack.length > 0 && ctx.pack.length + g.length > MAX_DELTA_RECORDS) {
      ctx.packs.push(encodeDeltaRecords(ctx.pack));
      ctx.pack = [];
    }
    for (const op of g) ctx.pack.push(op);
  }
  ctx.groups = [];
}

function fail(op: string, field: string, problem: string): never {
  throw new RegistryError(field, `${op}: ${field} ${problem}`);
}

function checkInput(op: string, input: unknown): void {
  if (input === null || typeof input !== 'object') fail(op, 'input', 'must be an object');
}

function checkText(op: string, field: string, v: unknown, max = 200): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || v.trim() !== v) fail(op, field, `must be a non-empty string of at most ${max} characters without surrounding spaces`);
  return v;
}

function checkUint(op: string, field: string, v: unknown, max: number, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(op, field, `must be an integer in ${min}..${max} (got ${String(v)})`);
  return v;
}

function checkSubset<T extends string>(op: string, field: string, v: unknown, allowed: readonly T[]): T[] {
  if (!Array.isArray(v) || v.length === 0) fail(op, field, `must be a non-empty array of ${allowed.join(' / ')}`);
  const out: T[] = [];
  for (const x of v as unknown[]) {
    if (!(allowed as readonly unknown[]).includes(x)) fail(op, field, `contains '${String(x)}' (allowed: ${allowed.join(', ')})`);
    if (!out.includes(x as T)) out.push(x as T);
  }
  return allowed.filter((a) => out.includes(a)); // canonical order
}

function queries(d: Dialect) {
  const p = (sql: string): string => sql;
  return {
    industry: p('SELECT id, name, code FROM industries WHERE id = ?'),
    industryByCode: p('SELECT id FROM industries WHERE code = ?'),
    nextIndustry: p('SELECT COALESCE(MAX(id) + 1, 0) AS n FROM industries'),
    insertIndustry: p('INSERT INTO industries (id, name, code) VALUES (?, ?, ?)'),
    institution: p('SELECT id, name, industry FROM institutions WHERE id = ?'),
    nextInstitution: p('SELECT COALESCE(MAX(id) + 1, 0) AS n FROM institutions'),
    insertInstitution: p('INSERT INTO institutions (id, name, industry) VALUES (?, ?, ?)'),
    institutionsNamed: p('SELECT id FROM institutions WHERE name = ? ORDER BY id'),
    subject: p('SELECT id, kind, institution, name FROM subjects WHERE id = ?'),
    // One read for subject(): the row, its individual grant and its suspension.
    subjectInfo: p(`SELECT s.id, s.kind, s.institution, s.name, COALESCE(sp.active, 0) AS suspended, a.grant_id AS "grant" FROM subjects s
      LEFT JOIN grant_assignments a ON a.level = 'individual' AND a.target = s.id
      LEFT JOIN suspensions sp ON sp.level = 'subject' AND sp.target = s.id
      WHERE s.id = ?`),
    insertSubject: p('INSERT INTO subjects (id, kind, institution, name) VALUES (?, ?, ?, ?)'),
    credential: p('SELECT key, subject, kind, revoked FROM credentials WHERE key = ?'),
    insertCredential: p('INSERT INTO credentials (key, subject, kind, revoked) VALUES (?, ?, ?, 0)'),
    reactivateCredential: p('UPDATE credentials SET subject = ?, kind = ?, revoked = 0 WHERE key = ?'),
    revokeCredential: p('UPDATE credentials SET revoked = 1, revoked_at = ? WHERE key = ?'),
    activeCredentialsOf: p('SELECT key FROM credentials WHERE subject = ? AND revoked = 0 ORDER BY key'),
    credentialsOf: p('SELECT key, subject, kind, revoked FROM credentials WHERE subject = ? ORDER BY key'),
    grantByRecord: p('SELECT id FROM grants WHERE record = ?'),
    grant: p('SELECT id, spec FROM grants WHERE id = ?'),
    nextGrant: p('SELECT COALESCE(MAX(id) + 1, 0) AS n FROM grants'),
    insertGrant: p('INSERT INTO grants (id, spec, record) VALUES (?, ?, ?)'),
    retireGrants: p('UPDATE grants SET spec = NULL, record = NULL WHERE spec IS NOT NULL AND id NOT IN (SELECT grant_id FROM grant_assignments)'),
    assignment: p('SELECT grant_id FROM grant_assignments WHERE level = ? AND target = ?'),
    assign: p('INSERT INTO grant_assignments (level, target, grant_id) VALUES (?, ?, ?) ON CONFLICT (level, target) DO UPDATE SET grant_id = excluded.grant_id'),
    unassign: p('DELETE FROM grant_assignments WHERE level = ? AND target = ?'),
    suspension: p('SELECT active FROM suspensions WHERE level = ? AND target = ?'),
    setSuspension: p('INSERT INTO suspensions (level, target, active) VALUES (?, ?, ?) ON CONFLICT (level, target) DO UPDATE SET active = excluded.active'),
    nextSchedule: p('SELECT COALESCE(MAX(id) + 1, 0) AS n FROM schedules'),
    insertSchedule: p('INSERT INTO schedules (id, bytes) VALUES (?, ?)'),
    scheduleCount: p('SELECT COUNT(*) AS n FROM schedules'),
    lists: p('SELECT name, epoch, version FROM lists ORDER BY name'),
    list: p('SELECT name, epoch, version FROM lists WHERE name = ?'),
    insertList: p('INSERT INTO lists (name, epoch, version) VALUES (?, ?, 0)'),
    renewList: p('UPDATE lists SET epoch = ?, version = 0 WHERE name = ?'),
    setVersion: p('UPDATE lists SET version = ? WHERE name = ?'),
    capacity: p('SELECT capacity FROM lists WHERE name = ?'),
    setCapacity: p('UPDATE lists SET capacity = ? WHERE name = ?'),
    activeCredentials: p('SELECT COUNT(*) AS n FROM credentials WHERE revoked = 0'),
    insertDelta: p('INSERT INTO deltas (list, epoch, version, issued_at, envelope, records) VALUES (?, ?, ?, ?, ?, ?)'),
    deleteDeltas: p('DELETE FROM deltas WHERE list = ?'),
    deltas: p('SELECT list, epoch, version, issued_at, envelope, records FROM deltas WHERE list = ? AND epoch = ? AND version >= ? AND version < ? ORDER BY version'),
    // tables()
    allGrants: p('SELECT id, spec FROM grants ORDER BY id'),
    allIndustries: p(`SELECT i.id, a.grant_id, COALESCE(s.active, 0) AS suspended FROM industries i
      LEFT JOIN grant_assignments a ON a.level = 'industry' AND a.target = CAST(i.id AS TEXT)
      LEFT JOIN suspensions s ON s.level = 'industry' AND s.target = CAST(i.id AS TEXT) ORDER BY i.id`),
    allInstitutions: p(`SELECT i.id, i.industry, a.grant_id, COALESCE(s.active, 0) AS suspended FROM institutions i
      LEFT JOIN grant_assignments a ON a.level = 'institution' AND a.target = CAST(i.id AS TEXT)
      LEFT JOIN suspensions s ON s.level = 'institution' AND s.target = CAST(i.id AS TEXT) ORDER BY i.id`),
    // hex(key): 250k Buffers cost more than the whole join; one typed array holds all keys instead.
    imageCredentials: p(`SELECT ${d.hex('c.key')}, sub.institution, a.grant_id FROM credentials c
      JOIN subjects sub ON sub.id = c.subject
      LEFT JOIN grant_assignments a ON a.level = 'individual' AND a.target = sub.id
      LEFT JOIN suspensions s ON s.level = 'subject' AND s.target = sub.id AND s.active = 1
      WHERE c.revoked = 0 AND s.target IS NULL ORDER BY c.key`),
    allSchedules: p('SELECT bytes FROM schedules ORDER BY id'),
    // Whole-table reads for `central import --sync` (host-sim/cli/import-sync.ts).
    everyIndustry: p('SELECT id, name, code FROM industries ORDER BY id'),
    everyInstitution: p('SELECT id, name, industry FROM institutions ORDER BY id'),
    everySubject: p('SELECT id, kind FROM subjects ORDER BY id'),
    everyActiveCredential: p(`SELECT ${d.hex('c.key')}, c.subject, s.kind FROM credentials c JOIN subjects s ON s.id = c.subject WHERE c.revoked = 0 ORDER BY c.key`),
    everyAssignment: p('SELECT level, target, grant_id FROM grant_assignments ORDER BY level, target'),
    updateIndustry: p('UPDATE industries SET name = ? WHERE id = ?'),
    updateInstitution: p('UPDATE institutions SET name = ?, industry = ? WHERE id = ?'),
    updateSubject: p('UPDATE subjects SET name = ?, institution = ? WHERE id = ?'),
    counts: p(`SELECT (SELECT COUNT(*) FROM industries) AS industries, (SELECT COUNT(*) FROM institutions) AS institutions,
      (SELECT COUNT(*) FROM subjects) AS subjects, (SELECT COUNT(*) FROM credentials WHERE revoked = 0) AS credentials,
      (SELECT COUNT(*) FROM grants WHERE spec IS NOT NULL) AS grants, (SELECT COUNT(*) FROM schedules) AS schedules`),
  };
}


export class Registry {
  /** The database (shared with the other stores of the central). */
  readonly db: SqlDb;
  readonly #clock: () => number;
  #deploymentKey: Uint8Array | null = null;
  #signer: Ed25519Signer | null = null;
  /** The open change of this async context (its records and counts); mutations inside it join it. */
  readonly #tx = new AsyncLocalStorage<TxState>();
  /** When true, a change may make a list hold more credentials than its capacity (`--over-capacity`). */
  allowOverCapacity = false;
  readonly #listeners = new Set<(c: CommitInfo) => void>();
  readonly #db: SqlDb;
  readonly #q: ReturnType<typeof queries>;

  private constructor(db: SqlDb, options: RegistryOptions) {
    this.db = db;
    this.#db = db;
    this.#clock = options.clock ?? defaultClock;
    this.#q = queries(dialect(db.engine));
    this.setKeys(options);
  }

  /** The registry on an open database of the current schema (store/open-store.ts); creates `options.list` (or 'main' when there is none). */
  static async open(db: SqlDb, options: RegistryOptions = {}): Promise<Registry> {
    const r = new Registry(db, options);
    if (options.list !== undefined) await r.createList(options.list);
    else if ((await r.lists()).length === 0) await r.createList('main');
    return r;
  }

  /** Sets (or replaces) the keys; the Central calls this on a registry it is handed. */
  setKeys(keys: { readonly deploymentKey?: Uint8Array; readonly signingKey?: Uint8Array }): void {
    if (keys.deploymentKey !== undefined) {
      if (!(keys.deploymentKey instanceof Uint8Array) || keys.deploymentKey.length !== 32) throw new RegistryError('deploymentKey', 'registry: deploymentKey must be 32 bytes');
      this.#deploymentKey = keys.deploymentKey.slice();
    }
    if (keys.signingKey !== undefined) this.#signer = new Ed25519Signer(keys.signingKey);
  }

  get publicKey(): Uint8Array | null {
    return this.#signer?.publicKey ?? null;
  }

  /** Called after every commit, once per list, in commit order. */
  onCommit(listener: (c: CommitInfo) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---------------------------------------------------------------- lists

  async lists(): Promise<ListInfo[]> {
    return this.#db.all<ListInfo>(this.#q.lists);
  }

  async list(name?: string): Promise<ListInfo> {
    const n = name ?? (await this.#defaultList());
    const l = await this.#db.get<ListInfo>(this.#q.list, [n]);
    if (l === undefined) throw new RegistryError('list', `registry: no list '${n}'`);
    return l;
  }

  async version(list?: string): Promise<number> {
    return (await this.list(list)).version;
  }

  async #defaultList(): Promise<string> {
    const all = await this.lists();
    const main = all.find((l) => l.name === 'main');
    return (main ?? all[0])?.name ?? 'main';
  }

  /** Creates a list at version 0 (its base is the registry as it is now). Idempotent. */
  async createList(name: string): Promise<ListInfo> {
    if (!isValidId(name)) throw new RegistryError('list', `createList: list '${name}' must be 1-32 characters of [a-z0-9_-]`);
    const existing = await this.#db.get<ListInfo>(this.#q.list, [name]);
    if (existing !== undefined) return existing;
    const l = await this.#db.transaction(async () => {
      await this.#db.run(this.#q.insertList, [name, Math.max(1, this.#clock())]);
      return this.list(name);
    }, { lock: true });
    this.#notify([{ list: name, epoch: l.epoch, version: 0, deltas: [], newEpoch: true }]);
    return l;
  }

  /** How many credentials the list may hold (a change over it throws CapacityError unless allowOverCapacity). */
  async capacity(name?: string): Promise<number> {
    const l = await this.list(name);
    const r = await this.#db.get<{ capacity: number | null }>(this.#q.capacity, [l.name]);
    return r?.capacity ?? DEFAULT_LIST_CAPACITY;
  }

  /** The list with the smallest capacity: the first a growing registry would overflow. */
  async tightestCapacity(): Promise<{ readonly list: string; readonly capacity: number }> {
    let best = { list: await this.#defaultList(), capacity: Number.POSITIVE_INFINITY };
    for (const l of await this.lists()) {
      const c = await this.capacity(l.name);
      if (c < best.capacity) best = { list: l.name, capacity: c };
    }
    return best;
  }

  /** Sets a list's capacity; not a change for the gates (no version). */
  async setCapacity(name: string, credentials: number): Promise<void> {
    if (!Number.isSafeInteger(credentials) || credentials < 1) throw new RegistryError('capacity', `setCapacity: capacity must be a positive integer, got ${credentials}`);
    await this.list(name);
    await this.#db.run(this.#q.setCapacity, [credentials, name]);
  }

  /** Re-creates a list: a new epoch (> the old one), version 0, its deltas dropped. Gates pull a new image. */
  async recreateList(name: string): Promise<ListInfo> {
    const l = await this.#db.transaction(async () => {
      const old = await this.list(name);
      await this.#db.run(this.#q.deleteDeltas, [name]);
      await this.#db.run(this.#q.renewList, [Math.max(old.epoch + 1, this.#clock()), name]);
      return this.list(name);
    }, { lock: true });
    this.#notify([{ list: name, epoch: l.epoch, version: 0, deltas: [], newEpoch: true }]);
    return l;
  }

  /** Stored deltas `from .. from+count-1` of one epoch that exist, in order. */
  async deltas(list: string, epoch: number, from: number, count: number): Promise<StoredDelta[]> {
    const rows = await this.#db.all<{ list: string; epoch: number; version: number; issued_at: number; envelope: Uint8Array; records: Uint8Array }>(this.#q.deltas, [list, epoch, from, from + count]);
    return rows.map((r) => ({ list: r.list, epoch: r.epoch, version: r.version, issuedAt: r.issued_at, envelope: bytesOf(r.envelope), records: bytesOf(r.records) }));
  }

  async delta(list: string, version: number): Promise<StoredDelta | undefined> {
    return (await this.deltas(list, (await this.list(list)).epoch, version, 1))[0];
  }

  // ---------------------------------------------------------------- reads

  async counts(): Promise<{ industries: number; institutions: number; subjects: number; credentials: number; grants: number; schedules: number }> {
    return (await this.#db.get(this.#q.counts)) as Awaited<ReturnType<Registry['counts']>>;
  }

  async subject(id: string): Promise<SubjectInfo | undefined> {
    const s = await this.#db.get<{ id: string; kind: SubjectKind; institution: number | null; name: string; suspended: number; grant: number | null }>(this.#q.subjectInfo, [id]);
    if (s === undefined) return undefined;
    return { id: s.id, kind: s.kind, institution: s.institution, name: s.name, suspended: s.suspended !== 0, grant: s.grant };
  }

  async industry(id: number): Promise<{ readonly id: number; readonly name: string; readonly code: string } | undefined> {
    return this.#db.get<{ id: number; name: string; code: string }>(this.#q.industry, [id]);
  }

  /** The id of the industry with this code. */
  async industryByCode(code: string): Promise<number | undefined> {
    return (await this.#db.get<{ id: number }>(this.#q.industryByCode, [code]))?.id;
  }

  async institution(id: number): Promise<{ readonly id: number; readonly name: string; readonly industry: number | null } | undefined> {
    return this.#db.get<{ id: number; name: string; industry: number | null }>(this.#q.institution, [id]);
  }

  /** Ids of the institutions with exactly this name (names are not unique in the registry). */
  async institutionsNamed(name: string): Promise<number[]> {
    return (await this.#db.rows(this.#q.institutionsNamed, [name])).map(([id]) => id as number);
  }

  async credentials(subject: string): Promise<CredentialInfo[]> {
    const rows = await this.#db.all<{ key: Uint8Array; subject: string; kind: CredentialKind; revoked: number }>(this.#q.credentialsOf, [subject]);
    return rows.map((r) => ({ key: bytesOf(r.key), subject: r.subject, kind: r.kind, revoked: r.revoked !== 0 }));
  }

  async credential(ref: CredentialRef): Promise<CredentialInfo | undefined> {
    const key = this.#keyOf('credential', ref);
    const r = await this.#db.get<{ key: Uint8Array; subject: string; kind: CredentialKind; revoked: number }>(this.#q.credential, [key]);
    return r === undefined ? undefined : { key: bytesOf(r.key), subject: r.subject, kind: r.kind, revoked: r.revoked !== 0 };
  }

  /** The grant spec of an id; null if retired; undefined if never assigned. */
  async grantSpec(id: number): Promise<GrantSpec | null | undefined> {
    const g = await this.#db.get<{ id: number; spec: string | null }>(this.#q.grant, [id]);
    if (g === undefined) return undefined;
    return g.spec === null ? null : (JSON.parse(g.spec) as GrantSpec);
  }

  /** Every industry, by id. */
  async allIndustries(): Promise<{ readonly id: number; readonly name: string; readonly code: string }[]> {
    return this.#db.all<{ id: number; name: string; code: string }>(this.#q.everyIndustry);
  }

  /** Every institution, by id. */
  async allInstitutions(): Promise<{ readonly id: number; readonly name: string; readonly industry: number | null }[]> {
    return this.#db.all<{ id: number; name: string; industry: number | null }>(this.#q.everyInstitution);
  }

  /** Every subject's id and kind (arrays, not objects: a million subjects). */
  async allSubjects(): Promise<[id: string, kind: SubjectKind][]> {
    return (await this.#db.rows(this.#q.everySubject)) as [string, SubjectKind][];
  }

  /** Every active (not revoked) credential: its key in upper-case hex, its subject and the subject's kind. */
  async allActiveCredentials(): Promise<[key: string, subject: string, kind: SubjectKind][]> {
    return (await this.#db.rows(this.#q.everyActiveCredential)) as [string, string, SubjectKind][];
  }

  /** Every grant assignment: level, target (subject id, or the institution's / industry's id as text) and grant id. */
  async grantAssignments(): Promise<{ readonly level: GrantLevel; readonly target: string; readonly grant: number }[]> {
    return (await this.#db.rows(this.#q.everyAssignment)).map(([level, target, grant]) => ({ level: level as GrantLevel, target: String(target), grant: Number(grant) }));
  }

  /** The grant id assigned to a subject ('individual'), an institution or an industry, or null. */
  async assignedGrant(level: GrantLevel, target: string | number): Promise<number | null> {
    return this.#assigned(level, String(target));
  }

  /** The 8-byte key of a raw credential id under this deployment. */
  credentialKey(kind: CredentialKind, rawId: Uint8Array | string): Uint8Array {
    return this.#keyOf('credential', { kind, rawId });
  }

  /** The tables of the list's current version, for buildImageFromTables (one consistent read). */
  async tables(list?: string): Promise<TableModel> {
    return this.#db.transaction(async () => {
      const l = await this.list(list);
      const grants = (await this.#db.all<{ id: number; spec: string | null }>(this.#q.allGrants)).map((g) => (g.spec === null ? null : (JSON.parse(g.spec) as GrantSpec)));
      const industries = ((await this.#db.rows(this.#q.allIndustries)) as [number, number | null, number][]).map(([, grant, suspended]) => ({ grant: grant ?? undefined, suspended: suspended !== 0 }));
      const institutions = ((await this.#db.rows(this.#q.allInstitutions)) as [number, number | null, number | null, number][]).map(([, industry, grant, suspended]) => ({
        industry: industry ?? undefined,
        grant: grant ?? undefined,
        suspended: suspended !== 0,
      }));
      const rows = (await this.#db.rows(this.#q.imageCredentials)) as [string, number | null, number | null][];
      const keys = new Uint8Array(rows.length * 8);
      const credentials = rows.map(([hex, institution, grant], i) => {
        for (let j = 0; j < 8; j++) keys[i * 8 + j] = (nibble(hex.charCodeAt(2 * j)) << 4) | nibble(hex.charCodeAt(2 * j + 1));
        return { key: keys.subarray(i * 8, i * 8 + 8), institution: institution ?? undefined, grant: grant ?? undefined };
      });
      const schedules = ((await this.#db.rows(this.#q.allSchedules)) as [Uint8Array][]).map(([b]) => bytesOf(b));
      return { epoch: l.epoch, version: l.version, grants, industries, institutions, credentials, schedules };
    });
  }

  // ---------------------------------------------------------------- mutations

  /**
   * Applies many mutations as one change: one transaction, held open across
   * fn's awaits (a streamed import), committed as one version (consecutive
   * versions when the records exceed one delta), rolled back whole if fn
   * throws. Every registry call fn makes (in its async context) joins it; a
   * mutation that throws inside leaves neither rows nor records behind.
   */
  async bulk<T>(fn: (registry: this) => Promise<T>): Promise<T> {
    return this.#mutate('bulk', false, () => fn(this));
  }

  async addIndustry(input: { readonly name: string; readonly code: string }): Promise<number> {
    return this.#mutate('addIndustry', true, async (t) => {
      const op = 'addIndustry';
      checkInput(op, input);
      const name = checkText(op, 'name', input.name);
      const code = input.code;
      if (typeof code !== 'string' || !CODE.test(code)) fail(op, 'code', 'must be 1-32 characters of [a-z0-9_-]');
      if ((await this.#db.get(this.#q.industryByCode, [code])) !== undefined) fail(op, 'code', `'${code}' is already used`);
      const id = ((await this.#db.get(this.#q.nextIndustry)) as { n: number }).n;
      if (id > MAX_ID) fail(op, 'id', 'space exhausted (65535 industries)');
      await this.#db.run(this.#q.insertIndustry, [id, name, code]);
      // A new industry has no grant and is not suspended, which is what the gate assumes of an unknown id.
      this.#push(t, [{ op: 'defineIndustry', industry: id }]);
      return id;
    });
  }

  async addInstitution(input: { readonly name: string; readonly industry?: number | null }): Promise<number> {
    return this.#mutate('addInstitution', true, async (t) => {
      const op = 'addInstitution';
      checkInput(op, input);
      const name = checkText(op, 'name', input.name);
      const industry = input.industry ?? null;
      if (industry !== null) await this.#checkIndustry(op, 'industry', industry);
      const id = ((await this.#db.get(this.#q.nextInstitution)) as { n: number }).n;
      if (id > MAX_ID) fail(op, 'id', 'space exhausted (65535 institutions)');
      await this.#db.run(this.#q.insertInstitution, [id, name, industry]);
      this.#push(t, [{ op: 'defineInstitution', institution: id, industry: industry ?? undefined }]);
      return id;
    });
  }

  async addSubject(input: { readonly id: string; readonly kind: SubjectKind; readonly institution?: number | null; readonly name: string }): Promise<string> {
    return this.#mutate('addSubject', true, async () => {
      const op = 'addSubject';
      checkInput(op, input);
      const id = input.id;
      if (typeof id !== 'string' || !SUBJECT_ID.test(id)) fail(op, 'id', 'must be 1-64 characters of [A-Za-z0-9._:-], starting with a letter or digit');
      if (!SUBJECT_KINDS.includes(input.kind)) fail(op, 'kind', `must be one of ${SUBJECT_KINDS.join(', ')}`);
      const name = checkText(op, 'name', input.name);
      const institution = input.institution ?? null;
      if (institution !== null) await this.#checkInstitution(op, 'institution', institution);
      if ((await this.#db.get(this.#q.subject, [id])) !== undefined) fail(op, 'id', `'${id}' already exists`);
      await this.#db.run(this.#q.insertSubject, [id, input.kind, institution, name]);
      return id; // nothing for the gates until it has a credential
    });
  }

  /** Enrols a credential (raw id hashed with the deployment key); returns its key. A revoked key may be enrolled again. */
  async addCredential(input: { readonly subject: string; readonly kind: CredentialKind; readonly rawId: Uint8Array | string }): Promise<Uint8Array> {
    return this.#mutate('addCredential', true, async (t) => {
      const op = 'addCredential';
      checkInput(op, input);
      const subject = await this.#checkSubject(op, 'subject', input.subject);
      if (!CREDENTIAL_KINDS.includes(input.kind)) fail(op, 'kind', `must be one of ${CREDENTIAL_KINDS.join(', ')}`);
      const key = this.#keyOf(op, { kind: input.kind, rawId: input.rawId });
      const existing = await this.#db.get<{ subject: string; revoked: number }>(this.#q.credential, [key]);
      if (existing !== undefined && existing.revoked === 0) fail(op, 'rawId', `is already enrolled (subject '${existing.subject}')`);
      if (existing === undefined) await this.#db.run(this.#q.insertCredential, [key, subject.id, input.kind]);
      else await this.#db.run(this.#q.reactivateCredential, [subject.id, input.kind, key]);
      t.ctx.enrolled = true;
      // The subject as read above, in this transaction: its suspension and grant cannot have changed since.
      const suspended = subject.suspended;
      const group: DeltaOpSpec[] = [{ op: 'add', key, institution: subject.institution ?? undefined, grant: subject.grant ?? undefined }];
      // addCredential keeps a gate's subject-suspended bit for a key it has seen before: state it whenever it matters.
      if (suspended) group.push({ op: 'suspendSubject', key });
      else if (existing !== undefined) group.push({ op: 'resumeSubject', key });
      this.#push(t, group);
      return key;
    });
  }

  async revokeCredential(ref: CredentialRef): Promise<void> {
    return this.#mutate('revokeCredential', true, async (t) => {
      const op = 'revokeCredential';
      const key = this.#keyOf(op, ref);
      const row = await this.#db.get<{ revoked: number }>(this.#q.credential, [key]);
      if (row === undefined) fail(op, 'credential', `${toHex(key)} is not enrolled`);
      if (row.revoked !== 0) return this.#unchanged(t); // keeps the first revocation's time
      await this.#db.run(this.#q.revokeCredential, [this.#clock(), key]);
      this.#push(t, [{ op: 'revoke', key }]);
    });
  }

  /** Renames an industry (its code is its identity): a version with a no-op delta, since gates know industries by id only. */
  async updateIndustry(id: number, input: { readonly name: string }): Promise<void> {
    return this.#mutate('updateIndustry', true, async (t) => {
      const op = 'updateIndustry';
      checkInput(op, input);
      const name = checkText(op, 'name', input.name);
      await this.#checkIndustry(op, 'id', id);
      if ((await this.industry(id))?.name === name) return this.#unchanged(t);
      await this.#db.run(this.#q.updateIndustry, [name, id]);
    });
  }

  /** Sets an institution's name and industry; a new industry is a defineInstitution record (with its grant, which stays). */
  async updateInstitution(id: number, input: { readonly name: string; readonly industry?: number | null }): Promise<void> {
    return this.#mutate('updateInstitution', true, async (t) => {
      const op = 'updateInstitution';
      checkInput(op, input);
      const name = checkText(op, 'name', input.name);
      const industry = input.industry ?? null;
      await this.#checkInstitution(op, 'id', id);
      const current = (await this.institution(id)) as { name: string; industry: number | null };
      if (industry !== null) await this.#checkIndustry(op, 'industry', industry);
      if (current.name === name && current.industry === industry) return this.#unchanged(t);
      await this.#db.run(this.#q.updateInstitution, [name, industry, id]);
      if (current.industry !== industry) {
        const grant = await this.#assigned('institution', String(id));
        this.#push(t, [{ op: 'defineInstitution', institution: id, industry: industry ?? undefined, grant: grant ?? undefined }]);
      }
    });
  }

  /**
   * Sets a subject's name and institution (its kind does not change). A new
   * institution re-adds each active credential with it, as a grant change does.
   */
  async updateSubject(id: string, input: { readonly name: string; readonly institution?: number | null }): Promise<void> {
    return this.#mutate('updateSubject', true, async (t) => {
      const op = 'updateSubject';
      checkInput(op, input);
      const name = checkText(op, 'name', input.name);
      const institution = input.institution ?? null;
      const s = await this.#checkSubject(op, 'id', id);
      if (institution !== null) await this.#checkInstitution(op, 'institution', institution);
      if (s.name === name && s.institution === institution) return this.#unchanged(t);
      await this.#db.run(this.#q.updateSubject, [name, institution, s.id]);
      if (s.institution !== institution) await this.#pushSubjectCredentials(t, { ...s, name, institution }, 'grant', s.grant);
    });
  }

  /**
   * Sets (spec) or removes (null) the grant of a subject ('individual'), an
   * institution or an industry. Returns the grant id (shared by equal specs) or null.
   */
  async grant(level: GrantLevel, target: string | number, spec: GrantSpec | null): Promise<number | null> {
    return this.#mutate('grant', true, async (t) => {
      const op = 'grant';
      if (!GRANT_LEVELS.includes(level)) fail(op, 'level', `must be one of ${GRANT_LEVELS.join(', ')}`);
      let subject: SubjectInfo | undefined;
      let institution: { id: number; industry: number | null } | undefined;
      if (level === 'individual') subject = await this.#checkSubject(op, 'target', target);
      else if (level === 'institution') institution = await this.#checkInstitution(op, 'target', target);
      else await this.#checkIndustry(op, 'target', target);
      const industryId = level === 'industry' ? Number(target) : undefined;
      const tgt = String(target);
      let id: number | null = null;
      const current = await this.#assigned(level, tgt);
      if (spec !== null) {
        const norm = await this.#checkGrant(op, spec);
        const same = await this.#db.get<{ id: number }>(this.#q.grantByRecord, [encodeGrant(norm)]);
        if (same !== undefined && same.id === current) return this.#unchanged(t, current);
        id = await this.#grantId(t, op, norm);
        await this.#db.run(this.#q.assign, [level, tgt, id]);
      } else {
        if (current === null) return this.#unchanged(t, null);
        await this.#db.run(this.#q.unassign, [level, tgt]);
      }
      if (subject !== undefined) await this.#pushSubjectCredentials(t, subject, 'grant', id);
      else if (institution !== undefined) this.#push(t, [{ op: 'defineInstitution', institution: institution.id, industry: institution.industry ?? undefined, grant: id ?? undefined }]);
      else if (industryId !== undefined) this.#push(t, [{ op: 'defineIndustry', industry: industryId, grant: id ?? undefined }]);
      return id;
    });
  }

  async suspend(level: SuspensionLevel, target: string | number): Promise<void> {
    return this.#suspension('suspend', level, target, true);
  }

  async resume(level: SuspensionLevel, target: string | number): Promise<void> {
    return this.#suspension('resume', level, target, false);
  }

  /** Adds a weekly schedule (48 bytes, buildSchedule); returns its id for GrantSpec.schedule. */
  async addSchedule(bytes: Uint8Array): Promise<number> {
    return this.#mutate('addSchedule', true, async () => {
      const op = 'addSchedule';
      if (!(bytes instanceof Uint8Array) || bytes.length !== SCHEDULE_BYTES) fail(op, 'bytes', `must be ${SCHEDULE_BYTES} bytes`);
      const id = ((await this.#db.get(this.#q.nextSchedule)) as { n: number }).n;
      if (id > MAX_SCHEDULES - 1) fail(op, 'id', `space exhausted (${MAX_SCHEDULES} schedules)`);
      await this.#db.run(this.#q.insertSchedule, [id, bytes]);
      return id; // schedules travel only in images
    });
  }

  // ---------------------------------------------------------------- internals

  async #suspension(op: 'suspend' | 'resume', level: SuspensionLevel, target: string | number, on: boolean): Promise<void> {
    return this.#mutate(op, true, async (t) => {
      if (!SUSPENSION_LEVELS.includes(level)) fail(op, 'level', `must be one of ${SUSPENSION_LEVELS.join(', ')}`);
      if (level === 'subject') {
        const s = await this.#checkSubject(op, 'target', target);
        if ((await this.#suspended(level, s.id)) === on) return this.#unchanged(t);
        await this.#db.run(this.#q.setSuspension, [level, s.id, on ? 1 : 0]);
        await this.#pushSubjectCredentials(t, s, on ? 'suspend' : 'resume', s.grant);
      } else if (level === 'institution') {
        const i = await this.#checkInstitution(op, 'target', target);
        if ((await this.#suspended(level, String(i.id))) === on) return this.#unchanged(t);
        await this.#db.run(this.#q.setSuspension, [level, String(i.id), on ? 1 : 0]);
        this.#push(t, [{ op: on ? 'suspendInstitution' : 'resumeInstitution', institution: i.id }]);
      } else {
        const id = await this.#checkIndustry(op, 'target', target);
        if ((await this.#suspended(level, String(id))) === on) return this.#unchanged(t);
        await this.#db.run(this.#q.setSuspension, [level, String(id), on ? 1 : 0]);
        this.#push(t, [{ op: on ? 'suspendIndustry' : 'resumeIndustry', industry: id }]);
      }
    });
  }

  /**
   * Records for every active credential of a subject. 'suspend': one
   * suspendSubject per credential. 'grant' and 'resume': each credential is
   * (re)added with the subject's institution and grant — an image leaves
   * suspended subjects out, so a resume must add them back — followed by the
   * subject's suspension state where it matters.
   */
  async #pushSubjectCredentials(t: Frame, s: SubjectInfo, mode: 'grant' | 'suspend' | 'resume', grant: number | null): Promise<void> {
    const keys = ((await this.#db.rows(this.#q.activeCredentialsOf, [s.id])) as [Uint8Array][]).map(([k]) => bytesOf(k));
    for (const key of keys) {
      if (mode === 'suspend') {
        this.#push(t, [{ op: 'suspendSubject', key }]);
        continue;
      }
      const group: DeltaOpSpec[] = [{ op: 'add', key, institution: s.institution ?? undefined, grant: grant ?? undefined }];
      if (mode === 'resume') group.push({ op: 'resumeSubject', key });
      else if (s.suspended) group.push({ op: 'suspendSubject', key });
      this.#push(t, group);
    }
  }

  /** Called by a mutation that found nothing to change, before it wrote anything: it makes no version. */
  #unchanged<T = void>(t: Frame, result?: T): T {
    t.unchanged = true;
    return result as T;
  }

  #push(t: Frame, group: DeltaOpSpec[]): void {
    t.ctx.groups.push(group);
  }

  async #suspended(level: SuspensionLevel, target: string): Promise<boolean> {
    const r = await this.#db.get<{ active: number }>(this.#q.suspension, [level, target]);
    return r !== undefined && r.active !== 0;
  }

  async #assigned(level: GrantLevel, target: string): Promise<number | null> {
    const r = await this.#db.get<{ grant_id: number }>(this.#q.assignment, [level, target]);
    return r?.grant_id ?? null;
  }

  async #checkSubject(op: string, field: string, id: unknown): Promise<SubjectInfo> {
    if (typeof id !== 'string') fail(op, field, 'must be a subject id (string)');
    const s = await this.subject(id);
    if (s === undefined) fail(op, field, `subject '${id}' does not exist`);
    return s;
  }

  async #checkInstitution(op: string, field: string, id: unknown): Promise<{ id: number; industry: number | null }> {
    if (typeof id !== 'number' || !Number.isInteger(id)) fail(op, field, 'must be an institution id (integer)');
    const r = await this.#db.get<{ id: number; industry: number | null }>(this.#q.institution, [id]);
    if (r === undefined) fail(op, field, `institution ${id} does not exist`);
    return r;
  }

  async #checkIndustry(op: string, field: string, id: unknown): Promise<number> {
    if (typeof id !== 'number' || !Number.isInteger(id)) fail(op, field, 'must be an industry id (integer)');
    if ((await this.#db.get(this.#q.industry, [id])) === undefined) fail(op, field, `industry ${id} does not exist`);
    return id;
  }

  async #checkGrant(op: string, spec: GrantSpec): Promise<GrantSpec> {
    if (spec === null || typeof spec !== 'object') fail(op, 'spec', 'must be a GrantSpec object or null');
    const known = new Set(['lines', 'directions', 'lanes', 'validFrom', 'validUntil', 'schedule', 'passbackGroup']);
    for (const k of Object.keys(spec)) if (!known.has(k)) fail(op, `spec.${k}`, 'is not a GrantSpec field');
    const out: { -readonly [K in keyof GrantSpec]: GrantSpec[K] } = {
      lines: checkSubset(op, 'spec.lines', spec.lines, LINES),
      directions: checkSubset(op, 'spec.directions', spec.directions, DIRECTIONS),
      lanes: checkSubset(op, 'spec.lanes', spec.lanes, LANES),
    };
    if (spec.validFrom !== undefined && spec.validFrom !== 0) out.validFrom = checkUint(op, 'spec.validFrom', spec.validFrom, UNBOUNDED_UNTIL);
    if (spec.validUntil !== undefined && spec.validUntil !== UNBOUNDED_UNTIL) out.validUntil = checkUint(op, 'spec.validUntil', spec.validUntil, UNBOUNDED_UNTIL);
    if ((out.validFrom ?? 0) > (out.validUntil ?? UNBOUNDED_UNTIL)) fail(op, 'spec.validUntil', 'is before validFrom');
    if (spec.schedule !== undefined) {
      const n = ((await this.#db.get(this.#q.scheduleCount)) as { n: number }).n;
      out.schedule = checkUint(op, 'spec.schedule', spec.schedule, MAX_SCHEDULES - 1);
      if (out.schedule >= n) fail(op, 'spec.schedule', `schedule ${out.schedule} does not exist (${n} defined)`);
    }
    if (spec.passbackGroup !== undefined) out.passbackGroup = checkUint(op, 'spec.passbackGroup', spec.passbackGroup, 255, 1);
    return out;
  }

  /** The id of a grant with this record, defining it (and its defineGrant record) if new. */
  async #grantId(t: Frame, op: string, spec: GrantSpec): Promise<number> {
    const record = encodeGrant(spec);
    const found = await this.#db.get<{ id: number }>(this.#q.grantByRecord, [record]);
    if (found !== undefined) return found.id;
    const id = ((await this.#db.get(this.#q.nextGrant)) as { n: number }).n;
    if (id > MAX_ID) fail(op, 'spec', 'grant id space exhausted (65535 grants)');
    await this.#db.run(this.#q.insertGrant, [id, JSON.stringify(spec), record]);
    this.#push(t, [{ op: 'defineGrant', id, grant: spec }]);
    return id;
  }

  #keyOf(op: string, ref: CredentialRef): Uint8Array {
    if (ref === null || typeof ref !== 'object') fail(op, 'credential', 'must be { kind, rawId } or { key }');
    if ('key' in ref) {
      if (!(ref.key instanceof Uint8Array) || ref.key.length !== 8) fail(op, 'key', 'must be 8 bytes');
      return ref.key.slice();
    }
    if (!CREDENTIAL_KINDS.includes(ref.kind)) fail(op, 'kind', `must be one of ${CREDENTIAL_KINDS.join(', ')}`);
    let raw: Uint8Array;
    if (typeof ref.rawId === 'string') {
      if (!/^([0-9a-fA-F]{2})+$/.test(ref.rawId)) fail(op, 'rawId', 'must be hex (an even number of digits) or bytes');
      raw = fromHex(ref.rawId);
    } else if (ref.rawId instanceof Uint8Array) raw = ref.rawId;
    else fail(op, 'rawId', 'must be hex or bytes');
    if (raw.length === 0 || raw.length > MAX_RAW_ID_BYTES) fail(op, 'rawId', `must be 1-${MAX_RAW_ID_BYTES} bytes`);
    if (this.#deploymentKey === null) fail(op, 'deploymentKey', 'is not set: the registry cannot hash raw credential ids');
    const code: CredentialKindCode = ref.kind === 'card' ? 1 : 2;
    return credentialKey(nodeCrypto, this.#deploymentKey, code, raw);
  }

  /**
   * Runs fn as one change. The outermost call opens the transaction (taking
   * the writer lock), bumps the versions and stores the deltas; a call inside
   * it (inside bulk, in the same async context) runs in a savepoint, so a
   * mutation that throws inside bulk leaves neither rows nor records behind.
   * Mutations inside one bulk run one after another (await each).
   */
  async #mutate<T>(what: string, counts: boolean, fn: (t: Frame) => Promise<T>): Promise<T> {
    const outer = this.#tx.getStore();
    if (outer !== undefined && !outer.closed) {
      const ctx = outer.ctx;
      const mark = ctx.groups.length;
      const mutations = ctx.mutations;
      const inner: TxState = { ctx, depth: outer.depth + 1, closed: false };
      const t: Frame = { ctx, unchanged: false };
      try {
        const r = await this.#tx.run(inner, () => this.#db.transaction(() => fn(t)));
        if (counts && !t.unchanged) ctx.mutations++;
        // A mutation directly inside the outermost transaction cannot be dropped alone any more
        // (only the whole transaction can): pack its records, so a huge bulk holds 16 bytes a record.
        if (inner.depth === 1 && ctx.groups.length >= 64) compact(ctx);
        return r;
      } catch (e) {
        ctx.groups.length = mark;
        ctx.mutations = mutations;
        throw e;
      } finally {
        inner.closed = true;
      }
    }
    if (this.#signer === null) throw new RegistryError('signingKey', `${what}: signingKey is not set: the registry cannot sign deltas`);
    const ctx: TxContext = { groups: [], pack: [], packs: [], mutations: 0, enrolled: false };
    const state: TxState = { ctx, depth: 0, closed: false };
    let commits: CommitInfo[] = [];
    let result: T;
    try {
      result = await this.#tx.run(state, () =>
        this.#db.transaction(async () => {
          const t: Frame = { ctx, unchanged: false };
          const r = await fn(t);
          if (counts && !t.unchanged) ctx.mutations++;
          commits = await this.#finish(ctx);
          return r;
        }, { lock: true }),
      );
    } finally {
      state.closed = true;
    }
    this.#notify(commits);
    return result;
  }

  /** Inside the transaction: retires unused grants, packs the records into deltas, signs and stores one per new version of every list. */
  async #finish(ctx: TxContext): Promise<CommitInfo[]> {
    if (ctx.mutations === 0) return [];
    if (ctx.enrolled && !this.allowOverCapacity) {
      const n = ((await this.#db.get(this.#q.activeCredentials)) as { n: number }).n;
      for (const l of await this.lists()) {
        const capacity = await this.capacity(l.name);
        if (n > capacity) throw new CapacityError(l.name, n, capacity);
      }
    }
    await this.#db.run(this.#q.retireGrants);
    if (ctx.groups.length === 0 && ctx.pack.length === 0 && ctx.packs.length === 0) ctx.groups.push([NOOP_RECORD]);
    compact(ctx);
    const packs = ctx.packs;
    if (ctx.pack.length > 0) packs.push(encodeDeltaRecords(ctx.pack));
    const issuedAt = this.#clock();
    const signer = this.#signer as Ed25519Signer;
    const commits: CommitInfo[] = [];
    for (const l of await this.lists()) {
      const deltas: StoredDelta[] = [];
      let version = l.version;
      for (const records of packs) {
        version++;
        if (records.length > MAX_DELTA_RECORDS * DELTA_RECORD_BYTES) throw new Error('registry: a record group exceeds one delta');
        const envelope = signer.seal(Delta, { list: l.name, epoch: l.epoch, version, issuedAt, records });
        await this.#db.run(this.#q.insertDelta, [l.name, l.epoch, version, issuedAt, envelope, records]);
        deltas.push({ list: l.name, epoch: l.epoch, version, issuedAt, envelope, records });
      }
      await this.#db.run(this.#q.setVersion, [version, l.name]);
      commits.push({ list: l.name, epoch: l.epoch, version, deltas, newEpoch: false });
    }
    return commits;
  }

  #notify(commits: readonly CommitInfo[]): void {
    for (const c of commits) {
      for (const fn of this.#listeners) {
        try {
          fn(c);
        } catch (e) {
          console.error(`registry: a commit listener failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  }
}
