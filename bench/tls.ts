// npm run bench -- tls : the gate's TLS connection on the Moddable SDK's own XS
// (the device:tls-check program: firmware/moddable/tls-socket.ts and
// mqtt-net.ts in an x-cli-lin build) to a Mosquitto from `subline broker
// config`: the handshake time (ECDHE-RSA, RSA-2048 client certificate) and XS
// memory, over several runs. A 64-bit host build on loopback: not a device
// figure (docs/FLASHING.md, "TLS", has the ESP32 estimate).
import { locateSdk } from '../host-sim/moddable-sdk/sdk.js';
import { runTlsCheck } from '../test/sdk/tls-check.js';
import { BenchReport, percentile } from './lib.js';

const RUNS = 5;
const NOTE = 'Moddable SDK 8.2.3 XS, x-cli-lin release build, 64-bit host, loopback Mosquitto (TLS 1.2 ECDHE, RSA-2048 client certificate); not a device figure';

export async function benchTls(): Promise<string> {
  const report = new BenchReport('tls');
  const sdk = locateSdk();
  if (!sdk.ok) {
    console.error(`tls: not run (${sdk.reason})`);
    return report.write();
  }
  const ms: number[] = [];
  let last: Awaited<ReturnType<typeof runTlsCheck>> | null = null;
  for (let i = 0; i < RUNS; i++) {
    const r = await runTlsCheck();
    if (!r.ok) throw new Error(`tls: the check failed: ${r.problems.join('; ')}`);
    ms.push(r.handshakeMs);
    last = r;
  }
  const common = { engine: 'moddable-xs' as const, entries: 0, note: NOTE, runs: RUNS };
  report.add({ metric: 'gate_tls_handshake_ms_p50', value: percentile(ms, 50), unit: 'ms', ...common, samples: ms });
  report.add({ metric: 'gate_tls_handshake_ms_max', value: Math.max(...ms), unit: 'ms', ...common });
  const m = last?.memory;
  if (m !== null && m !== undefined) {
    report.add({ metric: 'gate_tls_connected_live_bytes', value: m.connected.chunks + m.connected.slots * m.slotBytes, unit: 'B', ...common, chunks: m.connected.chunks, slots: m.connected.slots, idleBytes: m.idle.chunks + m.idle.slots * m.slotBytes, after: 'a full GC while connected' });
    report.add({ metric: 'gate_tls_peak_bytes', value: m.peakChunks + m.peakSlots * m.slotBytes, unit: 'B', ...common, peakChunks: m.peakChunks, peakSlots: m.peakSlots, includes: 'garbage (XS collects when a heap is full)' });
  }
  return report.write();
}
