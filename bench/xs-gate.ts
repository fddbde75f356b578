// npm run bench -- xs : a whole gate on the real XS engine (XsGate: the device
// entry firmware/moddable/main.ts, unchanged, on the simulated ECMA-419
// provider) holding 250,000 credentials.
//
//   xs_gate_tap_ms_p50 / _p99  reader frame put into the simulated UART's
//       receive FIFO -> the relay pin written on, both stamped with
//       performance.now() inside the worker: the serial onReadable turn,
//       the EM4100 decoder, the key hash (pure-JS SHA-256 through the `crypt`
//       shim; native on the device), the decision, the durable journal append
//       (NorFlash write + read-back) and DigitalOutputs. The data partition is
//       provisioned on Node as bench/tap-cases.ts does (image of N enrolled
//       ids installed, head accepted) and handed to the guest as its flash.
//   xs_gate_memory_kb  XS heap of that gate after boot and the taps, after a
//       collection: (live slots - a fresh engine's live slots) x 32 bytes
//       (sizeof(txSlot) on this 64-bit build; 16 on the ESP32) + the typed
//       arrays the gate holds that can be attributed exactly (overlay index,
//       passback table). The partitions (flash on the device) are left out.
//       Not included, estimated: noble's Ed25519 base-point table, 4224 points
//       x 4 coordinates of 256-bit BigInts in chunk memory.

import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { nobleCrypto } from '../protocol/index.js';
import { XsWorker } from '../host-sim/xs/xs-worker.js';
import { XsGate } from '../host-sim/xs-gate/xs-gate.js';
import { em4100Frame } from '../host-sim/xs-gate/reader-frames.js';
import { mulberry32 } from '../host-sim/flash/nor-flash.js';
import { BenchReport, percentile } from './lib.js';
import { provisioning, provisionTapFlash, rawIds, T0 } from './tap-cases.js';

