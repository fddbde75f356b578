// The simulation's seeded broker (host-sim/simulation/sim-broker.ts): MQTT
// 3.1.1 as the gates and the central see it (QoS 1 acks, retained
// messages, wills, the ACL), and the faults it injects (delay and jitter with
// per-topic FIFO, loss, duplicates, partitions, restarts), all on virtual
// time and replayed exactly by a seed.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BrokerAcl } from '../host-sim/broker-acl.js';
import { mulberry32 } from '../host-sim/flash/nor-flash.js';
import { CENTRAL_IDENTITY } from '../host-sim/pki/deployment-pki.js';
import { DeterminismGuard } from '../host-sim/simulation/determinism-guard.js';
import { filterMatches, SimBroker, type SimBrokerOptions, type SimClient, type SimDownReason, type SimWill } from '../host-sim/simulation/sim-broker.js';
import { SimScheduler } from '../host-sim/simulation/sim-scheduler.js';
import { Topics } from '../protocol/topics.js';
import type { CentralLink } from '../host-sim/central/central-transport.js';

const T = new Topics('subline');
const acl = () => new BrokerAcl({ gates: [{ id: 'g1', list: 'main' }, { id: 'g2', list: 'main' }] });
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function world(o: Partial<Omit<SimBrokerOptions, 'scheduler' | 'random'>> & { seed?: number } = {}) {
  const scheduler = new SimScheduler();
  const lines: string[] = [];
  const broker = new SimBroker({ ...o, scheduler, random: mulberry32(o.seed ?? 1), onTrace: (l) => lines.push(l) });
  /** Runs virtual time forward by `ms`. */
  const run = (ms: number) => {
    const until = scheduler.nowMs + ms;
    while (scheduler.step(until)) {
      /* each step runs one timer */
    }
  };
  return { scheduler, broker, lines, run };
}

/** A raw client that records what it sees. */
function watcher(broker: SimBroker, identity: string) {
  const c = broker.client(identity);
  const got: { topic: string; text: string; retained: boolean }[] = [];
  const acked: number[] = [];
  const changes: [boolean, SimDownReason | null][] = [];
  c.onMessage((topic, payload, retained) => got.push({ topic, text: text(payload), retained }));
  c.onPublished((id) => acked.push(id));
  c.onConnectionChange((up, reason) => changes.push([up, reason]));
  return { c, got, acked, changes };
}

/** A watcher connected as `clientId` and subscribed to `filters`. */
function listening(broker: SimBroker, identity: string, clientId: string, filters: readonly string[]) {
  const w = watcher(broker, identity);
  w.c.connect(clientId);
  w.c.subscribe(filters);
  return w;
}

const statusWill = (gate: string): SimWill => ({ topic: T.gate(gate, 'status'), payload: bytes('offline'), qos: 1, retain: true });

/** A gate's Net connected as the gate core connects (its will: an offline status). */
function gateNet(broker: SimBroker, gate: string, keepAliveSeconds = 10) {
  const net = broker.net(gate);
  const ups: boolean[] = [];
  const published: number[] = [];
  const got: string[] = [];
  net.onConnectionChange((up) => ups.push(up));
  net.onPublished((id) => published.push(id));
  net.onMessage((topic, payload) => got.push(`${topic}=${text(payload)}`));
  const connect = () => net.connect({ clientId: gate, keepAliveSeconds, will: statusWill(gate), username: 'ignored', password: bytes('ignored') });
  connect();
  return { net, ups, published, got, connect };
}

test('QoS 1: publish returns a packet id, the PUBACK comes back through onPublished (after the delay there and back)', () => {
  const { broker, run, scheduler } = world({ acl: acl(), link: { delayMs: 7 } });
  const g = gateNet(broker, 'g1');
  assert.is(g.net.publish(T.gate('g1', 'events'), bytes('x'), 1, false), -1, 'not connected yet');
  run(6);
  assert.equal(g.ups, [], 'the CONNACK takes the delay there and back');
  run(8);
  assert.equal(g.ups, [true]);
  const id = g.net.publish(T.gate('g1', 'events'), bytes('e1'), 1, false);
  const id2 = g.net.publish(T.gate('g1', 'events'), bytes('e2'), 0, false);
  assert.ok(id > 0 && id2 > id, 'increasing ids');
  const at = scheduler.nowMs;
  run(13);
  assert.equal(g.published, []);
  run(1);
  assert.equal(g.published, [id], 'QoS 1 acknowledged at 2 x delay; QoS 0 never');
  assert.is(scheduler.nowMs - at, 14);
  // After the connection is down nothing of it is reported, even a PUBACK on the way.
  g.net.publish(T.gate('g1', 'events'), bytes('e3'), 1, false);
  g.net.disconnect();
  assert.equal(g.ups, [true, false], 'disconnect reports down at once');
  run(100);
  assert.equal(g.published, [id]);
  assert.is(g.net.publish(T.gate('g1', 'events'), bytes('e4'), 1, false), -1);
  assert.is(broker.stats.connects, 1);
});

