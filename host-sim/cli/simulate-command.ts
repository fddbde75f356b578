// `subline simulate`: the deterministic whole-system simulation
// (docs/SIMULATION.md). One process, virtual time, a seed that replays
// everything: exit 0 without a violation, 1 with one (its replay command printed).

import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { FAULT_KINDS, runSimulation, type FaultKind, type SimulationReport } from '../simulation/simulation.js';

interface SimulateFlags {
  seed: string;
  gates: string;
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
    `seed ${r.seed}: ${r.gates} gates, ${r.hours} h of virtual time in ${(r.wallMs / 1000).toFixed(1)} s (${r.steps} steps)`,
    `digest ${r.digest}`,
    `taps ${r.taps.total}: ${r.taps.granted} granted, ${r.taps.denied} denied, ${r.taps.checked} checked against the reference`,
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

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('deterministic whole-system simulation: real gate core and central on virtual time, a seeded broker, seeded faults and an adversary; invariants checked as it runs (docs/SIMULATION.md)')
    .option('--seed <n>', 'the seed: the same seed gives the same run and digest', '1')
    .option('--gates <n>', 'number of gates (1-64)', '8')
    .option('--hours <h>', 'virtual hours of operation before the final convergence (a number in (0, 48])', '1')
    .option('--faults <list>', `comma-separated faults to inject: ${FAULT_KINDS.join(', ')}; or all, or none`, 'all')
    .option('--json', 'print only one JSON object (seed, digest, violations, summary) on stdout')
    .action(async (f: SimulateFlags) => {
      const seed = int('seed', f.seed, 0, 2 ** 32 - 1);
      const gates = int('gates', f.gates, 1, 64);
      const hours = Number(f.hours);
      if (!Number.isFinite(hours) || hours <= 0 || hours > 48) throw new CliError(`--hours must be a number in (0, 48], got '${f.hours}'`);
      const faults = parseFaults(f.faults);
      if (f.json !== true) process.stderr.write(`simulating seed ${seed}: ${gates} gates, ${hours} h, faults ${faults.join(',') || 'none'}\n`);
      const r = await runSimulation({ seed, gates, hours, faults });
      if (f.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${summary(r).join('\n')}\n`);
      if (r.violations.length > 0) process.exitCode = 1;
    });
}
