// Issue 12 at the gate: every message between gate and central is MACed with
// the gate's own key. Everything the gate publishes (status, will, event
// batches, sync requests, command results) opens under that key for its exact
// topic; an ack is believed only as a MACed envelope for the gate's ack topic
// under the gate's kid. Every refusal is counted by cause (status `refused`)
// and journaled as an alarm at most once per cause per 10 minutes, so a flood
// of forgeries never fills the journal.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { Gate } from '../firmware/core/gate.js';
import { partitionBytes } from '../firmware/core/partition.js';
import { causeId, OVERFLOW_CAUSE, RefusalLog } from '../firmware/core/refusal-log.js';
import type { NetConnectOptions } from '../firmware/ports.js';
import { AlarmCode, createRecord, decodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { encodeMaced, macInput, openMaced, sealMaced } from '../protocol/mac-envelope.js';
import { Command, CommandResult, encodeEventAck, EventAck, EventBatch, GateStatus, Head, SyncRequest, type GateStatusMessage } from '../protocol/messages.js';
import { sealSigned } from '../protocol/envelope.js';
import { nobleCrypto, publicKeyOf } from '../protocol/index.js';
import type { MessageSchema } from '../protocol/schema.js';
import { Topics } from '../protocol/topics.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { SimInputs, SimOutputs } from '../host-sim/sim-io.js';
import { FakeNet } from './helpers/fake-net.js';
import { openUp, sealAck, TEST_GATE_KEY, TEST_GATE_KEY_ID, TEST_GATE_KEYS } from './helpers/gate-key.js';

const T0 = 1_795_000_000;
const te = new TextEncoder();
const SK = new Uint8Array(32).fill(31);
const OTHER_SK = new Uint8Array(32).fill(32);
const DK = new Uint8Array(32).fill(33);
const OTHER_KEY = new Uint8Array(32).fill(0x77);
const topics = new Topics('subline');
const ACK = topics.gate('g1', 'ack');
const TEN_MIN = 10 * 60 * 1000;

function setup() {
  const vt = new VirtualTime({ wallSeconds: T0, trusted: true });
  const net = new FakeNet(vt);
  // Every will the gate set at CONNECT, in order (FakeNet keeps only the last).
  const wills: NonNullable<NetConnectOptions['will']>[] = [];
  const connect = net.connect.bind(net);
  net.connect = (o) => {
    if (o.will !== undefined) wills.push(o.will);
    connect(o);
  };
  // A small journal (4 sectors, about a thousand records): one alarm per forged message would fill it.
  const layout = { credentials: 64, sideTableBytes: 4096, overlayBlocks: 10, passbackBlocks: 4, journalSectors: 4 };
  const flash = new NorFlash({ size: partitionBytes(layout), blockSize: 4096 });
  const alarms: number[] = []; // seq of every message_refused alarm
  let full = 0;
  const gate = new Gate({
    provisioning: { gate: 'g1', site: 's', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://x', trustedKeys: [publicKeyOf(SK)], deploymentKey: DK, ...TEST_GATE_KEYS, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0 },
    flash, layout, clock: vt, timers: vt, net, crypto: nobleCrypto, outputs: new SimOutputs(), inputs: new SimInputs(() => vt.monotonicMs()), random: () => 0.5,
    sync: { tickMs: 10, requestTimeoutMs: 500, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 1600 },
    onEvent: (type, reason, seq) => {
      if (seq === 'full') full++;
      else if (type === EventType.alarm && reason === AlarmCode.message_refused) alarms.push(seq);
    },
  });
  gate.open();
  gate.start();
  vt.advance(10);
  const deliver = (topic: string, payload: Uint8Array) => {
    net.msg(topic, payload);
    vt.advance(20);
  };
  const tap = (name: string) => gate.onRead({ kind: 'card', id: te.encode(name), atMs: vt.monotonicMs() });
  const statuses = () => net.published.filter((p) => p.topic === topics.gate('g1', 'status')).map((p) => openUp(GateStatus, p.topic, p.payload)).map((r) => (r.ok ? r.value : null));
  const lastBatch = () => {
    const b = net.published.filter((p) => p.topic === topics.gate('g1', 'events')).map((p) => openUp(EventBatch, p.topic, p.payload));
    const r = b[b.length - 1];
    if (r === undefined || !r.ok) throw new Error('no batch uploaded');
    return r.value;
  };
  /** The cause tag of the alarm journaled at seq (the first 8 bytes of SHA-256 of the cause). */
  const alarmKey = (seq: number) => {
    const out = new Uint8Array(RECORD_BYTES);
    gate.journal.readBatch(seq, 1, out);
    const rec = createRecord();
    decodeRecord(out, 0, seq, 1, rec);
    return rec.key.slice(0, 8);
  };
  return { vt, net, gate, wills, alarms, get full() { return full; }, deliver, tap, statuses, lastBatch, alarmKey };
}

const tagOf = (cause: string) => nobleCrypto.sha256(te.encode(cause)).slice(0, 8);

const t = suite('gate authentication (issue 12)');

t('forged acks (bad MAC, wrong kid, unMACed, MACed for another topic or gate) free nothing and are counted', () => {
  const s = setup();
  for (let i = 0; i < 5; i++) s.tap(`nobody-${i}`);
  s.vt.advance(200);
  const b = s.lastBatch();
  const last = s.gate.journal.lastSeq;
  assert.is(b.first + b.count - 1, last);
  const ack = { gate: 'g1', epoch: 1, seq: last, chain: b.chain };
  // The right body every time, only its authentication is wrong.
  const badMac = sealAck(topics, ack, OTHER_KEY);
  const wrongKid = sealAck(topics, ack, TEST_GATE_KEY, TEST_GATE_KEY_ID + 1);
  const plain = encodeEventAck(ack);
  const otherTopic = sealMaced(EventAck, ack, topics.gate('g1', 'cmdres'), TEST_GATE_KEY, TEST_GATE_KEY_ID, nobleCrypto);
  const otherGate = sealMaced(EventAck, ack, topics.gate('g2', 'ack'), TEST_GATE_KEY, TEST_GATE_KEY_ID, nobleCrypto);
  const body = encodeMaced({ kid: TEST_GATE_KEY_ID, body: plain, mac: new Uint8Array(32) });
  for (const forged of [badMac, wrongKid, plain, otherTopic, otherGate, body]) s.deliver(ACK, forged);
  assert.is(s.gate.journal.acked, 0, 'nothing freed by any forged ack');
  const rej = s.gate.sync.stats.rejected;
  assert.is(rej['ack_bad_mac'], 4, JSON.stringify(rej));
  assert.is(rej['ack_unknown_key'], 1);
  assert.is(s.gate.refusals.count('ack_bad_mac'), 4);
  assert.is(s.gate.refusals.count('ack_unknown_key'), 1);
  assert.is(rej['ack_wrong_message_type'], 1, 'the unMACed ack is not an envelope');
  assert.is(s.gate.refusals.count('ack_wrong_message_type'), 1);
  // The honest, MACed ack frees.
  s.deliver(ACK, sealAck(topics, ack));
  assert.is(s.gate.journal.acked, last, 'the MACed ack frees');
});

t('every upward message opens under the gate key for its own topic, the will included, and under no other topic', () => {
  const s = setup();
  for (let i = 0; i < 3; i++) s.tap(`nobody-${i}`);
  // A head makes the gate ask for a manifest (a sync request); a command makes it answer (a command result).
  const img = new Uint8Array(64);
  s.deliver(topics.list('main', 'head'), sealSigned(Head, { list: 'main', epoch: 1, version: 3, issuedAt: T0 + 3, expires: T0 + 86400, imageSize: img.length, chunkSize: 64, imageRoot: nobleCrypto.sha256(nobleCrypto.sha256(img)) }, SK, nobleCrypto));
  s.deliver(topics.gate('g1', 'cmd'), sealSigned(Command, { gate: 'g1', nonce: new Uint8Array(16).fill(3), issuedAt: T0, expires: T0 + 600, op: 'lockdown' }, SK, nobleCrypto));
  s.vt.advance(31_000); // a periodic status refresh
  const schemas: Record<string, MessageSchema> = { status: GateStatus, events: EventBatch, sync: SyncRequest, cmdres: CommandResult };
  const up = [...s.net.published, ...s.wills.map((w) => ({ topic: w.topic, payload: w.payload }))];
  const kinds = new Set<string>();
  for (const p of up) {
    const kind = p.topic.slice(p.topic.lastIndexOf('/') + 1);
    const schema = schemas[kind];
    assert.ok(schema !== undefined, `the gate published only on its up topics: ${p.topic}`);
    const r = openMaced(schema, p.payload, p.topic, (kid) => (kid === TEST_GATE_KEY_ID ? TEST_GATE_KEY : null), nobleCrypto);
    assert.ok(r.ok, `${p.topic}: ${JSON.stringify(r)}`);
    kinds.add(kind);
    for (const other of ['status', 'events', 'sync', 'cmdres', 'ack'] as const) {
      if (other === kind) continue;
      const o = openMaced(schema, p.payload, topics.gate('g1', other), () => TEST_GATE_KEY, nobleCrypto);
      assert.ok(!o.ok && o.error.code === 'bad_mac', `${p.topic} does not open as ${other}`);
    }
    assert.not.ok(openMaced(schema, p.payload, p.topic.replace('/g1/', '/g2/'), () => TEST_GATE_KEY, nobleCrypto).ok, 'nor as another gate');
    assert.not.ok(openMaced(schema, p.payload, p.topic, () => OTHER_KEY, nobleCrypto).ok, 'nor under another key');
  }
  assert.equal([...kinds].sort(), ['cmdres', 'events', 'status', 'sync']);
  assert.ok(s.wills.length >= 1 && s.statuses().length >= 2, 'a will, a birth and a refresh were checked');
  // The MAC covers exactly context, topic and body.
  const w = s.wills[0]!;
  assert.equal(macInput(w.topic, new Uint8Array([1])).length, 'subline-mac-v1'.length + 1 + w.topic.length + 1 + 1);
});

t('status conn counts this boot\'s connects; the will of a connection carries its birth\'s conn', () => {
  const s = setup();
  s.net.drop();
  s.vt.advance(2000);
  s.net.drop();
  s.vt.advance(2000);
  const births = s.statuses().filter((v): v is GateStatusMessage => v !== null && v.state === 'online');
  const wills = s.wills.map((w) => openUp(GateStatus, w.topic, w.payload)).map((r) => (r.ok ? r.value : null));
  assert.ok(wills.every((w) => w !== null && w.state === 'offline'), 'every will opens and says offline');
  assert.equal(wills.map((w) => w!.conn), [1, 2, 3], 'one will per connect, counting from 1');
  assert.equal([...new Set(births.map((b) => b.conn))], [1, 2, 3], 'births (and refreshes) carry their connection\'s conn');
  for (const b of births) {
    const w = wills[b.conn - 1]!;
    assert.is(w.boot, b.boot);
    assert.is(w.journal, b.journal);
    assert.is(w.at, b.at, 'the will and the birth of one connection agree');
  }
});

t('a flood of 10,000 forged heads and 10,000 forged acks journals one alarm per cause per 10 minutes; the journal never fills', () => {
  const s = setup();
  const img = new Uint8Array(64);
  const forgedHead = sealSigned(Head, { list: 'main', epoch: 1, version: 9, issuedAt: T0 + 9, expires: T0 + 86400, imageSize: 64, chunkSize: 64, imageRoot: nobleCrypto.sha256(nobleCrypto.sha256(img)) }, OTHER_SK, nobleCrypto);
  const forgedAck = sealAck(topics, { gate: 'g1', epoch: 1, seq: 1, chain: new Uint8Array(32) }, OTHER_KEY);
  const flood = (n: number) => {
    for (let i = 0; i < n; i++) {
      s.net.msg(topics.list('main', 'head'), forgedHead);
      s.net.msg(ACK, forgedAck);
      if (i % 100 === 0) s.vt.advance(10);
    }
  };
  flood(5000);
  assert.is(s.alarms.length, 2, 'one alarm per cause (head_unknown_key, ack_bad_mac)');
  assert.equal(s.alarms.map((seq) => [...s.alarmKey(seq)]).sort(), [[...tagOf('ack_bad_mac')], [...tagOf('head_unknown_key')]].sort(), 'each alarm names its cause');
  s.vt.advance(TEN_MIN); // a new window
  flood(5000);
  assert.is(s.alarms.length, 4, 'one more per cause after 10 minutes');
  assert.is(s.gate.refusals.count('head_unknown_key'), 10_000);
  assert.is(s.gate.refusals.count('ack_bad_mac'), 10_000);
  assert.is(s.full, 0, 'no record was refused for a full journal');
  assert.not.ok(s.gate.journal.isFull);
  assert.is(s.gate.journal.acked, 0, 'nothing freed');
  s.tap('someone');
  assert.is(s.gate.controller.stats.journalFull, 0, 'decisions are still journaled');
});

t('refused counts by cause appear in the next status; commands refused at the gate are counted there too', () => {
  const s = setup();
  for (let i = 0; i < 7; i++) s.deliver(ACK, sealAck(topics, { gate: 'g1', epoch: 1, seq: 1, chain: new Uint8Array(32) }, OTHER_KEY));
  s.deliver(topics.gate('g1', 'cmd'), sealSigned(Command, { gate: 'g1', nonce: new Uint8Array(16).fill(1), issuedAt: T0, expires: T0 + 600, op: 'open' }, OTHER_SK, nobleCrypto));
  s.deliver(topics.gate('g1', 'cmd'), sealSigned(Command, { gate: 'g1', nonce: new Uint8Array(16).fill(2), issuedAt: T0 - 900, expires: T0 - 300, op: 'open' }, SK, nobleCrypto));
  const before = s.statuses().length;
  s.vt.advance(31_000);
  const all = s.statuses();
  assert.ok(all.length > before, 'a status refresh went out');
  const st = all[all.length - 1]!;
  assert.ok(st !== null);
  const refused = Object.fromEntries(st.refused.map((r) => [r.cause, r.count]));
  assert.is(refused['ack_bad_mac'], 7, JSON.stringify(st.refused));
  assert.is(refused['cmd_unknown_key'], 1, 'a command signed by a stranger');
  assert.is(refused['cmd_expired'], 1, 'an expired command');
  assert.is(st.refused[0]!.cause, 'ack_bad_mac', 'most frequent first');
});

t('no refusal alarm while the journal is half full: the room is for decisions; the refusal is still counted', () => {
  const s = setup();
  let i = 0;
  while (s.gate.journal.backlog * 2 < s.gate.journal.capacityEvents) s.tap(`nobody-${i++}`);
  s.deliver(ACK, sealAck(topics, { gate: 'g1', epoch: 1, seq: 1, chain: new Uint8Array(32) }, OTHER_KEY));
  assert.is(s.gate.refusals.count('ack_bad_mac'), 1);
  assert.is(s.alarms.length, 0, 'no alarm journaled');
});

t('the refusal table is bounded: causes past its capacity are counted as "other"; causes are status ids', () => {
  let now = 0;
  const alarms: string[] = [];
  const log = new RefusalLog({ clock: { wallSeconds: () => 0, trusted: () => false, monotonicMs: () => now }, capacity: 8, onAlarm: (c) => alarms.push(c) });
  for (let i = 0; i < 100; i++) for (let k = 0; k <= i % 20; k++) log.refuse(`cause_${i}`);
  const top = log.top(16);
  assert.is(top.length, 8, 'at most capacity causes');
  assert.ok(top.some((r) => r.cause === OVERFLOW_CAUSE));
  assert.is(top.reduce((a, r) => a + r.count, 0), log.total, 'every refusal counted somewhere');
  for (let i = 1; i < top.length; i++) assert.ok(top[i - 1]!.count >= top[i]!.count, 'most frequent first');
  assert.is(alarms.length, 8, 'one alarm per slot within the window');
  now += TEN_MIN;
  log.refuse('cause_0');
  assert.is(alarms.length, 9);
  for (const bad of ['Head_Bad', '_x', 'a b/c', '', 'x'.repeat(60), '--']) {
    const id = causeId(bad);
    assert.ok(/^[a-z0-9][a-z0-9_-]*$/.test(id) && id.length <= 48, `${bad} -> ${id}`);
  }
  assert.is(causeId('head_bad_signature'), 'head_bad_signature');
});

t.run();
