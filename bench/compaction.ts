// Taps and message handlers while compactions are due (bench/compaction-cases.ts), node and xs.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { nobleCrypto } from '../protocol/index.js';
import { bundleForXs } from '../host-sim/xs/bundle.js';
import { XsWorker } from '../host-sim/xs/xs-worker.js';
import type { BenchReport } from './lib.js';
import { compactionMessages, provisionCompactionFlash, runCompactionDue, type CompactionRun } from './compaction-cases.js';

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchCompactionDue(report: BenchReport, tapFlash: Uint8Array, ids: Uint8Array, n: number, count = Number(process.env.BENCH_COMPACTION_ROUNDS ?? 240)): Promise<void> {
  const t0 = performance.now();
  const { flash, version } = provisionCompactionFlash(tapFlash, n, ids, nobleCrypto);
  const messages = compactionMessages(version, count, nobleCrypto);
  console.error(`compaction: flash with four logs due prepared in ${Math.round(performance.now() - t0)} ms`);
  // The runs are deterministic (same flash, same inputs): each tap and handler is the same work in
  // every run. Its time is the minimum over the runs (a preemption of this shared machine rarely hits
  // the same operation in all of them; a GC pause at a fixed point does and stays in); the metric is
  // the maximum of those. rawMax: the plain maximum over every run.
  const emit = (engine: 'node' | 'xs', runs: CompactionRun[]) => {
    const r = runs[0]!;
    const minOf = (pick: (x: CompactionRun) => number[]) => pick(r).map((_, i) => Math.min(...runs.map((x) => pick(x)[i]!)));
    const tapUsMax = Math.max(...minOf((x) => x.tapUs));
    const handlerMsMax = Math.max(...minOf((x) => x.handlerMs));
    const rawTap = Math.max(...runs.map((x) => x.tapUsMax));
    const rawHandler = Math.max(...runs.map((x) => x.handlerMsMax));
    const common = {
      engine, entries: n, rounds: r.taps, runs: runs.length,
      note: 'max over the rounds of each operation\'s minimum time across the runs (rawMax: the plain maximum); one tap (frame pushed -> push returns), one message (signed delta / signed head / ack, in turn) and one maintenance tick per round, while passback, overlay, store state and gate state all need compaction; measured time is compute (simulated flash costs no time); *_flash_ms_model_max is the modelled flash time (45 ms per erase, 0.7 ms per 256-byte page) of the worst single operation',
      erasesInTaps: r.erasesInTaps, erasesInHandlers: r.erasesInHandlers, maintenanceErases: r.maintenanceErases, compactionTicks: r.compactionTicks, logsStillDue: r.stillDue, deltasApplied: r.deltasApplied, rejected: r.rejected,
    };
    report.add({ metric: 'tap_us_max_compaction_due', value: round(tapUsMax), unit: 'us', ...common, rawMax: round(rawTap) });
    report.add({ metric: 'handler_ms_max_compaction_due', value: round(handlerMsMax, 3), unit: 'ms', ...common, rawMax: round(rawHandler, 3) });
    report.add({ metric: 'tap_flash_ms_model_max', value: round(r.tapFlashMsModelMax, 3), unit: 'ms', ...common });
    report.add({ metric: 'handler_flash_ms_model_max', value: round(r.handlerFlashMsModelMax, 3), unit: 'ms', ...common });
    if (r.erasesInTaps + r.erasesInHandlers > 0) console.error(`compaction (${engine}): ${r.erasesInTaps} erases in taps, ${r.erasesInHandlers} in handlers`);
  };
  const runs = Number(process.env.BENCH_COMPACTION_RUNS ?? 3);
  const nodeRuns: CompactionRun[] = [];
  for (let i = 0; i < runs; i++) nodeRuns.push(runCompactionDue(flash, n, ids, messages, nobleCrypto, () => performance.now()));
  emit('node', nodeRuns);
  const script = await bundleForXs(fileURLToPath(new URL('./xs/compaction.entry.ts', import.meta.url)));
  const w = await XsWorker.start({ name: 'bench-compaction', onQuery: (q) => {
    const what = new TextDecoder().decode(q);
    return what === 'flash' ? flash : what === 'ids' ? ids : messages;
  } });
  try {
    await w.evaluate(script);
    const xsRuns: CompactionRun[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await w.call<{ ok: boolean; value: CompactionRun; error?: string }>({ n });
      if (!r.value.ok) throw new Error(r.value.error);
      xsRuns.push(r.value.value);
    }
    emit('xs', xsRuns);
  } finally {
    await w.close();
  }
}
