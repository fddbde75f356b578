// The console from the command line, as an operator runs it: `central init`
// makes the first administrator and prints its one-time password once;
// `central operator add|list|password`; `central serve --http` serves the
// console (refused without a session, the printed password logs in), and
// refuses plain HTTP off loopback.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedBroker } from '../host-sim/broker.js';
import { runCli, startCli, tempDir } from './helpers/cli.js';

const show = (r: { stdout: string; stderr: string }) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

test('central init makes the first admin (once); operator add, list, password; bad roles and names refused', async () => {
  const dir = tempDir();
  const data = join(dir, 'c');
  try {
    const init = await runCli(['central', 'init', '--data', data]);
    assert.is(init.code, 0, show(init));
    const m = /^console: operator admin \(admin\), one-time password ([A-Za-z0-9_-]{20}) /m.exec(init.stdout);
    assert.ok(m !== null, show(init));
    const again = await runCli(['central', 'init', '--data', data, '--capacity', '200000', '--json']);
    assert.is(again.code, 0, show(again));
    assert.is((JSON.parse(again.stdout) as { operator?: unknown }).operator, undefined, 'a second init makes no operator');
    const add = await runCli(['central', 'operator', 'add', 'bob', '--role', 'operator', '--data', data, '--json']);
    assert.is(add.code, 0, show(add));
    const bob = JSON.parse(add.stdout) as { name: string; role: string; password: string };
    assert.equal([bob.name, bob.role], ['bob', 'operator']);
    assert.match(bob.password, /^[A-Za-z0-9_-]{20}$/);
    const list = await runCli(['central', 'operator', 'list', '--data', data, '--json']);
    assert.equal((JSON.parse(list.stdout) as { operators: { name: string; role: string }[] }).operators.map((o) => [o.name, o.role]), [['admin', 'admin'], ['bob', 'operator']]);
    const dup = await runCli(['central', 'operator', 'add', 'bob', '--role', 'viewer', '--data', data]);
    assert.is(dup.code, 2);
    assert.match(dup.stderr, /operator 'bob' exists already/);
    const role = await runCli(['central', 'operator', 'add', 'eve', '--role', 'root', '--data', data]);
    assert.is(role.code, 2);
    assert.match(role.stderr, /role 'root': one of viewer, operator, admin/);
    const pw = await runCli(['central', 'operator', 'password', 'nobody', '--data', data]);
    assert.is(pw.code, 2);
    assert.match(pw.stderr, /no operator 'nobody'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('central serve --http: the console refuses requests without a session; the printed password logs in; no plain HTTP off loopback', async () => {
  const dir = tempDir();
  const data = join(dir, 'c');
  const broker = await startEmbeddedBroker({ port: 0 });
  const init = await runCli(['central', 'init', '--data', data]);
  const password = /one-time password ([A-Za-z0-9_-]{20})/.exec(init.stdout)?.[1];
  const serve = startCli(['central', 'serve', '--data', data, '--broker', broker.url, '--http', '127.0.0.1:0', '--quiet']);
  try {
    assert.ok(password !== undefined, show(init));
    await serve.waitForOutput(/^console: (http:\/\/127\.0\.0\.1:\d+\/)$/m, 20_000);
    const url = /^console: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(serve.stdout())![1]!;
    assert.is((await fetch(new URL('/api/gates', url))).status, 401);
    const login = await fetch(new URL('/api/login', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'admin', password }) });
    assert.is(login.status, 200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.is((await fetch(new URL('/api/gates', url), { headers: { cookie } })).status, 200);
    await serve.stop();
    const open = await runCli(['central', 'serve', '--data', data, '--broker', broker.url, '--http', '0.0.0.0:0']);
    assert.is(open.code, 2, show(open));
    assert.match(open.stderr, /plain HTTP only on loopback/);
  } finally {
    await serve.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