test('retained: delivered on subscribe with retained=true, live copies without; an empty retained publish clears it (only the central may)', () => {
  const { broker, run } = world({ acl: acl() });
  const central = watcher(broker, CENTRAL_IDENTITY);
  central.c.connect('central');
  const g1 = watcher(broker, 'g1');
  g1.c.connect('g1');
  run(20);
  const head = T.list('main', 'head');
  central.c.publish(head, bytes('head-1'), 1, true);
  g1.c.publish(T.gate('g1', 'status'), bytes('online'), 1, true);
  run(20);
  assert.equal(broker.retainedTopics(), [head, T.gate('g1', 'status')]);

  g1.c.subscribe([head]);
  central.c.subscribe([T.allGates('status')]);
  run(20);
  assert.equal(g1.got, [{ topic: head, text: 'head-1', retained: true }]);
  assert.equal(central.got, [{ topic: T.gate('g1', 'status'), text: 'online', retained: true }]);
  central.c.publish(head, bytes('head-2'), 1, true);
  run(20);
  assert.equal(g1.got[1], { topic: head, text: 'head-2', retained: false }, 'live delivery: retain flag false');

  // A gate may clear neither the head nor its own status; its publish is dropped but still acknowledged.
  const acks = g1.acked.length;
  g1.c.publish(head, new Uint8Array(0), 1, true);
  g1.c.publish(T.gate('g1', 'status'), new Uint8Array(0), 1, true);
  run(20);
  assert.is(g1.acked.length, acks + 2, 'refused publishes are acknowledged');
  assert.equal(broker.retainedTopics(), [head, T.gate('g1', 'status')]);
  assert.is(broker.stats.dropped.acl, 2);

  central.c.publish(head, new Uint8Array(0), 1, true);
  run(20);
  assert.equal(broker.retainedTopics(), [T.gate('g1', 'status')]);
  assert.equal(g1.got[2], { topic: head, text: '', retained: false }, 'the clearing message is delivered live');
  const late = watcher(broker, 'g2');
  late.c.connect('g2');
  late.c.subscribe([head]);
  run(20);
  assert.equal(late.got, [], 'nothing retained any more');
});

test('a cut healed before the keepalive notices it still ends the connection: nothing is lost on a connection that lives on', () => {
  const { broker, run } = world({ acl: acl() });
  const central = listening(broker, CENTRAL_IDENTITY, 'central', [T.allGates('events')]);
  const g = gateNet(broker, 'g1', 10);
  run(20);
  assert.equal(g.ups, [true]);
  broker.partition('g1', true);
  const id = g.net.publish(T.gate('g1', 'events'), bytes('sent during the cut'), 1, false);
  assert.ok(id > 0);
  run(1000);
  broker.partition('g1', false);
  run(13_000);
  assert.equal(g.ups, [true], 'not noticed yet');
  run(1_200);
  assert.equal(g.ups, [true, false], 'the connection ends at the keepalive although the link healed');
  assert.equal(g.published, [], 'no PUBACK for what the cut swallowed');
  assert.equal(central.got, []);
  g.connect();
  run(50);
  assert.equal(g.ups, [true, false, true], 'and the gate connects again');
});

