// Power-cut scenarios for the event journal (firmware/core/journal.ts) on the
// simulated NOR flash, with a reference model of what the journal promised.
// The same functions run on Node (test/journal.test.ts imports them) and
// inside XS (this file is the entry); the results must be identical.
//
// The model records every seq that append() returned (with the bytes it
// must read back), the erase count of that record's block at that moment,
// and the newest ack observed durable. After each cut the flash is restored
// (reboot), the journal reopened, and checkRecovery() verifies:
//   - lastSeq covers every seq ever returned; the durable ack did not go back;
//   - a returned record whose block was not erased since reads back byte for
//     byte; one whose block was erased (even a torn erase) is acknowledged;
//   - a seq never returned reads as a gap tombstone, or as the record whose
//     append the cut interrupted (a write that completed but was not reported),
//     or -- only above the lastSeq before that append -- as a phantom: torn bits
//     that happen to pass the record's CRC-16 (about 2^-16 per torn record);
//   - appends after recovery get seqs above every seq returned before.

import { NorFlash, PowerCutError, FlashMisuseError, mulberry32, type CutMode } from '../../host-sim/flash/nor-flash.js';
import type { BlockStore } from '../../firmware/ports.js';
import { Journal } from '../../firmware/core/journal.js';
import { EventType, RECORD_BYTES, createRecord, encodeRecord, type EventRecord } from '../../protocol/event-record.js';
import { crc32 } from '../../protocol/crc32.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

export const EPOCH = 0x5eed_0001;
export const T0 = 1_780_000_000;

export interface JournalGeometryRequest {
  readonly sectors: number;
  readonly sectorSize: number;
}

/** Deterministic content of the i-th record of a scenario (time = T0 + i identifies it). */
export function makeRecord(i: number, into: EventRecord = createRecord()): EventRecord {
  into.time = T0 + i;
  for (let k = 0; k < 8; k++) into.key[k] = (Math.imul(i + 1, 0x9e3779b1) >>> (k * 4)) & 0xff;
  const types = [EventType.decision_granted, EventType.passage_completed, EventType.decision_denied, EventType.alarm, EventType.command, EventType.tailgating];
  into.type = types[i % types.length]!;
  into.level = i % 4;
  into.clockUntrusted = i % 5 === 0;
  into.reason = i % 20;
  return into;
}

interface Reported {
  readonly bytes: Uint8Array;
  readonly block: number;
  readonly erases: number;
}

export class JournalModel {
  readonly reported = new Map<number, Reported>();
  maxReported = 0;
  /** Highest lastSeq seen (seqs up to it may have been uploaded, as records or gaps): never reissued. */
  maxLastSeq = 0;
  durableAck = 0;
  /** Indices of records whose append a cut interrupted. */
  readonly interrupted = new Set<number>();
  /** lastSeq before the append in progress (-1 when none): a cut append may only leave things above it. */
  appendFrom = -1;
  /**
   * Seqs where an interrupted append left torn bits that pass the record
   * CRC-16 (probability about 2^-16 per torn record): a phantom record. Allowed
   * only above the lastSeq before that append; never at a returned seq.
   */
  readonly phantoms = new Set<number>();
  nextIndex = 0;
  fulls = 0;
  violations: string[] = [];
  readonly rec = createRecord();

  violation(msg: string): void {
    if (this.violations.length < 30) this.violations.push(msg);
  }
}

export type OpKind = 'none' | 'record' | 'header' | 'ack' | 'erase' | 'ack-erase';

/**
 * A BlockStore that forwards to the flash and classifies the last mutating
 * operation (what a cut hit): a record slot, a ring sector header, an ack
 * sector write, a ring erase or an ack sector erase. Counts refused writes.
 */
export class OpSpy implements BlockStore {
  last: OpKind = 'none';
  refused = 0;
  readonly ringSectors: number;
  constructor(readonly flash: NorFlash) {
    this.ringSectors = flash.blockCount - 2;
  }
  get size(): number {
    return this.flash.size;
  }
  get blockSize(): number {
    return this.flash.blockSize;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    return this.flash.read(offset, length, into);
  }
  write(offset: number, data: Uint8Array): void {
    const block = Math.floor(offset / this.flash.blockSize);
    this.last = block >= this.ringSectors ? 'ack' : offset % this.flash.blockSize === 0 ? 'header' : 'record';
    try {
      this.flash.write(offset, data);
    } catch (e) {
      if (e instanceof FlashMisuseError) this.refused++;
      throw e;
    }
  }
  eraseBlock(block: number): void {
    this.last = block >= this.ringSectors ? 'ack-erase' : 'erase';
    this.flash.eraseBlock(block);
  }
}

