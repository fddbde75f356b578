// `subline central ...`: the reference central from the command line — a data
// directory (keys.json, pki/, and central.db unless --db names a PostgreSQL
// database) that `init` creates, `migrate` and `copy` (schema versions, moving
// the data to another database), registry changes
// (import, grant, revoke, suspend, resume) committed straight to the
// database, `serve` (the MQTT central, which notices those changes by polling
// the list version), `publish` (one shot), and read-outs (events, gates).
// docs/CLI.md has the reference.
//
// The central (MQTT), the store drivers and the PKI (X.509) are imported by
// the commands that use them: --help and usage errors load none of them.

import { createInterface } from 'node:readline/promises';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { fromHex, toHex } from '../../protocol/hex.js';
import type { Direction, LaneKind, Line } from '../../protocol/whitelist-format.js';
import type { Central } from '../central/central.js';
import type { GateRecord } from '../central/central-state.js';
import type { GateIdentity } from '../central/gate-registry.js';
import { RefusalLog, type RefusalCount } from '../central/refusal-log.js';
import { copyStore, CopyError } from '../central/store/copy-store.js';
import type { CentralStore } from '../central/store/open-store.js';
import { migrate, SCHEMA_VERSION, SchemaError } from '../central/store/schema.js';
import { isPostgresUrl, redactUrl } from '../central/store/sql-db.js';
import { DEFAULT_SYNC_BUDGET, type SyncBudgetOptions } from '../central/sync-budget.js';
import { stampDatabase } from '../central/database-stamp.js';
import type { GrantSpec } from '../central/image-builder.js';
import { generateKeys, writeKeyFile } from '../central/keys.js';
import { CapacityError, DEFAULT_LIST_CAPACITY, type CredentialRef, type GrantLevel, type Registry, type SuspensionLevel } from '../central/registry.js';
import { CliError } from './cli-error.js';
import {
  addBrokerAuthOptions, addGroup, bad, brokerOption, checkBrokerUrl, checkId, checkTopicRoot, dataOption, dataPaths, dbName, dbOption, formatTable, isoSeconds, listOption, loadKeys, note, openStore, out, parseHex, parseInteger,
  parseSet, parseTime, registryErrors, requireDatabase, requireList, resolveBrokerAuth, topicRootOption, withStore, type BrokerAuthFlags, type DataPaths,
} from './common.js';
import { registerEvents } from './events-command.js';
import { registerRegistryReads } from './registry-read-commands.js';
import { addConsoleOptions, ensureFirstAdmin, FIRST_ADMIN, registerOperators, startConsole, type ConsoleFlags } from './operator-commands.js';
import { applyImport, IMPORT_TYPES, openImportFiles, type ImportProgress } from './import.js';
import { syncFiles, type SyncFlags } from './import-sync-command.js';

const LINES: readonly Line[] = ['first', 'second'];
const DIRECTIONS: readonly Direction[] = ['in', 'out'];
const LANES: readonly LaneKind[] = ['person', 'vehicle', 'goods'];