test('wills: published when a partition is detected (after 1.5 keepalive) and on takeover; not on graceful disconnect nor restart', () => {
  const { broker, run, scheduler } = world({ acl: acl() });
  const central = listening(broker, CENTRAL_IDENTITY, 'central', [T.allGates('status')]);
  const g = gateNet(broker, 'g1', 10);
  run(20);
  assert.equal(g.ups, [true]);

  broker.partition('g1', true);
  const cutAt = scheduler.nowMs;
  run(14_999);
  assert.equal(g.ups, [true], 'not noticed before 1.5 keepalive');
  assert.equal(central.got, []);
  assert.is(g.net.publish(T.gate('g1', 'events'), bytes('lost'), 1, false) > 0, true, 'still believes it is connected');
  run(100);
  assert.equal(g.ups, [true, false], 'the gate is told it is down');
  assert.equal(central.got, [{ topic: T.gate('g1', 'status'), text: 'offline', retained: false }], 'and its will goes out');
  assert.is(broker.stats.wills, 1);
  assert.ok(broker.stats.dropped.partition! >= 1, 'the publish during the cut went nowhere');

  // Connecting while cut fails after the connect timeout; healed, it connects.
  g.connect();
  run(4_999);
  assert.equal(g.ups, [true, false]);
  run(2);
  assert.equal(g.ups, [true, false, false], 'connect timeout');
  broker.partition('g1', false);
  g.connect();
  run(20);
  assert.equal(g.ups, [true, false, false, true]);
  assert.ok(scheduler.nowMs - cutAt > 20_000);

  // Takeover: a second connection with the gate's client id knocks the first off, will and all.
  const thief = watcher(broker, 'g1');
  thief.c.connect('g1', statusWill('g1'));
  run(20);
  assert.equal(g.ups.at(-1), false, 'the first owner is told it is down');
  assert.equal(thief.changes, [[true, null]]);
  assert.is(broker.stats.wills, 2);
  assert.is(central.got.length, 2);

  // Graceful disconnect: no will.
  thief.c.disconnect();
  run(20);
  assert.is(broker.stats.wills, 2, 'no will on DISCONNECT');

  // Restart: every connection drops (told after the link delay), no wills.
  g.connect();
  run(20);
  assert.equal(g.ups.at(-1), true);
  broker.restart({ keepRetained: true, downMs: 1000 });
  assert.is(broker.up, false);
  assert.equal(g.ups.at(-1), true, 'told after the link delay');
  run(10);
  assert.equal(g.ups.at(-1), false);
  assert.is(broker.stats.wills, 2, 'no will when the broker dies');
  assert.equal(central.changes.at(-1), [false, 'restart']);
});

test('restart: connects fail while down; retained kept or lost as asked', () => {
  const { broker, run } = world({ acl: acl() });
  const central = watcher(broker, CENTRAL_IDENTITY);
  central.c.connect('central');
  run(20);
  const head = T.list('main', 'head');
  central.c.publish(head, bytes('h'), 1, true);
  run(20);
  broker.restart({ keepRetained: true, downMs: 10_000 });
  run(20);
  central.c.connect('central');
  run(5_010);
  assert.equal(central.changes.slice(1), [[false, 'restart'], [false, 'timeout']], 'no CONNACK from a broker that is down');
  run(5_000);
  assert.is(broker.up, true);
  assert.equal(broker.retainedTopics(), [head], 'kept');
  broker.restart({ keepRetained: false, downMs: 100 });
  assert.equal(broker.retainedTopics(), [], 'the retained head is lost');
  run(200);
  const g1 = watcher(broker, 'g1');
  g1.c.connect('g1');
  g1.c.subscribe([head]);
  run(50);
  assert.equal(g1.changes, [[true, null]]);
  assert.equal(g1.got, [], 'nothing retained to deliver');
});

test('ACL: a gate publishing on another gate\'s topic is not delivered; strangers and borrowed client ids cannot connect; refused filters get nothing', () => {
  const { broker, run } = world({ acl: acl() });
  const central = listening(broker, CENTRAL_IDENTITY, 'central', [T.allGates('events')]);
  const g1 = watcher(broker, 'g1');
  g1.c.connect('g1');
  g1.c.subscribe([T.gate('g2', 'ack'), T.gate('g1', 'ack')]);
  run(20);
  const forged = g1.c.publish(T.gate('g2', 'events'), bytes('forged'), 1, false);
  g1.c.publish(T.gate('g1', 'events'), bytes('own'), 1, false);
  central.c.publish(T.gate('g2', 'ack'), bytes('for g2'), 1, false);
  central.c.publish(T.gate('g1', 'ack'), bytes('for g1'), 1, false);
  run(20);
  assert.equal(central.got.map((m) => m.text), ['own']);
  assert.ok(g1.acked.includes(forged), 'a refused QoS 1 publish is still acknowledged');
  assert.equal(g1.got.map((m) => m.text), ['for g1'], "g1 may not subscribe to g2's ack");
  assert.is(broker.stats.dropped.acl, 1);
  assert.is(broker.stats.dropped.subscribe, 1);

  const stranger = watcher(broker, 'g9');
  stranger.c.connect('g9');
  const borrowed = watcher(broker, 'g2');
  borrowed.c.connect('g1'); // g2's certificate, g1's client id: would knock g1 off
  const central2 = watcher(broker, CENTRAL_IDENTITY);
  central2.c.connect('g1');
  run(20);
  for (const c of [stranger, borrowed, central2]) assert.equal(c.changes, [[false, 'refused']]);
  assert.is(broker.stats.refusedConnects, 3);
  assert.ok(g1.c.connected, 'g1 still on');
});