const SLOT_BYTES = 32; // sizeof(txSlot) on a 64-bit build (xsnap-worker on x86-64/arm64); 16 on the 32-bit ESP32
const PARTITION = 0x800000; // gatedata in firmware/moddable/partitions-16MB.csv
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchXsGate(): Promise<string> {
  const report = new BenchReport('xs');
  const n = Number(process.env.BENCH_TAP_CREDENTIALS ?? 250000);
  const count = Number(process.env.BENCH_XS_TAPS ?? 2000);
  const ids = rawIds(n);
  let t = performance.now();
  const layoutBytes = provisionTapFlash(n, ids, nobleCrypto);
  const data = new Uint8Array(PARTITION).fill(0xff);
  data.set(layoutBytes);
  console.error(`xs: data partition with ${n} credentials provisioned on Node in ${Math.round(performance.now() - t)} ms`);

  // A fresh engine's live slots: XS's own built-ins (in ROM on a device, not in its heap).
  const bare = await XsWorker.start({ name: 'bench-xs-bare' });
  const baseSlots = (await bare.evaluate('gc()')).meter.currentHeapCount;
  await bare.close();

  const gate = new XsGate({
    provisioning: provisioning(),
    data,
    ntpSeconds: T0 + 60, // SNTP time a minute after the head: the clock is trusted and the list fresh
    config: { subline: { reader: { kind: 'em4100' }, layout: { credentials: n, journalSectors: 400 }, statusTraceSeconds: 0 } },
    name: 'bench-xs-gate',
  });
  t = performance.now();
  try {
    const boot = await gate.start();
    if (!boot.running) throw new Error(`the gate did not start: ${boot.refused ?? boot.faults.join('; ')}\n${gate.lines.join('\n')}`);
    await gate.advance(100); // Wi-Fi and SNTP
    console.error(`xs: gate booted in ${Math.round(performance.now() - t)} ms (${gate.lines.find((l) => l.includes(' boot ')) ?? ''})`);
    const loadedSlots = (await gate.gc()).currentHeapCount;
    const relay = gate.wiring.outputs.relay?.pin;
    if (relay === undefined) throw new Error('no relay in the config');
    const rnd = mulberry32(11);
    const unknown = rawIds(64, 99);
    const samples: number[] = [];
    let granted = 0;
    let compute = 0;
    for (let i = 0; i < count; i++) {
      const id = i % 10 < 7 ? ids.subarray(Math.floor(rnd() * n) * 5).subarray(0, 5) : unknown.subarray((i % 64) * 5, (i % 64) * 5 + 5);
      gate.feedReader(em4100Frame(id));
      // One command: the frame arrives, the device runs, then 10 s pass (the lane closes, maintenance runs).
      const r = await gate.advance(10_000);
      compute += r.meter.compute;
      const pushed = r.uartIn[0];
      const on = r.pins.find((p) => p.pin === relay && p.level === 1);
      if (pushed !== undefined && on !== undefined) {
        samples.push(on.perf - pushed);
        granted++;
      }
    }
    const s = gate.status();
    if (s.faults.length > 0) throw new Error(`faults: ${s.faults.join('; ')}`);
    const note = 'XsGate (main.ts on the simulated provider, xsnap-worker): frame bytes into the simulated UART FIFO -> serial onReadable -> EM4100 decoder -> key (pure-JS SHA-256; native Digest on the device) -> decision -> journal append + read-back on NorFlash -> relay pin write, performance.now() in the worker; flash timing not charged; 70% enrolled ids';
    report.add({ metric: 'xs_gate_tap_ms_p50', value: round(percentile(samples, 50), 3), unit: 'ms', engine: 'xs', entries: n, note, samples: samples.length, granted, taps: count });
    report.add({ metric: 'xs_gate_tap_ms_p99', value: round(percentile(samples, 99), 3), unit: 'ms', engine: 'xs', entries: n, note, samples: samples.length });
    report.add({ metric: 'xs_gate_compute_per_tap', value: Math.round(compute / count), unit: 'xs-meter', engine: 'xs', entries: n, note: 'XS compute meter per command: one tap plus 10 s of virtual time (lane timeout, maintenance every 200 ms)' });

    const m = await gate.memory();
    const slots = (await gate.gc()).currentHeapCount;
    const slotBytes = (slots - baseSlots) * SLOT_BYTES;
    const typed = m.overlayRamBytes + m.passbackTableBytes;
    const ed25519Kb = (4224 * 4 * (32 + 16)) / 1024; // 256-bit BigInt: 32 bytes of digits + a chunk header, per coordinate
    report.add({
      metric: 'xs_gate_memory_kb',
      value: Math.round((slotBytes + typed) / 1024),
      unit: 'KiB',
      engine: 'xs',
      entries: n,
      note:
        `XS heap of one gate after boot and ${count} taps, after gc(): (live slots ${slots} - ${baseSlots} of a fresh xsnap engine) x ${SLOT_BYTES} B (sizeof(txSlot) on this 64-bit build) + typed arrays attributed exactly ` +
        '(overlay index, passback table); the slots include the bundle\'s module objects (not preloaded, as on the device) and the simulated provider\'s few objects; ' +
        'the flash partitions (in the guest\'s heap here, flash on the device) are excluded; NOT included: chunk memory that cannot be attributed from outside, chiefly noble\'s Ed25519 table (~4224 x 4 BigInts, estimate in ed25519_table_kb_estimate), strings and code. ' +
        'On the ESP32 slots are 16 B, so the slot part is about half (esp32_estimate_kb).',
      slots: slots - baseSlots,
      slot_kb: Math.round(slotBytes / 1024),
      typed_arrays_kb: Math.round(typed / 1024),
      overlay_bytes: m.overlayRamBytes,
      passback_table_bytes: m.passbackTableBytes,
      slots_after_boot: loadedSlots - baseSlots,
      ed25519_table_kb_estimate: Math.round(ed25519Kb),
      esp32_estimate_kb: Math.round(((slots - baseSlots) * 16 + typed) / 1024),
    });
  } finally {
    await gate.close();
  }
  return report.write();
}

// Run directly: node --import tsx bench/xs-gate.ts
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.error(`xs: results in ${await benchXsGate()}`);
}
