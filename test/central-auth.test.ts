// The central's side of gate authentication, piece by piece: derived gate
// keys (cross-checked with a second HKDF implementation), the identity
// registry, the authenticator, the presence order, the sync budget and the
// refusal log. The whole path against impostors on a real broker is in
// impostor.test.ts.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual } from '../protocol/hex.js';
import { sealMaced } from '../protocol/mac-envelope.js';
import { EventAck, GateStatus, SyncRequest, type GateStatusMessage } from '../protocol/messages.js';
import { openMaced } from '../protocol/mac-envelope.js';
import { supersedes } from '../host-sim/central/central.js';
import { GateAuthenticator } from '../host-sim/central/gate-authenticator.js';
import { deriveGateKey } from '../host-sim/central/gate-keys.js';
import { GateRegistryError } from '../host-sim/central/gate-registry.js';
import { GATE_CAPACITY, OTHER_GATES, RefusalLog } from '../host-sim/central/refusal-log.js';
import { SyncBudget } from '../host-sim/central/sync-budget.js';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { Topics } from '../protocol/topics.js';

const MASTER = new Uint8Array(32).map((_, i) => i * 7 + 1);
const te = new TextEncoder();
const G = { site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' } as const;

/** assert.throws for a promise: it rejects, and the error satisfies `check`. */
async function rejects(p: Promise<unknown>, check: (e: unknown) => boolean): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(check(e), `rejected with an unexpected error: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  assert.unreachable('resolved; expected a rejection');
}

const t = suite('central: gate identity and authentication');

t('gate keys: HKDF-SHA256(master, "subline-gate-key-v1", gate ‖ 0 ‖ kid), equal to a second implementation; distinct per gate and kid', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,31}$/), fc.integer({ min: 0, max: 0xffff }), (master, gate, kid) => {
      const ours = deriveGateKey(master, gate, kid);
      const theirs = hkdf(sha256, master, te.encode('subline-gate-key-v1'), te.encode(`${gate}\u0000${kid}`), 32);
      assert.ok(bytesEqual(ours, theirs));
    }),
    { numRuns: 200 },
  );
  const k = deriveGateKey(MASTER, 'fl-in-t01', 1);
  assert.not.ok(bytesEqual(k, deriveGateKey(MASTER, 'fl-in-t01', 2)), 'another kid');
  assert.not.ok(bytesEqual(k, deriveGateKey(MASTER, 'fl-in-t02', 1)), 'another gate');
  assert.not.ok(bytesEqual(k, deriveGateKey(new Uint8Array(32), 'fl-in-t01', 1)), 'another master');
  assert.throws(() => deriveGateKey(new Uint8Array(31), 'g', 1), /32 bytes/);
  assert.throws(() => deriveGateKey(MASTER, 'g', 0x10000), /out of range/);
});

t('registry: register, re-provision bumps the key id, decommission ends the identity for good', async () => {
  const store = await openCentralStore(':memory:', { create: true });
  const reg = store.identities;
  assert.is(await reg.authState('g1'), null);
  const a = await reg.register({ gate: 'g1', ...G }, 100);
  assert.equal([a.state, a.keyId, a.provisionedAt, a.decommissionedAt], ['active', 1, 100, null]);
  const b = await reg.register({ gate: 'g1', ...G, site: 'huanggang' }, 200);
  assert.equal([b.keyId, b.site, b.provisionedAt], [2, 'huanggang', 200]);
  assert.equal(await reg.authState('g1'), { state: 'active', keyId: 2 });
  assert.ok(await reg.decommission('g1', 300));
  assert.not.ok(await reg.decommission('g1', 301), 'only once');
  assert.not.ok(await reg.decommission('nope', 301));
  assert.equal(await reg.authState('g1'), { state: 'decommissioned', keyId: 2 });
  await rejects(reg.register({ gate: 'g1', ...G }, 400), (e: unknown) => e instanceof GateRegistryError && /identity has ended/.test(e.message));
  assert.is((await reg.get('g1'))?.decommissionedAt, 300);
  await store.close();
});

t('authenticator: only the active gate, with its current key id, on its own topic', async () => {
  const store = await openCentralStore(':memory:', { create: true });
  const reg = store.identities;
  const auth = new GateAuthenticator({ gates: reg, masterKey: MASTER, crypto: nodeCrypto });
  const topic = 'subline/v1/gates/g1/sync';
  const q = { gate: 'g1', list: 'main', epoch: 1, want: 'deltas' as const, version: 3, from: 4, count: 2 };
  const seal = (kid: number, key = deriveGateKey(MASTER, 'g1', kid), on = topic) => sealMaced(SyncRequest, q, on, key, kid, nodeCrypto);
  const cause = async (bytes: Uint8Array, on = topic) => {
    const r = await auth.open('g1', on, SyncRequest, bytes);
    return r.ok ? 'ok' : r.cause;
  };
  assert.is(await cause(seal(1)), 'unknown_gate', 'not provisioned: refused before any MAC is computed');
  await reg.register({ gate: 'g1', ...G }, 1);
  const r = await auth.open('g1', topic, SyncRequest, seal(1));
  assert.ok(r.ok && r.value.version === 3);
  assert.is(await cause(seal(1, new Uint8Array(32))), 'bad_mac', 'another key');
  assert.is(await cause(seal(1, undefined, 'subline/v1/gates/g1/events')), 'bad_mac', "another topic's MAC");
  assert.is(await cause(seal(1), 'subline/v1/gates/g2/sync'), 'bad_mac', 'replayed on another gate (g2 unknown is checked first in practice)');
  await reg.register({ gate: 'g1', ...G }, 2); // re-provisioned: key id 2
  assert.is(await cause(seal(1)), 'stale_key', 'the old record stops working');
  assert.is(await cause(seal(2)), 'ok');
  const ack = await auth.seal('g1', 'subline/v1/gates/g1/ack', EventAck, { gate: 'g1', epoch: 1, seq: 9, chain: new Uint8Array(32) });
  assert.ok(ack !== null && openMaced(EventAck, ack, 'subline/v1/gates/g1/ack', (kid) => (kid === 2 ? deriveGateKey(MASTER, 'g1', 2) : null), nodeCrypto).ok, 'acks are MACed with the gate key');
  await reg.decommission('g1', 3);
  assert.is(await cause(seal(2)), 'decommissioned', 'refused at once');
  assert.is(await auth.seal('g1', 'subline/v1/gates/g1/ack', EventAck, { gate: 'g1', epoch: 1, seq: 9, chain: new Uint8Array(32) }), null, 'nothing is sent to a decommissioned gate');
  await store.close();
});

t('presence order: (journal, boot, conn); for one connection the will beats its birth, never the reverse', () => {
  const s = (over: Partial<GateStatusMessage>): GateStatusMessage => ({ gate: 'g', state: 'online', journal: 1, boot: 1, conn: 1, at: 100, firmware: 'x', line: 'first', direction: 'in', lane: 'person', lists: [], backlog: 0, refused: [], ...over });
  const cases: [Partial<GateStatusMessage>, Partial<GateStatusMessage>, boolean, string][] = [
    [{ conn: 2 }, {}, true, 'a newer connection'],
    [{ conn: 1, state: 'offline' }, { conn: 2 }, false, "an older connection's will"],
    [{ state: 'offline' }, {}, true, 'the will of the same connection'],
    [{ state: 'online', at: 999 }, { state: 'offline' }, false, 'a birth replayed after its will'],
    [{ at: 101 }, {}, true, 'a refresh of the birth'],
    [{ at: 99 }, {}, false, 'an older refresh replayed'],
    [{ boot: 2, conn: 1 }, { boot: 1, conn: 9 }, true, 'a reboot resets conn'],
    [{ boot: 0xffffffff }, { journal: 2 }, false, 'an older journal epoch whatever its boot'],
    [{ journal: 2, boot: 1 }, { journal: 1, boot: 50 }, true, 'a reflash'],
  ];
  for (const [next, cur, want, what] of cases) assert.is(supersedes(s(next), s(cur)), want, what);
  // Whatever order statuses arrive in, the one held is the greatest (and the same).
  fc.assert(
    fc.property(fc.array(fc.record({ boot: fc.integer({ min: 0, max: 3 }), conn: fc.integer({ min: 0, max: 3 }), offline: fc.boolean() }), { minLength: 1, maxLength: 12 }), (xs) => {
      const msgs = xs.map((x) => s({ boot: x.boot, conn: x.conn, state: x.offline ? 'offline' : 'online', at: 100 }));
      const hold = (list: GateStatusMessage[]) => list.reduce((cur, m) => (supersedes(m, cur) ? m : cur));
      const a = hold(msgs);
      const b = hold([...msgs].reverse());
      assert.equal([a.boot, a.conn, a.state], [b.boot, b.conn, b.state]);
    }),
    { numRuns: 300 },
  );
});

t('sync budget: requests and bytes per gate per window, then a new window', () => {
  const b = new SyncBudget({ windowSeconds: 10, requests: 3, bytes: 1000 });
  assert.ok(b.take('g', 0) && b.take('g', 1) && b.take('g', 2));
  assert.not.ok(b.take('g', 3), 'fourth request in the window');
  assert.ok(b.take('other', 3), 'budgets are per gate');
  assert.ok(b.take('g', 10), 'a new window');
  assert.ok(b.charge('g', 600));
  assert.ok(b.charge('g', 600), 'the answer under way is finished');
  assert.not.ok(b.charge('g', 1), 'bytes spent: nothing more sent');
  assert.not.ok(b.take('g', 11), 'no request taken once the bytes are spent');
  assert.throws(() => new SyncBudget({ requests: 0 }), /positive/);
});

t('refusal log: per gate and cause, logged once a minute, persisted additively, bounded', async () => {
  const store = await openCentralStore(':memory:', { create: true });
  const db = store.db;
  let now = 1000;
  const lines: string[] = [];
  const log = new RefusalLog({ db, clock: () => now, log: (l) => lines.push(l) });
  for (let i = 0; i < 50; i++) log.count('g1', 'events.bad_mac');
  log.count('g1', 'status.bad_mac');
  assert.is(lines.length, 2, 'once per cause within the minute');
  now += 60;
  log.count('g1', 'events.bad_mac');
  assert.is(lines.length, 3);
  assert.match(lines[2] as string, /refused from g1: events\.bad_mac; 51 so far/);
  await log.flush();
  log.count('g1', 'events.bad_mac');
  await log.flush();
  const rows = await RefusalLog.read(db);
  assert.equal(rows.map((r) => [r.gate, r.cause, r.count]), [['g1', 'events.bad_mac', 52], ['g1', 'status.bad_mac', 1]]);
  assert.equal(log.forGate('g1'), { 'events.bad_mac': 52, 'status.bad_mac': 1 });
  const mem = new RefusalLog({ clock: () => now });
  for (let i = 0; i < GATE_CAPACITY + 10; i++) mem.count(`id-${i}`, 'events.unknown_gate');
  assert.is(mem.forGate(OTHER_GATES)['events.unknown_gate'], 10, 'ids beyond the capacity are counted together');
  const empty = await openCentralStore(':memory:', { create: true });
  assert.equal(await RefusalLog.read(empty.db), [], 'nothing refused yet: nothing');
  await empty.close();
  await store.close();
});

t('a will is MACed like a birth: the central opens both with the same key', () => {
  const topic = 'subline/v1/gates/g1/status';
  const key = deriveGateKey(MASTER, 'g1', 1);
  const st: GateStatusMessage = { gate: 'g1', state: 'offline', journal: 1, boot: 1, conn: 1, at: 100, firmware: 'x', line: 'first', direction: 'in', lane: 'person', lists: [], backlog: 0, refused: [{ cause: 'ack_bad_mac', count: 3 }] };
  const r = openMaced(GateStatus, sealMaced(GateStatus, st, topic, key, 1, nodeCrypto), topic, () => key, nodeCrypto);
  assert.ok(r.ok && r.value.refused[0]?.count === 3);
});

t.run();

const q = suite('central: message queues and made-up ids');

q('a flood under an unknown id costs one lookup per burst, a provisioned id is heard at once; every message is refused or handled, none lost', async () => {
  const { startEmbeddedBroker } = await import('../host-sim/broker.js');
  const { Central } = await import('../host-sim/central/central.js');
  const { generateKeys } = await import('../host-sim/central/keys.js');
  const mqtt = (await import('mqtt')).default;
  const broker = await startEmbeddedBroker();
  const keys = generateKeys();
  const store = await openCentralStore(':memory:', { create: true, registry: { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey } });
  let lookups = 0;
  const authState = store.identities.authState.bind(store.identities);
  store.identities.authState = (gate: string) => {
    lookups++;
    return authState(gate);
  };
  const central = await Central.open({ db: store, signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: MASTER, brokerUrl: broker.url, headIntervalSeconds: 3600 });
  const client = mqtt.connect(broker.url, { clientId: 'flooder' });
  try {
    await central.start();
    if (!client.connected) await new Promise<void>((r) => client.once('connect', () => r()));
    const junk = new Uint8Array(40).fill(7);
    const burst = async (n: number) => {
      for (let i = 0; i < n; i++) client.publish(new Topics('subline').gate('ghost-1', 'sync'), Buffer.from(junk), { qos: 0 });
      await new Promise((r) => setTimeout(r, 300));
    };
    await burst(100);
    await burst(100);
    const refused = (central.stats.rejected['sync.unknown_gate'] ?? 0) + (central.stats.rejected['sync.overloaded'] ?? 0);
    assert.is(refused, 200, `every message refused: ${JSON.stringify(central.stats.rejected)}`);
    assert.ok(lookups <= 2, `${lookups} lookups for 200 messages of one made-up id`);
    // Provisioned now (as `subline provision` through this central would): no longer refused as unknown.
    await central.provisionGate({ gate: 'ghost-1', ...G });
    const before = central.stats.rejected['sync.unknown_gate'] ?? 0;
    await burst(1);
    assert.is(central.stats.rejected['sync.unknown_gate'] ?? 0, before, 'not refused as unknown once provisioned');
    const other = Object.entries(central.stats.rejected).filter(([k]) => k.startsWith('sync.') && k !== 'sync.unknown_gate' && k !== 'sync.overloaded');
    assert.is(other.reduce((n, [, v]) => n + v, 0), 1, `looked up and refused for what it is (junk): ${JSON.stringify(central.stats.rejected)}`);
  } finally {
    client.end(true);
    await central.close();
    await store.close();
    await broker.close();
  }
});

q.run();