test('wildcards: + one level, # this level and below, $ topics not at the first level; one copy per client at the highest QoS', () => {
  const cases: [string, string, boolean][] = [
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a/', true],
    ['+', 'a', true],
    ['+', 'a/b', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'x/y', true],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
  ];
  for (const [f, t, want] of cases) assert.is(filterMatches(f, t), want, `${f} vs ${t}`);

  const { broker, run, lines } = world({ acl: null });
  const sub = watcher(broker, 'anyone');
  sub.c.connect('sub');
  sub.c.subscribe(['a/#', 'a/+/c', '+/b/c'], { qos: 1 });
  const pub = watcher(broker, 'other');
  pub.c.connect('pub');
  run(20);
  pub.c.publish('a/b/c', bytes('1'), 1, false);
  pub.c.publish('a', bytes('2'), 0, false);
  pub.c.publish('b/b/c', bytes('3'), 1, false);
  pub.c.publish('x/y', bytes('4'), 1, false);
  run(20);
  assert.equal(sub.got.map((m) => m.text), ['1', '2', '3']);
  assert.is(lines.filter((l) => l.includes('deliver sub a/b/c')).length, 1, 'three filters match a/b/c: one copy');
  // Overlapping subscriptions of QoS 1 and 0: delivered once at QoS 1 (so a duplicating link doubles it).
  const hi = watcher(broker, 'hi');
  hi.c.connect('hi');
  hi.c.subscribe(['x/+'], { qos: 1 });
  hi.c.subscribe(['x/#'], { qos: 0 });
  run(20);
  broker.setLink('hi', { duplicate: 1 });
  pub.c.publish('x/y', bytes('q'), 1, false);
  run(20);
  assert.equal(hi.got.map((m) => m.text), ['q', 'q'], 'QoS 1: the duplicating link doubles it');
  const bad = watcher(broker, 'other');
  bad.c.connect('bad');
  bad.c.subscribe(['a/#/b', 'a+']);
  run(20);
  assert.is(broker.stats.dropped.subscribe, 2, 'malformed filters refused');
});

test('jitter: per link and topic FIFO, reordered across topics', () => {
  const { broker, run } = world({ acl: null, link: { delayMs: 5, jitterMs: 50 }, seed: 7 });
  const sub = watcher(broker, 'sub');
  sub.c.connect('sub');
  sub.c.subscribe(['t/#']);
  const pub = watcher(broker, 'pub');
  pub.c.connect('pub');
  run(200);
  for (let i = 0; i < 200; i++) {
    pub.c.publish(`t/${i % 3}`, bytes(String(i)), 1, false);
    run(2);
  }
  run(500);
  assert.is(sub.got.length, 200);
  const order = sub.got.map((m) => Number(m.text));
  for (const k of [0, 1, 2]) {
    const mine = sub.got.filter((m) => m.topic === `t/${k}`).map((m) => Number(m.text));
    assert.equal(mine, [...mine].sort((a, b) => a - b), `t/${k} in order`);
  }
  assert.not.equal(order, [...order].sort((a, b) => a - b), 'across topics the jitter reorders');
});

test('loss: a lost QoS 1 publish is neither delivered nor acknowledged; lost deliveries are counted', () => {
  const { broker, run } = world({ acl: null });
  const sub = watcher(broker, 'sub');
  sub.c.connect('sub');
  sub.c.subscribe(['t']);
  const pub = watcher(broker, 'pub');
  pub.c.connect('pub');
  run(20);
  broker.setLink('pub', { loss: 1 });
  pub.c.publish('t', bytes('gone'), 1, false);
  run(50);
  assert.equal(pub.acked, []);
  assert.equal(sub.got, []);
  assert.is(broker.stats.dropped.loss, 1);
  assert.ok(pub.c.connected, 'loss does not break the connection');

  broker.setLink('pub', { loss: 0 });
  broker.setLink('sub', { loss: 0.5 });
  for (let i = 0; i < 100; i++) pub.c.publish('t', bytes(String(i)), 1, false);
  run(50);
  assert.is(pub.acked.length, 100, 'the publisher\'s link is clean');
  assert.ok(sub.got.length > 20 && sub.got.length < 80, `about half delivered (${sub.got.length})`);
  assert.is(broker.stats.dropped.loss, 1 + 100 - sub.got.length);
});

