// main.ts on the real XS engine (XsGate) given bad input: a malformed or
// unusable provisioning partition (the firmware refuses to run and says why
// on the console, again every 10 s, and touches nothing), reader noise and
// partial frames (no crash, the good frames around them are read), a stuck
// rotation sensor and a relay whose driver fails (alarm, and the lane fails
// open on the first line and closed on the second).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { AlarmCode, eventTypeName } from '../protocol/event-record.js';
import { encodeProvisioningImage, frameProvisioningRecord } from '../firmware/moddable/provisioning-image.js';
import { mulberry32 } from '../host-sim/flash/nor-flash.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { Reason, REASON_NAMES } from '../protocol/reasons.js';
import { startEmbeddedBroker, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { em4100Frame, uhfFrame } from '../host-sim/xs-gate/reader-frames.js';
import { XsGate, type XsGateOptions } from '../host-sim/xs-gate/xs-gate.js';

const keys = generateKeys();
const SMALL = { subline: { layout: { credentials: 4000, journalSectors: 16 } } };
const card = (i: number) => Uint8Array.of(0x4e, 0x02, 0x00, (i >> 8) & 0xff, i & 0xff);

/** A record, with a key no central knows (the gate is not registered anywhere). */
function record(over: Partial<ProvisioningRecord> = {}, id: { readonly gateKey: Uint8Array; readonly gateKeyId: number } = { gateKey: new Uint8Array(32).fill(7), gateKeyId: 1 }): ProvisioningRecord {
  const base = { gate: 'bad-input', site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', ...over } as const;
  return {
    ...base, topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
    trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, gateKey: id.gateKey, gateKeyId: id.gateKeyId, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0, ...over,
  };
}

/** A record of a gate registered at the central (as `subline provision` does), with its key. */
async function registered(central: Central, over: Partial<ProvisioningRecord> = {}): Promise<ProvisioningRecord> {
  const base = { gate: 'bad-input', site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', ...over } as const;
  return record(over, await central.provisionGate({ gate: base.gate, site: base.site, list: base.list, line: base.line, direction: base.direction, lane: base.lane }));
}

/** An XS gate without network (nothing to connect to). */
function offline(o: Partial<XsGateOptions> & Pick<XsGateOptions, 'provisioning'>): XsGate {
  return new XsGate({ wifi: false, config: SMALL, partitionBytes: { data: 2 * 1024 * 1024 }, ...o });
}

const bad = suite('xs gate: bad provisioning');

bad('a malformed or unusable provisioning partition: main.ts refuses to run, says why, repeats it, and starts nothing', async () => {
  const good = encodeProvisioningImage(record());
  const flipped = good.slice();
  flipped[20] = (flipped[20] ?? 0) ^ 0x01;
  const cases: [string, Uint8Array, RegExp][] = [
    ['erased', new Uint8Array(0), /^provisioning record erased: the provisioning partition is empty/],
    ['torn write (CRC)', flipped, /^provisioning record bad_crc: CRC-32 mismatch/],
    ['foreign data', Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 2, 3, 4), /^provisioning record bad_magic/],
    ['length over the record maximum', Uint8Array.of(0x53, 0x47, 0x50, 0x31, 0x00, 0x21, 0, 0), /^provisioning record bad_length: record length 8448 is outside 1..8192/],
    // {"t": "provision"}: framed and CRC-correct, but not a valid record
    ['invalid record', frameProvisioningRecord(Uint8Array.of(0xa1, 0x61, 0x74, 0x69, ...new TextEncoder().encode('provision'))), /^provisioning record invalid_record: /],
    ['broker not mqtt://', encodeProvisioningImage(record({ broker: 'http://broker.example:80' })), /^provisioning record: broker "http:\/\/broker.example:80" is not mqtt:\/\/host\[:port\]/],
    ['mqtts:// without TLS in the build', encodeProvisioningImage(record({ broker: 'mqtts://broker.example' })), /^the broker is mqtts:\/\/broker.example but this build has no TLS socket/],
  ];
  for (const [what, bytes, why] of cases) {
    const g = offline({ provisioning: bytes, name: `bad-${what.replace(/\W+/g, '-')}` });
    try {
      const s = await g.start();
      assert.is(s.running, false, what);
      assert.ok(s.refused !== null && why.test(s.refused), `${what}: ${s.refused}`);
      assert.equal(s.faults, [], `${what}: no exception, a refusal`);
      const lines = () => g.lines.filter((l) => l.startsWith('subline: NOT RUNNING: ')).length;
      assert.is(lines(), 1, what);
      await g.advance(10_000);
      assert.is(lines(), 2, `${what}: said again after 10 s`);
      assert.is(g.bridgeStats.connects, 0, `${what}: no MQTT connection`);
      assert.equal(Object.values(g.outputs), [false, false, false, false, false], `${what}: every output off`);
      assert.is(s.journal.lastSeq, 0, `${what}: no gate, no journal`);
    } finally {
      await g.close();
    }
  }
});

bad.run();

const noise = suite('xs gate: reader noise');

noise('noise, partial frames, split frames and bad checksums on the reader UART: no crash, every good frame read', async () => {
  const rnd = mulberry32(77);
  const junk = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  // EM4100 (RDM6300 ASCII)
  const em = offline({ provisioning: record({ gate: 'noise-em' }), config: { ...SMALL, subline: { ...SMALL.subline, reader: { kind: 'em4100' } } } });
  // UHF (M100) on a goods portal's reader
  const uhf = offline({ provisioning: record({ gate: 'noise-uhf', lane: 'goods' }), config: { ...SMALL, subline: { ...SMALL.subline, reader: { kind: 'uhf', duplicateWindowMs: 0 } } } });
  try {
    await em.start();
    await uhf.start();
    const a = em4100Frame(card(1));
    const b = em4100Frame(card(2));
    const c = em4100Frame(card(3));
    const d = em4100Frame(card(4));
    const badSum = em4100Frame(card(5));
    badSum[11] = badSum[11] === 0x30 ? 0x31 : 0x30;
    em.feedReader(junk(600));
    em.feedReader(a);
    em.feedReader(b.subarray(0, 7)); // cut off by the next frame's STX
    em.feedReader(b);
    em.feedReader(c.subarray(0, 3));
    em.feedReader(c.subarray(3, 9), 5);
    em.feedReader(c.subarray(9), 9);
    em.feedReader(badSum, 20);
    em.feedReader(new Uint8Array(2000).fill(0x02), 30);
    em.feedReader(junk(3000), 40);
    em.feedReader(d, 60);
    await em.advance(100);
    await em.advance(60_000); // the status line: reads and rejects
    const es = em.status();
    assert.equal(es.faults, []);
    assert.is(es.running, true);
    assert.is(es.taps, 4, 'frames a, b, c (split in three) and d decided');
    const status = em.lines.filter((l) => l.startsWith('subline: status:')).at(-1) ?? '';
    assert.match(status, /reads 4, rejected: /);

    const epc = (i: number) => Uint8Array.of(0x30, 0x75, 0x1f, 0xeb, 0x70, 0x5c, 0x59, 0x04, 0xe3, 0xd5, 0x0d, i);
    uhf.feedReader(junk(400));
    uhf.feedReader(uhfFrame(epc(1)));
    uhf.feedReader(Uint8Array.of(0xbb, 0x02, 0x22, 0x00)); // a header and nothing more
    uhf.feedReader(junk(200), 5);
    const torn = uhfFrame(epc(2));
    torn[8] = (torn[8] ?? 0) ^ 0xff; // tag CRC / checksum no longer match
    uhf.feedReader(torn, 10);
    uhf.feedReader(uhfFrame(epc(3)), 20);
    uhf.feedReader(uhfFrame(epc(4)).subarray(0, 10), 30);
    uhf.feedReader(uhfFrame(epc(4)).subarray(10), 31);
    await uhf.advance(3000); // the goods lot window closes: every tag decided
    const us = uhf.status();
    assert.equal(us.faults, []);
    assert.is(us.taps, 3, 'tags 1, 3 and 4 decided (one lot)');
  } finally {
    await em.close();
    await uhf.close();
  }
});

noise.run();

// ---------------------------------------------------------------- lane faults, with a whitelist

interface World {
  dir: string;
  broker: BrokerHandle;
  central: Central;
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'subline-xs-faults-'));
  const broker = await startEmbeddedBroker({ port: 0 });
  const central = await Central.open({ db: join(dir, 'central.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: broker.url, headIntervalSeconds: 3600, chunkSize: 1024 });
  await central.start();
  await central.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Materials Lab' });
    await r.grant('institution', inst, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] });
    for (let i = 0; i < 10; i++) {
      await r.addSubject({ id: `p-${i}`, kind: 'person', institution: inst, name: `Person ${i}` });
      await r.addCredential({ subject: `p-${i}`, kind: 'card', rawId: card(i) });
    }
  });
  central.publishHead();
  return { dir, broker, central };
}

