// The gate's sync engine against a scripted central in one process (both
// ends of the protocol, deterministic virtual time): image pull with a
// tampered chunk, forged and replayed heads, rollback, expired heads,
// undecodable messages, duplicate and reordered deltas, reconnect backoff.
// Every bad message is refused and counted, never applied, and the gate
// keeps deciding throughout.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { Gate } from '../firmware/core/gate.js';
import { partitionBytes } from '../firmware/core/partition.js';
import { credentialKey } from '../protocol/credential-key.js';
import { Delta, encodeChunk, encodeManifest, Head, EventBatch, GateStatus } from '../protocol/messages.js';
import { sealSigned } from '../protocol/envelope.js';
import { nobleCrypto, publicKeyOf } from '../protocol/index.js';
import { Topics } from '../protocol/topics.js';
import { buildImage, chunkImage, encodeDeltaRecords } from '../host-sim/central/image-builder.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { SimInputs, SimOutputs } from '../host-sim/sim-io.js';
import { FakeNet } from './helpers/fake-net.js';
import { openUp, sealAck, TEST_GATE_KEYS } from './helpers/gate-key.js';

const T0 = 1_795_000_000;
const te = new TextEncoder();
const SK = new Uint8Array(32).fill(11);
const OTHER = new Uint8Array(32).fill(12);
const DK = new Uint8Array(32).fill(13);
const topics = new Topics('subline');
const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;
const key = (name: string) => credentialKey(nobleCrypto, DK, 1, te.encode(name));

