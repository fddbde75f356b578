// Issue 16 item 1: a gate whose data partition is erased while its
// provisioning record is kept must never reuse an (epoch, seq) for a
// different record. The format counter in the provisioning partition
// (firmware/core/format-log.ts) moves the journal epoch on at every format;
// the central keeps a differing record at a key it holds as a conflict.
// docs/decisions/0013-format-counter.md.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FormatLog, FORMAT_LOG_BLOCKS } from '../firmware/core/format-log.js';
import { formatLogRegion } from '../firmware/moddable/provisioning-image.js';
import { EventType, RECORD_BYTES, type EventRecord } from '../protocol/event-record.js';
import { toHex } from '../protocol/hex.js';
import { NorFlash, PowerCutError } from '../host-sim/flash/nor-flash.js';
import { NodeGate } from '../host-sim/node-gate.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { FAST_SYNC, Fleet, waitFor } from './helpers/fleet.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { partitionBytes } from '../firmware/core/partition.js';

const LAYOUT = { credentials: 4000, journalSectors: 16 };
const te = new TextEncoder();

function record(life: number, i: number): EventRecord {
  const key = new Uint8Array(8);
  key[0] = life;
  key[1] = i;
  return { time: 1_700_000_000 + life * 1000 + i, key, type: EventType.decision_denied, level: 0, clockUntrusted: false, reason: 1 };
}

/** Every record (not a tombstone) the gate's journal holds: "epoch.seq" -> record hex. */
function journalRecords(g: NodeGate, into: Map<string, string>): void {
  const j = g.gate.journal;
  const buf = new Uint8Array(RECORD_BYTES * 64);
  for (let from = 1; from <= j.lastSeq; from += 64) {
    const n = j.readBatch(from, 64, buf).count;
    for (let k = 0; k < n; k++) {
      const r = buf.subarray(k * RECORD_BYTES, (k + 1) * RECORD_BYTES);
      if (r[12] === 31) continue; // tombstone
      put(into, `${j.epoch}.${from + k}`, toHex(r));
    }
  }
}

/** Records one key; a different record at a key already held is the bug. */
function put(into: Map<string, string>, key: string, hex: string): void {
  const had = into.get(key);
  if (had !== undefined) assert.is(hex, had, `(epoch, seq) ${key} reused for a different record`);
  into.set(key, hex);
}

function offlineRecord(): ProvisioningRecord {
  return {
    gate: 'wipe-t01', site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:9',
    trustedKeys: [new Uint8Array(32).fill(1)], deploymentKey: new Uint8Array(32).fill(2), gateKey: new Uint8Array(32).fill(3), gateKeyId: 1,
    journalEpoch: 1000, policy: DEFAULT_POLICY.first, passbackSeconds: 0,
  };
}

function offlineGate(p: ProvisioningRecord, flash: NorFlash, provisioningFlash: NorFlash): NodeGate {
  return new NodeGate({ provisioning: p, crypto: nodeCrypto, layout: LAYOUT, flash, provisioningFlash });
}

// ---------------------------------------------------------------- the counter

const counter = suite('format counter (provisioning partition)');

counter('counts up across both blocks and survives a reopen; a cut during any write or erase never lowers it', () => {
  const part = new NorFlash({ size: 0x10000, blockSize: 4096 });
  const log = new FormatLog(formatLogRegion(part));
  assert.is(log.read(), 0);
  const perBlock = 4096 / 16;
  for (let i = 1; i <= perBlock * 2 + 10; i++) assert.is(log.bump(), i);
  assert.is(new FormatLog(formatLogRegion(part)).read(), perBlock * 2 + 10, 'a fresh reader sees the highest count');
  assert.is(part.stats.erases, 2, 'one erase per block switch');

  // A cut at each of the next writes/erases (including a block switch): the count stays or moves on by one.
  for (let n = 1; n <= 300; n++) {
    const before = new FormatLog(formatLogRegion(part)).read();
    part.cutAfter(1);
    let threw = false;
    try {
      new FormatLog(formatLogRegion(part)).bump();
    } catch (e) {
      assert.instance(e, PowerCutError);
      threw = true;
    }
    assert.ok(threw);
    part.restore();
    const after = new FormatLog(formatLogRegion(part)).read();
    assert.ok(after === before || after === before + 1, `cut ${n}: ${before} -> ${after}`);
    const next = new FormatLog(formatLogRegion(part)).bump();
    assert.ok(next > after && next > before, `cut ${n}: the next bump (${next}) is above every count before`);
  }
});

