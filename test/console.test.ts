// The operators' console over HTTP (host-sim/console/console-server.ts,
// docs/API.md): nothing but the page and its assets without a session; login
// with a scrypt-hashed password, an HttpOnly SameSite=Strict cookie, CSRF on
// every change, rate-limited attempts; the fleet; searches through the event
// query module with the card entered as printed, CSV export, 400 for bad
// input, SQL-looking input kept a parameter; the live stream; no plain HTTP
// off loopback. The browser tests are test/console-browser.test.ts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecord, encodeRecord, EventType, GrantLevel, RECORD_BYTES } from '../protocol/event-record.js';
import { fromHex } from '../protocol/hex.js';
import type { EventBatchMessage } from '../protocol/messages.js';
import { Reason } from '../protocol/reasons.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { checkPassword, hashPassword, OperatorError, OperatorStore } from '../host-sim/central/operator-store.js';
import { ConsoleError, ConsoleServer } from '../host-sim/console/console-server.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { DeploymentPki } from '../host-sim/pki/deployment-pki.js';

const KEYS = generateKeys();
const T0 = Math.floor(Date.now() / 1000) - 3600; // an hour ago: within the fleet's alarm window (a day)
const PASSWORD = 'correct horse battery';

interface World {
  dir: string;
  central: Central;
  server: ConsoleServer;
  chain: { prev: Uint8Array; next: number };
}

/** Journal records of gate fl-in-t01, epoch 7, from `first`, in one batch continuing the chain. */
function batch(w: World, taps: readonly { key: Uint8Array | null; type: number; reason: number }[]): EventBatchMessage {
  const all = new Uint8Array(taps.length * RECORD_BYTES);
  let c = w.chain.prev;
  const prev = c;
  const first = w.chain.next;
  taps.forEach((t, i) => {
    const r = createRecord();
    r.time = T0 + first + i;
    if (t.key !== null) r.key.set(t.key);
    r.type = t.type;
    r.reason = t.reason;
    r.level = t.type === EventType.decision_granted ? GrantLevel.individual : 0;
    const out = new Uint8Array(RECORD_BYTES);
    encodeRecord(r, first + i, 7, out);
    all.set(out, i * RECORD_BYTES);
    c = sha256Pair(c, out);
  });
  w.chain = { prev: c, next: first + taps.length };
  return { gate: 'fl-in-t01', epoch: 7, first, count: taps.length, records: all, prev, chain: c };
}

async function world(o: { loginsPerMinute?: number; sessionRecheckMs?: number } = {}): Promise<World & { keys: { k1: Uint8Array; k2: Uint8Array } }> {
  const dir = mkdtempSync(join(tmpdir(), 'subline-console-'));
  const central = await Central.open({ db: join(dir, 'central.db'), ...KEYS, brokerUrl: 'mqtt://127.0.0.1:1' /* never started: the console reads the store */ });
  const r = central.registry;
  const inst = await r.addInstitution({ name: 'Quantum', industry: null });
  await r.addSubject({ id: 'p-1', kind: 'person', institution: inst, name: 'Li Wei' });
  await r.addSubject({ id: 'p-2', kind: 'person', institution: null, name: 'Chan' });
  const k1 = await r.addCredential({ subject: 'p-1', kind: 'card', rawId: fromHex('c0000001') });
  const k2 = await r.addCredential({ subject: 'p-2', kind: 'card', rawId: fromHex('c0000002') });
  await central.store.identities.register({ gate: 'fl-in-t01', site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, T0);
  await central.store.identities.register({ gate: 'sl-out-t02', site: 'luohu', list: 'main', line: 'second', direction: 'out', lane: 'person' }, T0);
  const ops = new OperatorStore(central.store.db);
  await ops.add('ana', 'viewer', PASSWORD);
  const server = await ConsoleServer.start({ central, ...(o.loginsPerMinute !== undefined ? { loginsPerMinute: o.loginsPerMinute } : {}), ...(o.sessionRecheckMs !== undefined ? { sessionRecheckMs: o.sessionRecheckMs } : {}) });
  const w = { dir, central, server, chain: { prev: new Uint8Array(32), next: 1 }, keys: { k1, k2 } };
  const b = batch(w, [
    { key: k1, type: EventType.decision_granted, reason: Reason.granted },
    { key: k1, type: EventType.passage_completed, reason: 0 },
    { key: k2, type: EventType.decision_denied, reason: Reason.no_grant },
    { key: null, type: EventType.alarm, reason: 1 },
  ]);
  assert.is((await central.events.ingest(b)).problem, undefined);
  return w;
}

async function close(w: World): Promise<void> {
  await w.server.close();
  await w.central.close();
  rmSync(w.dir, { recursive: true, force: true });
}

/** Logs in; returns the cookie header and the CSRF token. */
async function login(w: World, name = 'ana', password = PASSWORD): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await fetch(new URL('/api/login', w.server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });
  assert.is(r.status, 200, await r.clone().text());
  const setCookie = r.headers.get('set-cookie') ?? '';
  const body = (await r.json()) as { csrf: string; role: string; name: string };
  assert.is(body.role, 'viewer');
  return { cookie: setCookie.split(';')[0]!, csrf: body.csrf, setCookie };
}

