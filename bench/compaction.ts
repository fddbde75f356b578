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
  const emit = (engine: 'node' | 'xs', r: CompactionRun) => {
    const common = {
      engine, entries: n, rounds: r.taps,
      note: 'one tap (frame pushed -> push returns), one message (signed delta / signed head / ack, in turn) and one maintenance tick per round, while passback, overlay, store state and gate state all need compaction; measured time is compute (simulated flash costs no time); *_flash_ms_model_max is the modelled flash time (45 ms per erase, 0.7 ms per 256-byte page) of the worst single operation',
      erasesInTaps: r.erasesInTaps, erasesInHandlers: r.erasesInHandlers, maintenanceErases: r.maintenanceErases, compactionTicks: r.compactionTicks, logsStillDue: r.stillDue, deltasApplied: r.deltasApplied, rejected: r.rejected,
    };
    report.add({ metric: 'tap_us_max_compaction_due', value: round(r.tapUsMax), unit: 'us', ...common });
    report.add({ metric: 'handler_ms_max_compaction_due', value: round(r.handlerMsMax, 3), unit: 'ms', ...common });
    report.add({ metric: 'tap_flash_ms_model_max', value: round(r.tapFlashMsModelMax, 3), unit: 'ms', ...common });
    report.add({ metric: 'handler_flash_ms_model_max', value: round(r.handlerFlashMsModelMax, 3), unit: 'ms', ...common });
    if (r.erasesInTaps + r.erasesInHandlers > 0) console.error(`compaction (${engine}): ${r.erasesInTaps} erases in taps, ${r.erasesInHandlers} in handlers`);
  };
  emit('node', runCompactionDue(flash, n, ids, messages, nobleCrypto, () => performance.now()));
  const script = await bundleForXs(fileURLToPath(new URL('./xs/compaction.entry.ts', import.meta.url)));
  const w = await XsWorker.start({ name: 'bench-compaction', onQuery: (q) => {
    const what = new TextDecoder().decode(q);
    return what === 'flash' ? flash : what === 'ids' ? ids : messages;
  } });
  try {
    await w.evaluate(script);
    const r = await w.call<{ ok: boolean; value: CompactionRun; error?: string }>({ n });
    if (!r.value.ok) throw new Error(r.value.error);
    emit('xs', r.value.value);
  } finally {
    await w.close();
  }
}