counter('refuses a region of the wrong size and a provisioning partition without room', () => {
  assert.throws(() => new FormatLog(new NorFlash({ size: 4096 * 3, blockSize: 4096 })), /2 blocks/);
  assert.throws(() => formatLogRegion(new NorFlash({ size: 4096 * 4, blockSize: 4096 })), /format counter need/);
  assert.is(formatLogRegion(new NorFlash({ size: 0x10000, blockSize: 4096 })).size, FORMAT_LOG_BLOCKS * 4096);
});

counter.run();

// ---------------------------------------------------------------- the gate

const gate = suite('a wiped data partition never reuses (epoch, seq)');

gate('a wipe moves the epoch on; an ordinary reboot writes nothing to the provisioning partition', () => {
  const p = offlineRecord();
  const prov = NodeGate.provisioningPartition(p);
  const data = new NorFlash({ size: partitionBytes(LAYOUT), blockSize: 4096 });
  const seen = new Map<string, string>();
  const a = offlineGate(p, new NorFlash({ size: data.size, blockSize: 4096 }), prov);
  const ba = a.gate.open();
  assert.is(ba.journalEpoch, 1000, 'the first format keeps the provisioned epoch');
  assert.ok(ba.formatted);
  for (let i = 0; i < 20; i++) a.gate.journal.append(record(1, i));
  journalRecords(a, seen);
  // An ordinary reboot: same epoch, the provisioning partition is not written.
  const writes = prov.stats.writes + prov.stats.erases;
  const a2 = offlineGate(p, a.flash, prov);
  const ba2 = a2.gate.open();
  assert.is(ba2.journalEpoch, 1000);
  assert.not.ok(ba2.formatted);
  assert.is(prov.stats.writes + prov.stats.erases, writes, 'no provisioning write without a format');
  journalRecords(a2, seen);
  // The wipe: same provisioning partition, data erased.
  const b = offlineGate(p, new NorFlash({ size: data.size, blockSize: 4096 }), prov);
  const bb = b.gate.open();
  assert.is(bb.journalEpoch, 1001, 'a new epoch after the wipe');
  assert.ok(bb.formatted);
  for (let i = 0; i < 20; i++) b.gate.journal.append(record(2, i));
  journalRecords(b, seen);
  assert.is(seen.size, 21 + 1 + 21, 'every record under its own key');
});

gate('a power cut at every flash write or erase of the format path never reuses an epoch', () => {
  const p = offlineRecord();
  let cuts = 0;
  for (const where of ['provision', 'data'] as const) {
    for (let n = 1; ; n++) {
      const seen = new Map<string, string>();
      const prov = NodeGate.provisioningPartition(p);
      const size = partitionBytes(LAYOUT);
      // Life A, uploaded in full (its records are at the central).
      const a = offlineGate(p, new NorFlash({ size, blockSize: 4096 }), prov);
      a.gate.open();
      for (let i = 0; i < 5; i++) a.gate.journal.append(record(1, i));
      journalRecords(a, seen);
      // Wiped; life B is cut at its n-th write/erase of one of the flashes while it formats and journals.
      const data = new NorFlash({ size, blockSize: 4096, seed: n });
      const b = offlineGate(p, data, prov);
      (where === 'provision' ? prov : data).cutAfter(n);
      let fired = false;
      try {
        b.gate.open();
        for (let i = 0; i < 3; i++) {
          const seq = b.gate.journal.append(record(2, i));
          // A seq returned may have been uploaded: it counts from here on.
          if (typeof seq === 'number') put(seen, `${b.gate.journal.epoch}.${seq}`, toHex(readOne(b, seq)));
        }
        b.gate.maintain();
      } catch (e) {
        if (!(e instanceof PowerCutError)) throw e;
        fired = true;
      }
      prov.cancelCut();
      data.cancelCut();
      prov.restore();
      data.restore();
      // Life C after the cut: whatever it journals is new under its key.
      const c = offlineGate(p, data, prov);
      const bc = c.gate.open();
      assert.ok(bc.journalEpoch > 1000, `${where} cut ${n}: epoch ${bc.journalEpoch} is past life A's`);
      for (let i = 0; i < 3; i++) c.gate.journal.append(record(3, i));
      journalRecords(c, seen);
      if (!fired) break;
      cuts++;
    }
  }
  assert.ok(cuts >= 4, `cuts tried: ${cuts}`);
});

