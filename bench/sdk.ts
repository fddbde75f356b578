// npm run bench -- sdk : the decision at 250,000 credentials and the journal
// append on the Moddable SDK's own XS (an x-cli-lin program built with
// mcconfig, bench/sdk/bench-main.ts) next to the same workloads on xsnap in the
// same run, and the tap from frame to relay with the SDK's native Digest
// computing the credential key, as the device does. Both engines are 64-bit
// host builds: neither figure is a device figure.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { nobleCrypto } from '../protocol/index.js';
import { buildProgram, locateSdk, ROOT, run } from '../host-sim/moddable-sdk/sdk.js';
import { bundleForXs } from '../host-sim/xs/bundle.js';
import { XsWorker } from '../host-sim/xs/xs-worker.js';
import { BenchReport, percentile } from './lib.js';
import { population, provisionFlash, type StoreRun } from './store-cases.js';
import { provisionTapFlash, rawIds, type TapRun } from './tap-cases.js';
import type { JournalBenchResult } from './xs/journal.entry.js';
import { CHECK_INCLUDES } from '../test/sdk/device-check.js';

const N = 250_000;
const DECISIONS = 20_000;
const APPENDS = 20_000;
const TAPS = 2_000;
/** A 250k image is ~3 MB and the program reads the flash into memory: the bench program's chunk heap is raised (the firmware's is 2 MiB). */
const BENCH_CHUNK = 32 * 1024 * 1024;
const round = (x: number) => Math.round(x * 100) / 100;
const NOTE = 'both engines are 64-bit host builds (moddable-xs: the SDK 8.2.3 XS in an x-cli-lin program; xs: @agoric/xsnap); not device figures';

/** Runs an xsnap bench entry: the requests in order in one worker; the last one's value. */
async function onXsnap<T>(entry: string, requests: readonly unknown[], query: (what: string) => Uint8Array = () => new Uint8Array(0)): Promise<T> {
  const script = await bundleForXs(fileURLToPath(new URL(entry, import.meta.url)));
  const w = await XsWorker.start({ name: 'bench-sdk', onQuery: (q) => query(new TextDecoder().decode(q)) });
  try {
    await w.evaluate(script);
    let value: T | undefined;
    for (const request of requests) {
      const r = await w.call<{ ok: boolean; value: T; error?: string }>(request);
      if (!r.value.ok) throw new Error(r.value.error);
      value = r.value.value;
    }
    return value as T;
  } finally {
    await w.close();
  }
}