async function records(w: World, gate: string): Promise<string[]> {
  return (await w.central.events.export(gate, 1)).map((r) => {
    const type = eventTypeName((r.record[12] ?? 0) & 0x1f);
    const reason = r.record[13] ?? 0;
    return type === 'alarm' ? `alarm/${Object.entries(AlarmCode).find(([, v]) => v === reason)?.[0] ?? reason}` : type === 'decision_granted' || type === 'decision_denied' ? `${type}/${REASON_NAMES[reason] ?? reason}` : type;
  });
}

const lane = suite('xs gate: lane faults');

lane('relay driver fault: alarm, then the first line fails open and the second closed; stuck rotation sensor: alarm, no crash, grants time out', async () => {
  const w = await world();
  const gates: XsGate[] = [];
  try {
    const mk = async (gate: string, line: 'first' | 'second') => {
      const g = new XsGate({ provisioning: await registered(w.central, { gate, line, policy: DEFAULT_POLICY[line], broker: w.broker.url }), config: { ...SMALL, subline: { ...SMALL.subline, reader: { kind: 'em4100' } } }, partitionBytes: { data: 2 * 1024 * 1024 } });
      gates.push(g);
      return g;
    };
    const first = await mk('relay-l1', 'first');
    const second = await mk('relay-l2', 'second');
    const stuck = await mk('stuck-l1', 'first');
    await Promise.all(gates.map((g) => g.start()));
    const v = await w.central.registry.version();
    await Promise.all(gates.map((g) => g.runUntil('online with the whitelist', (s) => s.online && s.version === v && s.clockTrusted)));

    for (const g of [first, second]) {
      g.setOutputFault('relay', true);
      g.tap(card(1));
      await g.advance(50);
      assert.is(g.outputs.relay, false, `${g.id}: the relay never closed`);
      assert.is(g.outputs.lampGreen, true, `${g.id}: the grant was signalled`);
      await g.advance(9000);
      g.tap(card(2));
      await g.advance(50);
    }
    assert.is(first.status().granted, 2, 'first line: fails open (the second grant stands)');
    assert.is(second.status().granted, 1, 'second line: fails closed after the fault');
    assert.is(second.status().byReason[Reason.lane_fault], 1, 'second line: lane_fault');

    // The rotation sensor sticks active: one rotation is seen, then nothing more.
    stuck.setInput('rotation', true);
    await stuck.advance(200);
    stuck.tap(card(3));
    await stuck.advance(50);
    assert.is(stuck.outputs.relay, true);
    await stuck.advance(9000);
    assert.is(stuck.outputs.relay, false, 'the grant timed out: the lane closed again');
    stuck.tap(card(4));
    await stuck.advance(50);
    assert.is(stuck.status().taps, 2, 'reads still decided');
    await Promise.all(gates.map((g) => g.advance(9000))); // the last grants time out too

    await Promise.all(gates.map((g) => g.runUntil('every event acknowledged', (s) => s.online && s.journal.acked === s.journal.lastSeq, { timeoutMs: 20000 })));
    for (const g of gates) assert.equal(g.status().faults, [], g.id);
    assert.equal(await records(w, 'relay-l1'), ['boot', 'decision_granted/granted', 'alarm/relay_fault', 'passage_not_taken', 'decision_granted/granted', 'passage_not_taken']);
    assert.equal(await records(w, 'relay-l2'), ['boot', 'decision_granted/granted', 'alarm/relay_fault', 'passage_not_taken', 'decision_denied/lane_fault']);
    // The stuck sensor raises rotation_sensor_fault after sensorStuckMs; the first line keeps granting (fails open).
    assert.equal(await records(w, 'stuck-l1'), ['boot', 'forced_passage', 'decision_granted/granted', 'alarm/rotation_sensor_fault', 'passage_not_taken', 'decision_granted/granted', 'passage_not_taken']);
  } finally {
    for (const g of gates) await g.close();
    await w.central.close();
    await w.broker.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

lane('a power cut in the middle of a journal write: no relay, the device stops; after the reboot the journal recovers and uploads exactly once', async () => {
  const w = await world();
  let g: XsGate | null = null;
  try {
    g = new XsGate({ provisioning: await registered(w.central, { gate: 'torn', broker: w.broker.url }), config: { ...SMALL, subline: { ...SMALL.subline, reader: { kind: 'em4100' } } }, partitionBytes: { data: 2 * 1024 * 1024 } });
    await g.start();
    const v = await w.central.registry.version();
    await g.runUntil('online with the whitelist', (s) => s.online && s.version === v && s.clockTrusted);
    g.tap(card(1));
    g.pulse('rotation');
    await g.advance(200);
    await g.runUntil('acknowledged', (s) => s.journal.acked === s.journal.lastSeq);
    const before = g.status().journal.lastSeq;
    await g.armPowerCut(1, 'write'); // the next flash write is torn, and power is gone
    g.tap(card(2));
    await g.advance(50);
    const cut = g.status();
    assert.ok(cut.poweredOff, 'the flash lost power');
    assert.ok(cut.faults.some((f) => /PowerCutError/.test(f)), cut.faults.join('; '));
    assert.is(g.outputs.relay, false, 'no record, no passage');
    const after = await g.powerCycle();
    assert.ok(after.running, after.refused ?? after.faults.join('; '));
    assert.equal(after.faults, []);
    assert.is(after.boot, 2);
    assert.ok(after.journal.lastSeq >= before + 1, 'the reboot is journaled after what survived');
    await g.runUntil('the time again', (x) => x.clockTrusted);
    g.tap(card(3));
    g.pulse('rotation');
    await g.advance(200);
    await g.runUntil('uploaded after the reboot', (s) => s.online && s.journal.acked === s.journal.lastSeq, { timeoutMs: 20000 });
    const s = g.status();
    const rows = await w.central.events.export('torn', 1);
    assert.is(rows.length, s.journal.lastSeq, 'the central holds every seq once');
    assert.equal(new Set(rows.map((r) => r.seq)).size, rows.length);
    assert.is(s.granted, 1);
  } finally {
    await g?.close();
    await w.central.close();
    await w.broker.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

lane.run();
