// `subline simulate`: the deterministic whole-system simulation
// (docs/SIMULATION.md). One process, virtual time, a seed that replays
// everything: exit 0 without a violation, 1 with one (its replay command printed).
// The simulation is imported when the command runs.

import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { CliError } from './cli-error.js';
import type { FAULT_KINDS as SIMULATION_FAULT_KINDS, FaultKind, SimulationReport } from '../simulation/simulation.js';
import type { SeedResult } from '../simulation/seed-sweep.js';

/**
 * simulation.ts's FAULT_KINDS (for --faults and its help), repeated so that the other
 * commands and --help do not load the simulation; the type makes tsc check that both
 * lists are the same, in the same order.
 */
const FAULT_KINDS: typeof SIMULATION_FAULT_KINDS = ['broker-restart', 'partition', 'central-crash', 'power-cut', 'clock', 'wipe', 'disk-full', 'churn', 'adversary', 'lossy-links'];

interface SimulateFlags {
  seed: string;
  seeds?: string;
  jobs?: string;
  gates: string;
  xs: string;
  hours: string;
  faults: string;
  json?: boolean;
}

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer from ${min} to ${max}, got '${v}'`);
  return n;
}

export function parseFaults(v: string): FaultKind[] {
  if (v === 'all') return [...FAULT_KINDS];
  if (v === 'none') return [];
  const out: FaultKind[] = [];
  for (const k of v.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new CliError(`--faults: unknown fault '${k}' (known: ${FAULT_KINDS.join(', ')}, or all, or none)`);
    if (!out.includes(k as FaultKind)) out.push(k as FaultKind);
  }
  if (out.length === 0) throw new CliError("--faults needs at least one fault, or 'none'");
  return out;
}

function summary(r: SimulationReport): string[] {
  const lines = [
    `seed ${r.seed}: ${r.gates} gates${r.xs > 0 ? ` (${r.xs} on XS)` : ''}, ${r.hours} h of virtual time in ${(r.wallMs / 1000).toFixed(1)} s (${r.steps} steps)`,
    `digest ${r.digest}`,
    `taps ${r.taps.total}: ${r.taps.granted} granted, ${r.taps.denied} denied, ${r.taps.checked} checked against the reference${r.xs > 0 ? ` (${r.taps.checkedXs} on XS)` : ''}`,
    `faults ${Object.entries(r.injected).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `events ${r.events.journaled} journaled, ${r.events.stored} stored, ${r.events.lostToWipe} lost to wipes (unacknowledged when wiped)`,
    `list version ${r.versions.final} after ${r.versions.changes} registry change(s)`,
    `converged ${r.convergedMs === null ? 'no' : `${(r.convergedMs / 1000).toFixed(1)} s after the last fault healed`}`,
  ];
  for (const v of r.violations) {
    lines.push('', `VIOLATION at ${(v.atMs / 1000).toFixed(3)} s of virtual time${v.gate !== undefined ? ` (gate ${v.gate})` : ''}: ${v.invariant}`, `  ${v.detail}`, '  last events:');
    for (const e of v.lastEvents) lines.push(`    ${e}`);
    lines.push(`  replay: ${r.replay}`);
  }
  lines.push(r.violations.length === 0 ? 'no violation' : `${r.violations.length} violation(s): exit 1`);
  return lines;
}

export function parseSeeds(v: string): { from: number; to: number } {
  const m = /^(\d+)\.\.(\d+)$/.exec(v.trim());
  if (m === null) throw new CliError(`--seeds must look like A..B (e.g. 1..1000), got '${v}'`);
  const from = Number(m[1]);
  const to = Number(m[2]);
  if (from > to || to > 2 ** 32 - 1) throw new CliError(`--seeds ${v}: A must be <= B <= ${2 ** 32 - 1}`);
  if (to - from >= 1_000_000) throw new CliError(`--seeds ${v}: at most 1,000,000 seeds in one sweep`);
  return { from, to };
}

/** Progress on stderr: a bar on a terminal, a line every 10 % (and at the end) otherwise. */
function sweepProgress(total: number): { update: (done: number, violated: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: 'seeds [{bar}] {value}/{total} | {violated} with a violation | eta {eta_formatted}', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
    bar.start(total, 0, { violated: 0 });
    return { update: (done, violated) => bar.update(done, { violated }), stop: () => bar.stop() };
  }
  let step = 0;
  return {
    update: (done, violated) => {
      const s = Math.floor((10 * done) / total);
      if (s > step || done === total) {
        step = s;
        process.stderr.write(`seeds: ${done}/${total} run, ${violated} with a violation\n`);
      }
    },
    stop: () => {},
  };
}