test('duplicate: a QoS 1 delivery arrives a second time, later, in order; QoS 0 never', () => {
  const { broker, run, lines } = world({ acl: null });
  const sub = watcher(broker, 'sub');
  sub.c.connect('sub');
  sub.c.subscribe(['t']);
  const pub = watcher(broker, 'pub');
  pub.c.connect('pub');
  run(20);
  broker.setLink('sub', { duplicate: 1 });
  pub.c.publish('t', bytes('a'), 1, false);
  pub.c.publish('t', bytes('b'), 1, false);
  pub.c.publish('t', bytes('c'), 0, false);
  run(50);
  assert.equal(sub.got.map((m) => m.text), ['a', 'a', 'b', 'b', 'c']);
  assert.is(broker.stats.duplicates, 2);
  assert.is(broker.stats.delivered, 5);
  assert.is(lines.filter((l) => l.endsWith(' dup')).length, 2);
});

test('overflow: more than 10,000 undelivered messages on a link kick the client (its will published)', () => {
  const { broker, run } = world({ acl: null });
  const slow = watcher(broker, 'slow');
  slow.c.connect('slow', { topic: 'wills/slow', payload: bytes('gone'), qos: 0, retain: false });
  slow.c.subscribe(['flood']);
  const pub = watcher(broker, 'pub');
  pub.c.connect('pub');
  pub.c.subscribe(['wills/#']);
  run(20);
  broker.setLink('slow', { delayMs: 10_000 });
  // In two batches: the publisher's own link must not overflow first.
  for (let i = 0; i < 5_000; i++) pub.c.publish('flood', bytes('x'), 0, false);
  run(10);
  for (let i = 0; i < 5_001; i++) pub.c.publish('flood', bytes('x'), 0, false);
  run(100);
  assert.is(broker.stats.dropped.overflow, 1);
  assert.equal(pub.got.map((m) => m.text), ['gone']);
  run(20_000);
  assert.equal(slow.changes.at(-1), [false, 'overflow']);
  assert.is(slow.got.length, 10_000, 'what was on the way arrives before the close (nothing overtakes on a link); the rest never left');
});

test('central transport: connects, reconnects every second, PUBACKs and failures reach done(), end() stops it', () => {
  const { broker, run, scheduler } = world({ acl: acl() });
  const t = broker.transport(CENTRAL_IDENTITY);
  const events: string[] = [];
  const link: CentralLink = t.open('central', {
    connect: () => events.push(`connect@${scheduler.nowMs}`),
    message: (topic, _p, retained) => events.push(`message ${topic} ${retained}`),
    error: (e) => events.push(`error ${e.message}`),
  });
  const results: string[] = [];
  link.publish(T.list('main', 'head'), bytes('h'), true, (err) => results.push(err === null ? 'ok' : err.message));
  assert.equal(results, ['not connected']);
  run(20);
  assert.equal(events, ['connect@10']);
  assert.ok(link.connected);
  link.publish(T.list('main', 'head'), bytes('h'), true, (err) => results.push(err === null ? 'ok' : err.message));
  link.subscribe([T.allGates('status'), T.list('main', 'head')], (err) => results.push(err === null ? 'subscribed' : err.message));
  run(20);
  assert.equal(results, ['not connected', 'ok', 'subscribed']);
  assert.ok(events.includes(`message ${T.list('main', 'head')} true`), 'the retained head after SUBACK');

  // The broker restarts: the link reconnects on its own, a second after it noticed.
  link.publish(T.list('main', 'delta'), bytes('d'), false, (err) => results.push(err === null ? 'ok' : err.message));
  broker.restart({ keepRetained: true, downMs: 500 });
  run(3_000);
  assert.equal(results.at(-1), 'connection down (restart)', 'unacknowledged when the connection went: failed');
  assert.equal(events.filter((e) => e.startsWith('connect')), ['connect@10', `connect@${45 + 1000 + 10}`]);

  // Partitioned: noticed after 45 s (keepalive 30), then attempts every second (each failing after 5 s) until healed.
  broker.partition(CENTRAL_IDENTITY, true);
  run(60_000);
  assert.not.ok(link.connected);
  broker.partition(CENTRAL_IDENTITY, false);
  run(7_000);
  assert.ok(link.connected);
  assert.is(events.filter((e) => e.startsWith('connect')).length, 3);

  const ended: string[] = [];
  link.end(false, () => ended.push('ended'));
  assert.equal(ended, ['ended'], 'nothing waiting: ends at once');
  assert.not.ok(link.connected);
  run(10_000);
  assert.is(events.filter((e) => e.startsWith('connect')).length, 3, 'no reconnect after end()');

  // An identity the ACL does not know: refused, reported as an error, retried.
  const strangers = broker.transport('subline.stranger').open('x', { connect: () => events.push('stranger up'), message: () => undefined, error: (e) => events.push(`stranger ${e.message}`) });
  run(2_100);
  assert.is(events.filter((e) => e.startsWith('stranger ')).length, 3);
  assert.not.ok(events.includes('stranger up'));
  strangers.end(true, () => undefined);
});