function readOne(g: NodeGate, seq: number): Uint8Array {
  const out = new Uint8Array(RECORD_BYTES);
  g.gate.journal.readBatch(seq, 1, out);
  return out;
}

gate.run();

// ---------------------------------------------------------------- the central

const central = suite('central: a differing record at a held (gate, epoch, seq) is kept and counted');

function batch(gate: string, epoch: number, first: number, records: Uint8Array[], prev: Uint8Array) {
  let c = prev;
  for (const r of records) c = sha256Pair(c, r);
  const all = new Uint8Array(records.length * RECORD_BYTES);
  records.forEach((r, i) => all.set(r, i * RECORD_BYTES));
  return { gate, epoch, first, count: records.length, prev, chain: c, records: all };
}

central('the stored record stays, the differing one goes to conflicts once, both are visible', async () => {
  const store = await openCentralStore(':memory:', { create: true });
  const s = store.events;
  const rec = (tag: number, i: number) => {
    const r = new Uint8Array(RECORD_BYTES).fill(i);
    r[0] = tag;
    return r;
  };
  const zero = new Uint8Array(32);
  const life1 = [1, 2, 3, 4].map((i) => rec(1, i));
  assert.is((await s.ingest(batch('g1', 7, 1, life1, zero))).stored, 4);
  // The same key, different bytes: a gate that restarted its journal in the same epoch.
  const life2 = [1, 2, 3, 4, 5, 6].map((i) => rec(2, i));
  const r = await s.ingest(batch('g1', 7, 1, life2, zero));
  assert.is(r.stored, 0);
  assert.is(r.problem, 'overlap_mismatch');
  assert.is(r.conflicts, 6, 'every record of the refused batch that differs from what is held is kept');
  // Sent again (the gate resends): nothing is counted twice.
  assert.is((await s.ingest(batch('g1', 7, 1, life2, zero))).conflicts, 0);
  const conflicts = await s.conflicts('g1');
  assert.is(conflicts.length, 6);
  assert.equal(conflicts.map((c) => c.seq), [1, 2, 3, 4, 5, 6]);
  assert.is(toHex(conflicts[0]!.record), toHex(life2[0]!));
  assert.is(toHex(conflicts[0]!.stored!), toHex(life1[0]!), 'the held record next to it');
  assert.is(conflicts[4]!.stored, null, 'no held record at seq 5');
  const held = await s.export('g1', 7);
  assert.is(held.length, 4, 'the held records are untouched');
  assert.is(toHex(held[0]!.record), toHex(life1[0]!));
  // A chain break (same records after the held ones, chained from a different prev) is kept too.
  const tail = batch('g1', 7, 5, [rec(3, 5)], new Uint8Array(32).fill(9));
  const t = await s.ingest(tail);
  assert.is(t.problem, 'chain_break');
  assert.is(t.conflicts, 1);
  assert.is((await s.conflicts('g1')).length, 7);
  assert.is(await s.conflictCount(), 7);
  await store.close();
});

central.run();

// ---------------------------------------------------------------- end to end

const e2e = suite('a wiped Node gate, the central and the broker');

