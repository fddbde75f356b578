// Impostors on the broker (issue 12): an MQTT client that is not the gate,
// with everything the broker lets anyone read (the gates' batches, acks,
// statuses and commands travel in the clear: MACs authenticate, they do not
// hide), tries to lie to both sides. Real central, Node gates running the
// firmware core, a real broker (aedes and Mosquitto, as they are configured
// today: anonymous clients allowed). Every lie is refused and counted; at the
// end every journaled event of every honest gate is stored exactly once, and
// the CLI never reports a forged command result as done.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt, { type MqttClient } from 'mqtt';
import { createRecord, encodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { KeyRing, openSigned } from '../protocol/envelope.js';
import { nobleCrypto } from '../protocol/crypto-noble.js';
import { encodeMaced, Maced, sealMaced } from '../protocol/mac-envelope.js';
import {
  Command, CommandResult, EventAck, EventBatch, GateStatus, SyncRequest, decodeEventBatch, decodeGateStatus, encodeCommandResult, encodeEventAck, encodeEventBatch, encodeGateStatus, encodeSyncRequest,
  type EventBatchMessage, type GateStatusMessage,
} from '../protocol/messages.js';
import { decodeMessage } from '../protocol/schema.js';
import { Topics } from '../protocol/topics.js';
import { findMosquitto } from '../host-sim/broker.js';
import type { Central } from '../host-sim/central/central.js';
import { RefusalLog } from '../host-sim/central/refusal-log.js';
import { SqliteDb } from '../host-sim/central/store/sqlite-db.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import type { NodeGate } from '../host-sim/node-gate.js';
import { runCli } from './helpers/cli.js';
import { assertEventsExactlyOnce, Fleet, waitFor, type BrokerKind } from './helpers/fleet.js';

const te = new TextEncoder();
const topics = new Topics('subline');
const card = (i: number) => te.encode(`card-${i}`);
const WRONG_KEY = new Uint8Array(32).fill(0x5a);
const BIG = { ...Maced, maxSize: 1 << 21 };

/** The body of a MACed envelope, read without checking (what an eavesdropper sees). */
function bodyOf(bytes: Uint8Array): Uint8Array {
  const env = decodeMessage(BIG, bytes);
  if (!env.ok) throw new Error(`not a MACed envelope: ${env.error.code}`);
  return env.value.body;
}

async function populate(c: Central): Promise<void> {
  await c.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Quantum Science Centre' });
    await r.grant('institution', inst, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] });
    for (let i = 0; i < 20; i++) {
      await r.addSubject({ id: `p-${i}`, kind: 'person', institution: inst, name: `Person ${i}` });
      await r.addCredential({ subject: `p-${i}`, kind: 'card', rawId: card(i) });
    }
  });
}

function tap(g: NodeGate, i: number): void {
  g.gate.onRead({ kind: 'card', id: card(i), atMs: 0 });
  g.inputs.pulse('rotation');
}

/** An anonymous client that records everything under gates/. */
async function impostor(url: string, options: mqtt.IClientOptions = {}): Promise<{ client: MqttClient; seen: { topic: string; payload: Uint8Array }[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `impostor-${Math.random().toString(16).slice(2)}`, ...options });
  const seen: { topic: string; payload: Uint8Array }[] = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload: new Uint8Array(payload) }));
  await client.subscribeAsync('subline/v1/gates/#', { qos: 1 });
  return { client, seen };
}

const refusedAt = (c: Central, key: string): number => c.stats.rejected[key] ?? 0;
const gateRefused = (g: NodeGate, prefix: string): number => Object.entries(g.gate.sync.stats.rejected).reduce((n, [k, v]) => (k.startsWith(prefix) ? n + v : n), 0);
const pub = (c: MqttClient, topic: string, bytes: Uint8Array, retain = false) => c.publishAsync(topic, Buffer.from(bytes), { qos: 1, retain });