export function newFlash(g: JournalGeometryRequest, flashSeed: number, noRewrite: boolean): NorFlash {
  return new NorFlash({ size: g.sectors * g.sectorSize, blockSize: g.sectorSize, seed: flashSeed, noRewrite });
}

/** One append through the model. Throws PowerCutError through. */
export function modelAppend(j: Journal, flash: NorFlash, m: JournalModel): number | 'full' {
  const i = m.nextIndex++;
  makeRecord(i, m.rec);
  m.interrupted.add(i);
  m.appendFrom = j.lastSeq;
  const r = j.append(m.rec);
  m.appendFrom = -1;
  m.interrupted.delete(i);
  m.maxLastSeq = Math.max(m.maxLastSeq, j.lastSeq);
  if (r === 'full') {
    m.fulls++;
    return r;
  }
  if (r <= m.maxReported) m.violation(`append returned seq ${r} after ${m.maxReported}`);
  const bytes = new Uint8Array(RECORD_BYTES);
  encodeRecord(m.rec, r, EPOCH, bytes);
  const block = j.headSector;
  m.reported.set(r, { bytes, block, erases: flash.stats.eraseCountPerBlock[block]! });
  m.maxReported = Math.max(m.maxReported, r);
  return r;
}

export function modelAck(j: Journal, m: JournalModel, seq: number): void {
  j.ack(seq);
  m.durableAck = Math.max(m.durableAck, j.ackedDurable);
  m.maxLastSeq = Math.max(m.maxLastSeq, j.lastSeq);
}

export function modelMaintain(j: Journal, m: JournalModel, n: number): void {
  j.maintain(n);
  m.durableAck = Math.max(m.durableAck, j.ackedDurable);
  m.maxLastSeq = Math.max(m.maxLastSeq, j.lastSeq);
}

export type Step = { readonly op: 'append' } | { readonly op: 'ack'; readonly lag: number } | { readonly op: 'maintain'; readonly n: number };

/** The standard sweep script: normal operation, a stretch without acks (the journal fills), then catch-up. */
export function standardScript(appends: number): Step[] {
  const steps: Step[] = [{ op: 'maintain', n: 2 }];
  const quiet0 = Math.floor(appends * 0.3);
  const quiet1 = Math.floor(appends * 0.8);
  for (let i = 0; i < appends; i++) {
    steps.push({ op: 'append' });
    if (i % 7 === 6) steps.push({ op: 'maintain', n: 1 });
    if ((i < quiet0 || i >= quiet1) && i % 3 === 2) steps.push({ op: 'ack', lag: 8 });
    if (i === quiet1) steps.push({ op: 'ack', lag: 0 }, { op: 'maintain', n: 3 });
  }
  return steps;
}

/** A seeded random script. */
export function randomScript(seed: number, length: number): Step[] {
  const rng = mulberry32(seed);
  const steps: Step[] = [];
  for (let k = 0; k < length; k++) {
    const r = rng();
    if (r < 0.7) steps.push({ op: 'append' });
    else if (r < 0.85) steps.push({ op: 'ack', lag: Math.floor(rng() * 40) });
    else steps.push({ op: 'maintain', n: Math.floor(rng() * 3) });
  }
  return steps;
}

export function runSteps(j: Journal, flash: NorFlash, m: JournalModel, steps: readonly Step[], from = 0): void {
  for (let k = from; k < steps.length; k++) {
    const s = steps[k]!;
    if (s.op === 'append') modelAppend(j, flash, m);
    else if (s.op === 'ack') modelAck(j, m, m.maxReported - s.lag);
    else modelMaintain(j, m, s.n);
  }
}

export interface RecoverySummary {
  readonly lastSeq: number;
  readonly acked: number;
  readonly gapsFound: number;
  readonly headSector: number;
  readonly headerReads: number;
  readonly tombstones: number;
  readonly interruptedSurvivors: number;
  readonly phantoms: number;
}

