// Flash maintenance (firmware/core/maintenance.ts): no erase ever happens on
// the tap path or inside a message handler. A gate runs on a flash port that
// records erases issued during a tap, an input change or any Net callback,
// while heads, deltas, image pulls, acks and commands keep every log busy
// enough to need compaction several times over; the maintenance timer does
// all the erasing, and nothing the gate reported durable is lost.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { Gate } from '../firmware/core/gate.js';
import { MaintenanceScheduler, type CompactionTask } from '../firmware/core/maintenance.js';
import { partitionBytes } from '../firmware/core/partition.js';
import type { Region } from '../firmware/core/region.js';
import { credentialKey } from '../protocol/credential-key.js';
import { Command, Delta, encodeChunk, encodeManifest, EventBatch, Head } from '../protocol/messages.js';
import { sealSigned } from '../protocol/envelope.js';
import { nobleCrypto, publicKeyOf } from '../protocol/index.js';
import { Topics } from '../protocol/topics.js';
import { buildImage, chunkImage, encodeDeltaRecords } from '../host-sim/central/image-builder.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { SimInputs, SimOutputs } from '../host-sim/sim-io.js';
import { FakeNet } from './helpers/fake-net.js';
import { openUp, sealAck, TEST_GATE_KEYS } from './helpers/gate-key.js';
import { EraseGuard } from './helpers/erase-guard.js';

const T0 = 1_795_000_000;
const te = new TextEncoder();
const SK = new Uint8Array(32).fill(21);
const DK = new Uint8Array(32).fill(22);
const topics = new Topics('subline');
const grant = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'], passbackGroup: 1 } as const;
const key = (name: string) => credentialKey(nobleCrypto, DK, 1, te.encode(name));
const NAMES = Array.from({ length: 120 }, (_, i) => `p${i}`);
const layout = { credentials: 512, sideTableBytes: 4096, overlayBlocks: 10, passbackBlocks: 4, journalSectors: 8 };

