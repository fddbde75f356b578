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
import { chmodSync, copyFileSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRecord, encodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { bytesEqual, fromHex, toHex } from '../protocol/hex.js';
import { readKeyFile } from '../host-sim/central/keys.js';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { Reason } from '../protocol/reasons.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { BIN, tempDir } from './helpers/cli.js';
import { engineSuites } from './helpers/store-engines.js';
import { spawn } from 'node:child_process';

import { CARD, context, escapeRe, parallel, plainCli, populated, show, snapshot, version, withStore, type Ctx } from './helpers/cli-context.js';

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
        assert.match(r.stdout, /^schema: 4 \(created\)$/m);
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


  reg('init --json: one object of what was created, then of what --capacity and --new-epoch changed', async () => {
    const data = tempDir();
    const first = JSON.parse((await cli(['central', 'init', '--data', data, '--json'], 0)).stdout) as { changed: string[]; keys: string; list: { name: string; epoch: number; version: number; capacity: number }; publicKey: string; schema: { version: number; created: boolean }; pki: { created: boolean }; database: string; operator?: { name: string; password: string } };
    assert.equal(first.changed, ['created', 'pki_created', 'operator_created']);
    assert.is(first.operator?.name, 'admin', 'the first administrator');
    assert.match(first.operator?.password ?? '', /^[A-Za-z0-9_-]{20}$/, 'its one-time password');
    assert.equal([first.keys, first.list.name, first.list.version, first.schema.created, first.pki.created], ['created', 'main', 0, true, true]);
    assert.is(first.database, await c.target(data));
    assert.match(first.publicKey, /^[0-9a-f]{64}$/);
    const cap = JSON.parse((await cli(['central', 'init', '--data', data, '--capacity', '5000', '--json'], 0)).stdout) as typeof first;
    assert.equal([cap.changed, cap.keys, cap.list.capacity, cap.publicKey, cap.pki.created], [['capacity'], 'kept', 5000, first.publicKey, false]);
    assert.is(cap.operator, undefined, 'no second administrator');
    const epoch = JSON.parse((await cli(['central', 'init', '--data', data, '--new-epoch', '--json'], 0)).stdout) as typeof first;
    assert.equal(epoch.changed, ['new_epoch']);
    assert.ok(epoch.list.epoch > first.list.epoch, 'a new epoch');
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
      assert.match(csv[3] as string, /,never enrolled(,[a-z]*){3},,$/, 'the registry column, then where the gate is and no holder');
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