/** Reboots (restore), reopens and checks every promise; returns the reopened journal. */
export function checkRecovery(flash: NorFlash, m: JournalModel, label: string, store: BlockStore = flash, spareSectors?: number): { j: Journal; summary: RecoverySummary } {
  flash.restore();
  const j = new Journal(store, spareSectors === undefined ? { epoch: EPOCH } : { epoch: EPOCH, spareSectors });
  const rep = j.open();
  if (rep.lastSeq < m.maxReported) m.violation(`${label}: lastSeq ${rep.lastSeq} < returned seq ${m.maxReported}`);
  if (rep.lastSeq < m.maxLastSeq) m.violation(`${label}: lastSeq ${rep.lastSeq} < lastSeq ${m.maxLastSeq} before the reboot (seqs would be reissued)`);
  if (rep.acked < m.durableAck) m.violation(`${label}: durable ack went back from ${m.durableAck} to ${rep.acked}`);
  if (rep.acked > rep.lastSeq) m.violation(`${label}: acked ${rep.acked} > lastSeq ${rep.lastSeq}`);
  const out = new Uint8Array(Math.max(1, rep.lastSeq) * RECORD_BYTES);
  const { first, count } = j.readBatch(1, rep.lastSeq, out);
  if (rep.lastSeq > 0 && (first !== 1 || count !== rep.lastSeq)) m.violation(`${label}: readBatch gave ${first}+${count}, expected 1+${rep.lastSeq}`);
  let tombstones = 0;
  let survivors = 0;
  let readCount = 0;
  j.read(1, rep.lastSeq, (seq, r) => {
    readCount++;
    const at = (seq - 1) * RECORD_BYTES;
    const raw = out.subarray(at, at + RECORD_BYTES);
    const gap = r.type === EventType.gap;
    if (gap) tombstones++;
    if (gap !== (raw[12] === EventType.gap)) m.violation(`${label}: seq ${seq}: read and readBatch disagree`);
    const want = m.reported.get(seq);
    if (want !== undefined) {
      const same = raw.every((b, i) => b === want.bytes[i]);
      const erased = flash.stats.eraseCountPerBlock[want.block] !== want.erases;
      if (!erased && !same) m.violation(`${label}: seq ${seq} (returned) reads ${gap ? `as a gap (reason ${r.reason})` : 'different bytes'}`);
      if (erased && seq > rep.acked) m.violation(`${label}: seq ${seq} erased but acked is ${rep.acked}`);
    } else if (!gap) {
      const idx = r.time - T0;
      if (m.phantoms.has(seq) || (m.appendFrom >= 0 && seq > m.appendFrom && !m.interrupted.has(idx))) m.phantoms.add(seq);
      else if (!m.interrupted.has(idx)) m.violation(`${label}: seq ${seq} was never returned but holds record #${idx}`);
      else {
        survivors++;
        const expect = makeRecord(idx, createRecord());
        if (r.type !== expect.type || r.reason !== expect.reason || r.level !== expect.level || !r.key.every((b, i) => b === expect.key[i])) {
          m.violation(`${label}: seq ${seq}: interrupted record #${idx} survived with other content`);
        }
      }
    }
  });
  if (readCount !== rep.lastSeq) m.violation(`${label}: read visited ${readCount} of ${rep.lastSeq}`);
  m.appendFrom = -1;
  m.durableAck = Math.max(m.durableAck, rep.acked);
  m.maxLastSeq = Math.max(m.maxLastSeq, rep.lastSeq);
  return {
    j,
    summary: { lastSeq: rep.lastSeq, acked: rep.acked, gapsFound: rep.gapsFound, headSector: rep.headSector, headerReads: rep.headerReads, tombstones, interruptedSurvivors: survivors, phantoms: m.phantoms.size },
  };
}

/** After recovery: catch up (ack, maintain) and append `n` more with acks; checks seqs keep rising. */
export function continueAfter(j: Journal, flash: NorFlash, m: JournalModel, n: number): void {
  modelMaintain(j, m, 3);
  for (let i = 0; i < n; i++) {
    const before = m.maxReported;
    const r = modelAppend(j, flash, m);
    if (r === 'full') {
      modelAck(j, m, m.maxReported);
      modelMaintain(j, m, 3);
      continue;
    }
    if (r <= before) m.violation(`after recovery: seq ${r} not above ${before}`);
    if (i % 9 === 8) modelAck(j, m, m.maxReported - 3);
    if (i % 5 === 4) modelMaintain(j, m, 1);
  }
}

export interface SweepRequest {
  readonly geometry: JournalGeometryRequest;
  readonly noRewrite: boolean;
  readonly flashSeed: number;
  readonly steps: readonly Step[];
  readonly cut: number;
  readonly mode: CutMode;
  /** Journal option (default: the journal's default). */
  readonly spareSectors?: number;
}

export interface SweepResult {
  /** What the cut hit, or 'none' (the scenario ended first). */
  readonly kind: OpKind;
  /** Writes the flash refused (noRewrite: a unit written by a torn write that read back erased). */
  readonly refused: number;
  readonly firstRecovery?: RecoverySummary;
  readonly secondRecovery?: RecoverySummary;
  readonly returned: number;
  readonly violations: string[];
}

