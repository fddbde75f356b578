// Shared pieces of the `subline` command groups: the command class (usage
// errors exit 2), the common options, value parsers that name the option
// they refuse, the data directory (keys.json, pki/, central.db unless --db
// names another database), the central's store opened and checked, a broker
// connection with a deadline, and plain-text tables.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option, type ErrorOptions } from 'commander';
import type { MqttClient } from 'mqtt';
import { isValidId, isValidRoot } from '../../protocol/topics.js';
import { KeyFileError, readKeyFile, type CentralKeys } from '../central/keys.js';
import { checkStamp } from '../central/database-stamp.js';
import { RegistryError, type Registry } from '../central/registry.js';
import type { CentralStore } from '../central/store/open-store.js';
import { checkSchema, SchemaError } from '../central/store/schema.js';
import { isPostgresUrl, redactUrl, type SqlDb } from '../central/store/sql-db.js';
import { CliError } from './cli-error.js';
import { mqttAuthOptions, type BrokerAuth } from '../broker-auth.js';
import type { CENTRAL_IDENTITY as PKI_CENTRAL_IDENTITY } from '../pki/deployment-pki.js';

// The store drivers, the MQTT client and the X.509 library are imported where a
// command uses them, so that --help, usage errors and the commands that do not
// need them load none of them.

/** deployment-pki.ts's CENTRAL_IDENTITY, repeated so that this module does not load the X.509 library (the type makes tsc check that both are the same). */
const CENTRAL_IDENTITY: typeof PKI_CENTRAL_IDENTITY = 'subline.central';

/** A commander Command whose usage errors (unknown option, missing argument, bad choice) exit with 2, not 1. */
export class SublineCommand extends Command {
  override createCommand(name?: string): SublineCommand {
    return new SublineCommand(name);
  }

  override error(message: string, errorOptions?: ErrorOptions): never {
    const code = errorOptions?.exitCode;
    return super.error(message, { ...errorOptions, exitCode: code === undefined || code === 1 ? 2 : code });
  }
}

/** A command or command group (`subline central ...`) that inherits the program's settings and exits 2 on usage errors. */
export function addGroup(program: Command, name: string, description: string): SublineCommand {
  const g = new SublineCommand(name).description(description);
  g.copyInheritedSettings(program);
  program.addCommand(g);
  return g;
}

// ---------------------------------------------------------------- options

export const DEFAULT_DATA = './subline-data';
/** The TLS listener of a broker made by `subline broker config` (secure by default; the password listener on 1883 is for labs). */
export const DEFAULT_BROKER = 'mqtts://127.0.0.1:8883';

export const dataOption = (): Option => new Option('--data <dir>', 'data directory holding keys.json, pki/ and (unless --db) central.db').env('SUBLINE_DATA').default(DEFAULT_DATA);
/** Where the central's data is, when not DATA/central.db: a PostgreSQL URL (or another SQLite file). Keys stay in --data. */
export const dbOption = (): Option => new Option('--db <url>', "the central's database: postgres://user@host:port/db, or a SQLite file (default: DATA/central.db)").env('SUBLINE_DB');
export const brokerOption = (what = 'MQTT broker URL (mqtt://host:port)'): Option => new Option('--broker <url>', what).env('SUBLINE_BROKER').default(DEFAULT_BROKER);
export const topicRootOption = (): Option => new Option('--topic-root <root>', 'topic root (1-4 segments of [A-Za-z0-9._-])').default('subline');
export const listOption = (): Option => new Option('--list <name>', 'whitelist name').default('main');

export interface CommonOptions {
  readonly data: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly list: string;
}

// ---------------------------------------------------------------- value checks

export function bad(message: string): never {
  throw new CliError(message, 2);
}

export function checkId(value: string, what: string): string {
  if (!isValidId(value)) bad(`${what} '${value}' must be 1-32 characters of [a-z0-9_-], starting with a letter or digit`);
  return value;
}

export function checkTopicRoot(value: string): string {
  if (!isValidRoot(value)) bad(`--topic-root '${value}' must be 1-4 segments of [A-Za-z0-9._-], each 1-32 characters`);
  return value;
}

