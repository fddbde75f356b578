// The event journal (firmware/core/journal.ts) and its record codec
// (protocol/event-record.ts) on the simulated NOR flash: appends, reads,
// acks, maintain, full, wrap-around; recovery after a power cut at every
// mutating operation of a scenario (also with flash encryption's no-rewrite
// rule, and cuts during erases); recovery cost (logarithmic header reads);
// corruption fuzzing; and the same seeded cut scenario on Node and on XS.
// Small geometry (sectors of 512 bytes, 30 records each) keeps sweeps fast.

import { throwsKind } from './helpers/assert.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { NorFlash, PowerCutError, type CutMode } from '../host-sim/flash/nor-flash.js';
import { Region } from '../firmware/core/region.js';
import type { BlockStore } from '../firmware/ports.js';
import { Journal, ACK_SECTORS, DEFAULT_JOURNAL_SECTORS, MAX_SKIPPED, SLOT_RETRIES, type RecoveryReport } from '../firmware/core/journal.js';
import {
  AlarmCode,
  EventType,
  GapReason,
  GrantLevel,
  RECORD_BYTES,
  checkRecord,
  crc16,
  createRecord,
  decodeRecord,
  encodeRecord,
  encodeTombstone,
  eventTypeName,
  recordCrc,
  validateRecord,
  type EventRecord,
} from '../protocol/event-record.js';
import { Reason } from '../protocol/reasons.js';
import { crc32 } from '../protocol/crc32.js';
import {
  EPOCH,
  T0,
  JournalModel,
  OpSpy,
  checkRecovery,
  continueAfter,
  journalCycles,
  makeRecord,
  modelAppend,
  newFlash,
  randomScript,
  runSteps,
  standardScript,
  sweepCase,
  type CyclesRequest,
  type CyclesResult,
  type JournalXsRequest,
  type OpKind,
  type SweepRequest,
  type SweepResult,
} from './xs/journal.entry.js';
import { startXs } from './helpers/xs.js';

const seed = Number(process.env.FC_SEED ?? 20261127);
const runs = Number(process.env.FC_RUNS ?? 100);
const SMALL = { sectors: 6, sectorSize: 512 }; // 4 ring sectors of 30 records, 2 ack sectors

function open(g = SMALL, options: { spareSectors?: number; noRewrite?: boolean; flashSeed?: number } = {}): { flash: NorFlash; j: Journal; report: RecoveryReport } {
  const flash = newFlash(g, options.flashSeed ?? 1, options.noRewrite ?? false);
  const j = new Journal(flash, options.spareSectors === undefined ? { epoch: EPOCH } : { epoch: EPOCH, spareSectors: options.spareSectors });
  return { flash, j, report: j.open() };
}

function reopen(store: BlockStore, spareSectors?: number): { j: Journal; report: RecoveryReport } {
  const j = new Journal(store, spareSectors === undefined ? { epoch: EPOCH } : { epoch: EPOCH, spareSectors });
  return { j, report: j.open() };
}

function appendN(j: Journal, from: number, n: number): (number | 'full')[] {
  const out: (number | 'full')[] = [];
  for (let i = from; i < from + n; i++) out.push(j.append(makeRecord(i)));
  return out;
}

/** Everything readable from 1 to lastSeq: [seq, type, time, reason]. */
function readAll(j: Journal, from = 1): [number, number, number, number][] {
  const out: [number, number, number, number][] = [];
  j.read(from, j.lastSeq, (s, r) => {
    out.push([s, r.type, r.time, r.reason]);
  });
  return out;
}

/** Flash offset of a seq's slot (the documented layout: generation g in ring sector g mod R). */
function slotOffset(j: Journal, seq: number): number {
  const gen = Math.floor((seq - 1) / j.recordsPerSector);
  return (gen % j.ringSectors) * j.sectorSize + 32 + ((seq - 1) % j.recordsPerSector) * RECORD_BYTES;
}

function sameRecord(a: EventRecord, b: EventRecord): boolean {
  return a.time === b.time && a.type === b.type && a.level === b.level && a.clockUntrusted === b.clockUntrusted && a.reason === b.reason && a.key.every((x, i) => x === b.key[i]);
}

