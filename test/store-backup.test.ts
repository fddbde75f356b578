// docs/DEPLOYMENT.md's backup and restore, run as written: a populated
// central on PostgreSQL (registry changes through the CLI, events ingested
// with their chains, a gate's identity and presence) is dumped with pg_dump
// (custom format) and restored with pg_restore into a new database; every
// table of the restore equals the original row for row, and the CLI opens it.
// Then the after-restore procedure: a gate that holds a version the restored
// database never made is shown AHEAD with a warning, and `central init
// --new-epoch` starts a new epoch. Needs PostgreSQL (else: not run).

import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { suite } from 'uvu';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { TABLE_KEYS } from '../host-sim/central/store/schema.js';
import { locatePostgres } from '../host-sim/postgres-server.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { toHex } from '../protocol/hex.js';
import type { EventBatchMessage, GateStatusMessage } from '../protocol/messages.js';
import { runCli, tempDir } from './helpers/cli.js';
import { engines, notRun, postgresMissing, postgresServer } from './helpers/store-engines.js';

const missing = postgresMissing();

async function dump(target: string): Promise<string> {
  const s = await openCentralStore(target);
  try {
    const out: Record<string, unknown[]> = {};
    for (const [table, keys] of Object.entries(TABLE_KEYS)) out[table] = await s.db.all(`SELECT * FROM ${table} ORDER BY ${keys.join(', ')}`);
    return JSON.stringify(out, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));
  } finally {
    await s.close();
  }
}

function batch(gate: string, n: number): EventBatchMessage {
  const records = new Uint8Array(n * 16);
  for (let i = 0; i < records.length; i++) records[i] = (i * 7 + 3) & 0xff;
  const prev = new Uint8Array(32);
  let chain: Uint8Array = prev;
  for (let i = 0; i < n; i++) chain = sha256Pair(chain, records.subarray(i * 16, i * 16 + 16));
  return { gate, epoch: 1_800_000_000, first: 1, count: n, records, prev, chain };
}

async function cli(args: string[], code: number): Promise<{ stdout: string; stderr: string }> {
  const r = await runCli(args, { timeoutMs: 60_000 });
  assert.is(r.code, code, `subline ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

if (missing !== null) notRun('backup and restore on PostgreSQL', missing);
else {
  const t = suite('backup and restore on PostgreSQL (docs/DEPLOYMENT.md)');
  const bin = (locatePostgres() as { ok: true; bin: string }).bin;
  const pgEngine = engines().find((e) => e.name === 'postgres');

  t('pg_dump and pg_restore carry every row; the restored central opens; a restore older than the gates gets a new epoch', async () => {
    if (pgEngine === undefined) throw new Error('no postgres engine');
    const url = await pgEngine.fresh();
    const data = tempDir();
    await cli(['central', 'init', '--data', data, '--db', url], 0);
    writeFileSync(join(data, 'people.csv'), 'id,name,card\np-1,Li Wei,c0000001\np-2,Chan Tai Man,c0000002\n');
    await cli(['central', 'import', '--data', data, '--db', url, join(data, 'people.csv')], 0);
    await cli(['central', 'grant', '--data', data, '--db', url, '--level', 'individual', '--target', 'p-1', '--lines', 'first', '--directions', 'in,out', '--lanes', 'person'], 0);
    await cli(['central', 'revoke', '--data', data, '--db', url, '--card', 'c0000002'], 0);
    const s = await openCentralStore(url);
    const status: GateStatusMessage = {
      gate: 'fl-in-t01', state: 'online', journal: 1_800_000_000, boot: 1, conn: 1, at: 1_800_000_100, firmware: 'test', line: 'first', direction: 'in', lane: 'person',
      lists: [{ list: 'main', epoch: (await s.registry.list()).epoch, version: 3 }], backlog: 0, refused: [],
    };
    try {
      await s.identities.register({ gate: 'fl-in-t01', site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, 1_800_000_000);
      assert.is((await s.events.ingest(batch('fl-in-t01', 40))).stored, 40);
      await s.state.putStatus(status, 1_800_000_101);
    } finally {
      await s.close();
    }
    const before = await dump(url);

    const file = join(tempDir(), 'central.dump');
    const d = spawnSync(join(bin, 'pg_dump'), ['--format=custom', `--file=${file}`, url], { encoding: 'utf8' });
    assert.is(d.status, 0, d.stderr);
    const server = await postgresServer();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    const restoredName = `restored_${process.pid}`;
    try {
      await admin.query(`CREATE DATABASE ${restoredName}`);
    } finally {
      await admin.end();
    }
    const restored = server.url.replace(/\/subline$/, `/${restoredName}`);
    const r = spawnSync(join(bin, 'pg_restore'), ['--no-owner', `--dbname=${restored}`, file], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(await dump(restored), before, 'every table of the restore equals the original');
    assert.match(before, /fl-in-t01/);

    // The gates went on to version 5 after the backup: the restored database (version 3) must not count on from 3.
    const s2 = await openCentralStore(restored);
    try {
      await s2.state.putStatus({ ...status, conn: 2, lists: [{ list: 'main', epoch: status.lists[0]!.epoch, version: 5 }] }, 1_800_000_200);
    } finally {
      await s2.close();
    }
    const g = await cli(['central', 'gates', '--data', data, '--db', restored], 0);
    assert.match(g.stdout, /AHEAD of the central by 2/);
    assert.match(g.stderr, /central init --new-epoch/);
    const e = await cli(['central', 'init', '--data', data, '--db', restored, '--new-epoch'], 0);
    assert.match(e.stdout, /new epoch \d+ at version 0/);
    const s3 = await openCentralStore(restored);
    try {
      const l = await s3.registry.list();
      assert.ok(l.epoch > status.lists[0]!.epoch, 'a new, higher epoch');
      assert.is(l.version, 0);
    } finally {
      await s3.close();
    }
    // The original is untouched by all of this.
    assert.is(await dump(url), before);
  });

  t.run();
}