/** mqtt://host[:port] or mqtts://host[:port], nothing else (no path, no credentials in the URL). */
export function checkBrokerUrl(value: string, what = '--broker'): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return bad(`${what} '${value}' is not a URL (expected mqtt://host:port)`);
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') bad(`${what} '${value}' must start with mqtt:// or mqtts://`);
  if (u.hostname === '') bad(`${what} '${value}' has no host`);
  if (u.username !== '' || u.password !== '') bad(`${what} '${value}' must not carry credentials (use --username and --password)`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '') bad(`${what} '${value}' must be mqtt://host:port without a path`);
  if (value.length > 200) bad(`${what} is longer than 200 characters`);
  return value;
}

// ---------------------------------------------------------------- broker identity

/** Options naming the client's identity at the broker (every command that connects to one). */
export interface BrokerAuthFlags {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly username?: string;
  readonly password?: string;
}

export function addBrokerAuthOptions<C extends Command>(c: C): C {
  c.addOption(new Option('--ca <file>', "CA certificate (PEM) the broker's certificate must chain to (default for mqtts://: the data directory's deployment CA)").env('SUBLINE_BROKER_CA'));
  c.addOption(new Option('--cert <file>', 'TLS client certificate (PEM) (default for mqtts://: the central certificate of the data directory)').env('SUBLINE_BROKER_CERT'));
  c.addOption(new Option('--key <file>', 'its private key (PEM)').env('SUBLINE_BROKER_KEY'));
  c.addOption(new Option('--username <user>', "MQTT username (the broker's password listener; default: the data directory's own, from `subline broker config`)").env('SUBLINE_BROKER_USERNAME'));
  c.addOption(new Option('--password <password>', 'MQTT password (better from the environment than on the command line)').env('SUBLINE_BROKER_PASSWORD'));
  return c;
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    return bad(`${flag} ${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** Passwords `subline broker config` generated for the data directory's identities (none when it never ran). */
function brokerPasswords(p: DataPaths): Record<string, string> {
  const file = join(p.pki, 'broker-passwords.json');
  if (!existsSync(file)) return {};
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    const m = v !== null && typeof v === 'object' && 'passwords' in v ? (v).passwords : v;
    return m !== null && typeof m === 'object' ? (m as Record<string, string>) : {};
  } catch {
    return bad(`${file}: not valid JSON (run \`subline broker config\` again)`);
  }
}

/**
 * The identity a command presents to the broker at `url`: the flags when
 * given; otherwise, for mqtts://, the data directory's CA and the
 * certificate of `identity` (the central's); for mqtt://, the password
 * `subline broker config` generated for `identity`, if any (else anonymous,
 * which a secured broker refuses).
 */
export function resolveBrokerAuth(f: BrokerAuthFlags, url: string, p: DataPaths, identity = CENTRAL_IDENTITY): BrokerAuth | undefined {
  if ((f.cert === undefined) !== (f.key === undefined)) bad('--cert and --key go together');
  if (f.password !== undefined && f.username === undefined) bad('--password needs --username');
  const tls = url.startsWith('mqtts:');
  const auth: { ca?: string; cert?: string; key?: string; username?: string; password?: string } = {};
  if (f.ca !== undefined) auth.ca = readPem(f.ca, '--ca');
  else if (tls) {
    const ca = join(p.pki, 'ca.crt.pem');
    if (!existsSync(ca)) throw new CliError(`${url} is TLS but ${p.pki} has no deployment CA: pass --ca (and --cert/--key), or run \`subline central init\``, 3);
    auth.ca = readFileSync(ca, 'utf8');
  }
  if (f.cert !== undefined) {
    auth.cert = readPem(f.cert, '--cert');
    auth.key = readPem(f.key as string, '--key');
  } else if (tls && identity === CENTRAL_IDENTITY && existsSync(join(p.pki, 'central.crt.pem'))) {
    auth.cert = readFileSync(join(p.pki, 'central.crt.pem'), 'utf8');
    auth.key = readFileSync(join(p.pki, 'central.key.pem'), 'utf8');
  }
  if (f.username !== undefined) {
    auth.username = f.username;
    if (f.password !== undefined) auth.password = f.password;
  } else if (!tls) {
    const pw = brokerPasswords(p)[identity];
    if (pw !== undefined) {
      auth.username = identity;
      auth.password = pw;
    }
  }
  return Object.keys(auth).length === 0 ? undefined : auth;
}