export async function benchSdk(): Promise<string> {
  const sdk = locateSdk();
  if (!sdk.ok) throw new Error(`bench sdk: ${sdk.reason}`);
  const report = new BenchReport('sdk');
  const dir = join(ROOT, 'build', 'bench-sdk');
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const built = await buildProgram({ name: 'bench-sdk', entry: 'bench/sdk/bench-main.ts', outDir: dir, include: CHECK_INCLUDES, creation: { chunk: { initial: BENCH_CHUNK, incremental: 0 } } });
  console.error(`sdk: bench program built in ${Math.round(performance.now() - t0)} ms (creation.chunk.initial raised to ${BENCH_CHUNK} bytes for the ${N}-credential image)`);
  const program = async <T>(...args: string[]): Promise<T> => {
    const r = await run(built.binary, args);
    if (r.code !== 0) throw new Error(`bench-sdk ${args[0]} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  };
  const common = { note: NOTE, creationChunk: BENCH_CHUNK };
  const add = (metric: string, value: number, unit: string, engine: 'moddable-xs' | 'xs', entries: number, extra: Record<string, unknown> = {}) =>
    report.add({ metric, value: round(value), unit, engine, entries, ...common, ...extra });

  // Decisions at 250k (+ a 1,000-record overlay), the store workload of npm run bench -- store.
  const p = population(N);
  const prov = provisionFlash(p, nobleCrypto);
  const flashPath = join(dir, 'store-flash.bin');
  const tapsPath = join(dir, 'store-taps.bin');
  writeFileSync(flashPath, prov.flash);
  writeFileSync(tapsPath, new Uint8Array(p.taps.buffer, p.taps.byteOffset, p.taps.byteLength));
  const sdkStore = await program<StoreRun>('decision', flashPath, String(prov.imageBytes), tapsPath, String(DECISIONS));
  const tapBytes = new Uint8Array(p.taps.buffer, p.taps.byteOffset, p.taps.byteLength);
  const xsStore = await onXsnap<StoreRun>('./xs/store.entry.ts', [{ cmd: 'load', imageBytes: prov.imageBytes }, { cmd: 'run', count: DECISIONS }], (q) => (q === 'flash' ? prov.flash : tapBytes));
  if (sdkStore.granted !== xsStore.granted) throw new Error(`bench sdk: moddable-xs granted ${sdkStore.granted}, xs ${xsStore.granted}`);
  for (const [engine, r] of [['moddable-xs', sdkStore], ['xs', xsStore]] as const) {
    add('decision_us_p50', percentile(r.samplesUs, 50), 'us', engine, N, { samples: DECISIONS, overlayRecords: 1000 });
    add('decision_us_p99', percentile(r.samplesUs, 99), 'us', engine, N, { samples: DECISIONS, overlayRecords: 1000 });
    add('cold_start_ms', r.coldStartMs, 'ms', engine, N);
  }

  // Journal appends in steady state (the journal workload of npm run bench -- journal).
  const sdkJournal = await program<JournalBenchResult>('journal', String(APPENDS), '3');
  const xsJournal = await onXsnap<JournalBenchResult>('./xs/journal.entry.ts', [{ appends: APPENDS, recoveries: 3 }]);
  for (const [engine, r] of [['moddable-xs', sdkJournal], ['xs', xsJournal]] as const) {
    const extra = { samples: APPENDS, region: `${r.ringSectors + 2} x ${r.sectorSize} B`, flash: 'NorFlash in RAM; flash program time not charged' };
    add('journal_append_us_p50', percentile(r.appendSamplesUs, 50), 'us', engine, 0, extra);
    add('journal_append_us_p99', percentile(r.appendSamplesUs, 99), 'us', engine, 0, extra);
  }

  // Tap: frame -> key (native Digest) -> decision -> durable append -> relay, at 250k.
  const ids = rawIds(N);
  const tapFlash = provisionTapFlash(N, ids, nobleCrypto);
  const tapFlashPath = join(dir, 'tap-flash.bin');
  const idsPath = join(dir, 'tap-ids.bin');
  writeFileSync(tapFlashPath, tapFlash);
  writeFileSync(idsPath, ids);
  const tap = await program<TapRun>('tap', tapFlashPath, String(N), idsPath, String(TAPS));
  const tapNote = 'reader frame pushed -> credential key (SHA-256 by the SDK native Digest, as on the device) -> decision -> journal append + read-back -> relay; flash timing not charged';
  add('tap_us_p50', percentile(tap.samplesUs, 50), 'us', 'moddable-xs', N, { tapNote, granted: tap.granted, samples: tap.samplesUs.length });
  add('tap_us_p99', percentile(tap.samplesUs, 99), 'us', 'moddable-xs', N, { tapNote, samples: tap.samplesUs.length });

  // The MAC of an upload batch (256 records) and of an ack, with the native Digest (HMAC-SHA256 = two SHA-256 runs).
  const macs = await program<{ name: string; samplesUs: number[] }[]>('mac', '2000');
  for (const c of macs) add(`${c.name}_us_p99`, percentile(c.samplesUs, 99), 'us', 'moddable-xs', 0, { samples: c.samplesUs.length, note2: 'HMAC-SHA256 with the SDK native Digest; mac_batch seals 256 records (4 KiB), mac_ack opens one ack' });
  return report.write();
}