async function rejects(p: Promise<unknown>, ok: (e: unknown) => boolean): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(ok(e), String(e));
    return;
  }
  assert.unreachable('should have been refused');
}

const get = (w: World, path: string, cookie?: string) => fetch(new URL(path, w.server.url), { headers: cookie !== undefined ? { cookie } : {} });

test('passwords: scrypt hashes, salted, checked in constant time; bad names, roles and short passwords refused', async () => {
  const h1 = await hashPassword(PASSWORD);
  const h2 = await hashPassword(PASSWORD);
  assert.match(h1, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.is.not(h1, h2, 'salted');
  assert.ok(await checkPassword(PASSWORD, h1));
  assert.not.ok(await checkPassword(`${PASSWORD}x`, h1));
  assert.not.ok(await checkPassword(PASSWORD, 'scrypt$1048576$8$1$AAAA$AAAA'), 'a tampered cost is refused, not computed');
  const w = await world();
  try {
    const ops = new OperatorStore(w.central.store.db);
    await rejects(ops.add('ana', 'admin', PASSWORD), (e: unknown) => e instanceof OperatorError && /exists already/.test(e.message));
    await rejects(ops.add('bob', 'root', PASSWORD), (e: unknown) => e instanceof OperatorError && /role 'root'/.test(e.message));
    await rejects(ops.add('-x', 'admin', PASSWORD), (e: unknown) => e instanceof OperatorError && /operator name/.test(e.message));
    await rejects(ops.add('bob', 'admin', 'short'), (e: unknown) => e instanceof OperatorError && /at least 12/.test(e.message));
    const { password } = await ops.add('bob', 'admin');
    assert.match(password, /^[A-Za-z0-9_-]{20}$/, 'a one-time password');
    assert.is((await ops.verify('bob', password))?.role, 'admin');
    assert.is(await ops.verify('bob', 'wrong password!'), null);
    assert.is(await ops.verify('nobody', password), null);
    const row = await w.central.store.db.get<{ password: string }>("SELECT password FROM operators WHERE name = 'bob'");
    assert.ok(row !== undefined && !row.password.includes(password), 'only the hash is stored');
  } finally {
    await close(w);
  }
});

test('without a session: the page and its assets only; every /api/ request is 401', async () => {
  const w = await world();
  try {
    const page = await get(w, '/');
    assert.is(page.status, 200);
    assert.match(await page.text(), /<title>subline console<\/title>/);
    assert.is((await get(w, '/assets/console.js')).status, 200);
    for (const path of ['/api/gates', '/api/gates/fl-in-t01', '/api/events', '/api/events?format=csv', '/api/session', '/api/stream', '/api/nothing']) {
      const r = await get(w, path);
      assert.is(r.status, 401, path);
      assert.equal(await r.json(), { error: 'not logged in' });
    }
    assert.is((await fetch(new URL('/api/logout', w.server.url), { method: 'POST' })).status, 401);
    assert.is((await get(w, '/api/gates', 'subline_session=forged')).status, 401, 'an unknown session id');
  } finally {
    await close(w);
  }
});

/** A raw HTTP GET (any request target, any Host header): the status. */
function rawGet(url: string, target: string, host?: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: target, method: 'GET', headers: { host: host ?? u.host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('URL tricks and foreign Host headers do not get past the login (deny by default on the matched route)', async () => {
  const w = await world();
  try {
    const u = new URL(w.server.url);
    for (const target of ['/%61pi/gates', '/%61pi/events?format=csv', '/%61pi/stream', '/%61pi/session', '/api/%67ates', `http://${u.host}/api/gates`, `http://${u.host}/%61pi/events`]) {
      const status = await rawGet(w.server.url, target);
      assert.ok(status === 401 || status === 404, `${target}: ${status}`);
    }
    assert.is(await rawGet(w.server.url, '/api/gates', `localhost:${u.port}`), 401, 'localhost is one of our names');
    assert.is(await rawGet(w.server.url, '/', 'attacker.example'), 421, 'a DNS-rebinding page');
    assert.is(await rawGet(w.server.url, '/api/login', `127.0.0.1:${Number(u.port) + 1}`), 421, 'another port');
  } finally {
    await close(w);
  }
});

test('login: wrong password 401; the session cookie is HttpOnly and SameSite=Strict; changes need the CSRF token; logout ends the session', async () => {
  const w = await world();
  try {
    const bad = await fetch(new URL('/api/login', w.server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ana', password: 'not the password' }) });
    assert.is(bad.status, 401);
    assert.is(bad.headers.get('set-cookie'), null);
    const malformed = await fetch(new URL('/api/login', w.server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 1 }) });
    assert.is(malformed.status, 400);
    const s = await login(w);
    assert.match(s.setCookie, /HttpOnly/i);
    assert.match(s.setCookie, /SameSite=Strict/i);
    assert.not.match(s.setCookie, /Secure/i, 'plain HTTP on loopback: no Secure flag');
    const me = await get(w, '/api/session', s.cookie);
    assert.equal(await me.json(), { name: 'ana', role: 'viewer', csrf: s.csrf });
    const noToken = await fetch(new URL('/api/logout', w.server.url), { method: 'POST', headers: { cookie: s.cookie } });
    assert.is(noToken.status, 403);
    const wrongToken = await fetch(new URL('/api/logout', w.server.url), { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': `${s.csrf.slice(0, -1)}${s.csrf.endsWith('A') ? 'B' : 'A'}` } });
    assert.is(wrongToken.status, 403);
    assert.is((await get(w, '/api/gates', s.cookie)).status, 200, 'still logged in');
    const out = await fetch(new URL('/api/logout', w.server.url), { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.is(out.status, 200);
    assert.is((await get(w, '/api/gates', s.cookie)).status, 401, 'the session is gone');
  } finally {
    await close(w);
  }
});

test('a disabled operator, or one whose password changed, loses its session', async () => {
  const w = await world({ sessionRecheckMs: 0 });
  try {
    const ops = new OperatorStore(w.central.store.db);
    const s = await login(w);
    assert.is((await get(w, '/api/gates', s.cookie)).status, 200);
    await ops.setDisabled('ana', true);
    assert.is((await get(w, '/api/gates', s.cookie)).status, 401, 'disabled');
    const again = await fetch(new URL('/api/login', w.server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ana', password: PASSWORD }) });
    assert.is(again.status, 401, 'a disabled operator cannot log in');
    await ops.setDisabled('ana', false);
    const s2 = await login(w);
    await ops.setPassword('ana', 'another password 42');
    assert.is((await get(w, '/api/gates', s2.cookie)).status, 401, 'a new password ends the old sessions');
  } finally {
    await close(w);
  }
});

test('login attempts are rate-limited per client address', async () => {
  const w = await world({ loginsPerMinute: 3 });
  try {
    const attempt = () => fetch(new URL('/api/login', w.server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ana', password: 'guess guess guess' }) });
    for (let i = 0; i < 3; i++) assert.is((await attempt()).status, 401);
    assert.is((await attempt()).status, 429);
  } finally {
    await close(w);
  }
});

test('the fleet: every gate by site and line, with presence and whitelist; a gate page with its recent events and alarms', async () => {
  const w = await world();
  try {
    const s = await login(w);
    const fleet = (await (await get(w, '/api/gates', s.cookie)).json()) as { list: { name: string; version: number }; gates: { gate: string; site: string; state: string; alarms: number; clockTrusted: boolean | null }[] };
    assert.is(fleet.list.name, 'main');
    assert.equal(fleet.gates.map((g) => [g.gate, g.site, g.state]), [['fl-in-t01', 'futian', 'never seen'], ['sl-out-t02', 'luohu', 'never seen']]);
    assert.is(fleet.gates[0]!.alarms, 1, 'the alarm of the last day');
    assert.is(fleet.gates[1]!.alarms, 0);
    assert.is(fleet.gates[0]!.clockTrusted, true);
    const page = (await (await get(w, '/api/gates/fl-in-t01', s.cookie)).json()) as { passages: { type: string }[]; alarms: { type: string }[] };
    assert.equal(page.passages.map((e) => e.type), ['alarm', 'decision_denied', 'passage_completed', 'decision_granted'], 'newest first');
    assert.equal(page.alarms.map((e) => e.type), ['alarm']);
    assert.is((await get(w, '/api/gates/nope', s.cookie)).status, 404);
  } finally {
    await close(w);
  }
});

test('search: by card as printed (the key derived server side), subject, reason; CSV export; bad input 400; SQL-looking input stays a value', async () => {
  const w = await world();
  try {
    const s = await login(w);
    const search = async (q: string) => (await get(w, `/api/events?${q}`, s.cookie));
    const byCard = (await (await search('card=C0-00-00-01')).json()) as { events: { subject: string; type: string }[] };
    assert.equal(byCard.events.map((e) => [e.subject, e.type]), [['p-1', 'decision_granted'], ['p-1', 'passage_completed']], 'the card as printed (separators, upper case)');
    const bySubject = (await (await search('subject=p-2')).json()) as { events: { reason: string }[] };
    assert.equal(bySubject.events.map((e) => e.reason), ['no_grant']);
    const denied = (await (await search(`denied=true&from=${T0}&to=${T0 + 100}`)).json()) as { count: number };
    assert.is(denied.count, 1);
    assert.is(((await (await search(`from=${T0 + 3}`)).json()) as { count: number }).count, 2, 'a time range (records at T0+1..T0+4)');
    const csv = await search('gate=fl-in-t01&format=csv');
    assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
    assert.match(csv.headers.get('content-disposition') ?? '', /attachment/);
    const lines = (await csv.text()).trim().split('\n');
    assert.is(lines[0], 'time,gate,site,line,direction,type,reason,level,key,subject,institution,epoch,seq,clockUntrusted,receivedAt');
    assert.is(lines.length, 5);
    for (const [q, why] of [
      ['limit=0', /limit '0'/],
      ['limit=abc', /limit 'abc'/],
      ['from=yesterday', /from 'yesterday'/],
      ['from=2027-02-01&to=2027-01-01', /from is after to/],
      ['card=zz', /card 'zz'/],
      ['card=c0000001&key=0102030405060708', /one of card, uhf and key/],
      ['institution=abc', /institution 'abc'/],
      ['reason=no_such_reason', /reason/],
      ['format=xml', /format 'xml'/],
      ['evil=1', /unknown parameter 'evil'/],
      ['gate=a&gate=b', /gate given more than once/],
    ] as const) {
      const r = await search(q);
      assert.is(r.status, 400, q);
      assert.match(((await r.json()) as { error: string }).error, why, q);
    }
    const sql = await search(`gate=${encodeURIComponent("fl-in-t01' OR '1'='1")}`);
    assert.is(sql.status, 200);
    assert.is(((await sql.json()) as { count: number }).count, 0, 'a parameter, not SQL');
    assert.is(((await (await search('')).json()) as { count: number }).count, 4, 'the events are all still there');
  } finally {
    await close(w);
  }
});

test('the live stream: the fleet at once, then stored events coalesced into passages messages', async () => {
  const w = await world();
  try {
    const s = await login(w);
    const abort = new AbortController();
    const r = await fetch(new URL('/api/stream', w.server.url), { headers: { cookie: s.cookie }, signal: abort.signal });
    assert.is(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = async (re: RegExp): Promise<void> => {
      const end = Date.now() + 10_000;
      while (!re.test(text)) {
        if (Date.now() > end) throw new Error(`no ${String(re)} in the stream: ${text.slice(0, 500)}`);
        const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
        if (chunk.done) throw new Error('stream ended');
        text += new TextDecoder().decode(chunk.value);
      }
    };
    await until(/event: fleet\ndata: \{.*"fl-in-t01"/);
    assert.is((await w.central.events.ingest(batch(w, [{ key: w.keys.k2, type: EventType.decision_denied, reason: Reason.revoked }]))).problem, undefined);
    await until(/event: passages\ndata: \{"events":\[.*"reason":"revoked".*\],"skipped":0\}/);
    assert.not.match(text, /"reason":"no_grant"/, 'what was stored before the page opened is not news');
    // Logging out ends the stream (it lives only as long as its session).
    const out = await fetch(new URL('/api/logout', w.server.url), { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    assert.is(out.status, 200);
    const ended = await Promise.race([
      (async () => {
        for (;;) if (((await reader.read()) as { done: boolean }).done) return true;
      })(),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    assert.ok(ended, 'the stream ended with the session');
    abort.abort();
    // A stream open while the server closes does not hold it open.
    const s2 = await login(w);
    const r2 = await fetch(new URL('/api/stream', w.server.url), { headers: { cookie: s2.cookie } });
    assert.is(r2.status, 200);
    const t0 = Date.now();
    await w.server.close();
    assert.ok(Date.now() - t0 < 2000, `closed in ${Date.now() - t0} ms with a stream open`);
  } finally {
    await close(w);
  }
});

/** POST over TLS with an optional client certificate: status, set-cookie. */
function tlsPost(url: string, path: string, o: { ca: Buffer; cert?: string; key?: string; body?: string }): Promise<{ status: number; setCookie: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', ca: o.ca, ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}), headers: o.body !== undefined ? { 'content-type': 'application/json' } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: String(res.headers['set-cookie'] ?? '') }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

test('over TLS with the deployment CA: an operator certificate logs in (Secure cookie); one of no operator, a revoked one, or none does not', async () => {
  const w = await world();
  const pkiDir = mkdtempSync(join(tmpdir(), 'subline-console-pki-'));
  let tlsServer: ConsoleServer | null = null;
  try {
    const pki = await DeploymentPki.create(pkiDir);
    const f = pki.serverFiles();
    const ana = await pki.issueOperator('ana');
    const zed = await pki.issueOperator('zed'); // a certificate, but no operator of that name
    const ca = readFileSync(f.ca);
    const start = () => ConsoleServer.start({ central: w.central, tls: { cert: readFileSync(f.cert), key: readFileSync(f.key), ca, crl: readFileSync(f.crl) } });
    tlsServer = await start();
    assert.match(tlsServer.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    const ok = await tlsPost(tlsServer.url, '/api/login/certificate', { ca, cert: ana.cert, key: ana.key });
    assert.is(ok.status, 200);
    assert.match(ok.setCookie, /Secure/);
    assert.match(ok.setCookie, /HttpOnly/);
    assert.is((await tlsPost(tlsServer.url, '/api/login/certificate', { ca, cert: zed.cert, key: zed.key })).status, 401, 'no operator zed');
    assert.is((await tlsPost(tlsServer.url, '/api/login/certificate', { ca })).status, 401, 'no certificate');
    const pw = await tlsPost(tlsServer.url, '/api/login', { ca, body: JSON.stringify({ name: 'ana', password: PASSWORD }) });
    assert.is(pw.status, 200, 'a password login over TLS, without a certificate');
    assert.match(pw.setCookie, /Secure/);
    await pki.revoke('subline.operator.ana');
    await tlsServer.close();
    tlsServer = await start();
    assert.is((await tlsPost(tlsServer.url, '/api/login/certificate', { ca, cert: ana.cert, key: ana.key })).status, 401, 'revoked (the CRL)');
  } finally {
    await tlsServer?.close();
    await close(w);
    rmSync(pkiDir, { recursive: true, force: true });
  }
});

test('the console refuses plain HTTP off loopback', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-console-'));
  const central = await Central.open({ db: join(dir, 'central.db'), ...KEYS, brokerUrl: 'mqtt://127.0.0.1:1' /* never started: the console reads the store */ });
  try {
    await rejects(ConsoleServer.start({ central, host: '0.0.0.0' }), (e: unknown) => e instanceof ConsoleError && /needs TLS/.test(e.message));
  } finally {
    await central.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