// ---------------------------------------------------------------- records
const rec = suite('journal: record codec');
rec('CRC-16/CCITT-FALSE check value', () => {
  assert.is(crc16(new TextEncoder().encode('123456789')), 0x29b1);
  assert.is(crc16(new Uint8Array(0)), 0xffff);
});
rec('layout: time LE, key, type byte (type | level << 5 | untrusted << 7), reason, CRC big-endian over bytes, seq, epoch', () => {
  const r = createRecord();
  r.time = 0x11223344;
  r.key.set([1, 2, 3, 4, 5, 6, 7, 8]);
  r.type = EventType.decision_granted;
  r.level = GrantLevel.institution;
  r.clockUntrusted = true;
  r.reason = Reason.granted;
  const b = new Uint8Array(16);
  encodeRecord(r, 42, 7, b);
  assert.equal(Array.from(b.subarray(0, 14)), [0x44, 0x33, 0x22, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 1 | (2 << 5) | 0x80, 0]);
  const tail = new Uint8Array(8);
  new DataView(tail.buffer).setUint32(0, 42, true);
  new DataView(tail.buffer).setUint32(4, 7, true);
  const crc = crc16(tail, 0, 8, crc16(b, 0, 14));
  assert.is((b[14]! << 8) | b[15]!, crc);
  assert.is(recordCrc(b, 0, 42, 7), crc);
  const back = createRecord();
  assert.is(decodeRecord(b, 0, 42, 7, back), 0);
  assert.ok(sameRecord(back, r));
});
rec('round trip for arbitrary records, at any offset; the CRC binds seq and epoch', () => {
  const arb = fc.record({
    time: fc.integer({ min: 0, max: 0xffffffff }),
    key: fc.uint8Array({ minLength: 8, maxLength: 8 }),
    type: fc.integer({ min: 1, max: 31 }),
    level: fc.integer({ min: 0, max: 3 }),
    clockUntrusted: fc.boolean(),
    reason: fc.integer({ min: 0, max: 255 }),
  });
  fc.assert(
    fc.property(arb, fc.integer({ min: 1, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(3), (r, s, e, slot) => {
      validateRecord(r);
      const b = new Uint8Array(64).fill(0xff);
      encodeRecord(r, s, e, b, slot * 16);
      const back = createRecord();
      assert.is(decodeRecord(b, slot * 16, s, e, back), 0);
      assert.ok(sameRecord(back, r));
      assert.is(checkRecord(b, slot * 16, (s + 1) >>> 0 || 1, e), GapReason.corrupt, 'wrong seq');
      assert.is(checkRecord(b, slot * 16, s, (e + 1) >>> 0), GapReason.corrupt, 'wrong epoch');
      const untouched = createRecord();
      untouched.time = 5;
      assert.is(decodeRecord(b, slot * 16, s, e ^ 1, untouched), GapReason.corrupt);
      assert.is(untouched.time, 5, 'a failed decode leaves the object alone');
    }),
    { seed, numRuns: runs * 3 },
  );
});
rec('every corruption of 1 to 3 bits is detected', () => {
  fc.assert(
    fc.property(fc.nat(5000), fc.uniqueArray(fc.nat(127), { minLength: 1, maxLength: 3 }), (i, bits) => {
      const b = new Uint8Array(16);
      encodeRecord(makeRecord(i), i + 1, EPOCH, b);
      for (const bit of bits) b[bit >> 3]! ^= 1 << (bit & 7);
      assert.is(checkRecord(b, 0, i + 1, EPOCH), b.every((x) => x === 0xff) ? GapReason.blank : GapReason.corrupt);
    }),
    { seed, numRuns: runs * 5 },
  );
});
rec('an erased slot is blank, never valid; tombstones carry a valid CRC', () => {
  const ff = new Uint8Array(16).fill(0xff);
  for (let s = 1; s < 2000; s++) assert.is(checkRecord(ff, 0, s, EPOCH), GapReason.blank);
  const t = new Uint8Array(16);
  encodeTombstone(9, EPOCH, GapReason.corrupt, t);
  const r = createRecord();
  assert.is(decodeRecord(t, 0, 9, EPOCH, r), 0);
  assert.equal([r.type, r.reason, r.time, r.level, Array.from(r.key)], [EventType.gap, GapReason.corrupt, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]]);
  assert.is(eventTypeName(EventType.gap), 'gap');
  assert.is(eventTypeName(EventType.vehicle_without_credential), 'vehicle_without_credential');
  assert.is(eventTypeName(0), 'unknown');
  assert.ok(AlarmCode.tamper > 0);
});
rec('validateRecord refuses what the byte layout cannot hold', () => {
  const bad: [Partial<EventRecord>, RegExp][] = [
    [{ time: -1 }, /time/],
    [{ time: 2 ** 32 }, /time/],
    [{ time: 1.5 }, /time/],
    [{ key: new Uint8Array(7) }, /key/],
    [{ type: 0 }, /type/],
    [{ type: 32 }, /type/],
    [{ level: 4 }, /level/],
    [{ reason: 256 }, /reason/],
  ];
  for (const [patch, re] of bad) throwsKind(() => validateRecord({ ...makeRecord(1), ...patch }), RangeError, re);
});
rec('one home for the record format: protocol/event-record.ts, imported by the journal, the sync engine and the central; its size declared there only', () => {
  const root = new URL('..', import.meta.url);
  const sources: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(new URL(dir, root), { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${dir}${e.name}/`);
      else if (e.name.endsWith('.ts')) sources.push(`${dir}${e.name}`);
    }
  };
  for (const d of ['firmware/', 'protocol/', 'host-sim/']) walk(d);
  const text = (f: string): string => readFileSync(new URL(f, root), 'utf8');
  assert.ok(sources.includes('protocol/event-record.ts'));
  assert.not.ok(existsSync(new URL('firmware/core/journal-record.ts', root)), 'no second copy in the firmware core');
  for (const f of ['firmware/core/journal.ts', 'firmware/core/sync-engine.ts', 'firmware/core/gate-controller.ts', 'host-sim/central/event-store.ts', 'host-sim/central/event-decode.ts']) {
    assert.match(text(f), /from '\.\.\/\.\.\/protocol\/event-record\.js'/, `${f} imports protocol/event-record.ts`);
  }
  // A size constant, or a literal 16 tied to a record, anywhere else would be a second declaration.
  const sizeDecl = /RECORD_BYTES\s*=\s*\d|length\(record\)\s*=\s*\d|journal-record/;
  for (const f of sources) if (f !== 'protocol/event-record.ts') assert.not.ok(sizeDecl.test(text(f).replace(/DELTA_RECORD_BYTES\s*=\s*\d+/g, '')), `${f} declares the event record size or imports the old module`);
  assert.is(RECORD_BYTES, 16);
});

// ----------------------------------------------------------------- basics
const basics = suite('journal: append, read, ack, maintain');
basics('geometry: small test region and the 1.6 MiB production region', () => {
  const { j, report } = open();
  assert.equal([j.ringSectors, j.recordsPerSector, j.capacityEvents, j.sectorSize, j.spareSectors], [4, 30, 120, 512, 2]);
  assert.equal(report, { lastSeq: 0, acked: 0, sectorsUsed: 0, gapsFound: 0, headSector: -1, headerReads: 4, fullHeaderScan: false });
  let t = 100;
  const timed = new Journal(newFlash(SMALL, 1, false), { epoch: EPOCH, now: () => (t += 2.5) }).open();
  assert.is(timed.ms, 2.5);
  const prod = Journal.geometry(DEFAULT_JOURNAL_SECTORS * 4096, 4096);
  assert.equal([prod.ringSectors, prod.recordsPerSector, prod.capacityEvents], [398, 254, 101_092]);
  assert.ok(prod.capacityEvents >= 100_000);
  assert.ok(Math.abs(prod.bytesPerEvent - (400 * 4096) / 101_092) < 1e-9 && prod.bytesPerEvent < 16.25);
});
basics('bad options and misuse are clear errors', () => {
  throwsKind(() => new Journal(new NorFlash({ size: 3 * 512, blockSize: 512 }), { epoch: 1 }), RangeError, /needs 4\.\./);
  throwsKind(() => new Journal(new NorFlash({ size: 8 * 40, blockSize: 40, programUnit: 8 }), { epoch: 1 }), RangeError, /multiple of 16/);
  throwsKind(() => new Journal(new NorFlash({ size: 6 * 512, blockSize: 512 }), { epoch: -1 }), RangeError, /epoch/);
  throwsKind(() => new Journal(new NorFlash({ size: 6 * 512, blockSize: 512 }), { epoch: 1, spareSectors: 4 }), RangeError, /spareSectors must be 1\.\.3/);
  throwsKind(() => new Journal(new NorFlash({ size: 6 * 512, blockSize: 512 }), { epoch: 1, spareSectors: 0 }), RangeError, /spareSectors/);
  const j = new Journal(new NorFlash({ size: 6 * 512, blockSize: 512 }), { epoch: 1 });
  throwsKind(() => j.append(makeRecord(0)), Error, /open\(\) first/);
  j.open();
  throwsKind(() => j.append({ ...makeRecord(0), type: 0 }), RangeError, /type/);
  assert.is(j.lastSeq, 0, 'a refused record consumes nothing');
});
basics('appends get seqs 1, 2, 3 ...; reads return them; readBatch returns the flash bytes', () => {
  const { j, flash } = open();
  const seqs = appendN(j, 0, 45);
  assert.equal(seqs, Array.from({ length: 45 }, (_, i) => i + 1));
  assert.is(j.lastSeq, 45);
  const got = readAll(j);
  assert.equal(got, Array.from({ length: 45 }, (_, i) => { const r = makeRecord(i); return [i + 1, r.type, r.time, r.reason]; }));
  const r = createRecord();
  let visited = 0;
  assert.is(j.read(10, 100, (s, x) => { visited++; if (s === 12) { r.time = x.time; return false; } return true; }), 3);
  assert.is(visited, 3);
  assert.is(r.time, T0 + 11);
  const out = new Uint8Array(20 * 16);
  assert.equal(j.readBatch(30, 50, out), { first: 30, count: 16 });
  const want = new Uint8Array(16);
  for (let k = 0; k < 16; k++) {
    encodeRecord(makeRecord(29 + k), 30 + k, EPOCH, want);
    assert.equal(out.subarray(k * 16, k * 16 + 16), want);
    assert.equal(out.subarray(k * 16, k * 16 + 16), flash.read(slotOffset(j, 30 + k), 16));
  }
  assert.equal(j.readBatch(46, 10, out), { first: 46, count: 0 });
  assert.equal(j.readBatch(0, 3, out).first, 1);
  assert.is(j.read(46, 10, () => undefined), 0);
});
basics('append: the first record of a sector costs two writes (header, record); never an erase', () => {
  const flash = newFlash(SMALL, 1, false);
  const spy = new OpSpy(flash);
  let erasesInAppend = 0;
  const j = new Journal(spy, { epoch: EPOCH });
  j.open();
  const w0 = flash.stats.writes;
  assert.is(j.append(makeRecord(0)), 1);
  assert.is(flash.stats.writes - w0, 2);
  assert.is(j.append(makeRecord(1)), 2);
  assert.is(flash.stats.writes - w0, 3);
  for (let i = 2; i < 600; i++) {
    const e = flash.stats.erases;
    const s = j.append(makeRecord(i));
    erasesInAppend += flash.stats.erases - e;
    if (typeof s === 'number' && i % 5 === 0) j.ack(s - 10);
    if (i % 10 === 0) j.maintain(1);
  }
  assert.is(erasesInAppend, 0);
  assert.ok(flash.stats.erases > 10, 'the ring wrapped');
});
basics('ack: durable, clamped to lastSeq, never backwards; backlog = lastSeq - acked', () => {
  const { j, flash } = open();
  appendN(j, 0, 20);
  assert.is(j.backlog, 20);
  assert.ok(j.ack(12));
  assert.equal([j.acked, j.ackedDurable, j.backlog], [12, 12, 8]);
  assert.ok(j.ack(5));
  assert.is(j.acked, 12, 'an older ack changes nothing');
  assert.ok(j.ack(1000));
  assert.is(j.acked, 20, 'clamped to lastSeq');
  assert.is(j.backlog, 0);
  const again = reopen(flash);
  assert.equal([again.report.acked, again.report.lastSeq, again.j.backlog], [20, 20, 0]);
  throwsKind(() => j.ack(Number.NaN), RangeError);
});
basics('maintain keeps spare sectors erased ahead, erases only acknowledged sectors, reports what it did', () => {
  const { j, flash } = open();
  assert.equal(j.maintain(), { erased: 0, verified: 2, spares: 2, ackPersisted: false, ackPending: false, waitingForAck: false });
  appendN(j, 0, 90); // sectors 0, 1, 2 full
  assert.is(j.sparesReady, 0);
  let m = j.maintain(5);
  assert.equal([m.erased, m.verified, m.spares, m.waitingForAck], [0, 1, 1, true], 'sector 3 is fresh: verified, not erased; sector 0 holds unacknowledged records');
  m = j.maintain(5);
  assert.equal([m.erased, m.verified, m.spares, m.waitingForAck], [0, 0, 1, true]);
  j.ack(29);
  m = j.maintain(5);
  assert.equal([m.erased, m.spares, m.waitingForAck], [0, 1, true], 'one record of sector 0 (seq 30) is not acknowledged');
  assert.is(flash.stats.erases, 0);
  j.ack(30);
  m = j.maintain(5);
  assert.equal([m.erased, m.spares], [1, 2]);
  assert.equal(Array.from(flash.stats.eraseCountPerBlock), [1, 0, 0, 0, 0, 0]);
  m = j.maintain(0);
  assert.equal([m.erased, m.spares], [0, 2]);
  // seqs of the erased sector read as gaps
  const first = readAll(j)[0]!;
  assert.equal([first[0], first[1]], [1, EventType.gap]);
});
basics('full: no erased sector for the next record -> "full" and isFull; an ack and maintain() free space', () => {
  const { j } = open();
  j.maintain(2);
  const seqs = appendN(j, 0, 125);
  assert.equal(seqs.slice(118, 121), [119, 120, 'full']);
  assert.ok(seqs.slice(120).every((s) => s === 'full'));
  assert.ok(j.isFull);
  assert.is(j.lastSeq, 120);
  assert.is(j.backlog, 120);
  assert.is(j.maintain(3).waitingForAck, true);
  assert.is(j.append(makeRecord(200)), 'full');
  j.ack(45);
  assert.equal(j.maintain(3).spares, 1, 'sector 0 is freed; sector 1 still holds seqs 46..60');
  assert.not.ok(j.isFull);
  assert.is(j.append(makeRecord(201)), 121);
  assert.equal(readAll(j).slice(-2).map((x) => [x[0], x[2]]), [[120, T0 + 119], [121, T0 + 201]]);
});
basics('wraps around the ring many times; seqs stay monotonic across reboots; old seqs read as not retained', () => {
  const { flash } = open();
  let { j } = reopen(flash);
  j.maintain(2);
  let last = 0;
  for (let i = 0; i < 3000; i++) {
    const s = j.append(makeRecord(i));
    if (typeof s !== 'number') return assert.unreachable(`full at ${i}`);
    assert.ok(s > last);
    last = s;
    if (i % 6 === 5) j.ack(s - 12);
    if (i % 4 === 3) j.maintain(1);
    if (i % 97 === 96) {
      const r = reopen(flash);
      assert.is(r.report.lastSeq, last);
      assert.ok(r.report.acked >= s - 12 - 6);
      j = r.j;
      j.maintain(2);
    }
  }
  assert.ok(flash.stats.erases >= 90, `${flash.stats.erases} erases: wrapped ~${Math.floor(flash.stats.erases / 4)} times`);
  const old = createRecord();
  j.read(1, 1, (_, r) => void Object.assign(old, { type: r.type, reason: r.reason }));
  assert.equal([old.type, old.reason], [EventType.gap, GapReason.not_retained]);
  const tail = readAll(j, last - 10);
  assert.equal(tail.map((x) => x[2]), Array.from({ length: 11 }, (_, k) => T0 + 2989 + k));
});
basics('an ack that cannot be written yet stays pending in RAM; maintain() persists it', () => {
  const { j, flash } = open();
  appendN(j, 0, 100);
  for (let s = 1; s <= 30; s++) assert.ok(j.ack(s), `ack ${s}`); // fills ack sector 0 (30 slots)
  // ack sector 1 is erased (fresh) so the switch works without maintain
  assert.ok(j.ack(31));
  for (let s = 32; s <= 60; s++) assert.ok(j.ack(s));
  assert.not.ok(j.ack(61), 'both ack sectors are used: pending');
  assert.equal([j.acked, j.ackedDurable], [61, 60]);
  assert.equal(reopen(flash).report.acked, 60);
  const m = j.maintain(1);
  assert.equal([m.ackPersisted, m.ackPending, m.erased], [true, false, 1]);
  assert.is(reopen(flash).report.acked, 61);
});
basics('a dirty slot ahead of the write position is skipped: its seq reads as a gap', () => {
  const { j, flash } = open();
  appendN(j, 0, 5);
  flash.write(slotOffset(j, 6), new Uint8Array(16).fill(0x0f)); // someone else's bits in slot of seq 6
  assert.is(j.append(makeRecord(5)), 7);
  const all = readAll(j);
  assert.equal(all.map((x) => x[1] === EventType.gap), [false, false, false, false, false, true, false]);
  assert.is(all[5]![3], GapReason.corrupt);
  assert.equal(reopen(flash).report.lastSeq, 7);
  // More dirty slots than one append tries: 'full', nothing thrown, the next append goes on.
  for (let s = 8; s <= 8 + SLOT_RETRIES; s++) flash.write(slotOffset(j, s), new Uint8Array(16));
  assert.is(j.append(makeRecord(6)), 'full');
  assert.is(j.append(makeRecord(7)), 8 + SLOT_RETRIES + 1);
});
basics('a next sector that is not erased (garbage, not ours) is consumed: its seqs become gaps', () => {
  const { j, flash } = open();
  appendN(j, 0, 30);
  flash.write(1 * 512 + 100, Uint8Array.of(0)); // sector 1 not erased
  assert.is(j.append(makeRecord(30)), 61, 'seqs 31..60 consumed');
  const gaps = readAll(j).filter((x) => x[1] === EventType.gap).map((x) => x[0]);
  assert.equal(gaps, Array.from({ length: 30 }, (_, k) => 31 + k));
  const r = reopen(flash);
  assert.equal([r.report.lastSeq, r.report.headSector], [61, 2]);
  assert.is(r.j.append(makeRecord(31)), 62);
});
basics('an empty journal of a new epoch over old data: "full" until maintain() erases, then seq 1', () => {
  const { j, flash } = open();
  appendN(j, 0, 50);
  j.ack(50);
  const other = new Journal(flash, { epoch: EPOCH + 1 });
  const rep = other.open();
  assert.equal([rep.lastSeq, rep.acked, rep.headSector], [0, 0, -1]);
  assert.is(other.append(makeRecord(0)), 'full');
  other.maintain(1);
  assert.is(other.append(makeRecord(0)), 1);
  const old = reopen(flash).report;
  assert.equal([old.lastSeq, old.headSector], [50, 1], 'the old epoch still finds its head in sector 1 (sector 0 is foreign to it now)');
  const mine = new Journal(flash, { epoch: EPOCH + 1 }).open();
  assert.equal([mine.lastSeq, mine.headSector], [1, 0]);
});
basics('the end of the seq space (u32): the last generation fills up to seq 2^32 - 1, then "full" for good', () => {
  const flash = newFlash(SMALL, 1, false);
  const j0 = new Journal(flash, { epoch: EPOCH });
  const gen = j0.maxGeneration;
  assert.is((gen + 1) * 30, 4_294_967_280);
  // Craft the header of that generation (layout in docs/JOURNAL.md) in its sector.
  const h = new Uint8Array(32).fill(0xff);
  const v = new DataView(h.buffer);
  v.setUint32(0, 0x534a4c53, true);
  v.setUint32(4, EPOCH, true);
  v.setUint32(8, gen, true);
  v.setUint32(12, gen * 30 + 1, true);
  v.setUint16(16, 4, true);
  h[18] = 1;
  h[19] = 16;
  v.setUint32(28, crc32(h, 0, 28), true);
  flash.write((gen % 4) * 512, h);
  const { j, report } = reopen(flash);
  assert.equal([report.lastSeq, report.headSector], [gen * 30, gen % 4]);
  const seqs = appendN(j, 0, 31);
  assert.is(seqs[0], gen * 30 + 1);
  assert.is(seqs[29], 4_294_967_280);
  assert.is(seqs[30], 'full');
  j.maintain(3);
  assert.is(j.append(makeRecord(99)), 'full');
  const last = readAll(j, 4_294_967_270);
  assert.equal(last.map((x) => x[2] - T0), [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  const r = reopen(flash);
  assert.is(r.report.lastSeq, 4_294_967_280);
});
basics('works inside a Region of a larger flash and touches nothing outside it', () => {
  const flash = new NorFlash({ size: 16 * 512, blockSize: 512 });
  const region = new Region(flash, 4 * 512, 8 * 512, 'journal');
  const j = new Journal(region, { epoch: EPOCH });
  j.open();
  j.maintain(2);
  for (let i = 0; i < 400; i++) {
    const s = j.append(makeRecord(i));
    if (typeof s === 'number' && i % 7 === 0) j.ack(s - 5);
    if (i % 5 === 0) j.maintain(1);
  }
  const snap = flash.snapshot();
  assert.ok(snap.subarray(0, 4 * 512).every((b) => b === 0xff));
  assert.ok(snap.subarray(12 * 512).every((b) => b === 0xff));
  assert.is(reopen(region).report.lastSeq, j.lastSeq);
});

// -------------------------------------------------------------- power cuts
const cuts = suite('journal: power cuts');
const STANDARD = standardScript(360);

function sweep(req: Omit<SweepRequest, 'cut' | 'flashSeed'>, seedOf: (cut: number) => number = (c) => c): { kinds: Record<string, number>; refused: number; gaps: number; survivors: number } {
  const probe = newFlash(req.geometry, 1, req.noRewrite);
  const spares = req.spareSectors;
  const j = new Journal(probe, spares === undefined ? { epoch: EPOCH } : { epoch: EPOCH, spareSectors: spares });
  j.open();
  const m = new JournalModel();
  runSteps(j, probe, m, req.steps);
  assert.equal(m.violations, []);
  const ops = req.mode === 'any' ? probe.opCount : req.mode === 'write' ? probe.stats.writes : probe.stats.erases;
  const kinds: Record<string, number> = {};
  let refused = 0;
  let gaps = 0;
  let survivors = 0;
  for (let cut = 1; cut <= ops; cut++) {
    const r = sweepCase({ ...req, cut, flashSeed: seedOf(cut) });
    assert.equal(r.violations, [], `cut at op ${cut} (${r.kind})`);
    assert.is.not(r.kind, 'none', `cut ${cut} of ${ops} did not fire`);
    kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    refused += r.refused;
    gaps += r.firstRecovery?.gapsFound ?? 0;
    survivors += r.firstRecovery?.interruptedSurvivors ?? 0;
  }
  return { kinds, refused, gaps, survivors };
}

const ALL_KINDS: OpKind[] = ['record', 'header', 'ack', 'erase', 'ack-erase'];
cuts('a cut at every mutating op of the scenario (appends, acks, maintain, full, wrap): nothing promised is lost', () => {
  const r = sweep({ geometry: SMALL, noRewrite: false, steps: STANDARD, mode: 'any' });
  for (const k of ALL_KINDS) assert.ok((r.kinds[k] ?? 0) > 0, `no cut hit a ${k} op: ${JSON.stringify(r.kinds)}`);
  assert.ok(r.survivors > 0, 'some interrupted appends completed on flash (allowed)');
  assert.ok(r.gaps > 0, 'some cuts left gaps');
});
cuts('the same sweep with flash encryption (no rewrite before erase)', () => {
  const r = sweep({ geometry: SMALL, noRewrite: true, steps: STANDARD, mode: 'any' });
  for (const k of ALL_KINDS) assert.ok((r.kinds[k] ?? 0) > 0, `no cut hit a ${k} op`);
  assert.ok(r.refused > 0, 'torn writes that read back erased were refused on the next attempt and skipped');
});
cuts('cuts during every erase (pre-erase and ack-sector truncation), with many tear patterns', () => {
  for (const noRewrite of [false, true]) {
    for (let s = 0; s < 12; s++) {
      const r = sweep({ geometry: SMALL, noRewrite, steps: STANDARD, mode: 'erase' }, (cut) => cut * 7919 + s);
      assert.ok((r.kinds.erase ?? 0) > 0 && (r.kinds['ack-erase'] ?? 0) > 0);
    }
  }
});
cuts('cuts during every write with other tear patterns, and with the most spare sectors (spares = ring - 1)', () => {
  sweep({ geometry: SMALL, noRewrite: false, steps: STANDARD, mode: 'write' }, (cut) => cut + 1_000_003);
  sweep({ geometry: SMALL, noRewrite: true, steps: STANDARD, mode: 'any', spareSectors: 3 });
  sweep({ geometry: { sectors: 4, sectorSize: 256 }, noRewrite: false, steps: standardScript(200), mode: 'any', spareSectors: 1 });
});
cuts('many power cycles on one flash (random steps, a cut at a random op each cycle)', () => {
  for (let s = 1; s <= 8; s++) {
    const r = journalCycles({ seed: s, flashSeed: s * 31, noRewrite: s % 2 === 0, geometry: SMALL, cycles: 40, steps: 100 });
    assert.equal(r.violations, [], `seed ${s}`);
    assert.ok(r.cuts.filter((c) => c.kind !== 'none').length >= 10);
    assert.ok(r.returned > 500);
  }
});
cuts('property: random scripts, random cut, random tears, either flash mode', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean(), fc.constantFrom<CutMode>('any', 'write', 'erase'), (scriptSeed, cut, flashSeed, noRewrite, mode) => {
      const r = sweepCase({ geometry: SMALL, noRewrite, flashSeed, steps: randomScript(scriptSeed, 500), cut, mode });
      assert.equal(r.violations, []);
    }),
    { seed, numRuns: runs * 2 },
  );
});

/** A store whose chosen ring-header writes come out wrong (bits the header did not ask for): sector opens fail. */
class FailingHeaders implements BlockStore {
  headerWrites = 0;
  constructor(
    readonly flash: NorFlash,
    readonly fail: ReadonlySet<number>,
  ) {}
  get size(): number {
    return this.flash.size;
  }
  get blockSize(): number {
    return this.flash.blockSize;
  }
  read(o: number, l: number, into?: Uint8Array): Uint8Array {
    return this.flash.read(o, l, into);
  }
  write(o: number, d: Uint8Array): void {
    const ring = o / this.blockSize < this.flash.blockCount - ACK_SECTORS;
    if (ring && o % this.blockSize === 0 && this.fail.has(this.headerWrites++)) {
      this.flash.write(o, d.map((b, i) => (i === 0 ? b & 0xfe : b)));
      return;
    }
    this.flash.write(o, d);
  }
  eraseBlock(b: number): void {
    this.flash.eraseBlock(b);
  }
}

cuts('consumed positions (failed sector opens, up to MAX_SKIPPED in a row) never mislead the head search', () => {
  const g = { sectors: 34, sectorSize: 512 }; // 32 ring sectors
  const fail = new Set([3, 9, 10, 17, 30, 31, 44, 52, 53, 60, 75, 76]);
  const flash = newFlash(g, 1, false);
  const store = new FailingHeaders(flash, fail);
  const j = new Journal(store, { epoch: EPOCH });
  j.open();
  j.maintain(2);
  let returned = 0;
  let fulls = 0;
  let checks = 0;
  let lastHead = -1;
  for (let i = 0; i < 32 * 30 * 3; i++) {
    const s = j.append(makeRecord(i));
    if (s === 'full') fulls++;
    else {
      assert.ok(s > returned);
      returned = s;
    }
    j.ack(j.lastSeq - 40);
    j.maintain(1);
    if (j.headSector !== lastHead || i % 13 === 0) {
      lastHead = j.headSector;
      const r = reopen(flash);
      checks++;
      assert.is(r.report.headSector, j.headSector, `append ${i}`);
      assert.ok(r.report.lastSeq >= j.lastSeq && r.report.lastSeq <= j.lastSeq + 30, `append ${i}: ${r.report.lastSeq} vs ${j.lastSeq}`);
      assert.not.ok(r.report.fullHeaderScan);
      assert.ok(r.report.headerReads <= 1 + 2 + MAX_SKIPPED + 3 + 4 * 5, `${r.report.headerReads} header reads`);
    }
  }
  assert.ok(store.headerWrites > 80);
  assert.ok(fulls > 0 && fulls < 10, `${fulls} appends found no sector (two failed opens in a row)`);
  assert.ok(checks > 100);
  const gaps = readAll(j, j.lastSeq - 32 * 30 + 1).filter((x) => x[1] === EventType.gap).length;
  assert.ok(gaps >= 30, `${gaps} gap seqs in the ring`);
});
cuts('a torn sector header is never trusted: the full head is followed by a consumed position', () => {
  let found = 0;
  for (let flashSeed = 1; flashSeed <= 60; flashSeed++) {
    const { j, flash } = open(SMALL, { flashSeed });
    j.maintain(2);
    appendN(j, 0, 30);
    flash.cutAfter(1);
    throwsKind(() => j.append(makeRecord(30)), PowerCutError); // the header write of sector 1
    flash.restore();
    const r = reopen(flash);
    const hdr = flash.read(512, 32);
    const torn = !hdr.every((b) => b === 0xff) && r.report.headSector === 0;
    if (torn) {
      found++;
      assert.equal([r.report.lastSeq, r.report.gapsFound], [60, 30], 'the damaged sector after the full head is consumed');
      r.j.maintain(2);
      assert.is(r.j.append(makeRecord(31)), 61);
      assert.equal(reopen(flash).report.headSector, 2);
    } else {
      assert.ok(r.report.lastSeq === 30 || r.report.lastSeq === 31, `seed ${flashSeed}: ${r.report.lastSeq}`);
      r.j.maintain(2);
      assert.ok(r.j.append(makeRecord(31)) as number > 30);
    }
  }
  assert.ok(found > 20, `only ${found} torn headers`);
});

// ------------------------------------------------------------ recovery cost
const cost = suite('journal: recovery cost');

function readsToOpen(store: NorFlash, spareSectors?: number): { reads: number; report: RecoveryReport } {
  const before = store.stats.reads;
  const { report } = reopen(store, spareSectors);
  return { reads: store.stats.reads - before, report };
}

/** The bound docs/JOURNAL.md states: head search + head scan + ack headers + at most two ack-sector scans. */
function readBound(ring: number, perSector: number, spares = 2): number {
  const chunks = Math.ceil((perSector * 16) / 512);
  return spares + MAX_SKIPPED + 3 + (MAX_SKIPPED + 2) * Math.ceil(Math.log2(ring)) + 1 + chunks + 2 + 2 * chunks;
}

cost('a full region of 128 sectors: recovery reads O(log sectors + records per sector)', () => {
  const g = { sectors: 130, sectorSize: 512 };
  const flash = newFlash(g, 1, false);
  const j = new Journal(flash, { epoch: EPOCH });
  j.open();
  j.maintain(2);
  let i = 0;
  while (j.append(makeRecord(i)) !== 'full') i++;
  assert.is(i, 128 * 30);
  const { reads, report } = readsToOpen(flash);
  assert.is(report.lastSeq, 128 * 30);
  assert.not.ok(report.fullHeaderScan);
  const bound = readBound(128, 30);
  assert.ok(reads <= bound, `${reads} reads > ${bound}`);
  assert.ok(reads * 50 < i, `${reads} reads for ${i} records`);
});
cost('every head position over three laps of a 64-sector ring is found within the bound', () => {
  const g = { sectors: 66, sectorSize: 512 };
  const flash = newFlash(g, 1, false);
  const j = new Journal(flash, { epoch: EPOCH });
  j.open();
  j.maintain(2);
  let worst = 0;
  for (let i = 0; i < 64 * 30 * 3; i++) {
    const s = j.append(makeRecord(i));
    assert.type(s, 'number');
    j.ack(j.lastSeq - 100);
    j.maintain(1);
    if (i % 11 === 0 || (s as number) % 30 === 1) {
      const { reads, report } = readsToOpen(flash);
      assert.is(report.lastSeq, j.lastSeq);
      assert.not.ok(report.fullHeaderScan);
      worst = Math.max(worst, reads);
    }
  }
  assert.ok(worst <= readBound(64, 30), `worst ${worst}`);
});
cost('production geometry (400 x 4096): a full journal of 101,092 records opens in a few dozen reads', () => {
  const flash = new NorFlash({ size: DEFAULT_JOURNAL_SECTORS * 4096, blockSize: 4096 });
  const j = new Journal(flash, { epoch: EPOCH });
  j.open();
  j.maintain(2);
  const r = createRecord();
  let n = 0;
  for (;;) {
    r.time = T0 + n;
    if (j.append(r) === 'full') break;
    n++;
  }
  assert.is(n, 101_092);
  const { reads, report } = readsToOpen(flash);
  assert.equal([report.lastSeq, report.headSector, report.sectorsUsed], [101_092, 397, 398]);
  assert.ok(reads <= readBound(398, 254), `${reads} reads`);
  assert.ok(report.headerReads <= 50, `${report.headerReads} header reads`);
});
cost('an empty journal reads every header once (documented), and nothing else', () => {
  const { flash } = open({ sectors: 66, sectorSize: 512 });
  const { reads, report } = readsToOpen(flash);
  assert.ok(report.fullHeaderScan);
  assert.is(report.headerReads, 64);
  assert.is(reads, 64 + 2);
});

// -------------------------------------------------------------- corruption
const fuzz = suite('journal: corruption fuzz');

function filled(flashSeed: number, appends: number): { flash: NorFlash; j: Journal; m: JournalModel } {
  const flash = newFlash(SMALL, flashSeed, false);
  const j = new Journal(flash, { epoch: EPOCH });
  j.open();
  const m = new JournalModel();
  j.maintain(2);
  for (let i = 0; i < appends; i++) {
    modelAppend(j, flash, m);
    if (i % 5 === 4) j.ack(m.maxReported - 20);
    if (i % 3 === 2) j.maintain(1);
  }
  return { flash, j, m };
}

fuzz('bit flips in records: open and read never throw; exactly the corrupted records read as tombstones', () => {
  fc.assert(
    fc.property(fc.integer({ min: 20, max: 400 }), fc.array(fc.tuple(fc.nat(), fc.uniqueArray(fc.nat(127), { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 8 }), (appends, flips) => {
      const { flash, j } = filled(appends, appends);
      const before = new Uint8Array(j.lastSeq * 16);
      const { count } = j.readBatch(1, j.lastSeq, before);
      const live: number[] = [];
      for (let s = 1; s <= count; s++) if (before[(s - 1) * 16 + 12] !== EventType.gap) live.push(s);
      const bytes = flash.snapshot();
      const hit = new Set<number>();
      for (const [pick, bits] of flips) {
        const s = live[pick % live.length]!;
        const at = slotOffset(j, s);
        for (const bit of bits) bytes[at + (bit >> 3)]! ^= 1 << (bit & 7);
        hit.add(s);
      }
      // An even number of flips of the same bit cancels out: compare with the bytes.
      const corrupted = NorFlash.fromSnapshot(bytes, { blockSize: 512 });
      const r = reopen(corrupted);
      assert.is(r.report.lastSeq, j.lastSeq);
      const after = new Uint8Array(j.lastSeq * 16);
      r.j.readBatch(1, j.lastSeq, after);
      for (let s = 1; s <= count; s++) {
        const a = before.subarray((s - 1) * 16, s * 16);
        const b = after.subarray((s - 1) * 16, s * 16);
        const changed = hit.has(s) && !flash.read(slotOffset(j, s), 16).every((x, i) => x === bytes[slotOffset(j, s) + i]);
        if (changed) {
          assert.is(b[12], EventType.gap, `seq ${s} corrupted but read as a record`);
          assert.is(b[13], GapReason.corrupt);
        } else assert.equal(b, a, `seq ${s} untouched but changed`);
      }
    }),
    { seed, numRuns: runs },
  );
});
fuzz('random garbage anywhere (headers, ack sectors, records): nothing throws, and the journal keeps working', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300 }), fc.array(fc.tuple(fc.nat(6 * 512 - 1), fc.nat(255)), { minLength: 1, maxLength: 30 }), (appends, garbage) => {
      const { flash, j } = filled(appends + 1, appends);
      const bytes = flash.snapshot();
      for (const [at, v] of garbage) bytes[at] = v;
      const f = NorFlash.fromSnapshot(bytes, { blockSize: 512 });
      const r = reopen(f);
      assert.ok(r.report.lastSeq >= 0 && r.report.acked <= r.report.lastSeq);
      const n = Math.min(r.report.lastSeq, 500);
      const out = new Uint8Array(n * 16);
      r.j.readBatch(Math.max(1, r.report.lastSeq - n + 1), n, out);
      let visited = 0;
      r.j.read(Math.max(1, r.report.lastSeq - n + 1), n, (s, x) => {
        visited++;
        if (x.type !== EventType.gap) {
          // A record that passes its CRC at a seq: with this few changed bytes it is the one written there.
          assert.is(x.time - T0 + 1 <= j.lastSeq, true);
        }
        return s > 0;
      });
      assert.is(visited, n);
      r.j.maintain(4);
      r.j.ack(r.report.lastSeq);
      r.j.maintain(4);
      const before = r.j.lastSeq;
      let ok = 0;
      for (let i = 0; i < 80; i++) {
        const s = r.j.append(makeRecord(1000 + i));
        if (s !== 'full') {
          assert.ok(s > before);
          ok++;
        }
        if (i % 10 === 9) {
          r.j.ack(r.j.lastSeq);
          r.j.maintain(2);
        }
      }
      assert.ok(ok > 0, 'the journal recovered from the garbage');
    }),
    { seed, numRuns: runs },
  );
});
fuzz('the recovered state matches the model after every reboot of a long seeded run (no cut, reopen often)', () => {
  const m = new JournalModel();
  const flash = newFlash(SMALL, 3, true);
  let j = new Journal(flash, { epoch: EPOCH });
  j.open();
  for (let k = 0; k < 30; k++) {
    runSteps(j, flash, m, randomScript(k + 1, 60));
    j = checkRecovery(flash, m, `reboot ${k}`).j;
    continueAfter(j, flash, m, 10);
  }
  assert.equal(m.violations, []);
});

// ---------------------------------------------------------------------- XS
const xs = suite('journal: seeded cut scenario on Node and on XS');
const xsRequests: JournalXsRequest[] = [
  { kind: 'cycles', req: { seed: 11, flashSeed: 5, noRewrite: false, geometry: SMALL, cycles: 12, steps: 100 } satisfies CyclesRequest },
  { kind: 'cycles', req: { seed: 12, flashSeed: 6, noRewrite: true, geometry: SMALL, cycles: 12, steps: 100 } satisfies CyclesRequest },
  { kind: 'sweep', req: { geometry: SMALL, noRewrite: true, flashSeed: 77, steps: STANDARD, cut: 150, mode: 'any' } satisfies SweepRequest },
  { kind: 'sweep', req: { geometry: SMALL, noRewrite: false, flashSeed: 78, steps: STANDARD, cut: 4, mode: 'erase' } satisfies SweepRequest },
];
xs('XS returns exactly what Node returns, and keeps every promise', async () => {
  const runner = await startXs('journal.entry.ts');
  try {
    for (const r of xsRequests) {
      const node = r.kind === 'cycles' ? journalCycles(r.req) : sweepCase(r.req);
      assert.equal(node.violations, []);
      const { value } = await runner.call<CyclesResult | SweepResult>(r);
      assert.equal(value.violations, [], 'violation on XS');
      assert.equal(value, JSON.parse(JSON.stringify(node)) as typeof value);
    }
  } finally {
    await runner.close();
  }
});

for (const s of [rec, basics, cuts, cost, fuzz, xs]) s.run();