async function tapUntil(g: NodeGate, n: number, life: string): Promise<void> {
  const target = g.gate.journal.lastSeq + n;
  for (let i = 0; i < n; i++) {
    g.gate.onRead({ kind: 'card', id: te.encode(`card-${life}-${i}`), atMs: 0 });
    await new Promise((r) => setTimeout(r, 5));
  }
  await waitFor('taps journaled', () => g.gate.journal.lastSeq >= target);
}

e2e('every record of both lives is at the central exactly once, under distinct epochs; no conflict', async () => {
  const f = new Fleet('aedes');
  try {
    await f.startBroker();
    const c = await f.startCentral();
    c.publishHead();
    const p = await f.provisioning('wipe-t02');
    const prov = NodeGate.provisioningPartition(p);
    const start = (flash?: NorFlash) => {
      const g = new NodeGate({ provisioning: p, crypto: nodeCrypto, layout: LAYOUT, sync: FAST_SYNC, maintenanceMs: 50, provisioningFlash: prov, ...(flash !== undefined ? { flash } : {}) });
      g.start();
      return g;
    };
    const acked = (g: NodeGate) => g.gate.journal.acked === g.gate.journal.lastSeq;
    const a = start();
    await tapUntil(a, 40, 'a');
    await waitFor('life A acknowledged', () => acked(a));
    const lifeA = new Map<string, string>();
    journalRecords(a, lifeA);
    const epochA = a.gate.journal.epoch;
    a.stop();
    // The data flash erased, the provisioning partition kept.
    const b = start();
    assert.ok(b.gate.journal.epoch > epochA, `epoch ${b.gate.journal.epoch} after ${epochA}`);
    await tapUntil(b, 60, 'b');
    await waitFor('life B acknowledged', () => acked(b), 20000);
    const lifeB = new Map<string, string>();
    journalRecords(b, lifeB);
    for (const [lives, m] of [['A', lifeA], ['B', lifeB]] as const) {
      for (const [key, hex] of m) {
        const [epoch, seq] = key.split('.').map(Number) as [number, number];
        const rows = (await c.events.export(p.gate, epoch)).filter((r) => r.seq === seq);
        assert.is(rows.length, 1, `life ${lives} ${key} stored once`);
        assert.is(toHex(rows[0]!.record), hex, `life ${lives} ${key} stored as journaled`);
      }
    }
    assert.is(await c.events.count(p.gate), lifeA.size + lifeB.size, 'nothing else stored');
    assert.is(await c.events.conflictCount(p.gate), 0);
    assert.is(c.stats.ingest.conflicts, 0);
    b.stop();
  } finally {
    await f.close();
  }
});

e2e('a gate that reuses an (epoch, seq) (no counter: old firmware) is seen: conflicts kept, refusals counted per gate', async () => {
  const f = new Fleet('aedes');
  try {
    await f.startBroker();
    const c = await f.startCentral();
    c.publishHead();
    const p = await f.provisioning('wipe-t03');
    const start = () => {
      // A fresh provisioning partition each time: the counter is lost with the data (a gate without one).
      const g = new NodeGate({ provisioning: p, crypto: nodeCrypto, layout: LAYOUT, sync: FAST_SYNC, maintenanceMs: 50 });
      g.start();
      return g;
    };
    const a = start();
    await tapUntil(a, 10, 'a');
    await waitFor('life A acknowledged', () => a.gate.journal.acked === a.gate.journal.lastSeq);
    a.stop();
    const b = start();
    assert.is(b.gate.journal.epoch, a.gate.journal.epoch, 'the same epoch: the bug this guards against');
    await tapUntil(b, 10, 'b');
    await waitFor('conflicts seen', async () => (await c.events.conflictCount(p.gate)) > 0, 20000);
    const refused = c.refusals.forGate(p.gate);
    assert.ok((refused['events.conflict'] ?? 0) > 0, JSON.stringify(refused));
    assert.ok(c.stats.ingest.conflicts > 0);
    assert.is((await c.events.export(p.gate, a.gate.journal.epoch))[0]!.record[0] !== undefined, true);
    b.stop();
  } finally {
    await f.close();
  }
});

e2e.run();