/** A decimal integer in min..max. */
export function parseInteger(value: string, what: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(value.trim())) bad(`${what} '${value}' must be an integer`);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) bad(`${what} must be in ${min}..${max} (got ${value})`);
  return n;
}

/** Items separated by commas, semicolons, bars or spaces, each one of `allowed`; at least one. */
export function parseSet<T extends string>(value: string | readonly unknown[], what: string, allowed: readonly T[]): T[] {
  const items = typeof value === 'string' ? value.split(/[\s,;|]+/).filter((s) => s !== '') : value;
  if (items.length === 0) bad(`${what} must name at least one of ${allowed.join(', ')}`);
  const out: T[] = [];
  for (const x of items) {
    if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x)) bad(`${what}: '${String(x)}' is not one of ${allowed.join(', ')}`);
    if (!out.includes(x as T)) out.push(x as T);
  }
  return out;
}

/**
 * A time as UTC seconds: seconds since 1970, a date (YYYY-MM-DD: the start
 * of that day UTC, or its last second with `endOfDay`), or an ISO 8601 date
 * and time (UTC unless it carries an offset).
 */
export function parseTime(value: string, what: string, endOfDay = false): number {
  const v = value.trim();
  let seconds: number;
  if (/^\d+$/.test(v)) seconds = Number(v);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const ms = Date.parse(`${v}T00:00:00Z`);
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== v) bad(`${what} '${value}' is not a valid date`);
    seconds = ms / 1000 + (endOfDay ? 86399 : 0);
  } else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(v)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(v) ? v : `${v}Z`;
    const ms = Date.parse(zoned.replace(' ', 'T'));
    if (Number.isNaN(ms)) bad(`${what} '${value}' is not a valid date and time`);
    seconds = Math.floor(ms / 1000);
  } else return bad(`${what} '${value}' must be a date (2027-01-01), an ISO date and time (2027-01-01T08:00:00Z) or UTC seconds`);
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > 0xffffffff) bad(`${what} '${value}' is outside 1970..2106`);
  return seconds;
}

/** Even-length hex, 1..maxBytes bytes. */
export function parseHex(value: string, what: string, minBytes: number, maxBytes: number): string {
  const v = value.trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(v)) bad(`${what} '${value}' must be hex digits (an even number)`);
  const n = v.length / 2;
  if (n < minBytes || n > maxBytes) bad(`${what} must be ${minBytes === maxBytes ? `${minBytes}` : `${minBytes}-${maxBytes}`} bytes (got ${n})`);
  return v.toLowerCase();
}

export const isoSeconds = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------- data directory

export interface DataPaths {
  readonly dir: string;
  /** The database: a SQLite path or a postgres:// URL. */
  readonly db: string;
  readonly keys: string;
  /** The deployment PKI (host-sim/pki/deployment-pki.ts). */
  readonly pki: string;
}

export function dataPaths(dir: string, db?: string, what = '--db'): DataPaths {
  const d = resolve(dir);
  let target = join(d, 'central.db');
  if (db !== undefined && db !== '') {
    if (isPostgresUrl(db)) {
      try {
        new URL(db);
      } catch {
        bad(`${what} '${redactUrl(db)}' is not a URL (expected postgres://user@host:port/database)`);
      }
      target = db;
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db)) bad(`${what} '${redactUrl(db)}': only postgres:// URLs and SQLite file paths are supported`);
    else target = resolve(db);
  }
  return { dir: d, db: target, keys: join(d, 'keys.json'), pki: join(d, 'pki') };
}

/** The database for messages (no password). */
export const dbName = (p: DataPaths): string => redactUrl(p.db);

export function loadKeys(p: DataPaths): CentralKeys {
  try {
    const keys = readKeyFile(p.keys);
    // Secrets readable by others: say so (once per command), but do not refuse (a shared lab machine may mean it).
    const mode = statSync(p.keys).mode & 0o777;
    if ((mode & 0o077) !== 0) note(`warning: ${p.keys} is readable by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${p.keys}`);
    return keys;
  } catch (e) {
    if (e instanceof KeyFileError) {
      if (!existsSync(p.keys)) bad(`no key file at ${p.keys}: run \`subline central init --data ${p.dir}\` first (or pass --data)`);
      bad(e.message);
    }
    throw e;
  }
}