/** One point of a cut sweep: run `steps` with a cut armed at op `cut`, recover, check, continue, recover again, check. */
export function sweepCase(req: SweepRequest): SweepResult {
  const flash = newFlash(req.geometry, req.flashSeed, req.noRewrite);
  const m = new JournalModel();
  const spy = new OpSpy(flash);
  const spares = req.spareSectors;
  const j = new Journal(spy, spares === undefined ? { epoch: EPOCH } : { epoch: EPOCH, spareSectors: spares });
  j.open();
  flash.cutAfter(req.cut, req.mode);
  let kind: OpKind = 'none';
  try {
    runSteps(j, flash, m, req.steps);
  } catch (e) {
    if (!(e instanceof PowerCutError)) throw e;
    kind = spy.last;
  }
  if (kind === 'none') {
    flash.cancelCut();
    return { kind, refused: spy.refused, returned: m.reported.size, violations: m.violations };
  }
  const first = checkRecovery(flash, m, `cut ${req.cut}`, spy, spares);
  continueAfter(first.j, flash, m, 60);
  const second = checkRecovery(flash, m, `cut ${req.cut}, after continuing`, spy, spares);
  return { kind, refused: spy.refused, firstRecovery: first.summary, secondRecovery: second.summary, returned: m.reported.size, violations: m.violations };
}

export interface CyclesRequest {
  readonly seed: number;
  readonly flashSeed: number;
  readonly noRewrite: boolean;
  readonly geometry: JournalGeometryRequest;
  /** Power cycles (each ends with a cut at a random op, or cleanly). */
  readonly cycles: number;
  /** Steps per cycle. */
  readonly steps: number;
}

export interface CyclesResult {
  readonly cuts: { readonly op: number; readonly kind: OpKind | 'none' }[];
  readonly refused: number;
  readonly recoveries: RecoverySummary[];
  readonly returned: number;
  readonly fulls: number;
  readonly lastSeq: number;
  readonly acked: number;
  readonly flashCrc: number;
  readonly opCount: number;
  readonly violations: string[];
}

/** Many power cycles on one flash: random steps, a cut at a random op, reboot, check, continue. */
export function journalCycles(req: CyclesRequest): CyclesResult {
  const rng = mulberry32(req.seed);
  const flash = newFlash(req.geometry, req.flashSeed, req.noRewrite);
  const m = new JournalModel();
  const spy = new OpSpy(flash);
  let j = new Journal(spy, { epoch: EPOCH });
  j.open();
  const cuts: { op: number; kind: OpKind }[] = [];
  const recoveries: RecoverySummary[] = [];
  for (let c = 0; c < req.cycles; c++) {
    const steps = randomScript(Math.floor(rng() * 0xffffffff), req.steps);
    const cutAt = 1 + Math.floor(rng() * req.steps);
    const modes: CutMode[] = ['any', 'any', 'write', 'erase'];
    flash.cutAfter(cutAt, modes[Math.floor(rng() * modes.length)]);
    try {
      runSteps(j, flash, m, steps);
      flash.cancelCut();
      cuts.push({ op: flash.opCount, kind: 'none' });
    } catch (e) {
      if (!(e instanceof PowerCutError)) throw e;
      cuts.push({ op: flash.opCount, kind: spy.last });
    }
    const r = checkRecovery(flash, m, `cycle ${c}`, spy);
    recoveries.push(r.summary);
    j = r.j;
    if (c % 3 === 2) continueAfter(j, flash, m, 20); // now and then, catch up
  }
  return {
    cuts,
    refused: spy.refused,
    recoveries,
    returned: m.reported.size,
    fulls: m.fulls,
    lastSeq: j.lastSeq,
    acked: j.ackedDurable,
    flashCrc: crc32(flash.snapshot()),
    opCount: flash.opCount,
    violations: m.violations,
  };
}

export type JournalXsRequest = { readonly kind: 'cycles'; readonly req: CyclesRequest } | { readonly kind: 'sweep'; readonly req: SweepRequest };

export function handleJournalRequest(r: JournalXsRequest): CyclesResult | SweepResult {
  return r.kind === 'cycles' ? journalCycles(r.req) : sweepCase(r.req);
}

// Serve only inside the XS worker (which provides issueCommand); importing
// this module from a Node test must not install a global handler.
if (typeof (globalThis as { issueCommand?: unknown }).issueCommand === 'function') serveJson(handleJournalRequest);