export function registerCentral(program: Command): void {
  const central = addGroup(program, 'central', 'the reference central: data directory, registry changes, MQTT service, exports');

  central
    .command('init')
    .description('create the data directory, the key file (mode 0600), the database with a list and the deployment PKI (CA, broker and central certificates); prints the public key')
    .addOption(dataOption())
    .addOption(dbOption())
    .addOption(listOption())
    .option('--broker-host <name...>', "more names or addresses in the broker's server certificate (localhost, 127.0.0.1 and ::1 are always there)")
    .option('--capacity <n>', `credentials the list may hold (default ${DEFAULT_LIST_CAPACITY}, what a gate's flash layout holds); on an initialised directory, sets it`)
    .option('--new-epoch', "on an initialised directory: start a new epoch of the list (gates install the whole image again); after restoring a backup older than the versions the gates hold")
    .option('--force', 'replace existing keys (every list gets a new epoch: gates must be provisioned again); the deployment CA is kept; asks on a terminal')
    .option('--yes', 'with --force: do not ask (needed when there is no terminal)')
    .option('--json', 'print the result as one JSON object (data, database, schema, list, publicKey, keys, pki, changed)')
    .action((o: InitOptions) => init(o));

  central
    .command('migrate')
    .description("bring the database's schema up to this build's version (each step one transaction; back it up first); a newer schema is refused")
    .addOption(dataOption())
    .addOption(dbOption())
    .option('--json', 'print the result as one JSON object (database, from, to, steps, unchanged)')
    .action((o: MigrateOptions) => migrateCommand(o));

  central
    .command('copy')
    .description("copy the central's data (every list version, delta, registry row, event and chain value, gate identity, presence) into another, empty database: e.g. from SQLite to PostgreSQL")
    .requiredOption('--to <url>', 'the target: postgres://user@host:port/db (an empty database), or a new SQLite file')
    .addOption(dataOption())
    .addOption(dbOption())
    .option('--json', 'print the result as one JSON object (from, to, rows, tables, seconds)')
    .action((o: CopyOptions) => copyCommand(o));

  central
    .command('import')
    .description('import industries, institutions, people, vehicles, consignments, credentials and grants from CSV and JSON files, all in one transaction')
    .argument('<files...>', 'CSV files (one entity type each, told by the header, the file name or --type) and JSON files (arrays by type)')
    .addOption(dataOption())
    .addOption(dbOption())
    .addOption(new Option('--type <type>', 'what every CSV file holds (default: from its header or name)').choices(IMPORT_TYPES))
    .option('--dry-run', 'check everything, import nothing')
    .option('--over-capacity', "commit even when the list would hold more credentials than its capacity (`central init --capacity`)")
    .option('--sync', "make the registry match the files for every type they hold: add, change and remove (a removed subject's credentials are revoked and its grant removed; rows are kept for history) as one change")
    .option('--yes', 'with --sync: remove more than half of a type without asking (needed when there is no terminal; without it such a sync is refused)')
    .option('--json', 'print the result as one JSON object (rows, counts, versionBefore, versionAfter, unchanged, dryRun, credentials, capacity; with --sync: synced, added, changed, removed by type, massRemovals)')
    .action((files: string[], o: ImportFlags) => importFiles(files, o));

  central
    .command('grant')
    .description('set (or --remove) the grant of a subject, an institution or an industry')
    .addOption(new Option('--level <level>', 'who the grant is for').choices(['individual', 'institution', 'industry']).makeOptionMandatory())
    .requiredOption('--target <target>', 'subject id (individual), institution id or name, industry id or code')
    .option('--lines <lines>', 'first,second')
    .option('--directions <directions>', 'in,out')
    .option('--lanes <lanes>', 'person,vehicle,goods')
    .option('--from <time>', 'valid from: a date (start of day UTC), an ISO date and time, or UTC seconds')
    .option('--until <time>', 'valid until, inclusive: a date (through the end of that day UTC), an ISO date and time, or UTC seconds')
    .option('--passback-group <n>', 'anti-passback group 1-255')
    .option('--remove', 'remove the grant instead')
    .option('--json', 'print the result as one JSON object (unchanged, list, version, ...)')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: GrantOptions) => grant(o));

  central
    .command('revoke')
    .description('revoke one credential: by raw card id, raw UHF tag id, or its 8-byte key')
    .option('--card <hex>', 'raw card id (hex)')
    .option('--uhf <hex>', 'raw UHF tag id (hex)')
    .option('--key <hex>', 'credential key (16 hex digits, as in `central events`)')
    .option('--json', 'print the result as one JSON object (unchanged, list, version, ...)')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: { data: string; db?: string; card?: string; uhf?: string; key?: string; json?: boolean }) => revoke(o));

  for (const [name, on] of [
    ['suspend', true],
    ['resume', false],
  ] as const) {
    central
      .command(name)
      .description(`${name} a subject, an institution (and everything that depends on it) or an industry`)
      .option('--subject <id>', 'subject id')
      .option('--institution <n>', 'institution id or name')
      .option('--industry <n>', 'industry id or code')
      .option('--json', 'print the result as one JSON object (unchanged, list, version, ...)')
      .addOption(dataOption())
    .addOption(dbOption())
      .action((o: { data: string; db?: string; subject?: string; institution?: string; industry?: string; json?: boolean }) => suspension(on, o));
  }

  addConsoleOptions(addBrokerAuthOptions(central
    .command('serve')
    .description('run the central against the broker until Ctrl-C: sync, events, acks, presence, heads; publishes changes other processes commit')
    .addOption(dataOption())
    .addOption(dbOption())
    .addOption(brokerOption())
    .addOption(topicRootOption())
    .addOption(listOption())
    .option('--head-interval <seconds>', 're-sign the head this often', '60')
    .option('--poll <seconds>', 'check the database for changes this often (0.1-60)', '1')
    .option('--connect-timeout <seconds>', 'give up when the broker cannot be reached at start for this long', '10')
    .option('--sync-budget <requests/bytes/seconds>', "each verified gate's sync requests answered per window: at most REQUESTS requests and BYTES of answers per SECONDS", `${DEFAULT_SYNC_BUDGET.requests}/${DEFAULT_SYNC_BUDGET.bytes}/${DEFAULT_SYNC_BUDGET.windowSeconds}`)
    .option('--quiet', 'no diagnostics on stderr')))
    .action((o: ServeOptions) => serve(o));

  addBrokerAuthOptions(central
    .command('publish')
    .description('one shot: publish the current head (retained) and the deltas not published yet, then disconnect')
    .addOption(dataOption())
    .addOption(dbOption())
    .addOption(brokerOption())
    .addOption(topicRootOption())
    .addOption(listOption())
    .option('--wait <seconds>', 'how long to wait for the broker', '10')
    .option('--json', 'print the result as one JSON object (list, epoch, version, deltas, firstDelta, broker)'))
    .action((o: PublishOptions) => publish(o));

  registerEvents(central);
  registerRegistryReads(central);
  registerOperators(central);

  central
    .command('certs')
    .description("the deployment PKI's certificates (serial, identity, role, validity, revoked); --operator NAME issues an operator's client certificate")
    .option('--operator <name>', "issue a client certificate for this operator (CN subline.operator.NAME) into the data directory's pki/operators/")
    .option('--json', 'print JSON')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: { data: string; db?: string; operator?: string; json?: boolean }) => certs(o));

  central
    .command('gates')
    .description('the provisioned gates and those heard from: identity, presence, lane, whitelist version, backlog, refused messages, last seen; --decommission G ends an identity')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--json', 'same as --format json')
    .option('--decommission <gate>', "end this gate's identity: the central refuses everything from it at once (it cannot be provisioned again under this id)")
    .addOption(dataOption())
    .addOption(dbOption())
    .addOption(listOption())
    .action((o: GatesOptions) => (o.decommission !== undefined ? decommission(o) : gates(o)));
}

// ---------------------------------------------------------------- init

interface InitOptions {
  readonly data: string;
  readonly db?: string;
  readonly list: string;
  readonly force?: boolean;
  readonly yes?: boolean;
  readonly capacity?: string;
  readonly brokerHost?: string[];
  readonly newEpoch?: boolean;
  readonly json?: boolean;
}

/**
 * What init did, for --json (the text lines say the same): set by each step, printed at the end.
 * `changed`: what this run changed (created, keys_replaced, database_created, capacity, new_epoch, migrated).
 */
interface InitReport {
  data?: string;
  database?: string;
  schema?: { version: number; from: number | null; migrated: boolean; created: boolean };
  list?: { name: string; epoch: number; version: number; capacity: number };
  publicKey?: string;
  keys?: 'created' | 'kept' | 'replaced';
  pki?: { ca: string; created: boolean };
  /** The first administrator, made when there was no operator: its one-time password. */
  operator?: { name: string; password: string };
  changed: string[];
}

/** Prints a line of init's text output, or (with --json) records it in the report. */
class InitOutput {
  readonly report: InitReport = { changed: [] };
  constructor(readonly json: boolean) {}
  say(text: string, patch: Partial<InitReport> = {}, changed?: string): void {
    if (!this.json) out(text);
    Object.assign(this.report, patch);
    if (changed !== undefined && !this.report.changed.includes(changed)) this.report.changed.push(changed);
  }
  end(): void {
    if (this.json) out(JSON.stringify(this.report));
  }
}

