// The `subline` command as a user runs it (node bin/subline.mjs in a child
// process, a temporary --data directory): exit codes and messages of every
// command's happy and bad paths, an import that fails on one row and leaves
// the registry untouched, provisioning records, and — against an embedded
// broker — `central serve` with a Node gate provisioned by `subline
// provision`: presence, event export, changes committed by the CLI reaching
// the gate, and signed commands end to end (exactly once, replay, expiry,
// forgeries).
//
// Every suite that opens the central's data runs on both engines (issue 18):
// on SQLite (DATA/central.db, the default) and on PostgreSQL, where each data
// directory gets its own new database on the test server and every command
// naming `--data DIR` is given `--db postgres://...` for it (`central serve`
// gets it as SUBLINE_DB). Tests about SQLite files (an empty central.db, a
// foreign one) stay on SQLite; usage and help run once.

import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { CommandCode, createRecord, decodeRecord, encodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { encodeEnvelope, KeyRing, openSigned, sealSigned } from '../protocol/envelope.js';
import { nobleCrypto } from '../protocol/crypto-noble.js';
import { bytesEqual, fromHex, toHex } from '../protocol/hex.js';
import { Command, CommandResult, Head, encodeCommand, type CommandResultMessage } from '../protocol/messages.js';
import { openMaced } from '../protocol/mac-envelope.js';
import { decodeProvisioning, type ProvisioningRecord } from '../protocol/provisioning.js';
import { Topics } from '../protocol/topics.js';
import { startEmbeddedBroker, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { deriveGateKey } from '../host-sim/central/gate-keys.js';
import { commonName, DeploymentPki } from '../host-sim/pki/deployment-pki.js';
import { aclOfData } from '../host-sim/broker-config.js';
import { generateKeys, readKeyFile, type CentralKeys } from '../host-sim/central/keys.js';
import { openCentralStore, type CentralStore } from '../host-sim/central/store/open-store.js';
import { Reason } from '../protocol/reasons.js';
import { NodeGate } from '../host-sim/node-gate.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { FAST_SYNC, waitFor } from './helpers/fleet.js';
import { BIN, runCli, startCli, tempDir, type CliProcess, type CliResult } from './helpers/cli.js';
import { engines, engineSuites, type Engine } from './helpers/store-engines.js';
import { spawn } from 'node:child_process';

// ---------------------------------------------------------------- helpers

function show(r: CliResult): string {
  return `exit ${String(r.code)}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The exit code, optionally a message on stderr, and never a stack trace. */
function expectExit(r: CliResult, code: number, stderr?: RegExp): void {
  assert.is(r.code, code, show(r));
  if (stderr !== undefined) assert.match(r.stderr, stderr, show(r));
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `no stack trace\n${show(r)}`);
}

/** `subline args...` as given (no data directory involved: usage, --check of a file). */
async function plainCli(args: readonly string[], code: number, stderr?: RegExp): Promise<CliResult> {
  const r = await runCli(args);
  expectExit(r, code, stderr);
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

/** The CLI and the central's data on one engine. */
interface Ctx {
  readonly engine: Engine;
  readonly pg: boolean;
  /** The central's database of a data directory: DATA/central.db, or its own PostgreSQL database (created when first seen). */
  readonly target: (data: string) => Promise<string>;
  /** `args` with `--db TARGET` after each `--data DIR` (PostgreSQL; unless the args name --db). */
  readonly withDb: (args: readonly string[]) => Promise<string[]>;
  /** Runs `subline args...` (withDb) and checks the exit code, the message and that there is no stack trace. */
  readonly cli: (args: readonly string[], code: number, stderr?: RegExp) => Promise<CliResult>;
  /** Starts a long-running command; on PostgreSQL the database comes from SUBLINE_DB. */
  readonly start: (args: readonly string[]) => Promise<CliProcess>;
  /** The central's stores of a data directory, with its keys (the caller closes them). */
  readonly open: (data: string) => Promise<CentralStore>;
}

function timed(t: Test): void { // TEMP
  let at = 0;
  t.before.each(() => { at = Date.now(); });
  t.after.each((ctx: { __test__?: string; __suite__?: string }) => { process.stderr.write(`TIME ${String(ctx.__suite__)} | ${String(ctx.__test__)} | ${Date.now() - at} ms\n`); });
}

function context(engine: Engine): Ctx {
  const pg = engine.name === 'postgres';
  const databases = new Map<string, Promise<string>>();
  const target = (data: string): Promise<string> => {
    const dir = resolve(data);
    if (!pg) return Promise.resolve(join(dir, 'central.db'));
    let t = databases.get(dir);
    if (t === undefined) {
      t = engine.fresh();
      databases.set(dir, t);
    }
    return t;
  };
  const withDb = async (args: readonly string[]): Promise<string[]> => {
    if (!pg || args.includes('--db')) return [...args];
    const out: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string;
      out.push(a);
      if (a === '--data' && i + 1 < args.length) {
        const dir = args[++i] as string;
        out.push(dir, '--db', await target(dir));
      }
    }
    return out;
  };
  return {
    engine,
    pg,
    target,
    withDb,
    cli: async (args, code, stderr) => {
      const r = await runCli(await withDb(args));
      expectExit(r, code, stderr);
      return r;
    },
    start: async (args) => {
      const at = args.indexOf('--data');
      if (!pg || at < 0) return startCli(args);
      return startCli(args, { env: { SUBLINE_DB: await target(args[at + 1] as string) } });
    },
    open: async (data) => {
      const k = readKeyFile(join(data, 'keys.json'));
      return openCentralStore(await target(data), { registry: { signingKey: k.signingKey, deploymentKey: k.deploymentKey } });
    },
  };
}

/** A data directory after init and an import of 2 industries, 2 institutions, 3 people with cards, 1 vehicle and 3 grants. */
async function populated(c: Ctx): Promise<string> {
  const data = tempDir();
  const init = await c.cli(['central', 'init', '--data', data], 0);
  if (c.pg) assert.match(init.stdout, new RegExp(`^database: ${escapeRe(await c.target(data))}\\nschema: 2 \\(created\\)$`, 'm'), show(init));
  const f = (name: string, text: string): string => {
    writeFileSync(join(data, name), text);
    return join(data, name);
  };
  const files = [
    f('industries.csv', 'code,name\nai,Artificial intelligence\nbiomed,Biomedicine\n'),
    f('institutions.csv', 'name,industry\nQuantum Science Centre,ai\nFuture Networks Institute,1\n'),
    f('people.csv', `id,name,institution,card\np-1,Li Wei,Quantum Science Centre,${CARD(1)}\np-2,Chan Tai Man,1,${CARD(2)}\np-3,Wong Mei,0,"${CARD(3)};${CARD(4)}"\n`),
    f(
      'more.json',
      JSON.stringify({
        vehicles: [{ id: 'v-1', name: 'Lab van', institution: 0, uhf: ['e2801170000002'] }],
        grants: [{ level: 'institution', target: 'Quantum Science Centre', lines: ['first', 'second'], directions: 'in,out', lanes: ['person', 'vehicle'], validUntil: '2099-12-31' }],
      }),
    ),
    f('grants.csv', 'level,target,lines,directions,lanes\nindividual,p-2,first,in,person\nindustry,biomed,"first,second","in,out",goods\n'),
  ];
  const r = await c.cli(['central', 'import', '--data', data, ...files], 0);
  assert.match(r.stdout, /imported 11 rows: 2 industries, 2 institutions, 3 people, 1 vehicles, 3 grants, 5 inline credentials \(version 1\)/);
  return data;
}

/** Runs fn on the central's stores of a data directory, then closes them. */
async function withStore<T>(c: Ctx, data: string, fn: (s: CentralStore) => Promise<T>): Promise<T> {
  const s = await c.open(data);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Counts, lists and every table's row count: equal snapshots mean nothing changed. */
function snapshot(c: Ctx, data: string): Promise<string> {
  return withStore(c, data, async (s) =>
    JSON.stringify({ counts: await s.registry.counts(), lists: await s.registry.lists(), tables: await s.registry.tables() }, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v)),
  );
}

const version = (c: Ctx, data: string): Promise<number> => withStore(c, data, (s) => s.registry.version());

// ---------------------------------------------------------------- help and usage

const usage = suite('cli help and usage');

usage('--help on every command exits 0 and shows its usage', async () => {
  const commands = [
    ['central'], ['central', 'init'], ['central', 'migrate'], ['central', 'copy'], ['central', 'import'], ['central', 'grant'], ['central', 'revoke'], ['central', 'suspend'], ['central', 'resume'], ['central', 'serve'],
    ['central', 'publish'], ['central', 'events'], ['central', 'gates'], ['provision'], ['gate'], ['gate', 'open'], ['gate', 'lockdown'], ['gate', 'release'], ['gate', 'config'],
  ];
  await parallel(commands, 4, async (c) => {
    const r = await plainCli([...c, '--help'], 0);
    assert.ok(r.stdout.includes(`Usage: subline ${c.join(' ')}`), show(r));
  });
});

usage('usage errors exit 2 and name what was wrong', async () => {
  const errors: [string[], RegExp][] = [
    [['central', 'init', '--bogus'], /unknown option '--bogus'/],
    [['central', 'grant'], /required option '--level <level>'/],
    [['central', 'events', '--format', 'xml'], /'--format <format>' argument 'xml' is invalid/],
    [['central', 'nonsense'], /unknown command 'nonsense'/],
    [['gate', 'open'], /missing required argument 'gate'/],
    [['central', 'copy'], /required option '--to <url>'/],
  ];
  await parallel(errors, 4, async ([args, re]) => {
    await plainCli(args, 2, re);
  });
});

usage.run();

// ---------------------------------------------------------------- registry commands

engineSuites('cli central registry', (reg, engine) => registrySuite(reg, context(engine)));

function registrySuite(reg: Test, c: Ctx): void {
  const { cli } = c;
  timed(reg);

  reg('init: key file 0600 and database, prints the public key; refuses to overwrite without --force', async () => {
    const parent = tempDir();
    const data = join(parent, 'fresh');
    try {
      const r = await cli(['central', 'init', '--data', data], 0);
      const keys = readKeyFile(join(data, 'keys.json'));
      assert.ok(r.stdout.includes(`public key: ${toHex(keys.publicKey)}`), show(r));
      assert.is(statSync(join(data, 'keys.json')).mode & 0o777, 0o600);
      if (c.pg) {
        // The keys and the PKI stay in --data; the database is the one --db names.
        assert.not.ok(existsSync(join(data, 'central.db')), 'no SQLite file next to the keys');
        assert.match(r.stdout, new RegExp(`^database: ${escapeRe(await c.target(data))}$`, 'm'));
        assert.match(r.stdout, /^schema: 2 \(created\)$/m);
        assert.equal(await withStore(c, data, async (s) => (await s.registry.lists()).map((l) => l.name)), ['main']);
      } else assert.ok(existsSync(join(data, 'central.db')));
      await Promise.all([
        cli(['central', 'init', '--data', data], 3, /already initialised/),
        cli(['central', 'init', '--data', data, '--list', 'Bad List'], 2, /--list 'Bad List'/),
        cli(['central', 'grant', '--data', join(parent, 'none'), '--level', 'industry', '--target', '0', '--lines', 'first', '--directions', 'in', '--lanes', 'person'], 2, /no key file .*central init/),
      ]);
      assert.ok(bytesEqual(readKeyFile(join(data, 'keys.json')).publicKey, keys.publicKey), 'keys kept');
      const other = await cli(['central', 'init', '--data', data, '--list', 'lab'], 0);
      assert.match(other.stdout, /existing keys kept/);
      // --force replaces keys: never without a confirmation (--yes, or "y" on a terminal).
      await cli(['central', 'init', '--data', data, '--force'], 2, /add --yes to confirm \(no terminal to ask on\)/);
      assert.ok(bytesEqual(readKeyFile(join(data, 'keys.json')).publicKey, keys.publicKey), 'not confirmed: keys kept');
      const epochs = async () => withStore(c, data, async (s) => (await s.registry.lists()).map((l) => l.epoch));
      const epochsBefore = await epochs();
      if (c.pg) {
        // The terminal prompt is the same on both engines (SQLite below); here the keys are replaced with --yes.
        await cli(['central', 'init', '--data', data, '--force', '--yes'], 0);
      } else {
        const command = (await c.withDb(['central', 'init', '--data', data, '--force'])).join(' ');
        const onTerminal = (answer: string) =>
          new Promise<{ code: number | null; text: string }>((resolve) => {
            // util-linux `script` gives the command a terminal; the answer is typed on it.
            const child = spawn('script', ['-qec', `${process.execPath} ${BIN} ${command}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
            let text = '';
            child.stdout.on('data', (d: Buffer) => {
              text += d.toString('utf8');
              if (/\[y\/N\]/.test(text) && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
            });
            child.on('close', (code) => resolve({ code, text }));
          });
        const no = await onTerminal('n');
        assert.is(no.code, 1, no.text);
        assert.match(no.text, /every gate must be provisioned again \[y\/N\][\s\S]*not confirmed: nothing changed/);
        assert.ok(bytesEqual(readKeyFile(join(data, 'keys.json')).publicKey, keys.publicKey), 'answered no: keys kept');
        assert.equal(await epochs(), epochsBefore, 'answered no: the lists kept their epochs');
        const yes = await onTerminal('y');
        assert.is(yes.code, 0, yes.text);
      }
      const afterYes = readKeyFile(join(data, 'keys.json')).publicKey;
      assert.not.ok(bytesEqual(afterYes, keys.publicKey), 'confirmed: keys replaced');
      const epochsAfter = await epochs();
      assert.is(epochsAfter.length, 2, 'main and lab');
      assert.ok(epochsAfter.every((e, i) => e !== epochsBefore[i]), `every list has a new epoch: ${String(epochsBefore)} -> ${String(epochsAfter)}`);
      if (!c.pg) {
        await cli(['central', 'init', '--data', data, '--force', '--yes'], 0);
        assert.not.ok(bytesEqual(readKeyFile(join(data, 'keys.json')).publicKey, afterYes), '--force --yes replaces the keys');
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  let shared = '';
  reg.before(async () => {
    shared = await populated(c);
  });
  reg.after(() => {
    if (shared !== '') rmSync(shared, { recursive: true, force: true });
  });

  reg('a database init did not make, or that another key file made, is refused (3, nothing changed, before any broker); key files readable by others are warned about', async () => {
    const a = tempDir();
    const b = tempDir();
    const scratch = tempDir();
    try {
      await Promise.all([cli(['central', 'init', '--data', a], 0), cli(['central', 'init', '--data', b], 0)]);
      // SQLite: an empty central.db next to real keys (the disk was wiped, a file was truncated, a path was mistyped).
      // PostgreSQL: a database that exists but holds no central (made by createdb, never by init), next to real keys.
      let where: string[];
      let emptyDb: string;
      let refused: RegExp;
      let untouched: () => Promise<void>;
      if (c.pg) {
        const url = await c.engine.fresh();
        emptyDb = url;
        where = ['--data', a, '--db', url];
        refused = new RegExp(`${escapeRe(url)} was not made by \`subline central init\``);
        untouched = async () => {
          const s = await openCentralStore(url).catch((e: unknown) => e);
          assert.instance(s, Error, 'still holds no central');
        };
      } else {
        const empty = tempDir();
        copyFileSync(join(a, 'keys.json'), join(empty, 'keys.json'));
        writeFileSync(join(empty, 'central.db'), new Uint8Array(0));
        emptyDb = join(empty, 'central.db');
        where = ['--data', empty];
        refused = new RegExp(`${escapeRe(join(empty, 'central.db'))} is an empty file, not a database made by \`subline central init\``);
        untouched = () => {
          assert.is(statSync(join(empty, 'central.db')).size, 0, 'the empty file is left as it was');
          rmSync(empty, { recursive: true, force: true });
          return Promise.resolve();
        };
      }
      const dead = 'mqtt://127.0.0.1:9'; // nothing listens: a command that got as far as the broker would exit 4
      const everyCommand: string[][] = [
        ['central', 'serve', '--broker', dead, '--connect-timeout', '1'],
        ['central', 'publish', '--broker', dead, '--wait', '1'],
        ['central', 'revoke', '--card', '04000001'],
        ['central', 'suspend', '--subject', 'p-1'],
        ['central', 'grant', '--level', 'individual', '--target', 'p-1', '--remove'],
        ['central', 'gates'],
        ['central', 'events'],
        ['central', 'gates', '--decommission', 'g1'],
        ['provision', '--gate', 'g1', '--site', 's', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', join(scratch, 'g1.cbor')],
        ['gate', 'open', 'g1', '--broker', dead, '--wait', '1'],
        // An empty PostgreSQL database is where `init --db` creates a central: only the SQLite file is refused.
        ...(c.pg ? [] : [['central', 'init']]),
      ];
      await parallel(everyCommand, 4, async (args) => {
        await cli([...args, ...where], 3, refused);
      });
      // broker config reads the gate identities (without the stamp check): refused too.
      await cli(['broker', 'config', '--out', join(scratch, 'broker'), '--data', a, '--db', emptyDb], 3, c.pg ? /holds no subline central/ : /is an empty file/);
      await untouched();
      assert.not.ok(existsSync(join(scratch, 'g1.cbor')));
      // A key file from another data directory next to this database.
      let foreign: string[];
      if (c.pg) foreign = ['--data', b, '--db', await c.target(a)];
      else {
        const dir = tempDir();
        copyFileSync(join(a, 'central.db'), join(dir, 'central.db'));
        copyFileSync(join(b, 'keys.json'), join(dir, 'keys.json'));
        foreign = ['--data', dir];
      }
      await cli(['central', 'revoke', '--card', '04000001', ...foreign], 3, /was created with the key [0-9a-f]{64}, not with this key file's/);
      await cli(['central', 'serve', '--broker', dead, '--connect-timeout', '1', ...foreign], 3, /not with this key file's/);
      await cli(['central', 'init', ...foreign], 3, /not with this key file's/);
      if (!c.pg) rmSync(foreign[1] as string, { recursive: true, force: true });
      // Key files readable by others: a warning, not a refusal.
      chmodSync(join(a, 'keys.json'), 0o644);
      const warned = await cli(['gate', 'open', 'g1', '--broker', dead, '--data', a], 3, /unknown gate 'g1'/);
      assert.match(warned.stderr, /warning: .*keys\.json is readable by others \(mode 0644\): chmod 600/);
    } finally {
      for (const d of [a, b, scratch]) rmSync(d, { recursive: true, force: true });
    }
  });

  reg("central events: next to a gate's unknown_credential, what the registry knows of the key (revoked when, holder suspended, never enrolled)", async () => {
    const data = await populated(c);
    try {
      await cli(['central', 'revoke', '--data', data, '--card', CARD(1)], 0);
      await cli(['central', 'suspend', '--data', data, '--subject', 'p-2'], 0);
      const store = await c.open(data);
      const r = store.registry;
      const keys = [r.credentialKey('card', fromHex(CARD(1))), r.credentialKey('card', fromHex(CARD(2))), new Uint8Array(8).fill(0xab), r.credentialKey('card', fromHex(CARD(4)))];
      // What a gate that installed an image after the revocation journals: unknown_credential for each key.
      const epoch = 77;
      const records = new Uint8Array(keys.length * RECORD_BYTES);
      const rec = createRecord();
      keys.forEach((key, i) => {
        rec.time = 1_800_000_000 + i;
        rec.type = EventType.decision_denied;
        rec.reason = Reason.unknown_credential;
        rec.key.set(key);
        encodeRecord(rec, i + 1, epoch, records, i * RECORD_BYTES);
      });
      let chain: Uint8Array = new Uint8Array(32);
      for (let i = 0; i < keys.length; i++) chain = nodeCrypto.sha256(Uint8Array.from([...chain, ...records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES)]));
      try {
        assert.ok((await store.events.ingest({ gate: 'fl-in-t01', epoch, first: 1, count: keys.length, records, prev: new Uint8Array(32), chain })).ack !== null);
      } finally {
        await store.close();
      }
      const ev = JSON.parse((await cli(['central', 'events', '--data', data, '--format', 'json'], 0)).stdout) as { registry: string }[];
      assert.is(ev.length, 4);
      assert.match(ev[0]!.registry, /^revoked \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'revoked, and when');
      assert.is(ev[1]!.registry, 'holder suspended');
      assert.is(ev[2]!.registry, 'never enrolled');
      assert.is(ev[3]!.registry, 'enrolled', 'enrolled and valid (the gate was behind)');
      const csv = (await cli(['central', 'events', '--data', data], 0)).stdout.trim().split('\n');
      assert.is(csv.length, 5, 'a header and 4 records');
      assert.match(csv[3] as string, /,never enrolled$/);
      // A record that differs from the stored one at the same (gate, epoch, seq): both kept, and shown.
      const other = records.slice(0, 2 * RECORD_BYTES);
      rec.time = 1_800_000_999;
      rec.key.set(keys[0] as Uint8Array);
      encodeRecord(rec, 2, epoch, other, RECORD_BYTES);
      let c2: Uint8Array = new Uint8Array(32);
      for (let i = 0; i < 2; i++) c2 = nodeCrypto.sha256(Uint8Array.from([...c2, ...other.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES)]));
      await withStore(c, data, (s) => s.events.ingest({ gate: 'fl-in-t01', epoch, first: 1, count: 2, records: other, prev: new Uint8Array(32), chain: c2 }));
      const conf = await cli(['central', 'events', '--data', data, '--conflicts'], 0);
      const rows = JSON.parse(conf.stdout) as { seq: number; stored: { time: string } | null; conflicting: { time: string } }[];
      assert.equal(rows.map((r) => [r.seq, r.stored?.time, r.conflicting.time]), [[2, '2027-01-15T08:00:01Z', '2027-01-15T08:16:39Z']]);
      assert.match(conf.stderr, /1 conflicting record\(s\)/);
      assert.is((JSON.parse((await cli(['central', 'events', '--data', data, '--format', 'json'], 0)).stdout) as unknown[]).length, 4, 'the stored records are untouched');
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  reg('import: CSV and JSON in one transaction; a bad row names file:line and field, and nothing is imported', async () => {
    const data = shared;
    await withStore(c, data, async ({ registry: r }) => {
      assert.equal(await r.counts(), { industries: 2, institutions: 2, subjects: 4, credentials: 5, grants: 3, schedules: 0 });
      assert.is((await r.subject('p-1'))?.institution, 0);
      assert.is((await r.subject('p-2'))?.institution, 1);
      assert.is((await r.credentials('p-3')).length, 2);
      assert.is((await r.subject('v-1'))?.kind, 'vehicle');
      assert.is(await r.version(), 1, 'one import, one version');
    });
    const before = await snapshot(c, data);
    const cases: [string, string, RegExp][] = [
      ['people-bad.csv', 'id,name,institution\np-10,Good Row,0\np-11,Bad Row,Nowhere Institute\n', /people-bad\.csv:3: field 'institution': institution 'Nowhere Institute' does not exist; nothing imported/],
      ['people-dup.csv', 'id,name\np-12,New\np-1,Again\n', /people-dup\.csv:3: field 'id': 'p-1' already exists; nothing imported/],
      ['grants-bad.csv', 'level,target,lines,directions,lanes\nindividual,p-1,first,in,person\nindividual,p-1,third,in,person\n', /grants-bad\.csv:3: field 'lines': 'third' is not one of first, second/],
      ['creds-bad.csv', `subject,kind,raw_id\np-1,card,c0ffee\np-2,card,${CARD(1)}\n`, /creds-bad\.csv:3: field 'raw_id': is already enrolled \(subject 'p-1'\)/],
      ['people-col.csv', 'id,name,colour\np-13,X,red\n', /people-col\.csv:1: unknown column 'colour'/],
      ['bad.json', JSON.stringify({ people: [{ id: 'p-15', name: 'Y' }, { id: 'p-16', name: 'Z', kind: 'vehicle' }] }), /bad\.json: people\[1\]\.kind: is 'vehicle' but people are of kind person/],
      ['staff.csv', 'id,name,institution\np-20,Ho Ka Yan,Future Networks Institute\n', /staff\.csv: cannot tell what this CSV holds/],
    ];
    writeFileSync(join(data, 'good.csv'), 'code,name\nquantum,Quantum science\n');
    for (const [file, text] of cases) writeFileSync(join(data, file), text);
    // PostgreSQL: the rows checked against the database (a reference, a duplicate, an enrolled card, the last row of a JSON file); the rest is parsing, the same on both.
    const onPostgres = ['people-bad.csv', 'people-dup.csv', 'creds-bad.csv', 'bad.json'];
    const jobs: (() => Promise<unknown>)[] = [
      // A good file first: the bad one still leaves everything as it was.
      ...cases.filter(([file]) => !c.pg || onPostgres.includes(file)).map(([file, , re]) => () => cli(['central', 'import', '--data', data, join(data, 'good.csv'), join(data, file)], 2, re)),
      async () => assert.match((await cli(['central', 'import', '--data', data, '--dry-run', join(data, 'good.csv')], 0)).stdout, /dry run, nothing imported\) 1 rows: 1 industries/),
      ...(c.pg
        ? []
        : [
            () => cli(['central', 'import', '--data', data, join(data, 'missing.csv')], 2, /missing\.csv: no such file; nothing imported/),
            async () => assert.match((await cli(['central', 'import', '--data', data, '--dry-run', '--type', 'people', join(data, 'staff.csv')], 0)).stdout, /1 rows: 1 people/),
          ]),
    ];
    await parallel(jobs, 4, async (job) => {
      await job();
    });
    assert.is(await snapshot(c, data), before, 'nothing imported by a failed import or a dry run');
  });

  reg('grant, revoke, suspend, resume: one version each; bad targets and values named, and nothing changed', async () => {
    const data = shared;
    const start = await version(c, data);
    const changes = [
      ['central', 'grant', '--level', 'institution', '--target', 'Future Networks Institute', '--lines', 'first,second', '--directions', 'in,out', '--lanes', 'person', '--until', '2027-01-01'],
      ['central', 'revoke', '--card', CARD(2)],
      ['central', 'suspend', '--institution', '0'],
      ['central', 'suspend', '--industry', 'ai'],
      ['central', 'grant', '--level', 'individual', '--target', 'p-2', '--remove'],
    ];
    // At once, from several processes: the writer lock makes each one version.
    await parallel(changes, 3, async (args) => {
      assert.match((await cli([...args, '--data', data], 0)).stdout, /; list main is now at version \d+/);
    });
    await withStore(c, data, async ({ registry: r }) => {
      assert.is(await r.version(), start + changes.length);
      assert.equal(await r.grantSpec((await r.tables()).institutions[1]?.grant ?? -1), { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'], validUntil: Date.UTC(2027, 0, 1, 23, 59, 59) / 1000 });
      assert.ok((await r.credentials('p-2'))[0]?.revoked);
      assert.is((await r.subject('p-2'))?.grant, null);
    });
    const resumed = await cli(['central', 'resume', '--data', data, '--industry', 'ai', '--json'], 0);
    assert.equal((JSON.parse(resumed.stdout) as { unchanged: boolean; version: number }).version, start + changes.length + 1, resumed.stdout);
    const before = await snapshot(c, data);
    const bad: [string[], number, RegExp][] = [
      [['central', 'grant', '--level', 'institution', '--target', '7', '--lines', 'first', '--directions', 'in', '--lanes', 'person'], 2, /--target: institution 7 does not exist/],
      [['central', 'grant', '--level', 'individual', '--target', 'p-1', '--lines', 'first', '--directions', 'up', '--lanes', 'person'], 2, /--directions: 'up' is not one of in, out/],
      [['central', 'grant', '--level', 'individual', '--target', 'p-1', '--lines', 'first', '--directions', 'in', '--lanes', 'person', '--until', '2027-13-01'], 2, /--until '2027-13-01' is not a valid date/],
      [['central', 'revoke', '--card', CARD(1), '--key', '0011223344556677'], 2, /exactly one of --card, --uhf or --key/],
      [['central', 'revoke', '--card', 'ffffffff'], 2, /--card: no such credential is enrolled/],
      [['central', 'suspend', '--subject', 'p-404'], 2, /--subject: subject 'p-404' does not exist/],
      [['central', 'resume', '--institution', '9'], 2, /institution 9 does not exist/],
      [['central', 'events', '--epoch', 'x'], 2, /--epoch 'x' must be an integer/],
      [['gate', 'open', 'Bad Gate'], 2, /gate 'Bad Gate' must be/],
      [['central', 'serve', '--sync-budget', '5/x/1'], 2, /--sync-budget '5\/x\/1' must be REQUESTS\/BYTES\/SECONDS/],
      [['central', 'serve', '--sync-budget', '0/1048576/10'], 2, /--sync-budget requests must be in 1\.\.1000000/],
      [['gate', 'open', 'fl-in-t42'], 3, /unknown gate 'fl-in-t42': not provisioned/],
    ];
    // PostgreSQL: the refusals that look the database up; the others are refused before it is opened, the same on both.
    const looksUp = (re: RegExp): boolean => /does not exist|no such credential|not provisioned/.test(re.source);
    await parallel(c.pg ? bad.filter(([, , re]) => looksUp(re)) : bad, 4, async ([args, code, re]) => {
      await cli([...args, '--data', data], code, re);
    });
    assert.is(await snapshot(c, data), before, 'refused changes change nothing');
  });

  reg('a change that changes nothing makes no version, exits 0 and says unchanged (--json: unchanged true)', async () => {
    const data = await populated(c);
    try {
      // Each pair: the first changes something (one version), the second repeats it (no version).
      const grants = join(data, 'grants-again.csv');
      writeFileSync(grants, 'level,target,lines,directions,lanes\nindividual,p-2,first,in,person\nindustry,biomed,"first,second","in,out",goods\n');
      const pairs: string[][] = [
        ['central', 'suspend', '--institution', '0'],
        ['central', 'resume', '--institution', '0'],
        ['central', 'revoke', '--card', CARD(1)],
        ['central', 'grant', '--level', 'individual', '--target', 'p-3', '--lines', 'first', '--directions', 'in', '--lanes', 'person'],
        ['central', 'grant', '--level', 'individual', '--target', 'p-3', '--remove'],
      ];
      // PostgreSQL: a suspension, its resumption and a revocation (the registry code that tells "unchanged" is the same on both).
      for (const args of c.pg ? pairs.slice(0, 3) : pairs) {
        const v = await version(c, data);
        const first = await cli([...args, '--data', data, '--json'], 0);
        const j1 = JSON.parse(first.stdout) as { unchanged: boolean; list: string; version: number };
        assert.equal([j1.unchanged, j1.list, j1.version], [false, 'main', v + 1], `${args.join(' ')}: ${first.stdout}`);
        const snap = await snapshot(c, data);
        const [again, json] = await Promise.all([cli([...args, '--data', data], 0), cli([...args, '--data', data, '--json'], 0)]);
        assert.match(again.stdout, /unchanged/, `${args.join(' ')} again: ${again.stdout}`);
        assert.not.match(again.stdout, /is now at version/);
        const j2 = JSON.parse(json.stdout) as { unchanged: boolean; version: number };
        assert.equal([j2.unchanged, j2.version], [true, v + 1], `${args.join(' ')} again --json`);
        assert.is(await snapshot(c, data), snap, `${args.join(' ')} again changes nothing`);
      }
      // Resuming what was never suspended, removing a grant that does not exist, re-importing the same grants.
      const snap = await snapshot(c, data);
      await parallel(
        [
          ['central', 'resume', '--industry', 'ai'],
          ['central', 'grant', '--level', 'institution', '--target', '1', '--remove'],
        ],
        2,
        async (args) => assert.match((await cli([...args, '--data', data], 0)).stdout, /unchanged/, args.join(' ')),
      );
      const imp = await cli(['central', 'import', '--data', data, grants, '--json'], 0);
      const ji = JSON.parse(imp.stdout) as { unchanged: boolean; rows: number; versionBefore: number; versionAfter: number };
      assert.equal([ji.unchanged, ji.rows, ji.versionAfter], [true, 2, ji.versionBefore], imp.stdout);
      assert.match((await cli(['central', 'import', '--data', data, grants], 0)).stdout, /unchanged/);
      assert.is(await snapshot(c, data), snap, 'no version, no row');
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
}

// ---------------------------------------------------------------- provision

engineSuites('cli provision', (prov, engine) => provisionSuite(prov, context(engine)));

function provisionSuite(prov: Test, c: Ctx): void {
  const { cli } = c;
  // Not registered at all on PostgreSQL (nothing skipped): these are about SQLite files.
  const sqliteOnly = (name: string, fn: () => Promise<void>): void => {
    if (!c.pg) prov(name, fn);
  };
  timed(prov);

  prov('writes a record with the central keys, verifies it, --check prints it without secrets; bad values named', async () => {
    const data = tempDir();
    try {
      await cli(['central', 'init', '--data', data], 0);
      const keys = readKeyFile(join(data, 'keys.json'));
      const file = join(data, 'gate.cbor');
      const base = ['provision', '--data', data, '--gate', 'sl-out-t07', '--site', 'huanggang', '--line', 'second', '--direction', 'out', '--lane', 'vehicle'];
      const r = await cli([...base, '--broker', 'mqtts://broker.example:8883', '--username', 'gate7', '--password', 's3cret', '--journal-epoch', '42', '--policy', 'stale=deny,unsynced=individual_only', '--stale-after', '600', '--passback', '30', '--out', file], 0);
      assert.match(r.stdout, /wrote .*gate\.cbor/);
      assert.is(statSync(file).mode & 0o777, 0o600);
      const p = decodeProvisioning(new Uint8Array(readFileSync(file)));
      if (!p.ok) throw new Error('the record does not decode');
      assert.is(p.value.gate, 'sl-out-t07');
      assert.equal([p.value.site, p.value.line, p.value.direction, p.value.lane, p.value.list, p.value.topicRoot, p.value.broker, p.value.username], ['huanggang', 'second', 'out', 'vehicle', 'main', 'subline', 'mqtts://broker.example:8883', 'gate7']);
      assert.ok(bytesEqual(p.value.trustedKeys[0] as Uint8Array, keys.publicKey));
      assert.ok(bytesEqual(p.value.deploymentKey, keys.deploymentKey));
      assert.ok(bytesEqual(p.value.gateKey, deriveGateKey(keys.gateMasterKey, 'sl-out-t07', 1)), "the gate's MAC key is derived from the master key, the id and the key id");
      assert.is(p.value.gateKeyId, 1);
      assert.match(r.stdout, /gate identity: sl-out-t07 registered/);
      // Its TLS client identity from the deployment PKI: certificate CN = gate id, chained to the data directory's CA.
      const tls = p.value.tls;
      if (tls === undefined) throw new Error('no TLS identity in the record');
      assert.is(commonName(tls.cert), 'sl-out-t07');
      assert.ok(new X509Certificate(Buffer.from(tls.cert)).verify(new X509Certificate(Buffer.from(tls.ca)).publicKey), 'signed by the CA in the record');
      assert.equal(new X509Certificate(Buffer.from(tls.ca)).raw.toString('base64'), new X509Certificate(readFileSync(join(data, 'pki', 'ca.crt.pem'))).raw.toString('base64'), "the record's CA is the data directory's");
      createPrivateKey({ key: Buffer.from(tls.key), format: 'der', type: 'pkcs8' });
      assert.is(p.value.journalEpoch, 42);
      assert.equal(p.value.policy, { staleAfterSeconds: 600, fresh: 'normal', stale: 'deny', expired: 'deny', unsynced: 'individual_only' });
      assert.is(p.value.passbackSeconds, 30);

      const other = join(data, 'other.cbor');
      const bad: [string[], number, RegExp][] = [
        [['--gate', 'FL-IN'], 2, /--gate 'FL-IN' must be 1-32 characters/],
        [['--site', 'Futian Port'], 2, /--site 'Futian Port'/],
        [['--line', 'third'], 2, /'--line <line>' argument 'third' is invalid/],
        [['--stale-after', '5'], 2, /--stale-after must be in 60\.\.604800/],
        [['--policy', 'stale=maybe'], 2, /--policy: stale='maybe' is not an action/],
        [['--passback', '-1'], 2, /--passback must be in 0\.\.86400/],
        [['--broker', 'http://x:1'], 2, /--broker 'http:\/\/x:1' must start with mqtt:\/\/ or mqtts:\/\//],
        [['--password', 'x'], 2, /--password needs --username/],
        [['--out', file], 3, /already exists \(pass --force/],
      ];
      const variant = (extra: string[]): string[] => {
        const args = [...base, '--out', other];
        for (let i = 0; i < extra.length; i += 2) {
          const at = args.indexOf(extra[i] as string);
          if (at >= 0) args.splice(at, 2);
          args.push(extra[i] as string, extra[i + 1] as string);
        }
        return args;
      };
      writeFileSync(join(data, 'junk.cbor'), new Uint8Array([0xa1, 0x61, 0x74, 0x69]));
      // PostgreSQL: the values are checked and the record read the same on both engines; what it writes to the database is exercised below.
      const jobs: (() => Promise<unknown>)[] = [
        ...(c.pg
          ? []
          : [
              ...bad.map(([extra, code, re]) => () => cli(variant(extra), code, re)),
              () => cli([...base], 2, /--out is required/),
              () => cli(['provision', '--check', join(data, 'nothing.cbor')], 2, /no such file/),
              () => cli(['provision', '--check', join(data, 'junk.cbor')], 2, /not a valid provisioning record: /),
              async () => {
                const chk = await cli(['provision', '--data', data, '--check', file], 0);
                assert.match(chk.stdout, /valid provisioning record/);
                assert.ok(chk.stdout.includes(`trusted key 1: ${toHex(keys.publicKey)} (this central)`), chk.stdout);
                assert.not.ok(chk.stdout.includes(toHex(keys.deploymentKey)), 'deployment key not shown');
                assert.not.ok(chk.stdout.includes(toHex(p.value.gateKey)), 'gate key not shown');
                assert.match(chk.stdout, /gateKeyId: 1/);
                assert.not.ok(chk.stdout.includes('s3cret'), 'password not shown');
              },
              async () => assert.is((JSON.parse((await cli(['provision', '--data', data, '--check', file, '--json'], 0)).stdout) as { gate: string }).gate, 'sl-out-t07'),
            ]),
        async () => {
          const g1 = join(data, 'g1.cbor');
          await cli(['provision', '--data', data, '--gate', 'fl-in-t01', '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', g1], 0);
          const d = decodeProvisioning(new Uint8Array(readFileSync(g1)));
          assert.ok(d.ok && Math.abs(d.value.journalEpoch - Date.now() / 1000) < 60, 'journal epoch defaults to now');
          assert.ok(d.ok && d.value.passbackSeconds === 0 && d.value.policy.stale === 'normal', "defaults: no passback, the first line's policy");
        },
      ];
      await parallel(jobs, 4, async (job) => {
        await job();
      });
      assert.not.ok(existsSync(other), 'no record written by a refused call');
      // Re-provisioning: the next key id, and the old record's key no longer matches; a refused write registers nothing.
      const again = await cli([...base, '--out', file, '--force'], 0);
      assert.match(again.stdout, /re-provisioned \(key id 2; records written before this one no longer work\)/);
      assert.match(again.stdout, /1 earlier certificate\(s\) of this gate revoked/);
      const p2 = decodeProvisioning(new Uint8Array(readFileSync(file)));
      assert.ok(p2.ok && p2.value.gateKeyId === 2 && !bytesEqual(p2.value.gateKey, p.value.gateKey));
      await cli([...base, '--out', file], 3, /already exists/);
      const listed = JSON.parse((await cli(['central', 'gates', '--data', data, '--json'], 0)).stdout) as { gates: { gate: string; identity: { state: string; keyId: number } | null; state: string }[] };
      assert.equal(listed.gates.map((g) => [g.gate, g.identity?.state, g.identity?.keyId, g.state]), [['fl-in-t01', 'active', 1, 'never seen'], ['sl-out-t07', 'active', 2, 'never seen']]);
      // Decommissioning ends the identity: listed as such, and it cannot be provisioned again.
      const dec = await cli(['central', 'gates', '--data', data, '--decommission', 'sl-out-t07'], 0);
      assert.match(dec.stdout, /gate sl-out-t07 decommissioned/);
      assert.match(dec.stdout, /1 TLS certificate\(s\) of sl-out-t07 revoked/, 'the current one (the earlier one was revoked at re-provisioning)');
      const issued = JSON.parse(readFileSync(join(data, 'pki', 'issued.json'), 'utf8')) as { cn: string; revokedAt?: string }[];
      assert.ok(issued.filter((c) => c.cn === 'sl-out-t07').every((c) => c.revokedAt !== undefined), 'every certificate of the gate is on the CRL');
      await cli(['central', 'gates', '--data', data, '--decommission', 'sl-out-t07'], 3, /already decommissioned/);
      await cli(['central', 'gates', '--data', data, '--decommission', 'nope'], 3, /not provisioned here/);
      await cli([...base, '--out', join(data, 'again.cbor')], 3, /decommissioned.*identity has ended/);
      assert.not.ok(existsSync(join(data, 'again.cbor')));
      // Operators' certificates, and the list of every certificate with its revocation.
      await cli(['central', 'certs', '--data', data, '--operator', 'alice'], 0);
      await cli(['central', 'certs', '--data', data, '--operator', 'alice'], 3, /already has a certificate/);
      await cli(['central', 'certs', '--data', data, '--operator', 'Alice'], 2, /--operator 'Alice'/);
      const certs = JSON.parse((await cli(['central', 'certs', '--data', data, '--json'], 0)).stdout) as { cn: string; role: string; revokedAt?: string }[];
      assert.equal(certs.filter((c) => c.role !== 'gate').map((c) => [c.cn, c.role]), [['subline.broker', 'broker'], ['subline.central', 'central'], ['subline.operator.alice', 'operator']]);
      assert.is(statSync(join(data, 'pki', 'operators', 'alice.key.pem')).mode & 0o777, 0o600);
      const table = (await cli(['central', 'gates', '--data', data], 0)).stdout;
      assert.match(table, /^sl-out-t07\s+decommissioned \(key 2\)\s+never seen/m);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  // The image format and --check of files: the same on both engines (SQLite only).
  sqliteOnly('--out FILE.bin writes the framed partition image (0600); --check reads a bare record, an image and a partition dump, and names a torn one', async () => {
    const data = tempDir();
    try {
      await cli(['central', 'init', '--data', data], 0);
      const bin = join(data, 'g-014.bin');
      const r = await cli(['provision', '--data', data, '--gate', 'g-014', '--site', 'park-1', '--line', 'second', '--direction', 'in', '--lane', 'person', '--broker', 'mqtt://10.1.0.5:1883', '--out', bin], 0);
      assert.match(r.stdout, /framed for the provision partition/);
      assert.is(statSync(bin).mode & 0o777, 0o600, 'the image holds the deployment key and the gate key');
      const image = new Uint8Array(readFileSync(bin));
      assert.equal([...image.subarray(0, 4)], [0x53, 0x47, 0x50, 0x31], 'SGP1');
      const dump = join(data, 'check.bin');
      const padded = new Uint8Array(0x10000).fill(0xff);
      padded.set(image);
      writeFileSync(dump, padded);
      for (const f of [bin, dump]) {
        const c = await cli(['provision', '--check', f, '--data', data, '--json'], 0);
        assert.is((JSON.parse(c.stdout) as { gate: string }).gate, 'g-014', f);
      }
      const torn = join(data, 'torn.bin');
      const t = image.slice();
      t[20] = (t[20] as number) ^ 1;
      writeFileSync(torn, t);
      await cli(['provision', '--check', torn], 2, /not a valid provisioning record: bad_crc/);
      // A reader that stops early (| head) is not an error: here the reader is gone before the first line.
      const args = await c.withDb(['provision', '--check', bin, '--data', data]);
      const head = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      assert.is(head.code, 0, head.stderr);
      assert.not.match(head.stderr, /EPIPE|Unhandled/, head.stderr);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  prov('broker config: the ACL of the active gates of the database, re-run after provisioning and decommissioning', async () => {
    const data = tempDir();
    const out = join(data, 'mosquitto');
    try {
      await cli(['central', 'init', '--data', data], 0);
      const provision = (gate: string) => cli(['provision', '--data', data, '--gate', gate, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', join(data, `${gate}.cbor`)], 0);
      await Promise.all([provision('fl-in-t01'), provision('fl-in-t02')]);
      const first = JSON.parse((await cli(['broker', 'config', '--data', data, '--out', out, '--json'], 0)).stdout) as { gates: number };
      assert.is(first.gates, 2);
      const acl = (): string => readFileSync(join(out, 'acl'), 'utf8');
      assert.ok(acl().includes('user fl-in-t01\n') && acl().includes('user fl-in-t02\n'), acl());
      await cli(['central', 'gates', '--data', data, '--decommission', 'fl-in-t02'], 0);
      const again = await cli(['broker', 'config', '--data', data, '--out', out], 0);
      assert.match(again.stdout, /ACL for 1 active gate\(s\)/);
      assert.ok(acl().includes('user fl-in-t01\n') && !acl().includes('user fl-in-t02\n'), 'the decommissioned gate has left the ACL');
      assert.equal((await aclOfData(data, 'subline', await c.target(data))).identities().filter((i) => i.startsWith('fl-')), ['fl-in-t01']);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
}
// ---------------------------------------------------------------- against a broker

function journalRecords(g: NodeGate): { type: number; reason: number }[] {
  const j = g.gate.journal;
  const buf = new Uint8Array(RECORD_BYTES * 64);
  const out: { type: number; reason: number }[] = [];
  const rec = createRecord();
  for (let from = 1; from <= j.lastSeq; from += 64) {
    const n = j.readBatch(from, 64, buf).count;
    for (let k = 0; k < n; k++) if (decodeRecord(buf, k * RECORD_BYTES, from + k, j.epoch, rec) === 0) out.push({ type: rec.type, reason: rec.reason });
  }
  return out;
}

const openCommands = (g: NodeGate): number => journalRecords(g).filter((r) => r.type === EventType.command && r.reason === CommandCode.open_once).length;

/** Collects every message on the given topics. */
async function listen(url: string, topics: string[]): Promise<{ client: MqttClient; messages: { topic: string; payload: Uint8Array }[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const messages: { topic: string; payload: Uint8Array }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload: new Uint8Array(payload) }));
  await client.subscribeAsync(topics, { qos: 1 });
  return { client, messages };
}

interface Live {
  data: string;
  broker: BrokerHandle;
  keys: CentralKeys;
  ring: KeyRing;
  serve: CliProcess | null;
  gate: NodeGate | null;
  record: ProvisioningRecord | null;
  watch: { client: MqttClient; messages: { topic: string; payload: Uint8Array }[] } | null;
  opens: number;
  openRecords: number;
  clients: MqttClient[];
}

const GATE = 'fl-in-t01';
const topics = new Topics('subline');

engineSuites('cli central serve, gates, events and gate commands against a broker', (live, engine) => liveSuite(live, context(engine)));

function liveSuite(live: Test, c: Ctx): void {
  const { cli } = c;
  timed(live);

  /** Command results on the wire that open with the gate's own key (MACed for their topic). */
  function resultsFor(messages: { topic: string; payload: Uint8Array }[], nonce: Uint8Array): CommandResultMessage[] {
    const out: CommandResultMessage[] = [];
    const rec = L.record;
    if (rec === null) throw new Error('no gate record (an earlier test failed)');
    for (const m of messages) {
      if (!m.topic.endsWith('/cmdres')) continue;
      const r = openMaced(CommandResult, m.payload, m.topic, (kid) => (kid === rec.gateKeyId ? rec.gateKey : null), nodeCrypto);
      if (r.ok && bytesEqual(r.value.nonce, nonce)) out.push(r.value);
    }
    return out;
  }

  const L = {} as Live;
  const gateOf = (): NodeGate => {
    if (L.gate === null) throw new Error('no gate (an earlier test failed)');
    return L.gate;
  };

  live.before(async () => {
    L.data = await populated(c);
    L.broker = await startEmbeddedBroker({ port: 0 });
    L.keys = readKeyFile(join(L.data, 'keys.json'));
    L.ring = new KeyRing(nobleCrypto, [L.keys.publicKey]);
    L.serve = null;
    L.gate = null;
    L.record = null;
    L.watch = null;
    L.opens = 0;
    L.openRecords = 0;
    L.clients = [];
  });

  live.after(async () => {
    L.gate?.stop();
    await L.serve?.stop();
    for (const c of L.clients) await c.endAsync().catch(() => undefined);
    await L.broker?.close();
    if (L.data !== undefined) rmSync(L.data, { recursive: true, force: true });
  });

  live('central publish: the retained head and the pending deltas, once; exit 4 without a broker', async () => {
    const pub = await cli(['central', 'publish', '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(pub.stdout, /version 1\) and 1 delta\(s\)/);
    const probe = await startEmbeddedBroker({ port: 0 });
    await probe.close();
    const [again] = await Promise.all([cli(['central', 'publish', '--data', L.data, '--broker', L.broker.url], 0), cli(['central', 'publish', '--data', L.data, '--broker', probe.url, '--wait', '1'], 4, /no connection/)]);
    assert.match(again.stdout, /and 0 delta\(s\)/, 'nothing left to publish');
    const heads = await listen(L.broker.url, [topics.list('main', 'head')]);
    L.clients.push(heads.client);
    await waitFor('the retained head', () => heads.messages.length > 0, 5000);
    const head = openSigned(Head, heads.messages[0]!.payload, L.ring);
    assert.ok(head.ok && head.value.version === 1, 'retained head of version 1, signed with the central key');
  });

  live('central serve + a gate provisioned by `subline provision`: central gates lists it online', async () => {
    const recordFile = join(L.data, `${GATE}.cbor`);
    await cli(['provision', '--data', L.data, '--gate', GATE, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--broker', L.broker.url, '--out', recordFile], 0);
    const p = decodeProvisioning(new Uint8Array(readFileSync(recordFile)));
    if (!p.ok) throw new Error('provisioning record does not decode');
    L.record = p.value;
    L.serve = await c.start(['central', 'serve', '--data', L.data, '--broker', L.broker.url, '--head-interval', '2', '--poll', '0.2']);
    await L.serve.waitForOutput(/central: serving list main \(epoch \d+, version 1\)/);
    // Where serve keeps the data: the PostgreSQL database SUBLINE_DB names, or DATA/central.db.
    assert.ok(L.serve.stdout().includes(c.pg ? `from PostgreSQL ${await c.target(L.data)}` : `from ${await c.target(L.data)}`), L.serve.stdout());
    L.gate = new NodeGate({ provisioning: p.value, crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50 });
    L.gate.start();
    const g = L.gate;
    await waitFor('the gate holds version 1', () => g.gate.store.version === 1);
    await withStore(c, L.data, (s) => waitFor('presence stored', async () => (await s.state.gate(GATE))?.status.state === 'online', 10000));
    const [gj, table] = await Promise.all([cli(['central', 'gates', '--data', L.data, '--format', 'json'], 0), cli(['central', 'gates', '--data', L.data], 0)]);
    const listed = (JSON.parse(gj.stdout) as { gates: { gate: string; state: string; line: string; direction: string; lane: string; boot: number; conn: number; identity: { state: string } }[] }).gates;
    assert.is(listed.length, 1);
    assert.equal([listed[0]?.gate, listed[0]?.identity.state, listed[0]?.state, listed[0]?.boot, listed[0]?.conn, listed[0]?.line, listed[0]?.direction, listed[0]?.lane], [GATE, 'active', 'online', 1, 1, 'first', 'in', 'person']);
    assert.match(table.stdout, /^GATE\s+IDENTITY\s+STATE\s+BOOT\s+LINE\s+DIRECTION\s+LANE\s+WHITELIST\s+BACKLOG\s+REFUSED \(CENTRAL\/GATE\)\s+LAST SEEN$/m);
    assert.match(table.stdout, new RegExp(`^${GATE}\\s+active \\(key 1\\)\\s+online\\s+1\\s+first\\s+in\\s+person\\s+(main v\\d+|none)\\s+\\d+\\s+0/0\\s+\\d{4}-`, 'm'));
  });

  live('central events exports the gate\'s events after taps, decoded (JSON and CSV)', async () => {
    const g = gateOf();
    for (const n of [1, 2, 3, 1]) {
      g.gate.onRead({ kind: 'card', id: fromHex(CARD(n)), atMs: 0 });
      g.inputs.pulse('rotation');
    }
    g.gate.onRead({ kind: 'card', id: fromHex('0bad0bad'), atMs: 0 });
    await waitFor('every event acknowledged', () => g.gate.journal.acked === g.gate.journal.lastSeq && g.gate.journal.lastSeq >= 10);
    const csvFile = join(L.data, 'events.csv');
    const [ev] = await Promise.all([cli(['central', 'events', '--data', L.data, '--gate', GATE, '--format', 'json'], 0), cli(['central', 'events', '--data', L.data, '--format', 'csv', '--out', csvFile], 0)]);
    const events = JSON.parse(ev.stdout) as { gate: string; epoch: number; seq: number; time: string; type: string; reason: string; level: string; key: string; receivedAt: string }[];
    assert.is(events.length, g.gate.journal.lastSeq, 'every journaled record exported');
    assert.equal(events.map((e) => e.seq), events.map((_e, i) => i + 1));
    assert.is(events[0]?.type, 'boot');
    assert.is(events[0]?.epoch, L.record?.journalEpoch);
    const granted = events.filter((e) => e.type === 'decision_granted');
    assert.is(granted.length, 4);
    assert.equal(granted.map((e) => e.level), ['institution', 'individual', 'institution', 'institution']);
    assert.ok(granted.every((e) => /^[0-9a-f]{16}$/.test(e.key) && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(e.time)));
    assert.is(events.filter((e) => e.type === 'passage_completed').length, 4);
    assert.equal(events.filter((e) => e.type === 'decision_denied').map((e) => [e.reason, (e as unknown as { registry: string }).registry]), [['unknown_credential', 'never enrolled']]);
    const lines = readFileSync(csvFile, 'utf8').trim().split('\n');
    assert.is(lines[0], 'gate,epoch,seq,time,type,reason,level,key,clock_untrusted,received_at,registry');
    assert.is(lines.length, events.length + 1);
    assert.match(lines[1] as string, new RegExp(`^${GATE},${L.record?.journalEpoch},1,[^,]+,boot,power_on,none,,0,`));
  });

  live('a change committed by the CLI reaches the gate through serve', async () => {
    const g = gateOf();
    await cli(['central', 'revoke', '--data', L.data, '--card', CARD(3)], 0);
    await waitFor('the gate follows the CLI change', () => g.gate.store.version === 2, 10000);
  });

  live('gate open: done, exactly one command record, the lane opens once; the same bytes again: refused/replayed', async () => {
    const g = gateOf();
    L.watch = await listen(L.broker.url, [topics.gate(GATE, 'cmd'), topics.gate(GATE, 'cmdres')]);
    L.clients.push(L.watch.client);
    const watch = L.watch;
    const set = g.outputs.set.bind(g.outputs);
    g.outputs.set = (output, on) => {
      if (output === 'relay' && on && !g.outputs.state.relay) L.opens++;
      return set(output, on);
    };
    L.openRecords = openCommands(g);
    const open = await cli(['gate', 'open', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(open.stdout, new RegExp(`gate ${GATE}: open done: opened \\(nonce [0-9a-f]{32}`));
    assert.is(openCommands(g) - L.openRecords, 1, 'exactly one command record');
    assert.is(L.opens, 1, 'the lane opened once');
    await waitFor('the command seen by the listener', () => watch.messages.some((m) => m.topic.endsWith('/cmd')), 3000);
    const sent = watch.messages.find((m) => m.topic.endsWith('/cmd'))!.payload;
    const cmd = openSigned(Command, sent, L.ring);
    if (!cmd.ok) throw new Error('the CLI sent a command that does not verify');
    assert.is(cmd.value.expires - cmd.value.issuedAt, 60);
    await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(sent), { qos: 1 });
    await waitFor('answer to the replay', () => resultsFor(watch.messages, cmd.value.nonce).length >= 2, 5000);
    assert.equal(resultsFor(watch.messages, cmd.value.nonce).map((r) => [r.status, r.reason]), [['done', 'opened'], ['refused', 'replayed']]);
    assert.is(openCommands(g) - L.openRecords, 1, 'the replay is not executed');
    assert.is(L.opens, 1);
  });

  live('expired commands are refused and reported (exit 3); forged and unsigned ones get no execution and no answer', async () => {
    const g = gateOf();
    const watch = L.watch;
    if (watch === null) throw new Error('no listener (an earlier test failed)');
    await cli(['gate', 'open', GATE, '--data', L.data, '--broker', L.broker.url, '--expires', '-5'], 3, new RegExp(`gate ${GATE} refused open: expired`));
    const seven = new Uint8Array(16).fill(7);
    const stale = sealSigned(Command, { gate: GATE, nonce: seven, issuedAt: 1_700_000_000, expires: 1_700_000_060, op: 'open' }, L.keys.signingKey, nodeCrypto);
    await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(stale), { qos: 1 });
    await waitFor('answer to a hand-made expired command', () => resultsFor(watch.messages, seven).length === 1, 5000);
    assert.equal(resultsFor(watch.messages, seven).map((r) => [r.status, r.reason]), [['refused', 'expired']]);

    const now = Math.floor(Date.now() / 1000);
    const valid = { gate: GATE, issuedAt: now, expires: now + 60, op: 'open' as const };
    const stranger = sealSigned(Command, { ...valid, nonce: new Uint8Array(16).fill(1) }, generateKeys().signingKey, nodeCrypto);
    const payload = encodeCommand({ ...valid, nonce: new Uint8Array(16).fill(2) });
    const tampered = encodeEnvelope({ kid: nodeCrypto.sha256(L.keys.publicKey).subarray(0, 8), sig: new Uint8Array(64).fill(9), payload });
    const unsigned = encodeCommand({ ...valid, nonce: new Uint8Array(16).fill(3) });
    const total = () => Object.values(g.gate.commandsRefused).reduce((a, b) => a + b, 0);
    const refusedBefore = { ...g.gate.commandsRefused };
    const before = total();
    for (const bytes of [stranger, tampered, unsigned]) await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(bytes), { qos: 1 });
    await waitFor('the forgeries counted', () => total() - before >= 3, 5000);
    await new Promise((r) => setTimeout(r, 200));
    assert.is((g.gate.commandsRefused.unknown_key ?? 0) - (refusedBefore.unknown_key ?? 0), 1, 'signed by a stranger');
    assert.is((g.gate.commandsRefused.bad_signature ?? 0) - (refusedBefore.bad_signature ?? 0), 1, 'bad signature');
    for (const n of [1, 2, 3]) assert.is(resultsFor(watch.messages, new Uint8Array(16).fill(n)).length, 0, 'no answer to a stranger');
    assert.is(openCommands(g) - L.openRecords, 1, 'nothing executed');
    assert.is(L.opens, 1);
  });

  live('gate commands: unprovisioned gate refused (3), bad config params refused (3), config applied', async () => {
    await Promise.all([
      cli(['gate', 'open', 'fl-in-t99', '--data', L.data, '--broker', L.broker.url], 3, /unknown gate 'fl-in-t99': not provisioned/),
      cli(['gate', 'config', GATE, '--data', L.data, '--broker', L.broker.url, '--params', '0102'], 3, /refused config: bad_params/),
    ]);
    const configured = await cli(['gate', 'config', GATE, '--data', L.data, '--broker', L.broker.url, '--passback', '30', '--stale-after', '600'], 0);
    assert.match(configured.stdout, /config done: configured/);
    assert.equal([gateOf().gate.config.passbackSeconds, gateOf().gate.config.policy.staleAfterSeconds, gateOf().gate.state.passbackSeconds], [30, 600, 30]);
    assert.is(openCommands(gateOf()) - L.openRecords, 1);
  });

  live('Central.sendCommand and the CLI: lockdown, release, and an expired command refused', async () => {
    const g = gateOf();
    // A second central on another list with the same key (it publishes no head the gate follows).
    // Sharing the data directory's database: it knows the gate's identity, so it can verify the answers.
    const api = await Central.open({ db: await c.target(L.data), signingKey: L.keys.signingKey, deploymentKey: L.keys.deploymentKey, gateMasterKey: L.keys.gateMasterKey, brokerUrl: L.broker.url, list: 'api' });
    try {
      await api.start();
      const down = await api.sendCommand(GATE, 'lockdown', { waitMs: 5000 });
      assert.equal([down.result?.status, down.result?.reason], ['done', 'locked_down']);
      assert.is(g.gate.state.lockdown, true);
      const up = await api.sendCommand(GATE, 'release', { waitMs: 5000 });
      assert.equal([up.result?.status, up.result?.reason], ['done', 'released']);
      assert.is(g.gate.state.lockdown, false);
      const late = await api.sendCommand(GATE, 'open', { expiresInSeconds: 0, waitMs: 5000 });
      assert.equal([late.result?.status, late.result?.reason], ['refused', 'expired']);
    } finally {
      await api.close();
    }
    // The same from the command line.
    const down = await cli(['gate', 'lockdown', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(down.stdout, new RegExp(`gate ${GATE}: lockdown done: locked_down`));
    assert.is(g.gate.state.lockdown, true);
    const up = await cli(['gate', 'release', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(up.stdout, new RegExp(`gate ${GATE}: release done: released`));
    assert.is(g.gate.state.lockdown, false);
    assert.is(openCommands(g) - L.openRecords, 1);
  });

  live('central serve stops cleanly on SIGTERM; presence stays readable', async () => {
    const serve = L.serve;
    if (serve === null) throw new Error('serve not running (an earlier test failed)');
    assert.is(await serve.stop(), 0, serve.stderr());
    assert.match(serve.stdout(), /central: stopped/);
    // stdout: the two result lines; every diagnostic on stderr, timestamped (docs/CLI.md).
    assert.equal(serve.stdout().trim().split('\n').map((l) => l.replace(/ .*/, '')), ['central:', 'central:'], serve.stdout());
    const diagnostics = serve.stderr().trim().split('\n').filter((l) => l !== '');
    assert.ok(diagnostics.length > 0 && diagnostics.every((l) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /.test(l)), serve.stderr());
    L.serve = null;
    const after = await cli(['central', 'gates', '--data', L.data, '--format', 'json'], 0);
    assert.is((JSON.parse(after.stdout) as { gates: unknown[] }).gates.length, 1);
  });

  live('an offline gate keeps its last known values and the time of its last message after serve restarts on its retained will', async () => {
    type Row = { gate: string; state: string; whitelist: { version: number } | null; backlog: number | null; lastSeen: string | null; at: string | null };
    const gates = async (): Promise<Row[]> => (JSON.parse((await cli(['central', 'gates', '--data', L.data, '--json'], 0)).stdout) as { gates: Row[] }).gates;
    const g = gateOf();
    assert.is(L.serve, null, 'serve is stopped (the test before)');
    const before = (await gates())[0] as Row;
    assert.equal([before.state, before.whitelist?.version], ['online', g.gate.store.version]);
    assert.type(before.backlog, 'number');
    // The gate drops while no central listens: the broker keeps its will (retained, fixed at CONNECT).
    g.stop();
    L.gate = null;
    await new Promise((r) => setTimeout(r, 2100)); // a wrong LAST SEEN (when serve read the will) would differ by seconds
    L.serve = await c.start(['central', 'serve', '--data', L.data, '--broker', L.broker.url, '--head-interval', '2', '--poll', '0.2']);
    await L.serve.waitForOutput(/central: serving list main/);
    for (let i = 0; (await gates())[0]?.state !== 'offline'; i++) {
      if (i > 50) throw new Error('the retained will was not read within 10 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const after = (await gates())[0] as Row;
    assert.equal([after.state, after.whitelist?.version, after.backlog], ['offline', before.whitelist?.version, before.backlog], 'the last known whitelist and backlog, not those of the will');
    assert.is(after.lastSeen, before.lastSeen, 'last seen: the gate\'s last message, not when serve started');
    const table = (await cli(['central', 'gates', '--data', L.data], 0)).stdout;
    assert.match(table, new RegExp(`^${GATE}\\s+active \\(key 1\\)\\s+offline\\s+\\d+\\s+first\\s+in\\s+person\\s+main v${String(before.whitelist?.version)}\\s+${String(before.backlog)}\\s+\\S+\\s+${String(before.lastSeen)}`, 'm'));
  });

  live('gate status: the retained status decoded and verified with the gate\'s key; a forged one is refused (3), none is exit 4', async () => {
    const st = await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url, '--json'], 0);
    // The broker holds the will: fixed at CONNECT (the lists the gate held then, perhaps none).
    const s = JSON.parse(st.stdout) as { gate: string; state: string; line: string; boot: number; lists: { list: string; version: number }[] };
    assert.equal([s.gate, s.state, s.line, s.boot], [GATE, 'offline', 'first', 1], st.stdout);
    assert.ok(s.lists.every((l) => l.list === 'main'), st.stdout);
    assert.match((await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url], 0)).stdout, new RegExp(`^gate ${GATE}: offline, firmware .*\\n  whitelist: (none|main epoch \\d+ version \\d+); backlog \\d+`));
    const forger = await mqtt.connectAsync(L.broker.url, { clientId: 'forger-status' });
    try {
      await forger.publishAsync(topics.gate(GATE, 'status'), Buffer.from('a status nobody MACed'), { retain: true, qos: 1 });
      await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url], 3, /is not MACed by gate fl-in-t01/);
      await forger.publishAsync(topics.gate(GATE, 'status'), Buffer.alloc(0), { retain: true, qos: 1 }); // cleared
    } finally {
      await forger.endAsync();
    }
    await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url, '--wait', '1'], 4, /no retained status of gate fl-in-t01/);
    await cli(['gate', 'status', 'fl-in-t99', '--data', L.data, '--broker', L.broker.url], 3, /unknown gate 'fl-in-t99'/);
  });
}
// ---------------------------------------------------------------- on a locked-down broker

// The suite above runs on an open broker on purpose: it replays and forges commands as a
// stranger, which a secured broker would not even let connect. This one runs the same daily
// flow where nothing is anonymous: TLS client certificates from the data directory's PKI
// (the central's for serve and gate commands, the gate's from its record), the ACL of the
// data directory (broker-acl.ts), on the embedded broker's TLS listener.
// TLS and the ACL do not depend on where the data is: on SQLite only (the broker's ACL from a PostgreSQL database: broker config above).
const locked = suite('cli on a locked-down broker (TLS client certificates, ACL)');
lockedSuite(locked, context(engines()[0] as Engine));
locked.run();

function lockedSuite(locked: Test, c: Ctx): void {
  const { cli } = c;
  timed(locked);

  locked('provision, serve, gate open and central gates over mqtts:// with the data directory\'s identities; strangers get nothing', async () => {
    const data = await populated(c);
    const pki = await DeploymentPki.load(join(data, 'pki'));
    const broker = await startEmbeddedBroker({ port: 0, tlsPort: 0, security: { acl: await aclOfData(data, 'subline', await c.target(data)), tls: pki.serverFiles() } });
    let serve: CliProcess | null = null;
    let gate: NodeGate | null = null;
    try {
      const url = broker.url;
      assert.match(url, /^mqtts:\/\//);
      const recordFile = join(data, 'gate.cbor');
      await cli(['provision', '--data', data, '--gate', GATE, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--broker', url, '--out', recordFile], 0);
      await broker.reload({ acl: await aclOfData(data, 'subline', await c.target(data)) }); // the new gate is in the ACL now (Mosquitto: broker config again + SIGHUP)
      const p = decodeProvisioning(new Uint8Array(readFileSync(recordFile)));
      if (!p.ok) throw new Error('record does not decode');
      serve = await c.start(['central', 'serve', '--data', data, '--broker', url, '--head-interval', '2', '--poll', '0.2']);
      await serve.waitForOutput(/central: serving list main/);
      const g = new NodeGate({ provisioning: p.value, crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50 });
      gate = g;
      g.start();
      await waitFor('the gate (its own certificate) holds version 1', () => g.gate.store.version === 1, 15000);
      const open = await cli(['gate', 'open', GATE, '--data', data, '--broker', url], 0);
      assert.match(open.stdout, /open done: opened/);
      await withStore(c, data, (s) => waitFor('presence stored', async () => (await s.state.gate(GATE))?.status.state === 'online', 10000));
      // No certificate, or another CA's: the TLS listener refuses the connection itself.
      const stranger = await DeploymentPki.create(tempDir());
      const refusedWith = async (opts: mqtt.IClientOptions): Promise<boolean> => {
        const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
        const r = await new Promise<boolean>((resolve) => {
          c.once('connect', () => resolve(false));
          c.once('error', () => resolve(true));
          c.once('close', () => resolve(true));
        });
        c.end(true);
        return r;
      };
      assert.ok(await refusedWith({ ca: pki.caPem }), 'no client certificate');
      const foreign = await stranger.issueOperator('mallory');
      assert.ok(await refusedWith({ ca: pki.caPem, cert: foreign.cert, key: foreign.key }), "another CA's certificate");
      await cli(['gate', 'open', GATE, '--data', data, '--broker', url, '--ca', join(stranger.dir, 'ca.crt.pem'), '--wait', '2'], 4, /cannot connect to the broker|no connection/);
    } finally {
      gate?.stop();
      if (serve !== null) await serve.stop();
      await broker.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
}
