// Tap to relay (incl. durable journal append), node and xs, at 250k credentials.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { nobleCrypto } from '../protocol/index.js';
import { bundleForXs } from '../host-sim/xs/bundle.js';
import { XsWorker } from '../host-sim/xs/xs-worker.js';
import { percentile, type BenchReport } from './lib.js';
import { provisionTapFlash, rawIds, runTaps, type TapRun } from './tap-cases.js';
import { benchCompactionDue } from './compaction.js';

const round = (x: number) => Math.round(x * 100) / 100;

export async function benchTap(report: BenchReport, n = Number(process.env.BENCH_TAP_CREDENTIALS ?? 250000), count = 2000): Promise<void> {
  const ids = rawIds(n);
  const t0 = performance.now();
  const flash = provisionTapFlash(n, ids, nobleCrypto);
  console.error(`tap: gate with ${n} credentials provisioned in ${Math.round(performance.now() - t0)} ms`);
  const add = (metric: string, value: number, unit: string, engine: 'node' | 'xs', extra: Record<string, unknown> = {}) => report.add({ metric, value: round(value), unit, engine, entries: n, ...extra });
  const node = runTaps(flash, n, ids, count, nobleCrypto, () => performance.now());
  const note = 'reader frame pushed -> key hash (pure-JS SHA-256; native Digest on the device) -> decision -> journal append + read-back -> relay; flash timing not charged';
  add('tap_us_p50', percentile(node.samplesUs, 50), 'us', 'node', { note, granted: node.granted });
  add('tap_us_p99', percentile(node.samplesUs, 99), 'us', 'node', { note });
  const script = await bundleForXs(fileURLToPath(new URL('./xs/tap.entry.ts', import.meta.url)));
  const w = await XsWorker.start({ name: 'bench-tap', onQuery: (q) => (new TextDecoder().decode(q) === 'flash' ? flash : ids) });
  try {
    await w.evaluate(script);
    const r = await w.call<{ ok: boolean; value: TapRun; error?: string }>({ n, count });
    if (!r.value.ok) throw new Error(r.value.error);
    const xs = r.value.value;
    add('tap_us_p50', percentile(xs.samplesUs, 50), 'us', 'xs', { note, granted: xs.granted });
    add('tap_us_p99', percentile(xs.samplesUs, 99), 'us', 'xs', { note });
    add('xs_compute_per_tap', r.meter.compute / count, 'xs-meter', 'xs', { note: 'whole command / taps (includes the virtual-time advance between taps)' });
  } finally {
    await w.close();
  }
  // The same gate while every log needs compaction: the longest tap and message handler.
  await benchCompactionDue(report, flash, ids, n);
}