/** --force on a directory with keys replaces them: asked on a terminal, --yes otherwise. */
async function confirmForce(o: InitOptions): Promise<void> {
  const p = dataPaths(o.data, o.db);
  if (o.force !== true || o.yes === true || !existsSync(p.keys)) return;
  const question = `replace the keys of ${p.dir}? Every list gets a new epoch and every gate must be provisioned again`;
  if (!process.stdin.isTTY) throw new CliError(`--force would ${question.slice(0, 1).toLowerCase()}${question.slice(1).replace('?', ':')}; add --yes to confirm (no terminal to ask on)`, 2);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not confirmed: nothing changed', 1);
  } finally {
    rl.close();
  }
}

/** Creates the deployment PKI unless the data directory has one (it is never replaced: gates and brokers trust it). */
async function ensurePki(p: DataPaths, hosts: readonly string[], say: InitOutput): Promise<void> {
  const { DeploymentPki } = await import('../pki/deployment-pki.js');
  if (DeploymentPki.exists(p.pki)) {
    say.say(`deployment CA: ${p.pki} (existing, kept)`, { pki: { ca: join(p.pki, 'ca.crt.pem'), created: false } });
    return;
  }
  await DeploymentPki.create(p.pki, { brokerHosts: hosts });
  say.say(`deployment CA: ${p.pki}/ca.crt.pem (broker and central certificates issued; \`subline broker config\` writes a broker configuration)`, { pki: { ca: join(p.pki, 'ca.crt.pem'), created: true } }, 'pki_created');
}

async function init(o: InitOptions): Promise<void> {
  if (o.capacity !== undefined) parseInteger(o.capacity, '--capacity', 1, 100_000_000);
  await confirmForce(o);
  const say = new InitOutput(o.json === true);
  await initKeysAndDb(o, say);
  await ensurePki(dataPaths(o.data, o.db), o.brokerHost ?? [], say);
  const password = await withStore(dataPaths(o.data, o.db), undefined, (s) => ensureFirstAdmin(s.db));
  if (password !== null) say.say(`console: operator ${FIRST_ADMIN} (admin), one-time password ${password} (shown once: \`subline central operator password ${FIRST_ADMIN}\` sets another; \`central serve --http 127.0.0.1:8080\` serves the console)`, { operator: { name: FIRST_ADMIN, password } }, 'operator_created');
  say.end();
}

/** Whether the target already holds a database: a SQLite file that exists, a PostgreSQL database with any central table. */
async function databaseExists(p: DataPaths): Promise<boolean> {
  if (!isPostgresUrl(p.db)) return existsSync(p.db);
  const { openDb, StoreOpenError } = await import('../central/store/open-store.js');
  let db;
  try {
    db = await openDb(p.db);
  } catch (e) {
    if (e instanceof StoreOpenError) throw new CliError(`${e.message} (is the database server running, and does the database exist? \`createdb\` makes one)`, 4);
    throw e;
  }
  try {
    const t = await db.tables();
    return t.has('lists') || t.has('meta') || t.has('central_meta');
  } finally {
    await db.close();
  }
}

/** The schema created or brought up to date, for init's output. */
function schemaLine(s: CentralStore): string {
  const m = s.migration;
  if (m === null || m.steps.length === 0) return `schema: ${SCHEMA_VERSION}`;
  return `schema: ${m.from === null ? `${m.to} (created)` : `${m.from} -> ${m.to} (migrated)`}`;
}

/** The schema fields of init's report. */
function schemaOf(s: CentralStore): NonNullable<InitReport['schema']> {
  const m = s.migration;
  const applied = m !== null && m.steps.length > 0;
  return { version: SCHEMA_VERSION, from: applied ? m.from : SCHEMA_VERSION, migrated: applied && m.from !== null, created: applied && m.from === null };
}

