// npm run bench -- simulate : the deterministic simulation's cost.
// - simulate_wall_seconds_per_virtual_hour and gate_hours_per_second for the
//   default fleet (8 gates, three seeds, every fault), in this process;
// - max_gates_one_process: the largest fleet (of the sizes tried, default
//   250, 500, 1000; SUBLINE_BENCH_GATES=a,b,c to choose) that one process runs
//   for one simulated hour with every fault and every invariant checked in
//   under 10 minutes of wall time, each size in a child `subline simulate`
//   (killed at 10 minutes), with its peak RSS and RSS per gate.
// - the same with every gate on XS (engine xs: firmware/moddable/main.ts in
//   xsnap workers in lockstep, `--xs`), 4 gates, two seeds;
// The gates are the real core on simulated flash; no flash time is modelled
// (virtual time only).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BenchReport } from './lib.js';
import { runSimulation, type SimulationReport } from '../host-sim/simulation/simulation.js';

const BIN = fileURLToPath(new URL('../bin/subline.mjs', import.meta.url));
const LIMIT_MS = 10 * 60_000;
const CREDENTIALS = 160; // the simulated park: 160 people (and imports during the run)

function vmHwmKiB(pid: number | 'self'): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

function runChild(gates: number): Promise<{ report: SimulationReport | null; ms: number; peakKiB: number; killed: boolean }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, 'simulate', '--seed', '1', '--gates', String(gates), '--hours', '1', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let peakKiB = 0;
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const sample = setInterval(() => {
      const k = child.pid !== undefined ? vmHwmKiB(child.pid) : undefined;
      if (k !== undefined) peakKiB = Math.max(peakKiB, k);
    }, 500);
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, LIMIT_MS);
    child.once('close', () => {
      clearInterval(sample);
      clearTimeout(timer);
      let report: SimulationReport | null = null;
      try {
        report = JSON.parse(out) as SimulationReport;
      } catch {
        report = null;
      }
      resolve({ report, ms: performance.now() - t0, peakKiB, killed });
    });
  });
}

export async function benchSimulate(): Promise<string> {
  const report = new BenchReport('simulate');
  for (const seed of [1, 2, 3]) {
    const r = await runSimulation({ seed, gates: 8, hours: 1 });
    const common = { engine: 'node' as const, entries: CREDENTIALS, gates: 8, seed, hours: 1, violations: r.violations.length, taps: r.taps.total, steps: r.steps };
    report.add({ metric: 'simulate_wall_seconds_per_virtual_hour', value: Math.round(r.wallMs / 100) / 10, unit: 's', ...common });
    report.add({ metric: 'gate_hours_per_second', value: Math.round((8 / (r.wallMs / 1000)) * 100) / 100, unit: 'gate-h/s', ...common });
    report.add({ metric: 'simulate_steps_per_second', value: Math.round(r.steps / (r.wallMs / 1000)), unit: 'steps/s', ...common });
  }
  // Engine xs: every gate an xsnap worker; each advance is one IPC round trip.
  for (const seed of [1, 2]) {
    const gates = 4;
    const r = await runSimulation({ seed, gates, xs: gates, hours: 1 });
    const common = { engine: 'xs' as const, entries: CREDENTIALS, gates, xs: gates, seed, hours: 1, violations: r.violations.length, taps: r.taps.total, checkedXs: r.taps.checkedXs, steps: r.steps };
    report.add({ metric: 'simulate_wall_seconds_per_virtual_hour', value: Math.round(r.wallMs / 100) / 10, unit: 's', ...common });
    report.add({ metric: 'gate_hours_per_second', value: Math.round((gates / (r.wallMs / 1000)) * 1000) / 1000, unit: 'gate-h/s', ...common });
  }
  const sizes = (process.env.SUBLINE_BENCH_GATES ?? '250,500,1000').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  let best = 0;
  for (const gates of sizes) {
    const r = await runChild(gates);
    const ok = r.report !== null && !r.killed && r.report.violations.length === 0 && r.ms < LIMIT_MS;
    const common = { engine: 'node' as const, entries: CREDENTIALS, gates, seed: 1, hours: 1, completed: ok, killedAtLimit: r.killed, violations: r.report?.violations.length ?? null, steps: r.report?.steps ?? null };
    report.add({ metric: 'simulate_fleet_wall_seconds', value: Math.round(r.ms / 100) / 10, unit: 's', ...common });
    report.add({ metric: 'simulate_fleet_peak_rss_mib', value: Math.round(r.peakKiB / 1024), unit: 'MiB', ...common, perGateKiB: Math.round(r.peakKiB / gates), sampled: 'VmHWM of the child every 500 ms' });
    if (r.report !== null) report.add({ metric: 'gate_hours_per_second', value: Math.round((gates / (r.ms / 1000)) * 100) / 100, unit: 'gate-h/s', ...common });
    if (ok) best = gates;
    else break;
  }
  report.add({ metric: 'max_gates_one_process', value: best, unit: 'gates', engine: 'node', entries: CREDENTIALS, hours: 1, tried: sizes, limitSeconds: LIMIT_MS / 1000, note: 'largest size tried that ran one simulated hour, every fault, no violation, under the limit' });
  return report.write();
}