function setup() {
  const vt = new VirtualTime({ wallSeconds: T0, trusted: true });
  const net = new FakeNet(vt);
  const layout = { credentials: 64, sideTableBytes: 4096, overlayBlocks: 10, passbackBlocks: 4, journalSectors: 4 };
  const flash = new NorFlash({ size: partitionBytes(layout), blockSize: 4096 });
  const outputs = new SimOutputs();
  const inputs = new SimInputs(() => vt.monotonicMs());
  const gate = new Gate({
    provisioning: { gate: 'g1', site: 's', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://x', trustedKeys: [publicKeyOf(SK)], deploymentKey: DK, ...TEST_GATE_KEYS, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0 },
    flash, layout, clock: vt, timers: vt, net, crypto: nobleCrypto, outputs, inputs, random: () => 0.5,
    sync: { tickMs: 10, requestTimeoutMs: 500, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 1600 },
  });
  gate.open();
  gate.start();
  vt.advance(10);
  const image = (version: number, names: string[]) => buildImage({ epoch: 1, version, industries: [], institutions: [], credentials: names.map((n) => ({ key: key(n), grant: everywhere })), schedules: [] });
  const head = (version: number, img: Uint8Array, over: Partial<{ issuedAt: number; expires: number; sk: Uint8Array; epoch: number }> = {}) => {
    const ci = chunkImage(img, 64, nobleCrypto);
    return sealSigned(Head, { list: 'main', epoch: over.epoch ?? 1, version, issuedAt: over.issuedAt ?? T0 + version, expires: over.expires ?? T0 + 86400, imageSize: img.length, chunkSize: 64, imageRoot: ci.root }, over.sk ?? SK, nobleCrypto);
  };
  const deliver = (topic: string, payload: Uint8Array) => {
    net.msg(topic, payload);
    vt.advance(20);
  };
  /** Answers the gate's manifest and chunk requests for one image (optionally tampering a chunk once). */
  const serve = (version: number, img: Uint8Array, tamper = -1) => {
    const ci = chunkImage(img, 64, nobleCrypto);
    let answered = 0;
    let tampered = false;
    for (let step = 0; step < 400; step++) {
      const reqs = net.requests().slice(answered);
      answered += reqs.length;
      for (const r of reqs) {
        if (r.want === 'manifest') deliver(topics.gate('g1', 'data'), encodeManifest({ list: 'main', epoch: 1, version, imageSize: img.length, chunkSize: 64, hashes: ci.hashes }));
        if (r.want === 'chunks') {
          for (let i = r.from; i < r.from + r.count && i < ci.chunks.length; i++) {
            let data = ci.chunks[i]!;
            if (i === tamper && !tampered) {
              data = data.slice();
              data[0]! ^= 0xff;
              tampered = true;
            }
            deliver(topics.gate('g1', 'data'), encodeChunk({ list: 'main', epoch: 1, version, index: i, data }));
          }
        }
      }
      vt.advance(20);
      if (gate.store.version === version) return;
    }
  };
  const tap = (name: string) => {
    const before = gate.controller.stats.taps;
    gate.onRead({ kind: 'card', id: te.encode(name), atMs: vt.monotonicMs() });
    assert.is(gate.controller.stats.taps, before + 1, 'the gate keeps deciding');
    return gate.controller.stats.byReason;
  };
  return { vt, net, gate, image, head, deliver, serve, tap };
}

const t = suite('sync engine (scripted central, virtual time)');

t('pulls an image; a tampered chunk is refused and fetched again', () => {
  const s = setup();
  const img = s.image(5, ['alice', 'bob']);
  s.deliver(topics.list('main', 'head'), s.head(5, img));
  s.serve(5, img, 1);
  assert.is(s.gate.store.version, 5);
  assert.is(s.gate.sync.stats.rejected['chunk_chunk_hash'], 1);
  const r = s.tap('alice');
  assert.is(r[0], 1, 'alice granted');
});

t('forged, foreign, replayed, rolled-back and expired heads are refused and counted', () => {
  const s = setup();
  const img = s.image(5, ['alice']);
  s.deliver(topics.list('main', 'head'), s.head(5, img));
  s.serve(5, img);
  const forged = s.head(9, img);
  forged[forged.length - 1]! ^= 1; // payload bit flipped after signing
  s.deliver(topics.list('main', 'head'), forged);
  s.deliver(topics.list('main', 'head'), s.head(9, img, { sk: OTHER }));
  s.deliver(topics.list('main', 'head'), s.head(5, img)); // replayed
  s.deliver(topics.list('main', 'head'), s.head(3, img, { issuedAt: T0 + 100 })); // rollback
  s.deliver(topics.list('main', 'head'), s.head(8, img, { issuedAt: T0 + 200, expires: T0 - 1 })); // expired
  const rej = s.gate.sync.stats.rejected;
  assert.ok((rej['head_bad_signature'] ?? 0) + (rej['head_unsupported_type'] ?? 0) + (rej['head_truncated'] ?? 0) >= 1, JSON.stringify(rej));
  assert.is(rej['head_unknown_key'], 1);
  assert.is(rej['head_old_version'], 1);
  assert.is(rej['head_expired'], 1);
  assert.is(s.gate.store.head?.version, 5, 'the accepted head never moved');
  assert.is(s.gate.store.version, 5);
  s.tap('alice');
});

t('undecodable messages on every topic are counted and ignored', () => {
  const s = setup();
  const junk = [new Uint8Array(0), Uint8Array.from([0xff, 0x00, 0x13]), te.encode('hello'), new Uint8Array(70000)];
  for (const j of junk) for (const tp of [topics.list('main', 'head'), topics.list('main', 'delta'), topics.gate('g1', 'data'), topics.gate('g1', 'ack'), 'subline/v1/gates/+/data', 'other/topic']) s.deliver(tp, j);
  const total = Object.values(s.gate.sync.stats.rejected).reduce((a, b) => a + b, 0);
  assert.ok(total >= junk.length * 4, `rejected ${total}: ${JSON.stringify(s.gate.sync.stats.rejected)}`);
  s.tap('anyone');
});

t('deltas: applied in order; duplicates ignored; a gap is requested; a forged delta never applied', () => {
  const s = setup();
  const img = s.image(5, ['alice', 'bob', 'carol']);
  s.deliver(topics.list('main', 'head'), s.head(5, img));
  s.serve(5, img);
  const delta = (v: number, name: string, sk = SK) => sealSigned(Delta, { list: 'main', epoch: 1, version: v, issuedAt: T0 + v, records: encodeDeltaRecords([{ op: 'revoke', key: key(name) }]) }, sk, nobleCrypto);
  s.deliver(topics.list('main', 'delta'), delta(7, 'carol')); // out of order: a gap
  assert.is(s.gate.store.version, 5);
  s.deliver(topics.list('main', 'head'), s.head(7, img, { issuedAt: T0 + 300 }));
  const asked = s.net.requests().filter((r) => r.want === 'deltas');
  assert.ok(asked.length > 0 && asked[asked.length - 1]!.from === 6, 'the gate asks for the missing range');
  s.deliver(topics.gate('g1', 'data'), delta(6, 'bob'));
  s.deliver(topics.gate('g1', 'data'), delta(7, 'carol'));
  s.deliver(topics.list('main', 'delta'), delta(6, 'bob')); // duplicate
  s.deliver(topics.list('main', 'delta'), delta(8, 'alice', OTHER)); // forged
  assert.is(s.gate.store.version, 7);
  assert.is(s.gate.sync.stats.rejected['delta_unknown_key'], 1);
  const r = s.tap('bob');
  assert.is(r[2], 1, 'bob revoked');
  s.tap('alice');
  assert.is(s.gate.controller.stats.byReason[0], 1, 'alice still granted: the forged revocation was not applied');
});

t('reconnects with exponential backoff and jitter, capped; birth and will carry the boot counter', () => {
  const s = setup();
  s.net.drop();
  s.net.refuse = 6;
  s.vt.advance(20000);
  const gaps = s.net.attempts.slice(1).map((a, i) => a - s.net.attempts[i]!);
  assert.ok(s.net.up, 'connected again');
  // Delays double from reconnectMinMs (x0.75 jitter at random 0.5) up to the cap.
  assert.ok(gaps.length >= 7, `attempts ${s.net.attempts.join(',')}`);
  for (let i = 2; i < gaps.length - 1; i++) assert.ok(gaps[i + 1]! >= gaps[i]! || gaps[i + 1]! >= 1600 * 0.5, `backoff grows: ${gaps.join(',')}`);
  assert.ok(Math.max(...gaps) <= 1600 + 100, 'capped');
  const will = openUp(GateStatus, s.net.will!.topic, s.net.will!.payload);
  const births = s.net.published.filter((p) => p.topic.endsWith('/status')).map((p) => openUp(GateStatus, p.topic, p.payload));
  assert.ok(will.ok && will.value.state === 'offline' && will.value.boot === 1);
  assert.ok(births.length >= 2 && births.every((b) => b.ok && b.value.state === 'online' && b.value.boot === 1));
});
// Acks free journal space, so the gate believes one only if its chain is the
// chain of its own journal at that seq (issue 12): seq within the journal is
// not enough. The events a forged ack would free are still uploaded.
t('an ack whose chain is not the journal\'s chain(seq) frees nothing and is counted; the true one frees', () => {
  const s = setup();
  for (let i = 0; i < 5; i++) s.tap(`nobody-${i}`);
  s.vt.advance(200);
  const batches = s.net.published.filter((p) => p.topic === topics.gate('g1', 'events')).map((p) => openUp(EventBatch, p.topic, p.payload)).filter((r) => r.ok).map((r) => r.value);
  assert.ok(batches.length >= 1, 'the gate uploaded');
  const last = s.gate.journal.lastSeq;
  const b = batches[batches.length - 1]!;
  assert.is(b.first + b.count - 1, last, 'the last batch ends at the last seq');
  const ackTopic = topics.gate('g1', 'ack');
  // Forged: the right gate, epoch and seq, a chain that is not the gate's (e.g. read off an earlier ack).
  s.deliver(ackTopic, sealAck(topics, { gate: 'g1', epoch: 1, seq: last, chain: new Uint8Array(32).fill(0xab) }));
  assert.is(s.gate.journal.acked, 0, 'nothing freed by a forged ack');
  assert.is(s.gate.sync.stats.rejected['ack_bad_chain'], 1);
  // Mid-batch, forged and then true: the gate recomputes chain(seq) from its journal.
  const mid = last - 2;
  s.deliver(ackTopic, sealAck(topics, { gate: 'g1', epoch: 1, seq: mid, chain: b.chain }));
  assert.is(s.gate.journal.acked, 0, 'the chain of another seq does not free this one');
  const records = b.records.subarray(0, (mid - b.first + 1) * 16);
  let chain = b.prev;
  for (let at = 0; at < records.length; at += 16) chain = nobleCrypto.sha256(Uint8Array.from([...chain, ...records.subarray(at, at + 16)]));
  s.deliver(ackTopic, sealAck(topics, { gate: 'g1', epoch: 1, seq: mid, chain }));
  assert.is(s.gate.journal.acked, mid, 'the true mid-batch ack frees up to its seq');
  s.deliver(ackTopic, sealAck(topics, { gate: 'g1', epoch: 1, seq: last, chain: b.chain }));
  assert.is(s.gate.journal.acked, last, 'the true ack of the batch end frees the rest');
  assert.is(s.gate.sync.stats.rejected['ack_bad_chain'], 2);
});

t.run();