async function initKeysAndDb(o: InitOptions, say: InitOutput): Promise<void> {
  const p = dataPaths(o.data, o.db);
  const list = checkId(o.list, '--list');
  const capacity = o.capacity !== undefined ? parseInteger(o.capacity, '--capacity', 1, 100_000_000) : undefined;
  const hadKeys = existsSync(p.keys);
  const hadDb = await databaseExists(p);
  const { openCentralStore } = await import('../central/store/open-store.js');
  const { DeploymentPki } = await import('../pki/deployment-pki.js');
  const open = async (keys?: { signingKey: Uint8Array; deploymentKey: Uint8Array }, withList?: string): Promise<CentralStore> => {
    try {
      return await openCentralStore(p.db, { create: true, registry: { ...(keys !== undefined ? { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey } : {}), ...(withList !== undefined ? { list: withList } : {}) } });
    } catch (e) {
      if (e instanceof SchemaError) throw new CliError(e.message, 3);
      throw e;
    }
  };
  if (hadKeys && o.force !== true) {
    const keys = loadKeys(p);
    if (hadDb) {
      // An existing database must be this key file's (an empty or foreign file is not silently taken over).
      await (await requireDatabase(p, keys, { schema: false })).close();
      const r = await open();
      try {
        if ((await r.registry.lists()).some((l) => l.name === list) && DeploymentPki.exists(p.pki)) {
          // Initialised: the one thing init still does is set a list's capacity (and bring the schema up to date).
          say.report.data = p.dir;
          say.report.database = dbName(p);
          say.report.keys = 'kept';
          say.report.publicKey = toHex(keys.publicKey);
          say.report.schema = schemaOf(r);
          if (r.migration !== null && r.migration.steps.length > 0) say.say(schemaLine(r), {}, 'migrated');
          const listOf = async () => {
            const l = await r.registry.list(list);
            return { name: list, epoch: l.epoch, version: l.version, capacity: await r.registry.capacity(list) };
          };
          if (o.newEpoch === true) {
            const l = await r.registry.recreateList(list);
            say.say(`list: ${list} has a new epoch ${l.epoch} at version 0: gates install the whole image again (a running \`central serve\` publishes it within its poll interval)`, { list: await listOf() }, 'new_epoch');
            if (capacity === undefined) return;
          }
          if (capacity !== undefined) {
            await r.registry.setCapacity(list, capacity);
            say.say(`list: ${list} capacity set to ${capacity} credentials (${(await r.registry.counts()).credentials} enrolled)`, { list: await listOf() }, 'capacity');
            return;
          }
          say.report.list = await listOf();
          if (r.migration !== null && r.migration.steps.length > 0) return;
          throw new CliError(`${p.dir} is already initialised (keys.json, list '${list}' and the deployment CA exist; public key ${toHex(keys.publicKey)}); --force replaces the keys, --capacity N sets the list's capacity`, 3);
        }
      } finally {
        await r.close();
      }
    }
    // Keys kept; the database or the list is new.
    const r = await open(keys, list);
    try {
      if (capacity !== undefined) await r.registry.setCapacity(list, capacity);
      const l = await r.registry.list(list);
      const cap = await r.registry.capacity(list);
      await stampDatabase(r.db, keys.publicKey, Math.floor(Date.now() / 1000)); // an existing database passed requireDatabase above
      say.say(`data: ${p.dir} (existing keys kept)`, { data: p.dir, keys: 'kept', database: dbName(p) }, hadDb ? undefined : 'database_created');
      if (p.db !== dataPaths(o.data).db) say.say(`database: ${dbName(p)}`);
      say.say(schemaLine(r), { schema: schemaOf(r) }, r.migration !== null && r.migration.steps.length > 0 ? (r.migration.from === null ? 'database_created' : 'migrated') : undefined);
      say.say(`list: ${list} (epoch ${l.epoch}, version ${l.version}, capacity ${cap} credentials)`, { list: { name: list, epoch: l.epoch, version: l.version, capacity: cap } });
      say.say(`public key: ${toHex(keys.publicKey)}`, { publicKey: toHex(keys.publicKey) });
    } finally {
      await r.close();
    }
    return;
  }
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  if (hadDb && o.force !== true) await (await requireDatabase(p, undefined, { schema: false })).close(); // a database without keys: only if it is a central's (then --force makes new keys for it)
  const keys = generateKeys();
  // The database first, the keys last (written atomically): a failure leaves the old keys in place.
  const r = await open(undefined, list);
  let l;
  let cap = DEFAULT_LIST_CAPACITY;
  let schema: string;
  try {
    // Deltas signed with the old key would fail on gates that trust the new one: new epochs, old deltas dropped.
    if (hadKeys && hadDb) for (const x of await r.registry.lists()) await r.registry.recreateList(x.name);
    if (capacity !== undefined) await r.registry.setCapacity(list, capacity);
    l = await r.registry.list(list);
    cap = await r.registry.capacity(list);
    await stampDatabase(r.db, keys.publicKey, Math.floor(Date.now() / 1000));
    schema = schemaLine(r);
    say.report.schema = schemaOf(r);
  } finally {
    await r.close();
  }
  writeKeyFile(p.keys, keys, { overwrite: o.force === true });
  say.say(`data: ${p.dir}${hadKeys ? ' (keys replaced: every list has a new epoch; provision every gate again)' : ''}`, { data: p.dir, keys: hadKeys ? 'replaced' : 'created', database: dbName(p) }, hadKeys ? 'keys_replaced' : 'created');
  if (p.db !== dataPaths(o.data).db) say.say(`database: ${dbName(p)}`);
  say.say(schema);
  say.say(`list: ${list} (epoch ${l.epoch}, version ${l.version}, capacity ${cap} credentials)`, { list: { name: list, epoch: l.epoch, version: l.version, capacity: cap } });
  say.say(`public key: ${toHex(keys.publicKey)}`, { publicKey: toHex(keys.publicKey) });
}

// ---------------------------------------------------------------- schema, copy

interface MigrateOptions {
  readonly data: string;
  readonly db?: string;
  readonly json?: boolean;
}

/** Brings the database's schema up to this build's (each step one transaction); refuses a newer one. */
async function migrateCommand(o: MigrateOptions): Promise<void> {
  const p = dataPaths(o.data, o.db);
  const db = await requireDatabase(p, undefined, { schema: false });
  try {
    let r;
    try {
      r = await migrate(db);
    } catch (e) {
      if (e instanceof SchemaError) throw new CliError(e.message, 3);
      throw e;
    }
    if (o.json === true) out(JSON.stringify({ database: dbName(p), from: r.from, to: r.to, steps: r.steps, unchanged: r.steps.length === 0 }));
    else if (r.steps.length === 0) out(`unchanged: ${dbName(p)} is at schema ${r.to}, this build's`);
    else {
      for (const step of r.steps) out(`  ${step}`);
      out(`migrated ${dbName(p)}: schema ${r.from ?? 'none'} -> ${r.to}`);
    }
  } finally {
    await db.close();
  }
}

interface CopyOptions {
  readonly data: string;
  readonly db?: string;
  readonly to: string;
  readonly json?: boolean;
}