function makeGate(flash: EraseGuard, vt: VirtualTime, net: FakeNet, inputs: SimInputs) {
  return new Gate({
    provisioning: { gate: 'g1', site: 's', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://x', trustedKeys: [publicKeyOf(SK)], deploymentKey: DK, ...TEST_GATE_KEYS, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 20 },
    flash, layout, clock: vt, timers: vt, net, crypto: nobleCrypto, outputs: new SimOutputs(), inputs, random: () => 0.5,
    sync: { tickMs: 50, requestTimeoutMs: 500, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 1600 },
  });
}

/** A gate under a busy central: every Net callback, tap and input change runs guarded. */
function busyGate() {
  const vt = new VirtualTime({ wallSeconds: T0, trusted: true });
  const net = new FakeNet(vt);
  const flash = new EraseGuard(new NorFlash({ size: partitionBytes(layout), blockSize: 4096 }));
  const inputs = new SimInputs(() => vt.monotonicMs());
  const gate = makeGate(flash, vt, net, inputs);
  // Guard the handlers the gate registered: messages, publish acks, connection changes.
  const [msg, pub, conn] = [net.msg, net.pub, net.conn];
  net.msg = (t, p) => flash.during(`message ${t}`, () => msg(t, p));
  net.pub = (id) => flash.during('published', () => pub(id));
  net.conn = (up) => flash.during('connection', () => conn(up));
  gate.open();
  gate.start();
  vt.advance(20);

  // The scripted central: signed heads and deltas, images on request.
  let version = 1;
  let issued = T0;
  const deltas = new Map<number, Uint8Array>();
  const images = new Map<number, ReturnType<typeof chunkImage> & { size: number }>();
  const imageOf = (v: number) => {
    let ci = images.get(v);
    if (ci === undefined) {
      const img = buildImage({ epoch: 1, version: v, industries: [], institutions: [], credentials: NAMES.map((n) => ({ key: key(n), grant })), schedules: [] });
      ci = { ...chunkImage(img, 1024, nobleCrypto), size: img.length };
      images.set(v, ci);
    }
    return ci;
  };
  const head = () => {
    const ci = imageOf(version);
    issued += 1;
    return sealSigned(Head, { list: 'main', epoch: 1, version, issuedAt: issued, expires: T0 + 86400 * 30, imageSize: ci.size, chunkSize: 1024, imageRoot: ci.root }, SK, nobleCrypto);
  };
  let answered = 0;
  const answer = () => {
    for (let round = 0; round < 50; round++) {
      const reqs = net.requests().slice(answered);
      if (reqs.length === 0) return;
      answered += reqs.length;
      for (const r of reqs) {
        if (r.want === 'deltas') for (let v = r.from; v < r.from + r.count; v++) {
          const d = deltas.get(v);
          if (d !== undefined) net.msg(topics.gate('g1', 'data'), d);
        }
        else if (r.want === 'manifest') {
          const ci = imageOf(r.version);
          net.msg(topics.gate('g1', 'data'), encodeManifest({ list: 'main', epoch: 1, version: r.version, imageSize: ci.size, chunkSize: 1024, hashes: ci.hashes }));
        } else if (r.want === 'chunks') {
          const ci = imageOf(r.version);
          for (let i = r.from; i < r.from + r.count && i < ci.chunks.length; i++) net.msg(topics.gate('g1', 'data'), encodeChunk({ list: 'main', epoch: 1, version: r.version, index: i, data: ci.chunks[i]! }));
        }
      }
    }
  };
  const publishDelta = () => {
    version++;
    // 20 revocations of keys nobody holds: 352 bytes in the overlay log each.
    const records = encodeDeltaRecords(Array.from({ length: 20 }, (_, i) => ({ op: 'revoke' as const, key: key(`gone-${version}-${i}`) })));
    const d = sealSigned(Delta, { list: 'main', epoch: 1, version, issuedAt: issued, records }, SK, nobleCrypto);
    deltas.set(version, d);
    net.msg(topics.list('main', 'delta'), d);
  };
  const tap = (name: string) => {
    flash.during('tap', () => gate.onRead({ kind: 'card', id: te.encode(name), atMs: vt.monotonicMs() }));
    flash.during('input', () => inputs.pulse('rotation'));
  };
  let nonce = 0;
  const command = () => {
    const n = Uint8Array.from({ length: 16 }, (_, i) => (nonce * 7 + i) & 0xff);
    nonce++;
    net.msg(topics.gate('g1', 'cmd'), sealSigned(Command, { gate: 'g1', nonce: n, issuedAt: issued, expires: issued + 600, op: 'config', params: undefined }, SK, nobleCrypto));
  };
  // An honest central: acks the end of the newest batch the gate uploaded, with that batch's chain
  // (the gate frees nothing for an ack whose chain is not its own).
  const ack = () => {
    const sent = net.published.filter((p) => p.topic === topics.gate('g1', 'events')).map((p) => openUp(EventBatch, p.topic, p.payload));
    const b = sent.reverse().find((r) => r.ok);
    if (b === undefined || !b.ok) return;
    net.msg(topics.gate('g1', 'ack'), sealAck(topics, { gate: 'g1', epoch: 1, seq: b.value.first + b.value.count - 1, chain: b.value.chain }));
  };
  return { vt, net, flash, gate, inputs, head, answer, publishDelta, tap, command, ack, get version() { return version; }, get issued() { return issued; } };
}

/** Which partition region an erased block (index in the whole partition) belongs to. */
function regionOf(gate: Gate, block: number): string {
  const p = gate.partition as unknown as Record<string, Region | number>;
  for (const [name, r] of Object.entries(p)) if (typeof r === 'object' && block * r.blockSize >= r.offset && block * r.blockSize < r.offset + r.size) return name;
  return '?';
}

const t = suite('maintenance: no erase on the tap path or in a message handler');

t('a busy gate compacts every log, and only from the maintenance timer', () => {
  const s = busyGate();
  // Install the first image through the pull (head -> manifest -> chunks), guarded.
  s.net.msg(topics.list('main', 'head'), s.head());
  for (let i = 0; i < 40 && s.gate.store.version !== 1; i++) {
    s.answer();
    s.vt.advance(100);
  }
  assert.is(s.gate.store.version, 1, 'first image installed');
  for (let i = 0; i < 700; i++) {
    s.tap(NAMES[i % NAMES.length]!);
    if (i % 2 === 0) s.publishDelta();
    s.net.msg(topics.list('main', 'head'), s.head());
    if (i % 5 === 0) s.ack();
    if (i % 40 === 0) s.command();
    s.answer();
    s.vt.advance(250);
  }
  for (let i = 0; i < 200 && s.gate.store.version !== s.version; i++) {
    s.answer();
    s.vt.advance(250);
  }
  assert.ok((s.gate.sync.stats.rejected['delta_compacting'] ?? 0) >= 1, 'a delta met a full overlay log (refused, asked again)');
  assert.equal(s.flash.violations.slice(0, 5), [], `${s.flash.violations.length} erases inside taps or handlers`);
  const erasedIn = new Set(s.flash.erased.map((b) => regionOf(s.gate, b)));
  for (const r of ['state', 'overlay', 'passback', 'gateState', 'journal']) assert.ok(erasedIn.has(r), `the ${r} log was compacted or prepared (erased in ${[...erasedIn].join(', ')})`);
  assert.is(s.gate.store.version, s.version, 'the gate caught up with every delta');
  assert.is(s.gate.store.head?.issuedAt, s.issued, 'the newest head is accepted');
  assert.ok(s.gate.controller.stats.granted > 500, `taps granted (${s.gate.controller.stats.granted})`);
  // Everything survives a reboot from the same flash.
  const vt = new VirtualTime({ wallSeconds: T0 + 1000, trusted: true });
  const again = makeGate(new EraseGuard(s.flash.inner), vt, new FakeNet(vt), new SimInputs(() => 0));
  again.open();
  assert.is(again.store.version, s.version);
  assert.is(again.store.head?.issuedAt, s.issued);
  assert.is(again.state.ackSeq, s.gate.state.ackSeq);
  assert.ok(again.state.ackSeq > 0);
});
t.run();

/** A task needing `steps` steps; records when it ran. */
function fakeTask(name: string, steps: number, log: string[], blocked = false): CompactionTask & { left: number; blocked: boolean } {
  return {
    name,
    left: steps,
    blocked,
    get compactionDue() {
      return this.left > 0;
    },
    get appendsBlocked() {
      return this.blocked && this.left > 0;
    },
    compactStep(budget: number) {
      const n = Math.min(budget, this.left);
      this.left -= n;
      for (let i = 0; i < n; i++) log.push(name);
      return n;
    },
  };
}

const sch = suite('maintenance scheduler: budget and priority');
sch('journal first, then blocked logs, then due logs in order; never more than the budget per tick', () => {
  const log: string[] = [];
  let journalWants = 2;
  const journal = { maintain: (max: number) => { const erased = Math.min(max, journalWants); journalWants -= erased; for (let i = 0; i < erased; i++) log.push('journal'); return { erased }; } };
  const passback = fakeTask('passback', 3, log);
  const overlay = fakeTask('overlay', 2, log, true);
  const state = fakeTask('state', 1, log);
  const m = new MaintenanceScheduler({ journal, tasks: [passback, overlay, state] });
  const perTick: string[] = [];
  for (let i = 0; i < 12; i++) {
    const before = log.length;
    m.tick();
    assert.ok(log.length - before <= 1, 'one block per tick by default');
    perTick.push(log.slice(before).join('+') || '-');
  }
  assert.equal(perTick, ['journal', 'journal', 'overlay', 'overlay', 'passback', 'passback', 'passback', 'state', '-', '-', '-', '-']);
  assert.ok(!m.due);
  assert.equal(Array.from(m.stepsByTask), [3, 2, 1]);
  assert.is(m.journalErases, 2);
});
sch('a larger budget is shared in the same order within one tick', () => {
  const log: string[] = [];
  const m = new MaintenanceScheduler({ journal: { maintain: (max) => ({ erased: Math.min(max, 1) }) }, tasks: [fakeTask('a', 2, log), fakeTask('b', 5, log)], blocksPerTick: 4 });
  const r = m.tick();
  assert.equal([r.journalErases, r.steps, log.join(',')], [1, 3, 'a,a,b']);
  assert.throws(() => new MaintenanceScheduler({ journal: null, tasks: [], blocksPerTick: 0 }), /positive integer/);
  const greedy: CompactionTask = { name: 'greedy', compactionDue: true, appendsBlocked: false, compactStep: () => 2 };
  assert.throws(() => new MaintenanceScheduler({ journal: null, tasks: [greedy] }).tick(), /greedy: compaction used 2 steps of a budget of 1/);
});
sch.run();
