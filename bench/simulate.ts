// npm run bench -- simulate : the deterministic simulation's cost. Wall time
// of one virtual hour with every fault (the aim: under 30 s per seed
// at the defaults), steps per second, and the Node process's peak RSS, for
// the default fleet (8 gates, three seeds) and a larger one (32 gates). The
// gates are the real core on simulated flash in one process: no flash time is
// modelled (virtual time only).
import { readFileSync } from 'node:fs';
import { BenchReport } from './lib.js';
import { runSimulation } from '../host-sim/simulation/simulation.js';

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Math.round(Number(m[1]) / 1024);
}

export async function benchSimulate(): Promise<string> {
  const report = new BenchReport('simulate');
  for (const [gates, seeds] of [[8, [1, 2, 3]], [32, [1]]] as const) {
    for (const seed of seeds) {
      const r = await runSimulation({ seed, gates, hours: 1 });
      // The whitelist: the simulated park's credentials at the end (160 people plus imports).
      const common = { engine: 'node' as const, entries: 160, gates, seed, hours: 1, violations: r.violations.length, taps: r.taps.total, steps: r.steps };
      report.add({ metric: 'simulate_wall_seconds_per_virtual_hour', value: Math.round(r.wallMs / 100) / 10, unit: 's', ...common });
      report.add({ metric: 'simulate_steps_per_second', value: Math.round(r.steps / (r.wallMs / 1000)), unit: 'steps/s', ...common });
    }
  }
  report.add({ metric: 'simulate_peak_rss_mib', value: peakRssMiB(), unit: 'MiB', engine: 'node', entries: 160, sampled: 'VmHWM of the bench process after all runs' });
  return report.write();
}