/** Copies every table of the central's database into another, empty one (SQLite -> PostgreSQL, or back). */
async function copyCommand(o: CopyOptions): Promise<void> {
  const p = dataPaths(o.data, o.db);
  const target = dataPaths(o.data, o.to, '--to').db;
  if (target === p.db) bad('--to names the database being copied');
  const keys = loadKeys(p);
  const { openDb, StoreOpenError } = await import('../central/store/open-store.js');
  const from = await requireDatabase(p, keys);
  try {
    if (!isPostgresUrl(target) && existsSync(target)) throw new CliError(`--to ${target} exists: copy only into a new SQLite file or an empty PostgreSQL database`, 3);
    let to;
    try {
      to = await openDb(target, { create: true });
    } catch (e) {
      if (e instanceof StoreOpenError) throw new CliError(`--to: ${e.message}`, e.code === 'unreachable' ? 4 : 3);
      throw e;
    }
    const bar = process.stderr.isTTY && o.json !== true ? new SingleBar({ format: 'copying {table} | {total} rows | {seconds} s', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : null;
    const started = Date.now();
    let last = '';
    bar?.start(1, 0, { table: '', total: 0, seconds: '0.0' });
    let result;
    try {
      result = await copyStore(from, to, (x) => {
        bar?.update(0, { table: x.table, total: x.total, seconds: ((Date.now() - started) / 1000).toFixed(1) });
        if (bar === null && o.json !== true && x.table !== last) {
          last = x.table;
          note(`copying ${x.table}`);
        }
      });
    } catch (e) {
      if (e instanceof CopyError) throw new CliError(`${e.message}; nothing copied`, 3);
      if (e instanceof SchemaError) throw new CliError(e.message, 3);
      throw e;
    } finally {
      bar?.stop();
      await to.close();
    }
    const seconds = (Date.now() - started) / 1000;
    if (o.json === true) out(JSON.stringify({ from: dbName(p), to: redactUrl(target), rows: result.total, tables: result.tables, seconds }));
    else {
      out(formatTable(['TABLE', 'ROWS'], Object.entries(result.tables).map(([t, n]) => [t, String(n)])));
      out(`copied ${result.total} rows from ${dbName(p)} to ${redactUrl(target)} in ${seconds.toFixed(1)} s; run the central on it with --db ${redactUrl(target)} (keys stay in ${p.dir})`);
    }
  } finally {
    await from.close();
  }
}

// ---------------------------------------------------------------- registry changes

async function withRegistry<T>(o: { readonly data: string; readonly db?: string }, fn: (r: Registry, p: DataPaths) => Promise<T>): Promise<T> {
  const p = dataPaths(o.data, o.db);
  return withStore(p, loadKeys(p), (s) => fn(s.registry, p));
}

/**
 * What a change did: committed (a new version) or unchanged (it changed nothing,
 * so no version: not an error). With --json one object: unchanged, list,
 * version (the list's version after the command) and the command's own fields.
 */
async function committed(r: Registry, versionBefore: number, what: string, unchangedWhat: string, json: boolean, fields: Record<string, unknown> = {}): Promise<void> {
  const l = await r.list();
  const unchanged = l.version === versionBefore;
  if (json) out(JSON.stringify({ unchanged, list: l.name, version: l.version, ...fields }));
  else if (unchanged) out(`unchanged: ${unchangedWhat}; list ${l.name} stays at version ${l.version}`);
  else out(`${what}; list ${l.name} is now at version ${l.version} (a running \`central serve\` publishes it within its poll interval, or run \`subline central publish\`)`);
}

/** `central import`: the flags of `--sync` (import-sync-command.ts) and the switch itself. */
interface ImportFlags extends SyncFlags {
  readonly sync?: boolean;
}

/** Progress on stderr: a bar on a terminal; a line every 10 % of a large import otherwise. */
function importProgress(): { update: (p: ImportProgress) => void; stop: () => void } {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: 'importing [{bar}] {percentage}% | {rows} rows | {seconds} s | eta {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
    let started_ = false;
    return {
      update: (p) => {
        if (!started_) bar.start(Math.max(1, p.totalBytes), 0, { rows: 0, seconds: seconds() });
        started_ = true;
        bar.update(p.bytes, { rows: p.rows, seconds: seconds() });
      },
      stop: () => {
        if (started_) bar.stop();
      },
    };
  }
  let step = 0;
  return {
    update: (p) => {
      if (p.totalBytes < 4 << 20) return;
      const s = Math.floor((10 * p.bytes) / p.totalBytes);
      if (s > step) {
        step = s;
        process.stderr.write(`importing: ${s * 10}% (${p.rows} rows, ${seconds()} s)\n`);
      }
    },
    stop: () => {},
  };
}

async function importFiles(files: string[], o: ImportFlags): Promise<void> {
  if (o.sync === true) return syncFiles(files, o, importProgress);
  if (o.yes === true) throw new CliError('--yes goes with --sync (it confirms removing more than half of a type)', 2);
  const sources = openImportFiles(files, o.type);
  const p = dataPaths(o.data, o.db);
  const store = await openStore(p, loadKeys(p));
  const r = store.registry;
  const progress = importProgress();
  try {
    r.allowOverCapacity = o.overCapacity === true;
    let s;
    try {
      s = await applyImport(r, sources, { dryRun: o.dryRun === true, every: 5000, progress: progress.update });
    } catch (e) {
      if (e instanceof CapacityError) throw new CliError(`${e.message}; nothing imported (raise it with \`subline central init --capacity N\`, or import with --over-capacity: gates provisioned for ${e.capacity} credentials cannot hold the list)`, 3);
      throw e;
    } finally {
      progress.stop();
    }
    const parts = Object.entries(s.counts)
      .filter(([, n]) => n > 0)
      .map(([t, n]) => `${n} ${t}`);
    const what = `${o.dryRun === true ? 'checked (dry run, nothing imported)' : 'imported'} ${s.rows} rows${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
    if (o.json === true) out(JSON.stringify({ dryRun: o.dryRun === true, unchanged: o.dryRun !== true && s.versionAfter === s.versionBefore, list: (await r.list()).name, rows: s.rows, counts: s.counts, versionBefore: s.versionBefore, versionAfter: s.versionAfter, credentials: (await r.counts()).credentials, capacity: await r.capacity() }));
    else if (o.dryRun === true) out(what);
    else await committed(r, s.versionBefore, `${what} (${s.versionAfter === s.versionBefore + 1 ? `version ${s.versionAfter}` : `versions ${s.versionBefore + 1}..${s.versionAfter}`})`, `${s.rows} rows read, the registry already held all of it`, false);
  } finally {
    await store.close();
  }
}

interface GrantOptions {
  readonly data: string;
  readonly db?: string;
  readonly level: GrantLevel;
  readonly target: string;
  readonly lines?: string;
  readonly directions?: string;
  readonly lanes?: string;
  readonly from?: string;
  readonly until?: string;
  readonly passbackGroup?: string;
  readonly remove?: boolean;
  readonly json?: boolean;
}

/** An institution by id or unique name; an industry by id or code. */
async function resolveTarget(r: Registry, level: GrantLevel | SuspensionLevel, target: string, what: string): Promise<string | number> {
  if (level === 'individual' || level === 'subject') {
    if ((await r.subject(target)) === undefined) bad(`${what}: subject '${target}' does not exist`);
    return target;
  }
  if (/^\d+$/.test(target)) {
    const id = Number(target);
    if (level === 'institution' ? (await r.institution(id)) === undefined : (await r.industry(id)) === undefined) bad(`${what}: ${level} ${id} does not exist`);
    return id;
  }
  if (level === 'institution') {
    const ids = await r.institutionsNamed(target);
    if (ids.length === 0) bad(`${what}: institution '${target}' does not exist`);
    if (ids.length > 1) bad(`${what}: institution name '${target}' is ambiguous (ids ${ids.join(', ')}): use the id`);
    return ids[0] as number;
  }
  const id = await r.industryByCode(target);
  if (id === undefined) bad(`${what}: industry '${target}' does not exist (give its id or code)`);
  return id;
}

async function grant(o: GrantOptions): Promise<void> {
  let spec: GrantSpec | null = null;
  if (o.remove === true) {
    for (const f of ['lines', 'directions', 'lanes', 'from', 'until', 'passbackGroup'] as const) if (o[f] !== undefined) bad(`--remove takes no --${f === 'passbackGroup' ? 'passback-group' : f}`);
  } else {
    for (const f of ['lines', 'directions', 'lanes'] as const) if (o[f] === undefined) bad(`--${f} is required (unless --remove)`);
    const validFrom = o.from !== undefined ? parseTime(o.from, '--from') : undefined;
    const validUntil = o.until !== undefined ? parseTime(o.until, '--until', true) : undefined;
    if (validFrom !== undefined && validUntil !== undefined && validUntil < validFrom) bad('--until is before --from');
    const passbackGroup = o.passbackGroup !== undefined ? parseInteger(o.passbackGroup, '--passback-group', 1, 255) : undefined;
    spec = {
      lines: parseSet(o.lines ?? '', '--lines', LINES),
      directions: parseSet(o.directions ?? '', '--directions', DIRECTIONS),
      lanes: parseSet(o.lanes ?? '', '--lanes', LANES),
      ...(validFrom !== undefined ? { validFrom } : {}),
      ...(validUntil !== undefined ? { validUntil } : {}),
      ...(passbackGroup !== undefined ? { passbackGroup } : {}),
    };
  }
  await withRegistry(o, async (r) => {
    const target = await resolveTarget(r, o.level, o.target, '--target');
    const before = await r.version();
    const id = await registryErrors(() => r.grant(o.level, target, spec));
    const who = `${o.level} ${typeof target === 'number' ? target : `'${target}'`}`;
    await committed(r, before, spec === null ? `grant of ${who} removed` : `grant ${id} set for ${who}`, spec === null ? `${who} has no grant` : `${who} already has grant ${id}`, o.json === true, { level: o.level, target, grant: id });
  });
}

async function revoke(o: { data: string; db?: string; card?: string; uhf?: string; key?: string; json?: boolean }): Promise<void> {
  const given = (['card', 'uhf', 'key'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) bad('give exactly one of --card, --uhf or --key');
  const k = given[0] as 'card' | 'uhf' | 'key';
  const ref: CredentialRef = k === 'key' ? { key: fromHex(parseHex(o.key as string, '--key', 8, 8)) } : { kind: k, rawId: parseHex(o[k] as string, `--${k}`, 1, 64) };
  await withRegistry(o, async (r) => {
    const c = await registryErrors(() => r.credential(ref));
    if (c === undefined) bad(`--${k}: no such credential is enrolled`);
    const before = await r.version();
    await registryErrors(() => r.revokeCredential({ key: c.key }));
    await committed(r, before, `credential ${toHex(c.key)} of subject '${c.subject}' revoked`, `credential ${toHex(c.key)} of subject '${c.subject}' is already revoked`, o.json === true, { key: toHex(c.key), subject: c.subject });
  });
}

async function suspension(on: boolean, o: { data: string; db?: string; subject?: string; institution?: string; industry?: string; json?: boolean }): Promise<void> {
  const given = (['subject', 'institution', 'industry'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) bad('give exactly one of --subject, --institution or --industry');
  const level = given[0] as SuspensionLevel;
  await withRegistry(o, async (r) => {
    const target = await resolveTarget(r, level, o[level] as string, `--${level}`);
    const before = await r.version();
    await registryErrors(() => (on ? r.suspend(level, target) : r.resume(level, target)));
    const who = `${level} ${typeof target === 'number' ? target : `'${target}'`}`;
    await committed(r, before, `${who} ${on ? 'suspended' : 'resumed'}`, `${who} is ${on ? 'already suspended' : 'not suspended'}`, o.json === true, { level, target, suspended: on });
  });
}

// ---------------------------------------------------------------- serve, publish

interface ServeOptions extends BrokerAuthFlags, ConsoleFlags {
  readonly data: string;
  readonly db?: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly list: string;
  readonly headInterval: string;
  readonly poll: string;
  readonly connectTimeout: string;
  readonly syncBudget: string;
  readonly quiet?: boolean;
}

function parseBudget(value: string): SyncBudgetOptions {
  const m = /^(\d+)\/(\d+)\/(\d+(?:\.\d+)?)$/.exec(value.trim());
  if (m === null) bad(`--sync-budget '${value}' must be REQUESTS/BYTES/SECONDS, e.g. 600/16777216/10`);
  const [, r, b, w] = m as unknown as [string, string, string, string];
  return { requests: parseInteger(r, '--sync-budget requests', 1, 1_000_000), bytes: parseInteger(b, '--sync-budget bytes', 1024, 2 ** 40), windowSeconds: parseSeconds(w, '--sync-budget seconds', 1, 86400) };
}

function parseSeconds(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n >= min && n <= max)) bad(`${what} must be a number of seconds in ${min}..${max} (got '${value}')`);
  return n;
}

async function openCentral(o: BrokerAuthFlags & { data: string; db?: string; broker: string; topicRoot: string; list: string }, extra: { headIntervalSeconds?: number; pollIntervalMs?: number; subscribe?: boolean; connectTimeoutMs?: number; syncBudget?: SyncBudgetOptions; log?: (l: string) => void }): Promise<{ central: Central; store: CentralStore }> {
  const p = dataPaths(o.data, o.db);
  checkBrokerUrl(o.broker);
  checkTopicRoot(o.topicRoot);
  checkId(o.list, '--list');
  const keys = loadKeys(p);
  const brokerAuth = resolveBrokerAuth(o, o.broker, p);
  const { Central } = await import('../central/central.js');
  const store = await openStore(p, keys);
  try {
    await requireList(store.registry, o.list);
    const central = await Central.open({ ...(brokerAuth !== undefined ? { brokerAuth } : {}), db: store, signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: o.broker, topicRoot: o.topicRoot, list: o.list, ...extra });
    return { central, store };
  } catch (e) {
    await store.close();
    throw e;
  }
}

async function startCentral(central: Central, store: CentralStore, broker: string): Promise<void> {
  try {
    await central.start();
  } catch (e) {
    await central.close();
    await store.close();
    throw new CliError(`${e instanceof Error ? e.message : String(e)} (is the broker running at ${broker}?)`, 4);
  }
}

async function serve(o: ServeOptions): Promise<void> {
  const headIntervalSeconds = parseSeconds(o.headInterval, '--head-interval', 1, 3600);
  const poll = parseSeconds(o.poll, '--poll', 0.1, 60);
  const log = o.quiet === true ? undefined : (line: string) => note(`${new Date().toISOString()} ${line}`);
  const connectTimeoutMs = Math.round(parseSeconds(o.connectTimeout, '--connect-timeout', 0.1, 3600) * 1000);
  const syncBudget = parseBudget(o.syncBudget);
  const { central, store } = await openCentral(o, { headIntervalSeconds, pollIntervalMs: Math.round(poll * 1000), connectTimeoutMs, syncBudget, ...(log !== undefined ? { log } : {}) });
  await startCentral(central, store, o.broker);
  let web;
  try {
    web = await startConsole(central, o, { pkiDir: dataPaths(o.data, o.db).pki, ...(log !== undefined ? { log } : {}) });
  } catch (e) {
    await central.close();
    await store.close();
    throw e;
  }
  const h = central.head;
  out(`central: serving list ${central.list} (epoch ${h?.epoch ?? '?'}, version ${h?.version ?? '?'}) on ${o.broker} under '${o.topicRoot}' from ${store.db.engine === 'postgres' ? `PostgreSQL ${store.db.where}` : store.db.where}, public key ${toHex(central.publicKey)}; Ctrl-C stops`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      log?.(`${signal}: stopping`);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await web?.close();
  await central.close();
  await store.close();
  out('central: stopped');
}

interface PublishOptions extends BrokerAuthFlags {
  readonly data: string;
  readonly db?: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly list: string;
  readonly wait: string;
  readonly json?: boolean;
}

async function publish(o: PublishOptions): Promise<void> {
  const waitMs = Math.round(parseSeconds(o.wait, '--wait', 0.1, 600) * 1000);
  const { central, store } = await openCentral(o, { subscribe: false, connectTimeoutMs: waitMs });
  const mark = central.publishedMark;
  const started = Date.now();
  await startCentral(central, store, o.broker);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const acked = await Promise.race([
    central.idle().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, waitMs - (Date.now() - started)));
    }),
  ]);
  clearTimeout(timer);
  const h = central.head;
  const deltas = central.stats.published.deltas;
  const errors = central.stats.published.errors;
  const now = central.publishedMark;
  await central.close();
  await store.close();
  if (!acked) throw new CliError(`the broker ${o.broker} did not acknowledge everything within ${o.wait} s`, 4);
  if (errors > 0) throw new CliError(`${errors} publish(es) failed`, 1);
  const range = deltas > 0 && now !== undefined ? ` (versions ${now.version - deltas + 1}..${now.version})` : mark !== undefined ? ' (all were published already)' : '';
  if (o.json === true) {
    out(JSON.stringify({ list: central.list, epoch: h?.epoch ?? null, version: h?.version ?? null, deltas, firstDelta: deltas > 0 && now !== undefined ? now.version - deltas + 1 : null, broker: o.broker }));
    return;
  }
  out(`published head of list ${central.list} (epoch ${h?.epoch ?? '?'}, version ${h?.version ?? '?'}) and ${deltas} delta(s)${range} to ${o.broker}`);
}

// ---------------------------------------------------------------- read-outs

/** The stores of an initialised central for reading (no keys: nothing is signed). */
const openForReading = (o: { readonly data: string; readonly db?: string }): Promise<CentralStore> => openStore(dataPaths(o.data, o.db));

interface GatesOptions {
  readonly data: string;
  readonly db?: string;
  readonly list: string;
  readonly format: 'table' | 'json';
  readonly json?: boolean;
  readonly decommission?: string;
}

async function decommission(o: GatesOptions): Promise<void> {
  const gate = checkId(o.decommission as string, '--decommission');
  const store = await openForReading(o);
  try {
    const reg = store.identities;
    const cur = await reg.get(gate);
    if (cur === undefined) throw new CliError(`gate ${gate} is not provisioned here (see \`subline central gates\`)`, 3);
    if (cur.state === 'decommissioned') throw new CliError(`gate ${gate} was already decommissioned at ${isoSeconds(cur.decommissionedAt ?? 0)}`, 3);
    const at = Math.floor(Date.now() / 1000);
    await reg.decommission(gate, at);
    // Its TLS certificates go on the CRL: the broker refuses the gate once it reloads it.
    const pkiDir = dataPaths(o.data, o.db).pki;
    const { DeploymentPki } = await import('../pki/deployment-pki.js');
    const revoked = DeploymentPki.exists(pkiDir) ? await (await DeploymentPki.load(pkiDir)).revoke(gate) : 0;
    if (o.json === true || o.format === 'json') out(JSON.stringify({ gate, state: 'decommissioned', keyId: cur.keyId, at: isoSeconds(at), certificatesRevoked: revoked }, null, 2));
    else {
      out(`gate ${gate} decommissioned: the central refuses its messages from now on (a running \`central serve\` too); provision a replacement under a new id`);
      out(`${revoked} TLS certificate(s) of ${gate} revoked (${pkiDir}/crl.pem): run \`subline broker config\` again and reload the broker (SIGHUP) so that it refuses the gate too`);
    }
  } finally {
    await store.close();
  }
}

async function gates(o: GatesOptions): Promise<void> {
  const list = checkId(o.list, '--list');
  const store = await openForReading(o);
  let rows: GateRecord[];
  let identities: GateIdentity[];
  let refusals: RefusalCount[];
  let current: { epoch: number; version: number } | undefined;
  try {
    rows = await store.state.gates();
    identities = await store.identities.all();
    refusals = await RefusalLog.read(store.db);
    current = (await store.registry.lists()).find((l) => l.name === list);
  } finally {
    await store.close();
  }
  const byId = new Map(identities.map((g) => [g.gate, g]));
  const presence = new Map(rows.map((g) => [g.status.gate, g]));
  const refusedBy = new Map<string, Record<string, number>>();
  for (const r of refusals) {
    const m = refusedBy.get(r.gate) ?? {};
    m[r.cause] = r.count;
    refusedBy.set(r.gate, m);
  }
  const ids = [...new Set([...byId.keys(), ...presence.keys()])].sort();
  const view = ids.map((id) => {
    const g = presence.get(id);
    const held = g?.status.lists.find((l) => l.list === list);
    // Negative: the gate holds a version this database never made (restored from an older backup).
    const behind = held !== undefined && current !== undefined && held.epoch === current.epoch ? current.version - held.version : null;
    const atGate: Record<string, number> = {};
    for (const r of g?.status.refused ?? []) atGate[r.cause] = r.count;
    return { id, identity: byId.get(id), g, held, behind, atCentral: refusedBy.get(id) ?? {}, atGate };
  });
  // Refusals from ids that are not provisioned gates (impostors, decommissioned or mistyped ids).
  const strangers = [...refusedBy.entries()].filter(([id]) => !byId.has(id) && !presence.has(id));
  const sum = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);
  if (o.json === true || o.format === 'json') {
    out(
      JSON.stringify(
        {
          gates: view.map(({ id, identity, g, held, behind, atCentral, atGate }) => ({
            gate: id,
            identity: identity === undefined ? null : { state: identity.state, site: identity.site, list: identity.list, keyId: identity.keyId, provisionedAt: isoSeconds(identity.provisionedAt), decommissionedAt: identity.decommissionedAt === null ? null : isoSeconds(identity.decommissionedAt) },
            state: g?.status.state ?? 'never seen',
            boot: g?.status.boot ?? null,
            conn: g?.status.conn ?? null,
            at: g === undefined ? null : isoSeconds(g.status.at),
            firmware: g?.status.firmware ?? null,
            line: g?.status.line ?? identity?.line ?? null,
            direction: g?.status.direction ?? identity?.direction ?? null,
            lane: g?.status.lane ?? identity?.lane ?? null,
            lists: g?.status.lists ?? [],
            whitelist: held === undefined ? null : { list, epoch: held.epoch, version: held.version, behind },
            backlog: g?.status.backlog ?? null,
            refused: { atCentral, atGate },
            receivedAt: g === undefined ? null : isoSeconds(g.receivedAt),
            lastSeen: g === undefined || g.lastSeen <= 0 ? null : isoSeconds(g.lastSeen),
          })),
          refusedFromUnknownIds: Object.fromEntries(strangers),
        },
        null,
        2,
      ),
    );
    return;
  }
  if (view.length === 0 && strangers.length === 0) {
    note('no gate is provisioned and none has been heard from yet (`subline provision` registers a gate; presence is recorded by `subline central serve`)');
    return;
  }
  const whitelist = (held: (typeof view)[number]['held'], behind: number | null): string => {
    if (held === undefined) return 'none';
    if (behind === null) return `${list} v${held.version} (other epoch)`;
    return `${list} v${held.version}${behind > 0 ? ` (${behind} behind)` : behind < 0 ? ` (AHEAD of the central by ${-behind})` : ''}`;
  };
  out(
    formatTable(
      ['GATE', 'IDENTITY', 'STATE', 'BOOT', 'LINE', 'DIRECTION', 'LANE', 'WHITELIST', 'BACKLOG', 'REFUSED (CENTRAL/GATE)', 'LAST SEEN'],
      view.map(({ id, identity, g, held, behind, atCentral, atGate }) => [
        id,
        identity === undefined ? 'not provisioned' : `${identity.state} (key ${identity.keyId})`,
        g?.status.state ?? 'never seen',
        g === undefined ? '-' : String(g.status.boot),
        g?.status.line ?? identity?.line ?? '-',
        g?.status.direction ?? identity?.direction ?? '-',
        g?.status.lane ?? identity?.lane ?? '-',
        g === undefined ? '-' : whitelist(held, behind),
        g === undefined ? '-' : String(g.status.backlog),
        `${sum(atCentral)}/${sum(atGate)}`,
        g === undefined || g.lastSeen <= 0 ? '-' : isoSeconds(g.lastSeen),
      ]),
    ),
  );
  for (const { id, atCentral, atGate } of view) {
    const parts = [...Object.entries(atCentral).map(([c, n]) => `central ${c} ${n}`), ...Object.entries(atGate).map(([c, n]) => `gate ${c} ${n}`)];
    if (parts.length > 0) out(`  ${id} refused: ${parts.join(', ')}`);
  }
  for (const [id, m] of strangers) out(`  refused from ${id} (not a provisioned gate): ${Object.entries(m).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  const ahead = view.filter((v) => v.behind !== null && v.behind < 0).map((v) => v.id);
  if (ahead.length > 0) note(`warning: ${ahead.join(', ')} hold(s) a version of list ${list} newer than this database's (restored from an older backup?): run \`subline central init --new-epoch\` so that every gate installs the whole image again (docs/DEPLOYMENT.md, "After a restore")`);
  note("(state, boot, whitelist, backlog and the gate's refusals are those of each gate's last verified status message; refused at the central: messages that failed verification or checks, per cause; last seen: the last verified message the gate itself sent — a will or a retained status read at start does not count)");
}

async function certs(o: { data: string; db?: string; operator?: string; json?: boolean }): Promise<void> {
  const p = dataPaths(o.data, o.db);
  const { DeploymentPki, operatorIdentity } = await import('../pki/deployment-pki.js');
  if (!DeploymentPki.exists(p.pki)) throw new CliError(`no deployment PKI in ${p.pki}: run \`subline central init --data ${p.dir}\``, 3);
  const pki = await DeploymentPki.load(p.pki);
  if (o.operator !== undefined) {
    const name = checkId(o.operator, '--operator');
    const dir = join(p.pki, 'operators');
    if (existsSync(join(dir, `${name}.crt.pem`))) throw new CliError(`operator ${name} already has a certificate in ${dir} (revoke it first, or choose another name)`, 3);
    await pki.issueOperator(name);
    if (o.json === true) out(JSON.stringify({ operator: name, identity: operatorIdentity(name), cert: join(dir, `${name}.crt.pem`), key: join(dir, `${name}.key.pem`), ca: join(p.pki, 'ca.crt.pem') }, null, 2));
    else out(`operator ${name}: ${join(dir, `${name}.crt.pem`)} and its key ${join(dir, `${name}.key.pem`)} (mode 0600); identity ${operatorIdentity(name)}; use with --cert/--key (run \`subline broker config\` again so the broker's ACL knows the operator)`);
    return;
  }
  const list = pki.issued();
  if (o.json === true) {
    out(JSON.stringify(list, null, 2));
    return;
  }
  out(formatTable(['SERIAL', 'IDENTITY', 'ROLE', 'NOT AFTER', 'REVOKED'], list.map((c) => [c.serial, c.cn, c.role, c.notAfter.replace(/\.\d{3}Z$/, 'Z'), c.revokedAt?.replace(/\.\d{3}Z$/, 'Z') ?? '-'])));
}
