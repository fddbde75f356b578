// npm run bench -- journal : durable append latency, capacity and recovery of
// the event journal (firmware/core/journal.ts), node and xs, on the simulated
// NorFlash in RAM with the production geometry (400 sectors x 4096 bytes).
// Flash time is simulated: the measured times are compute plus RAM copies; the
// NorFlash timing model's program time per append is reported separately
// (journal_append_flash_ms_model).
import { startXs } from '../test/helpers/xs.js';
import { BenchReport, percentile } from './lib.js';
import { runJournalBench, type JournalBenchRequest, type JournalBenchResult } from './xs/journal.entry.js';
import { performance } from 'node:perf_hooks';
import { benchTap } from './tap.js';

const FLASH_NOTE = 'flash simulated (NorFlash in RAM); modelled flash program time per append reported as journal_append_flash_ms_model';

export async function benchJournal(): Promise<string> {
  const report = new BenchReport('journal');
  const req: JournalBenchRequest = { appends: 20_000, recoveries: 7 };
  const emit = (engine: 'node' | 'xs', r: JournalBenchResult) => {
    const common = { engine, entries: 0, flash: FLASH_NOTE, region: `${r.ringSectors + 2} x ${r.sectorSize} B` };
    const n = r.appendSamplesUs.length;
    report.add({ metric: 'journal_append_us_p50', value: round(percentile(r.appendSamplesUs, 50)), unit: 'us', ...common, samples: n });
    report.add({ metric: 'journal_append_us_p99', value: round(percentile(r.appendSamplesUs, 99)), unit: 'us', ...common, samples: n });
    report.add({ metric: 'journal_append_flash_ms_model', value: round(r.appendFlashMsModel, 3), unit: 'ms', ...common, samples: n, maintainFlashMsModelPerAppend: round(r.maintainFlashMsModelPerAppend, 3) });
    report.add({ metric: 'journal_capacity_events', value: r.capacityEvents, unit: 'events', ...common, ringSectors: r.ringSectors, recordsPerSector: r.recordsPerSector });
    report.add({ metric: 'journal_bytes_per_event', value: round(r.bytesPerEvent, 3), unit: 'B', ...common, recordBytes: 16 });
    report.add({
      metric: 'recovery_ms',
      value: round(percentile(r.recoveryMs, 50), 3),
      unit: 'ms',
      ...common,
      samples: r.recoveryMs.length,
      max: round(Math.max(...r.recoveryMs), 3),
      fullJournalEvents: r.fullLastSeq,
      flashReads: r.recoveryReads,
      headerReads: r.recoveryHeaderReads,
    });
  };
  emit('node', runJournalBench(() => performance.now(), req));
  const xs = await startXs(new URL('./xs/journal.entry.ts', import.meta.url));
  try {
    emit('xs', (await xs.call<JournalBenchResult>(req)).value);
  } finally {
    await xs.close();
  }
  // Tap to relay (reader frame -> decision -> durable journal append -> relay), 250k credentials.
  await benchTap(report);
  return report.write();
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