async function sweep(f: SimulateFlags, o: { gates: number; xs: number; hours: number; faults: FaultKind[] }): Promise<void> {
  const { from, to } = parseSeeds(f.seeds!);
  const jobs = f.jobs === undefined ? availableParallelism() : int('jobs', f.jobs, 1, 256);
  const total = to - from + 1;
  const { sweepSeeds } = await import('../simulation/seed-sweep.js');
  process.stderr.write(`simulating seeds ${from}..${to} (${total}): ${o.gates} gates${o.xs > 0 ? ` (${o.xs} on XS)` : ''}, ${o.hours} h, faults ${o.faults.join(',') || 'none'}, ${jobs} at a time\n`);
  let violated = 0;
  const progress = sweepProgress(total);
  const started = performance.now();
  const results = await sweepSeeds({ from, to, jobs, ...o, onSeed: (r, done) => {
    if (r.violations.length > 0) violated++;
    progress.update(done, violated);
  } });
  progress.stop();
  const bad = results.filter((r) => r.violations.length > 0);
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  if (f.json === true) {
    const out = { seeds: { from, to }, runs: results.length, clean: results.length - bad.length, seconds, violations: bad.map((r: SeedResult) => ({ seed: r.seed, digest: r.digest, violations: r.violations, replay: r.replay })) };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    const lines = [`seeds ${from}..${to}: ${results.length} run in ${seconds} s, ${results.length - bad.length} clean, ${bad.length} with a violation`];
    for (const r of bad) {
      const v = r.violations[0]!;
      lines.push(`  seed ${r.seed}: ${v.invariant}${v.gate !== undefined ? ` (gate ${v.gate})` : ''} at ${(v.atMs / 1000).toFixed(3)} s: ${v.detail.split('\n')[0] ?? ''}`, `    replay: ${r.replay}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (bad.length > 0) process.exitCode = 1;
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('deterministic whole-system simulation: real gate core and central on virtual time, a seeded broker, seeded faults and an adversary; invariants checked as it runs (docs/SIMULATION.md)')
    .option('--seed <n>', 'the seed: the same seed gives the same run and digest', '1')
    .option('--seeds <a..b>', 'run every seed from a to b (one process each, --jobs at a time, a progress bar on stderr) and report the violations by seed')
    .option('--jobs <n>', 'with --seeds: processes at once (default: the number of cores)')
    .option('--gates <n>', 'number of gates (1-10000)', '8')
    .option('--xs <k>', 'run the first k gates as firmware/moddable/main.ts on the XS engine (xsnap workers in lockstep; 0-64, at most --gates)', '0')
    .option('--hours <h>', 'virtual hours of operation before the final convergence (a number in (0, 48])', '1')
    .option('--faults <list>', `comma-separated faults to inject: ${FAULT_KINDS.join(', ')}; or all, or none`, 'all')
    .option('--json', 'print only one JSON object (seed, digest, violations, summary) on stdout')
    .action(async (f: SimulateFlags) => {
      const seed = int('seed', f.seed, 0, 2 ** 32 - 1);
      const gates = int('gates', f.gates, 1, 10_000);
      const xs = int('xs', f.xs, 0, Math.min(64, gates));
      const hours = Number(f.hours);
      if (!Number.isFinite(hours) || hours <= 0 || hours > 48) throw new CliError(`--hours must be a number in (0, 48], got '${f.hours}'`);
      const faults = parseFaults(f.faults);
      if (f.jobs !== undefined && f.seeds === undefined) throw new CliError('--jobs goes with --seeds');
      if (f.seeds !== undefined) return sweep(f, { gates, xs, hours, faults });
      const { runSimulation } = await import('../simulation/simulation.js');
      if (f.json !== true) process.stderr.write(`simulating seed ${seed}: ${gates} gates${xs > 0 ? ` (${xs} on XS)` : ''}, ${hours} h, faults ${faults.join(',') || 'none'}\n`);
      const r = await runSimulation({ seed, gates, hours, faults, xs });
      if (f.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${summary(r).join('\n')}\n`);
      if (r.violations.length > 0) process.exitCode = 1;
    });
}
