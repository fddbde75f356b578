// The central's database from the command line (issue 18): `central migrate`
// (a current schema is left alone; an older one makes every other command
// exit 3 until it is migrated, then they work again; a newer one is refused
// by every command, migrate included, and nothing is changed), `central copy`
// (a populated SQLite central copied to PostgreSQL and from there to a new
// SQLite file: every table row for row, the registry's tables and list
// versions, and what `central gates` and `central events` print, identical on
// all three; a non-empty target refused and untouched), and `--db` that is
// not a database this build reads (exit 2) or a PostgreSQL server that does
// not answer (exit 4, no stack trace).

import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRecord, encodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { fromHex, toHex } from '../protocol/hex.js';
import { Reason } from '../protocol/reasons.js';
import type { EventBatchMessage } from '../protocol/messages.js';
import { freeLoopbackPorts } from '../host-sim/broker.js';
import { readKeyFile } from '../host-sim/central/keys.js';
import { RefusalLog } from '../host-sim/central/refusal-log.js';
import { openCentralStore, openDb, type CentralStore } from '../host-sim/central/store/open-store.js';
import { COPY_ORDER, SCHEMA_VERSION, TABLE_KEYS } from '../host-sim/central/store/schema.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { runCli, tempDir, type CliResult } from './helpers/cli.js';
import { engineSuites, notRun, postgresMissing, postgresServer, type Engine } from './helpers/store-engines.js';

// ---------------------------------------------------------------- helpers