const initHint = (p: DataPaths): string => `run \`subline central init --data ${p.dir}${isPostgresUrl(p.db) ? ` --db ${redactUrl(p.db)}` : ''}\` first (or pass --data/--db)`;

/**
 * Opens the database and refuses (exit 3, before any broker connection) one
 * that `central init` did not make — missing, empty, foreign, unreachable —
 * that belongs to another key file than `keys` (when given), or (unless
 * `schema: false`) whose schema is not this build's. Never changes it.
 */
export async function requireDatabase(p: DataPaths, keys?: CentralKeys, options: { readonly schema?: boolean } = {}): Promise<SqlDb> {
  const { openDb, StoreOpenError } = await import('../central/store/open-store.js');
  let db: SqlDb;
  try {
    db = await openDb(p.db);
  } catch (e) {
    if (e instanceof StoreOpenError) {
      if (e.code === 'missing') bad(`no database at ${p.db}: ${initHint(p)}`);
      if (e.code === 'unreachable') throw new CliError(`${e.message} (is the database server running? check --db / SUBLINE_DB)`, 4);
      throw new CliError(`${e.message}; refused (nothing was changed). \`subline central init\` is the only way to create a central's database`, 3);
    }
    throw e;
  }
  try {
    const c = await checkStamp(db, keys?.publicKey);
    if (!c.ok) throw new CliError(`${c.message}; refused (nothing was changed). \`subline central init\` is the only way to create a central's database${c.code === 'foreign_key' ? '; pass the --data directory whose keys.json made it' : ''}`, 3);
    if (options.schema !== false) await checkSchema(db);
    return db;
  } catch (e) {
    await db.close();
    if (e instanceof SchemaError) throw new CliError(e.message, 3);
    throw e;
  }
}

/** Every store of an initialised central (its registry with the keys, when given). The caller closes it. */
export async function openStore(p: DataPaths, keys?: CentralKeys): Promise<CentralStore> {
  const { openCentralStore } = await import('../central/store/open-store.js');
  const db = await requireDatabase(p, keys);
  return registryErrors(() => openCentralStore(db, keys === undefined ? {} : { registry: { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey } }));
}

/** Runs fn on the store of an initialised central, then closes it. */
export async function withStore<T>(p: DataPaths, keys: CentralKeys | undefined, fn: (s: CentralStore) => Promise<T>): Promise<T> {
  const s = await openStore(p, keys);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Runs fn; a RegistryError becomes a CliError (bad input) with its message. */
export async function registryErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RegistryError) bad(e.message);
    throw e;
  }
}

/** The list must exist in the registry. */
export async function requireList(registry: Registry, list: string): Promise<void> {
  checkId(list, '--list');
  const lists = await registry.lists();
  if (!lists.some((l) => l.name === list)) bad(`list '${list}' does not exist in this database (lists: ${lists.map((l) => l.name).join(', ') || 'none'}); create it with \`subline central init --list ${list}\``);
}

// ---------------------------------------------------------------- broker

/** Connects (no automatic reconnect) or throws CliError 4 when the broker cannot be reached in time. */
export async function connectBroker(url: string, timeoutMs: number, clientPrefix: string, auth?: BrokerAuth): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt');
  const client = mqtt.connect(url, { clientId: `${clientPrefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`, clean: true, reconnectPeriod: 0, connectTimeout: timeoutMs, keepalive: 30, ...mqttAuthOptions(auth, url) });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CliError(`no connection to the broker ${url} within ${Math.round(timeoutMs / 1000)} s`, 4)), timeoutMs);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      client.once('error', (e) => {
        clearTimeout(timer);
        reject(new CliError(`cannot connect to the broker ${url}: ${e.message}`, 4));
      });
      client.once('close', () => {
        clearTimeout(timer);
        reject(new CliError(`cannot connect to the broker ${url}: connection closed`, 4));
      });
    });
  } catch (e) {
    client.end(true);
    throw e;
  }
  client.on('error', () => {}); // later errors surface as timeouts of what waits
  return client;
}

// ---------------------------------------------------------------- output

/** Columns aligned with spaces; the header underlined. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}