/** A one-record batch at `first` claiming a grant, chained on `prev`. */
function forgedBatch(gate: string, epoch: number, first: number, prev: Uint8Array): EventBatchMessage {
  const r = createRecord();
  r.type = EventType.decision_granted;
  r.time = Math.floor(Date.now() / 1000);
  const records = new Uint8Array(RECORD_BYTES);
  encodeRecord(r, first, epoch, records);
  const buf = new Uint8Array(48);
  buf.set(prev, 0);
  buf.set(records, 32);
  return { gate, epoch, first, count: 1, records, prev, chain: nodeCrypto.sha256(buf) };
}

async function scenario(kind: BrokerKind): Promise<void> {
  const f = new Fleet(kind, { secure: false }); // issue 12's tests: application-layer trust on brokers that let anyone in
  const clients: MqttClient[] = [];
  try {
    await f.startBroker();
    // A small per-gate sync budget so that the amplification test below reaches it.
    const budget = { windowSeconds: 600, requests: 80, bytes: 1 << 20 };
    let c = await f.startCentral({ syncBudget: budget });
    await populate(c);
    c.publishHead();
    const a = await f.startGate('g-a');
    const b = await f.startGate('g-b');
    await waitFor('both gates hold the list and are online', async () => {
      const v = await c.registry.version();
      return [a, b].every((g) => g.gate.store.version === v && c.presence(g.gate.id)?.status.state === 'online');
    });
    const spy = await impostor(f.broker.url);
    clients.push(spy.client);
    for (let i = 0; i < 6; i++) tap(a, i);
    for (let i = 0; i < 4; i++) tap(b, i);
    await waitFor('honest events acked', () => [a, b].every((g) => g.gate.journal.acked === g.gate.journal.lastSeq));
    await waitFor('the spy saw a batch and an ack of g-a', () => spy.seen.some((m) => m.topic === topics.gate('g-a', 'events')) && spy.seen.some((m) => m.topic === topics.gate('g-a', 'ack')));
    const realBatch = spy.seen.filter((m) => m.topic === topics.gate('g-a', 'events')).at(-1)!.payload;
    const overheard = decodeEventBatch(bodyOf(realBatch));
    if (!overheard.ok) throw new Error('the gate sent a batch that does not decode');
    const epochA = overheard.value.epoch;
    const storedA = await c.events.count('g-a');

    // ---- forged event batches, with the correct prev (overheard), at the next seq and far in the future
    const next = a.gate.journal.lastSeq + 1;
    const lie = forgedBatch('g-a', epochA, next, overheard.value.chain);
    const eventsTopic = topics.gate('g-a', 'events');
    await pub(spy.client, eventsTopic, encodeEventBatch(lie)); // unMACed (the old wire format)
    await pub(spy.client, eventsTopic, sealMaced(EventBatch, lie, eventsTopic, WRONG_KEY, 1, nodeCrypto)); // a guessed key
    await pub(spy.client, eventsTopic, encodeMaced({ kid: 1, body: bodyOf(sealMaced(EventBatch, lie, eventsTopic, WRONG_KEY, 1, nodeCrypto)), mac: bodyOf(realBatch).subarray(0, 32) }));
    await pub(spy.client, eventsTopic, sealMaced(EventBatch, forgedBatch('g-a', epochA, next + 1000, overheard.value.chain), eventsTopic, WRONG_KEY, 1, nodeCrypto)); // planted future seq
    // g-a's real batch replayed on g-b's topic: a MAC for one topic is worthless on another.
    await pub(spy.client, topics.gate('g-b', 'events'), realBatch);
    // An old batch replayed as it was: stored already, so a duplicate (stored once).
    await pub(spy.client, eventsTopic, realBatch);
    await waitFor('forged batches refused', () => refusedAt(c, 'events.bad_mac') >= 3 && refusedAt(c, 'events.wrong_message_type') + refusedAt(c, 'events.bad_value') + refusedAt(c, 'events.unknown_field') >= 1);
    await waitFor('the replayed batch counted as a duplicate', () => c.stats.ingest.duplicates >= 1);
    assert.is(await c.events.count('g-a'), storedA, 'nothing forged stored for g-a');

    // ---- an unprovisioned id floods events and sync requests: nothing stored, nothing answered
    const ghost = 'ghost-9';
    const ghostData: { topic: string }[] = [];
    spy.client.on('message', (topic) => {
      if (topic === topics.gate(ghost, 'data') || topic === topics.gate(ghost, 'ack')) ghostData.push({ topic });
    });
    const gEvents = topics.gate(ghost, 'events');
    const gSync = topics.gate(ghost, 'sync');
    const head = c.head!;
    for (let i = 0; i < 400; i++) {
      const batch = forgedBatch(ghost, 1, i + 1, new Uint8Array(32));
      void spy.client.publish(gEvents, Buffer.from(i % 2 === 0 ? encodeEventBatch(batch) : sealMaced(EventBatch, batch, gEvents, WRONG_KEY, 1, nodeCrypto)), { qos: 0 });
    }
    for (let i = 0; i < 100; i++) {
      const q = { gate: ghost, list: 'main', epoch: head.epoch, want: 'chunks' as const, version: head.version, from: 0, count: 64 };
      void spy.client.publish(gSync, Buffer.from(i % 2 === 0 ? encodeSyncRequest(q) : sealMaced(SyncRequest, q, gSync, WRONG_KEY, 1, nodeCrypto)), { qos: 0 });
    }
    // Messages are handled asynchronously, one gate's in turn: what a burst brings beyond the gate's queue
    // (central.ts, 256 waiting) is refused 'overloaded' before its lookup; the rest 'unknown_gate'.
    const ghostRefused = (causes: readonly string[]) => causes.reduce((n, k) => n + (c.refusals.forGate(ghost)[k] ?? 0), 0);
    await waitFor('the flood refused', () => ghostRefused(['events.unknown_gate', 'sync.unknown_gate', 'events.overloaded', 'sync.overloaded']) >= 450, 20000);
    assert.equal(Object.keys(c.refusals.forGate(ghost)).filter((k) => !/\.(unknown_gate|overloaded)$/.test(k)), [], 'refused as an unknown id (or beyond its queue), never looked at further');
    assert.ok(ghostRefused(['events.unknown_gate', 'sync.unknown_gate']) >= 200, 'the queued ones (up to 256 of a burst) refused as an unknown id');
    await new Promise((r) => setTimeout(r, 300));
    assert.is(await c.events.count(ghost), 0, 'no event stored for an unprovisioned id');
    assert.is(ghostData.length, 0, 'no sync reply and no ack to an unprovisioned id');
    assert.is(c.presence(ghost), undefined, 'no presence for an unprovisioned id');

    // ---- a verified gate over its sync budget: answers stop at the budget
    const loud = await f.provisioning('g-loud');
    const loudSync = topics.gate('g-loud', 'sync');
    const loudData: number[] = [];
    await spy.client.subscribeAsync(topics.gate('g-loud', 'data'), { qos: 0 });
    spy.client.on('message', (topic, payload) => {
      if (topic === topics.gate('g-loud', 'data')) loudData.push(payload.length);
    });
    for (let i = 0; i < 200; i++) {
      const q = { gate: 'g-loud', list: 'main', epoch: head.epoch, want: 'manifest' as const, version: head.version, from: 0, count: 1 };
      void spy.client.publish(loudSync, Buffer.from(sealMaced(SyncRequest, q, loudSync, loud.gateKey, loud.gateKeyId, nodeCrypto)), { qos: 0 });
    }
    await waitFor('over-budget requests refused', () => refusedAt(c, 'sync.over_budget') >= 200 - budget.requests, 20000);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(loudData.length <= budget.requests, `at most the budget answered (${loudData.length})`);
    assert.ok(loudData.length > 0, 'a verified gate within its budget is answered');

    // ---- forged status (retained) and a forged will: presence unchanged
    const bTopic = topics.gate('g-b', 'status');
    const bStatus = c.presence('g-b')!.status;
    const pinned: GateStatusMessage = { ...bStatus, state: 'online', boot: 0xffffffff, conn: 0xffffffff, at: 0xffffffff };
    await pub(spy.client, bTopic, encodeGateStatus(pinned), true);
    await pub(spy.client, bTopic, sealMaced(GateStatus, pinned, bTopic, WRONG_KEY, 1, nodeCrypto), true);
    const willer = await mqtt.connectAsync(f.broker.url, {
      reconnectPeriod: 0, clientId: 'impostor-will', keepalive: 1,
      will: { topic: bTopic, payload: Buffer.from(sealMaced(GateStatus, { ...pinned, state: 'offline' }, bTopic, WRONG_KEY, 1, nodeCrypto)), qos: 1, retain: true },
    });
    (willer as unknown as { stream: { destroy(): void } }).stream.destroy(); // an unclean end: the broker publishes the will
    await waitFor('forged statuses and the will refused', () => refusedAt(c, 'status.bad_mac') >= 2, 10000);
    const pb = c.presence('g-b')!.status;
    assert.equal([pb.state, pb.boot, pb.conn], [bStatus.state, bStatus.boot, bStatus.conn], 'presence not moved by forgeries');
    // The gate's real birth restores the retained status the impostor overwrote.

    // ---- a replayed old status after a reconnect: harmless
    // The spy also saw the forgeries above on this topic: the gate's own birth is the one that is MACed and online at conn 1.
    const oldBirth = spy.seen.find((m) => {
      if (m.topic !== bTopic) return false;
      const env = decodeMessage(BIG, m.payload);
      const st = env.ok ? decodeGateStatus(env.value.body) : null;
      return st !== null && st.ok && st.value.state === 'online' && st.value.conn === 1 && st.value.boot === bStatus.boot;
    });
    if (oldBirth === undefined) throw new Error('the spy saw no birth of g-b');
    await f.broker.close(); // every client drops; the gates reconnect: conn 2
    await f.startBroker();
    c = f.central;
    await waitFor('g-b reconnected (conn 2)', () => (c.presence('g-b')?.status.conn ?? 0) >= 2, 20000);
    const spy2 = await impostor(f.broker.url);
    clients.push(spy2.client);
    const ignored = c.stats.presenceIgnored;
    await pub(spy2.client, bTopic, oldBirth.payload, true);
    await waitFor('the replayed birth ignored', () => c.stats.presenceIgnored > ignored, 10000);
    assert.ok((c.presence('g-b')?.status.conn ?? 0) >= 2, 'presence stays at the newer connection');

    // ---- forged command results: the central API and the CLI report no answer, never "done"
    const flashA = f.cutGate('g-a'); // the gate is dead: only an impostor could answer
    const forger = (m: { topic: string; payload: Uint8Array }): void => {
      if (m.topic !== topics.gate('g-a', 'cmd')) return;
      const cmd = openSigned(Command, m.payload, new KeyRing(nobleCrypto, [f.keys.publicKey]));
      if (!cmd.ok) return;
      const res = { gate: 'g-a', nonce: cmd.value.nonce, status: 'done' as const, reason: 'locked_down', at: Math.floor(Date.now() / 1000) };
      const resTopic = topics.gate('g-a', 'cmdres');
      void pub(spy2.client, resTopic, encodeCommandResult(res));
      void pub(spy2.client, resTopic, sealMaced(CommandResult, res, resTopic, WRONG_KEY, 1, nodeCrypto));
    };
    spy2.client.on('message', (topic, payload) => forger({ topic, payload: new Uint8Array(payload) }));
    const sent = await c.sendCommand('g-a', 'lockdown', { waitMs: 1500 });
    assert.is(sent.result, null, 'a forged result is not the answer');
    assert.ok(sent.refusedResults >= 2, `forged results counted against the command (${sent.refusedResults})`);
    const cli = await runCli(['gate', 'lockdown', 'g-a', '--data', f.dir, '--broker', f.broker.url, '--wait', '2']);
    assert.is(cli.code, 4, `${cli.stdout}${cli.stderr}`);
    assert.not.match(cli.stdout, /done/);
    assert.match(cli.stderr, /refused 2 answer\(s\) for this nonce that were not MACed by gate g-a/);
    assert.match(cli.stderr, /the command is unanswered/);

    // ---- forged acks while nothing acks (the central is down): the gate frees nothing
    const back = await f.startGate('g-a', {}, flashA);
    await waitFor('g-a back and caught up', () => back.gate.sync.connected && back.gate.journal.acked === back.gate.journal.lastSeq, 20000);
    const realAck = spy2.seen.filter((m) => m.topic === topics.gate('g-a', 'ack')).at(-1);
    await c.close();
    for (let i = 0; i < 5; i++) tap(back, i + 7);
    await waitFor('taps journaled', () => back.gate.journal.lastSeq >= back.gate.journal.acked + 5);
    const acked = back.gate.journal.acked;
    const last = back.gate.journal.lastSeq;
    const ackTopic = topics.gate('g-a', 'ack');
    const chainGuess = nodeCrypto.sha256(new Uint8Array(8));
    const forgedAck = { gate: 'g-a', epoch: back.gate.journal.epoch, seq: last, chain: chainGuess };
    const before = gateRefused(back, 'ack_');
    await pub(spy2.client, ackTopic, encodeEventAck(forgedAck)); // unMACed
    await pub(spy2.client, ackTopic, sealMaced(EventAck, forgedAck, ackTopic, WRONG_KEY, (await f.provisioning('g-a')).gateKeyId, nodeCrypto)); // wrong key
    await pub(spy2.client, ackTopic, sealMaced(EventAck, forgedAck, ackTopic, WRONG_KEY, 99, nodeCrypto)); // unknown kid
    if (realAck !== undefined) await pub(spy2.client, topics.gate('g-b', 'ack'), realAck.payload); // g-a's ack replayed to g-b
    await waitFor('forged acks refused at the gate', () => gateRefused(back, 'ack_') - before >= 3, 10000);
    await new Promise((r) => setTimeout(r, 200));
    assert.is(back.gate.journal.acked, acked, 'no forged ack freed anything');
    assert.ok(gateRefused(b, 'ack_') >= 1 || realAck === undefined, "an ack for another gate's topic refused by g-b");

    // ---- the central comes back: every honest event is stored exactly once
    c = await f.startCentral({ syncBudget: budget });
    for (let i = 0; i < 3; i++) tap(b, i + 10);
    await waitFor('every event acked after the restart', () => [back, b].every((g) => g.gate.journal.acked === g.gate.journal.lastSeq), 20000);
    await assertEventsExactlyOnce(f, back);
    await assertEventsExactlyOnce(f, b);
    // Refusals are visible: at the gate (its status), at the central (per gate, in the database).
    await waitFor("g-a's status reports its refusals", () => (c.presence('g-a')?.status.refused ?? []).some((r) => r.cause.startsWith('ack_')), 40000);
    await c.close();
    const db = new SqliteDb(f.dbPath, { readonly: true, fileMustExist: true });
    let persisted;
    try {
      persisted = await RefusalLog.read(db);
    } finally {
      await db.close();
    }
    const count = (gate: string, cause: string) => persisted.find((r) => r.gate === gate && r.cause === cause)?.count ?? 0;
    assert.ok(count(ghost, 'events.unknown_gate') + count(ghost, 'events.overloaded') >= 300, 'the flood is on the record');
    assert.ok(count('g-a', 'events.bad_mac') >= 3);
    assert.ok(count('g-loud', 'sync.over_budget') >= 100);
    const gates = await runCli(['central', 'gates', '--data', f.dir]);
    assert.is(gates.code, 0, gates.stderr);
    assert.match(gates.stdout, /refused from ghost-9 \(not a provisioned gate\): (?:[^\n]*, )?events\.unknown_gate \d+/);
    assert.match(gates.stdout, /g-a refused: .*central events\.bad_mac \d+.*gate ack_/);
  } finally {
    for (const cl of clients) await cl.endAsync(true).catch(() => undefined);
    await f.close();
  }
}

const t = suite('impostors on the broker');

t('aedes: forged acks, batches, statuses, wills and command results, an unprovisioned flood and sync amplification are refused and counted; every honest event stored once', async () => {
  await scenario('aedes');
});

t('Mosquitto (anonymous clients allowed, as configured today): the same', async () => {
  if (findMosquitto() === null) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  await scenario('mosquitto');
});

t.run();
