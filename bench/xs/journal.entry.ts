// The journal benchmark's measurements, run on Node (bench/journal.ts imports
// runJournalBench) and inside XS (this file is the entry). The flash is the
// simulated NorFlash in RAM: times are the journal's compute plus a RAM copy
// per flash operation; the flash's own program and erase times are modelled
// separately (NorFlash timing model, charged per operation).

import { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { Journal, DEFAULT_JOURNAL_SECTORS } from '../../firmware/core/journal.js';
import { EventType, createRecord } from '../../protocol/event-record.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

export interface JournalBenchRequest {
  /** Timed appends (steady state: maintain and acks run between them, untimed). */
  readonly appends: number;
  /** Recoveries of a full journal to time. */
  readonly recoveries: number;
  /** Sectors and sector size of the region (production: 400 x 4096). */
  readonly sectors?: number;
  readonly sectorSize?: number;
}

export interface JournalBenchResult {
  readonly appendSamplesUs: number[];
  /** Modelled flash program time per durable append (ms), from NorFlash's timing model. */
  readonly appendFlashMsModel: number;
  /** Modelled flash busy time of maintain() per append (ms): erases ahead, off the tap path. */
  readonly maintainFlashMsModelPerAppend: number;
  readonly capacityEvents: number;
  readonly bytesPerEvent: number;
  readonly ringSectors: number;
  readonly recordsPerSector: number;
  readonly sectorSize: number;
  readonly recoveryMs: number[];
  /** flash.read calls of one recovery of the full journal. */
  readonly recoveryReads: number;
  readonly recoveryHeaderReads: number;
  readonly fullLastSeq: number;
}

export function runJournalBench(now: () => number, req: JournalBenchRequest): JournalBenchResult {
  const sectors = req.sectors ?? DEFAULT_JOURNAL_SECTORS;
  const sectorSize = req.sectorSize ?? 4096;
  const geometry = Journal.geometry(sectors * sectorSize, sectorSize);
  const epoch = 0x0be4c401;
  const rec = createRecord();
  rec.type = EventType.decision_granted;

  // Durable appends in steady state: the ring has wrapped, acks trail by ~1000
  // records, maintain() runs every 50 appends (untimed, as on the device).
  let charged = 0;
  const flash = new NorFlash({ size: sectors * sectorSize, blockSize: sectorSize, charge: (ms) => (charged += ms) });
  const j = new Journal(flash, { epoch });
  j.open();
  j.maintain(2);
  const warm = geometry.capacityEvents + 2000;
  for (let i = 0; i < warm; i++) {
    rec.time = 1_780_000_000 + i;
    if (j.append(rec) === 'full') throw new Error('bench: journal full while warming up');
    if (i % 50 === 49) {
      j.ack(j.lastSeq - 1000);
      j.maintain(1);
    }
  }
  const samples: number[] = [];
  let appendMs = 0;
  let maintainMs = 0;
  for (let i = 0; i < req.appends; i++) {
    rec.time = 1_780_000_000 + warm + i;
    rec.key[i & 7] = i & 0xff;
    const c0 = charged;
    const t0 = now();
    const s = j.append(rec);
    const t1 = now();
    appendMs += charged - c0;
    if (s === 'full') throw new Error('bench: journal full');
    samples.push((t1 - t0) * 1000);
    if (i % 50 === 49) {
      const c1 = charged;
      j.ack(j.lastSeq - 1000);
      j.maintain(1);
      maintainMs += charged - c1;
    }
  }

  // Recovery of a full journal (nothing acknowledged, every sector written).
  const full = new NorFlash({ size: sectors * sectorSize, blockSize: sectorSize });
  const fj = new Journal(full, { epoch });
  fj.open();
  fj.maintain(2);
  for (let i = 0; ; i++) {
    rec.time = 1_780_000_000 + i;
    if (fj.append(rec) === 'full') break;
  }
  const recoveryMs: number[] = [];
  let reads = 0;
  let headerReads = 0;
  let lastSeq = 0;
  for (let k = 0; k < req.recoveries; k++) {
    const r0 = full.stats.reads;
    const t0 = now();
    const rep = new Journal(full, { epoch }).open();
    recoveryMs.push(now() - t0);
    reads = full.stats.reads - r0;
    headerReads = rep.headerReads;
    lastSeq = rep.lastSeq;
  }
  return {
    appendSamplesUs: samples,
    appendFlashMsModel: appendMs / req.appends,
    maintainFlashMsModelPerAppend: maintainMs / req.appends,
    capacityEvents: geometry.capacityEvents,
    bytesPerEvent: geometry.bytesPerEvent,
    ringSectors: geometry.ringSectors,
    recordsPerSector: geometry.recordsPerSector,
    sectorSize,
    recoveryMs,
    recoveryReads: reads,
    recoveryHeaderReads: headerReads,
    fullLastSeq: lastSeq,
  };
}

declare const performance: { now(): number };
if (typeof (globalThis as { issueCommand?: unknown }).issueCommand === 'function') {
  serveJson((req: JournalBenchRequest) => runJournalBench(() => performance.now(), req));
}