test('dropClients: a killed process never reconnects; the broker publishes its will at once, after keepalive when the power went', () => {
  const { broker, run, scheduler } = world({ acl: acl() });
  const central = watcher(broker, CENTRAL_IDENTITY);
  central.c.connect('watcher');
  central.c.subscribe([T.allGates('status')]);
  const t = broker.transport(CENTRAL_IDENTITY);
  let connects = 0;
  t.open('central', { connect: () => connects++, message: () => undefined, error: () => undefined });
  const g = gateNet(broker, 'g1', 10);
  run(20);
  assert.is(connects, 1);
  broker.dropClients(CENTRAL_IDENTITY);
  assert.not.ok(central.c.connected, 'every client of the identity');
  run(10_000);
  assert.is(connects, 1, 'the killed central does not reconnect');

  const at = scheduler.nowMs;
  broker.dropClients('g1', { silent: true });
  const survivor = watcher(broker, CENTRAL_IDENTITY);
  survivor.c.connect('survivor');
  survivor.c.subscribe([T.allGates('status')]);
  run(14_990);
  assert.is(survivor.got.length, 0);
  run(100);
  assert.equal(survivor.got.map((m) => m.text), ['offline'], 'the will, 1.5 keepalive after the power went');
  assert.ok(scheduler.nowMs - at >= 15_000);
  assert.equal(g.ups, [true], 'the dead gate hears nothing');
});

/** A busy little world: gates and the central on jittery, lossy, duplicating links, reconnecting a second after they lose the broker; a partition and a restart. */
function scenario(seed: number): string[] {
  const { broker, run, lines, scheduler } = world({ acl: acl(), seed, link: { delayMs: 5, jitterMs: 30, loss: 0.1, duplicate: 0.2 } });
  const timers = scheduler.group('clients');
  const keep = (c: SimClient, connect: () => void, up: () => void) => {
    c.onConnectionChange((isUp) => (isUp ? up() : timers.set(connect, 1000)));
    connect();
  };
  const central = broker.client(CENTRAL_IDENTITY);
  keep(central, () => central.connect('central'), () => central.subscribe([T.allGates('events'), T.allGates('status')]));
  const gates: SimClient[] = [];
  for (const id of ['g1', 'g2']) {
    const c = broker.client(id);
    keep(c, () => c.connect(id, statusWill(id), 5), () => c.publish(T.gate(id, 'status'), bytes('online'), 1, true));
    gates.push(c);
  }
  run(100);
  for (let i = 0; i < 100; i++) {
    for (const [k, c] of gates.entries()) c.publish(T.gate(`g${k + 1}`, 'events'), bytes(`e${i}`), 1, false);
    if (i === 5) broker.partition('g2', true);
    if (i === 45) broker.partition('g2', false);
    if (i === 60) broker.restart({ keepRetained: true, downMs: 300 });
    run(250);
  }
  run(20_000);
  broker.close();
  timers.cancel();
  return lines;
}

test('same seed, same trace; another seed, another trace; nothing nondeterministic is called', () => {
  const guard = new DeterminismGuard();
  let a: string[], b: string[], c: string[];
  guard.install();
  try {
    a = scenario(11);
    b = scenario(11);
    c = scenario(12);
  } finally {
    guard.uninstall();
  }
  assert.equal(guard.refused, []);
  assert.ok(a.length > 200, `a busy trace (${a.length} lines)`);
  assert.equal(a, b);
  assert.not.equal(a, c);
  for (const kind of ['deliver', 'drop loss', 'drop partition', ' dup', 'will g2', 'restart', 'end g2 keepalive', 'down g2 keepalive', 'connect g2 g2']) assert.ok(a.some((l) => l.includes(kind)), `the trace shows ${kind}`);
});

test.run();