function show(r: CliResult): string {
  return `exit ${String(r.code)}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Runs `subline args...`: the exit code, optionally a message on stderr, and never a stack trace. */
async function cli(args: readonly string[], code: number, stderr?: RegExp, env?: Record<string, string>): Promise<CliResult> {
  const r = await runCli(args, env !== undefined ? { env } : {});
  assert.is(r.code, code, `subline ${args.join(' ')}\n${show(r)}`);
  if (stderr !== undefined) assert.match(r.stderr, stderr, show(r));
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `no stack trace\n${show(r)}`);
  return r;
}

/** Runs fn over items, n at a time (each CLI run is a process). */
async function parallel<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
    }),
  );
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const CARD = (n: number): string => `c000000${n}`;
const GATE = 'fl-in-t01';
const dead = 'mqtt://127.0.0.1:9'; // nothing listens: a command that got as far as the broker would exit 4

/** `central init` of a new data directory on `db` (a SQLite path or a postgres:// URL); its --data/--db arguments. */
async function initData(db: string): Promise<{ data: string; args: string[] }> {
  const data = tempDir('subline-cli-store-');
  const args = ['--data', data, '--db', db];
  await cli(['central', 'init', ...args], 0);
  return { data, args };
}

/** The stores with the data directory's keys (the caller closes them). */
function openWithKeys(data: string, db: string): Promise<CentralStore> {
  const k = readKeyFile(join(data, 'keys.json'));
  return openCentralStore(db, { registry: { signingKey: k.signingKey, deploymentKey: k.deploymentKey } });
}

/** Imports 2 industries, 2 institutions, 3 people with cards, 1 vehicle and grants. */
async function importRegistry(data: string, args: readonly string[]): Promise<void> {
  const f = (name: string, text: string): string => {
    writeFileSync(join(data, name), text);
    return join(data, name);
  };
  const files = [
    f('industries.csv', 'code,name\nai,Artificial intelligence\nbiomed,Biomedicine\n'),
    f('institutions.csv', 'name,industry\nQuantum Science Centre,ai\nFuture Networks Institute,1\n'),
    f('people.csv', `id,name,institution,card\np-1,Li Wei,Quantum Science Centre,${CARD(1)}\np-2,Chan Tai Man,1,${CARD(2)}\np-3,Wong Mei,0,"${CARD(3)};${CARD(4)}"\n`),
    f('vehicles.json', JSON.stringify({ vehicles: [{ id: 'v-1', name: 'Lab van', institution: 0, uhf: ['e2801170000002'] }] })),
    f('grants.csv', 'level,target,lines,directions,lanes,valid_until\ninstitution,Quantum Science Centre,"first,second","in,out","person,vehicle",2099-12-31\nindividual,p-2,first,in,person,\nindustry,biomed,"first,second","in,out",goods,\n'),
  ];
  await cli(['central', 'import', ...args, ...files], 0);
}

/** Every table of a database, row for row: SELECT * ORDER BY its primary key; bytes as hex, integers as numbers, columns by name. */
async function dump(target: string): Promise<Record<string, unknown[]>> {
  const db = await openDb(target);
  try {
    const out: Record<string, unknown[]> = {};
    for (const table of [...(await db.tables())].sort()) {
      const keys = TABLE_KEYS[table];
      if (keys === undefined) throw new Error(`${target}: table ${table} is not in the schema's TABLE_KEYS`);
      const rows = await db.all<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY ${keys.join(', ')}`);
      out[table] = rows.map((row) =>
        Object.fromEntries(
          Object.keys(row)
            .sort()
            .map((k) => {
              const v = row[k];
              return [k, v instanceof Uint8Array ? `x'${toHex(v)}'` : typeof v === 'bigint' ? Number(v) : v];
            }),
        ),
      );
    }
    return out;
  } finally {
    await db.close();
  }
}

/** A gate's journal records 1..n of one epoch (decision and passage events for the given keys). */
function journal(epoch: number, keys: readonly Uint8Array[], time: number): Uint8Array[] {
  const rec = createRecord();
  return keys.map((key, i) => {
    const b = new Uint8Array(RECORD_BYTES);
    rec.time = time + i;
    rec.type = i % 2 === 0 ? EventType.decision_granted : EventType.decision_denied;
    rec.reason = i % 2 === 0 ? Reason.granted : Reason.unknown_credential;
    rec.key.set(key);
    encodeRecord(rec, i + 1, epoch, b, 0);
    return b;
  });
}

/** Records first..first+count-1 of a journal as the gate sends them: hash-chained from the chain before `first`. */
function batch(gate: string, epoch: number, recs: readonly Uint8Array[], first: number, count: number): EventBatchMessage {
  let prev: Uint8Array = new Uint8Array(32);
  for (let i = 0; i < first - 1; i++) prev = sha256Pair(prev, recs[i] as Uint8Array);
  const slice = recs.slice(first - 1, first - 1 + count);
  let chain = prev;
  for (const r of slice) chain = sha256Pair(chain, r);
  const records = new Uint8Array(slice.length * RECORD_BYTES);
  slice.forEach((r, i) => records.set(r, i * RECORD_BYTES));
  return { gate, epoch, first, count: slice.length, records, prev, chain };
}

/** The registry as the stores read it: every list with its version, and the tables of each. */
async function registryView(data: string, db: string): Promise<string> {
  const s = await openWithKeys(data, db);
  try {
    const lists = await s.registry.lists();
    const tables: unknown[] = [];
    for (const l of lists) tables.push(await s.registry.tables(l.name));
    return JSON.stringify({ lists, counts: await s.registry.counts(), tables }, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));
  } finally {
    await s.close();
  }
}

/** Every command that opens the central's database (with --data/--db appended), and a file it must not write. */
function everyCommand(scratch: string): string[][] {
  return [
    ['central', 'revoke', '--card', CARD(1)],
    ['central', 'suspend', '--subject', 'p-1'],
    ['central', 'resume', '--subject', 'p-1'],
    ['central', 'grant', '--level', 'individual', '--target', 'p-1', '--remove'],
    ['central', 'import', join(scratch, 'more.csv')],
    ['central', 'gates'],
    ['central', 'gates', '--decommission', GATE],
    ['central', 'events'],
    ['central', 'events', '--conflicts'],
    ['central', 'serve', '--broker', dead, '--connect-timeout', '1'],
    ['central', 'publish', '--broker', dead, '--wait', '1'],
    ['provision', '--gate', 'fl-in-t09', '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', join(scratch, 'g9.cbor')],
    ['gate', 'open', GATE, '--broker', dead, '--wait', '1'],
    ['gate', 'status', GATE, '--broker', dead, '--wait', '1'],
    ['broker', 'config', '--out', join(scratch, 'broker')],
    ['central', 'copy', '--to', join(scratch, 'copy.db')],
  ];
}

/** A SQL statement on a database (a test's hand on the schema: what an older or newer build left). */
async function sql(target: string, ...statements: string[]): Promise<void> {
  const db = await openDb(target);
  try {
    for (const s of statements) await db.run(s);
  } finally {
    await db.close();
  }
}

// ---------------------------------------------------------------- central migrate

engineSuites('cli central migrate', (test, engine: Engine) => {
  test('a current schema: unchanged (text and --json), nothing written', async () => {
    const db = await engine.fresh();
    const { data, args } = await initData(db);
    try {
      const before = await dump(db);
      const [text, json] = await Promise.all([cli(['central', 'migrate', ...args], 0), cli(['central', 'migrate', ...args, '--json'], 0)]);
      assert.match(text.stdout, new RegExp(`^unchanged: ${escapeRe(db)} is at schema ${SCHEMA_VERSION}, this build's$`, 'm'), show(text));
      assert.equal(JSON.parse(json.stdout), { database: db, from: SCHEMA_VERSION, to: SCHEMA_VERSION, steps: [], unchanged: true });
      assert.equal(await dump(db), before);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  test('an older schema: every other command exits 3 naming `central migrate` and changes nothing; migrate applies the step; then they work again', async () => {
    const db = await engine.fresh();
    const { data, args } = await initData(db);
    const scratch = tempDir('subline-cli-store-');
    try {
      await importRegistry(data, args);
      await cli(['central', 'revoke', ...args, '--card', CARD(3)], 0);
      const view = await registryView(data, db);
      // What a schema 1 database lacks: a column added in 2 on two tables, and a table created on first use.
      await sql(db, 'ALTER TABLE credentials DROP COLUMN revoked_at', 'ALTER TABLE lists DROP COLUMN capacity', 'DROP TABLE refusals', "UPDATE meta SET value = '1' WHERE key = 'schema'");
      writeFileSync(join(scratch, 'more.csv'), 'code,name\nquantum,Quantum science\n');
      const before = await dump(db);
      await parallel(everyCommand(scratch), 4, async (c) => {
        await cli([...c, ...args], 3, new RegExp(`${escapeRe(db)} has schema 1, this build reads ${SCHEMA_VERSION}: run \`subline central migrate\``));
      });
      assert.equal(await dump(db), before, 'nothing changed by a refused command');
      assert.not.ok(existsSync(join(scratch, 'g9.cbor')) || existsSync(join(scratch, 'copy.db')), 'nothing written');

      const m = await cli(['central', 'migrate', ...args], 0);
      assert.match(m.stdout, /^ {2}1 -> 2: 1 table\(s\) created \(refusals\), 2 column\(s\) added \(credentials\.revoked_at, lists\.capacity\)$/m, show(m));
      assert.match(m.stdout, /^ {2}2 -> 3: \d+ event column\(s\) added, \d+ stored event\(s\) decoded$/m, show(m));
      assert.match(m.stdout, /^ {2}3 -> 4: operators table and alarm index created$/m, show(m));
      assert.match(m.stdout, new RegExp(`^migrated ${escapeRe(db)}: schema 1 -> ${SCHEMA_VERSION}$`, 'm'));
      assert.equal(JSON.parse((await cli(['central', 'migrate', ...args, '--json'], 0)).stdout), { database: db, from: SCHEMA_VERSION, to: SCHEMA_VERSION, steps: [], unchanged: true });
      // The data came through: the same registry, and changes make the next version.
      assert.is(await registryView(data, db), view, 'the registry as before');
      const s = await openWithKeys(data, db);
      try {
        assert.is(await s.registry.version(), 2);
        assert.ok((await s.registry.credentials('p-3')).some((x) => x.revoked), 'the revocation kept');
      } finally {
        await s.close();
      }
      assert.match((await cli(['central', 'revoke', ...args, '--card', CARD(1)], 0)).stdout, /list main is now at version 3/);
      const gates = await cli(['central', 'gates', ...args, '--json'], 0);
      assert.equal((JSON.parse(gates.stdout) as { gates: unknown[] }).gates, []);
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('a newer schema: every command exits 3 with "upgrade subline", migrate and init too, and nothing is changed', async () => {
    const db = await engine.fresh();
    const { data, args } = await initData(db);
    const scratch = tempDir('subline-cli-store-');
    try {
      await importRegistry(data, args);
      await sql(db, "UPDATE meta SET value = '99' WHERE key = 'schema'");
      writeFileSync(join(scratch, 'more.csv'), 'code,name\nquantum,Quantum science\n');
      const before = await dump(db);
      const refused = new RegExp(`${escapeRe(db)} has schema 99, newer than this build reads \\(${SCHEMA_VERSION}\\): upgrade subline`);
      await parallel([...everyCommand(scratch), ['central', 'migrate'], ['central', 'migrate', '--json'], ['central', 'init'], ['central', 'init', '--list', 'lab']], 4, async (c) => {
        await cli([...c, ...args], 3, refused);
      });
      assert.equal(await dump(db), before, 'nothing changed');
      assert.not.ok(existsSync(join(scratch, 'g9.cbor')) || existsSync(join(scratch, 'copy.db')), 'nothing written');
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- central copy

const missing = postgresMissing();
if (missing !== null) notRun('cli central copy (SQLite -> PostgreSQL -> SQLite)', missing);
else {
  const copy = suite('cli central copy (SQLite -> PostgreSQL -> SQLite)');
  let databases = 0;
  /** A new, empty PostgreSQL database on the test server. */
  const pgEngine = async (): Promise<string> => {
    const s = await postgresServer();
    const name = `copy${process.pid}_${++databases}`;
    await sql(s.url, `CREATE DATABASE ${name}`);
    return s.url.replace(/\/subline$/, `/${name}`);
  };

  const dirs: string[] = [];
  copy.after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A SQLite central with a row in every table: registry, two lists, revocations, suspensions, a retired grant, gates (one decommissioned), events and conflicts, presence, the published mark, refusals. */
  async function populatedCentral(): Promise<{ data: string; db: string; args: string[] }> {
    const data = tempDir('subline-cli-copy-');
    dirs.push(data);
    const db = join(data, 'central.db');
    await cli(['central', 'init', '--data', data], 0);
    await cli(['central', 'init', '--data', data, '--list', 'lab'], 0);
    const args = ['--data', data]; // the default database: DATA/central.db
    await importRegistry(data, args);
    for (const c of [
      ['central', 'revoke', '--card', CARD(2)],
      ['central', 'suspend', '--subject', 'p-3'],
      ['central', 'suspend', '--institution', '1'],
      ['central', 'grant', '--level', 'industry', '--target', 'biomed', '--remove'],
    ]) await cli([...c, ...args], 0);
    const provision = (gate: string) => cli(['provision', ...args, '--gate', gate, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--journal-epoch', '77', '--out', join(data, `${gate}.cbor`)], 0);
    await provision(GATE);
    await provision('fl-in-t02');
    await cli(['central', 'gates', ...args, '--decommission', 'fl-in-t02'], 0);

    const s = await openWithKeys(data, db);
    try {
      const keys = [s.registry.credentialKey('card', fromHex(CARD(1))), s.registry.credentialKey('card', fromHex(CARD(2))), new Uint8Array(8).fill(0xab), s.registry.credentialKey('card', fromHex(CARD(3)))];
      const recs = journal(77, keys, 1_800_000_000);
      assert.ok((await s.events.ingest(batch(GATE, 77, recs, 1, 2))).ack !== null);
      assert.ok((await s.events.ingest(batch(GATE, 77, recs, 3, 2))).ack !== null);
      // The same epoch restarted by a gate (different records at held seqs): kept as conflicts.
      const other = journal(77, [keys[2] as Uint8Array, keys[0] as Uint8Array], 1_800_000_500);
      await s.events.ingest(batch(GATE, 77, other, 1, 2));
      assert.ok((await s.events.conflictCount()) > 0, 'conflicts stored');
      await s.registry.addSchedule(new Uint8Array(48).fill(0x11));
      await s.state.putStatus({ gate: GATE, state: 'online', journal: 77, boot: 3, conn: 1, at: 1_800_000_100, firmware: 'node-sim 1.0', line: 'first', direction: 'in', lane: 'person', lists: [{ list: 'main', epoch: 1, version: 1 }], backlog: 4, refused: [{ cause: 'bad_mac', count: 2 }] }, 1_800_000_101_000, 1_800_000_102_000);
      const main = await s.registry.list('main');
      await s.state.setPublished('main', { epoch: main.epoch, version: main.version - 1 }, 1_800_000_103);
      const refusals = new RefusalLog({ db: s.db, clock: () => 1_800_000_104 });
      refusals.count(GATE, 'bad_mac');
      refusals.count('fl-in-t77', 'unknown_gate');
      await refusals.flush();
    } finally {
      await s.close();
    }
    return { data, db, args };
  }

  /** What the read-out commands print of a database (the keys of `data`). */
  async function readOuts(data: string, db: string): Promise<string[]> {
    const a = ['--data', data, '--db', db];
    const runs = await Promise.all([
      cli(['central', 'gates', ...a, '--json'], 0),
      cli(['central', 'events', ...a, '--format', 'json'], 0),
      cli(['central', 'events', ...a, '--format', 'csv'], 0),
      cli(['central', 'events', ...a, '--conflicts'], 0),
    ]);
    return runs.map((r) => r.stdout.replaceAll(db, 'DB'));
  }

  copy('a populated SQLite central copied to PostgreSQL and back to a new SQLite file: every table row for row, the registry and list versions, gates and events identical', async () => {
    const { data, db } = await populatedCentral();
    const original = await dump(db);
    for (const t of COPY_ORDER) assert.ok((original[t]?.length ?? 0) > 0, `the original has rows in ${t} (a table the copy skipped would show)`);
    assert.equal(Object.keys(original).sort(), [...COPY_ORDER].sort(), 'every table of the schema, and no other');

    const pg = await pgEngine();
    const there = await cli(['central', 'copy', '--data', data, '--to', pg, '--json'], 0);
    const j = JSON.parse(there.stdout) as { from: string; to: string; rows: number; tables: Record<string, number> };
    assert.equal([j.from, j.to], [db, pg]);
    assert.equal(j.tables, Object.fromEntries(COPY_ORDER.map((t) => [t, original[t]?.length ?? 0])), 'rows per table');
    assert.is(j.rows, Object.values(original).reduce((n, rows) => n + rows.length, 0));

    const back = join(tempDir('subline-cli-copy-'), 'back.db');
    dirs.push(join(back, '..'));
    const text = await cli(['central', 'copy', '--data', data, '--db', pg, '--to', back], 0);
    assert.match(text.stdout, new RegExp(`^copied ${j.rows} rows from ${escapeRe(pg)} to ${escapeRe(back)} in [\\d.]+ s; run the central on it with --db ${escapeRe(back)}`, 'm'), show(text));
    assert.match(text.stdout, /^TABLE\s+ROWS$/m);

    assert.equal(await dump(pg), original, 'PostgreSQL: every row of every table');
    assert.equal(await dump(back), original, 'SQLite again: every row of every table');
    const view = await registryView(data, db);
    assert.is(await registryView(data, pg), view, 'registry tables and list versions on PostgreSQL');
    assert.is(await registryView(data, back), view, 'registry tables and list versions on the SQLite copy');
    const [a, b, c] = await Promise.all([readOuts(data, db), readOuts(data, pg), readOuts(data, back)]);
    assert.ok((JSON.parse(a[1] as string) as unknown[]).length === 4 && (JSON.parse(a[3] as string) as unknown[]).length > 0, 'events and conflicts to compare');
    assert.equal(b, a, 'central gates / events print the same from PostgreSQL');
    assert.equal(c, a, 'and from the SQLite copy');

    // The copy is a central: the next change is the next version of the list, signed with the same keys.
    const main = (JSON.parse(view) as { lists: { name: string; version: number }[] }).lists.find((l) => l.name === 'main');
    assert.match((await cli(['central', 'revoke', '--data', data, '--db', pg, '--card', CARD(1)], 0)).stdout, new RegExp(`list main is now at version ${(main?.version ?? 0) + 1}`));
  });

  copy('copy refuses a target that holds a central (3, target untouched), a SQLite file that exists, and its own database', async () => {
    const data = tempDir('subline-cli-copy-');
    dirs.push(data);
    const pg = await pgEngine();
    await cli(['central', 'init', '--data', data], 0);
    await importRegistry(data, ['--data', data]);
    const other = tempDir('subline-cli-copy-');
    dirs.push(other);
    await cli(['central', 'init', '--data', other, '--db', pg], 0); // another central's database
    const before = await dump(pg);
    const refused = await cli(['central', 'copy', '--data', data, '--to', pg], 3, new RegExp(`${escapeRe(pg)} already holds a subline central \\(schema ${SCHEMA_VERSION}\\): copy only into an empty database; nothing copied`));
    assert.is(refused.stdout, '');
    assert.equal(await dump(pg), before, 'the target is untouched');
    // After a copy, again into the same (now non-empty) database: refused too.
    const pg2 = await pgEngine();
    await cli(['central', 'copy', '--data', data, '--to', pg2], 0);
    const copied = await dump(pg2);
    await cli(['central', 'copy', '--data', data, '--to', pg2, '--json'], 3, /already holds a subline central/);
    assert.equal(await dump(pg2), copied);
    const file = join(other, 'exists.db');
    writeFileSync(file, 'not empty');
    await cli(['central', 'copy', '--data', data, '--to', file], 3, /exists: copy only into a new SQLite file or an empty PostgreSQL database/);
    await cli(['central', 'copy', '--data', data, '--to', join(data, 'central.db')], 2, /--to names the database being copied/);
    await cli(['central', 'copy', '--data', data, '--db', pg2, '--to', pg2], 2, /--to names the database being copied/);
  });

  copy('--db that is not a database this build reads exits 2; a PostgreSQL server that does not answer exits 4, without a stack trace', async () => {
    const data = tempDir('subline-cli-copy-');
    dirs.push(data);
    await cli(['central', 'init', '--data', data], 0);
    const scratch = tempDir('subline-cli-copy-');
    dirs.push(scratch);
    writeFileSync(join(scratch, 'more.csv'), 'code,name\nquantum,Quantum science\n');
    const commands = [...everyCommand(scratch), ['central', 'migrate'], ['central', 'init', '--list', 'lab']];
    await parallel(
      [
        ...commands.map((c) => [...c, '--data', data, '--db', 'mysql://x']),
        ['central', 'copy', '--data', data, '--to', 'mysql://x'],
      ],
      4,
      async (c) => {
        await cli(c, 2, /'mysql:\/\/x': only postgres:\/\/ URLs and SQLite file paths are supported/);
      },
    );
    await cli(['central', 'gates', '--data', data], 2, /--db 'mysql:\/\/x': only postgres/, { SUBLINE_DB: 'mysql://x' });
    await cli(['central', 'gates', '--data', data, '--db', 'postgres://subline@[::1'], 2, /is not a URL/);

    const [port] = await freeLoopbackPorts(1);
    const closed = `postgres://subline@127.0.0.1:${String(port)}/central`;
    const unreachable = /cannot connect to postgres:\/\/subline@127\.0\.0\.1:\d+\/central: connect ECONNREFUSED/;
    await parallel(
      [
        ...commands.map((c) => [...c, '--data', data, '--db', closed]),
        ['central', 'init', '--data', tempDir('subline-cli-copy-'), '--db', closed],
        ['central', 'copy', '--data', data, '--to', closed],
      ],
      4,
      async (c) => {
        await cli(c, 4, unreachable);
      },
    );
    await cli(['central', 'gates', '--data', data], 4, unreachable, { SUBLINE_DB: closed });
    // A server that answers, a database it does not have: the same exit, and says so.
    const s = await postgresServer();
    await cli(['central', 'gates', '--data', data, '--db', s.url.replace(/\/subline$/, '/nonexistent')], 4, /database "nonexistent" does not exist/);
    assert.not.ok(existsSync(join(scratch, 'g9.cbor')) || existsSync(join(scratch, 'copy.db')), 'nothing written');
  });

  copy.run();
}
