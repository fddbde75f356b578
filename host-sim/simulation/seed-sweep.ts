// Many seeds of the deterministic simulation at once: each seed in a
// `subline simulate --json` child process (one run per process: a run owns
// the process's globals while the determinism guard is on), at most `jobs` at
// a time, results in seed order. A child that dies without its JSON is
// reported as a violation of that seed, with its stderr.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { replayCommand, type FaultKind, type SimulationReport, type Violation } from './simulation.js';

const BIN = fileURLToPath(new URL('../../bin/subline.mjs', import.meta.url));
/** A seed whose child runs longer than this is killed and reported. */
const SEED_TIMEOUT_MS = 15 * 60_000;

export interface SweepOptions {
  readonly from: number;
  readonly to: number;
  readonly jobs: number;
  readonly gates: number;
  /** Of which on XS (default 0). */
  readonly xs?: number;
  readonly hours: number;
  readonly faults: readonly FaultKind[];
  /** After each seed (in the order they finish). */
  readonly onSeed?: (r: SeedResult, done: number, total: number) => void;
}

export interface SeedResult {
  readonly seed: number;
  readonly digest: string | null;
  readonly violations: readonly Violation[];
  readonly wallMs: number;
  readonly replay: string;
}

export async function sweepSeeds(o: SweepOptions): Promise<SeedResult[]> {
  if (!(Number.isInteger(o.from) && Number.isInteger(o.to) && o.from <= o.to)) throw new RangeError('seeds: from..to with from <= to');
  const seeds: number[] = [];
  for (let s = o.from; s <= o.to; s++) seeds.push(s);
  const results = new Map<number, SeedResult>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < seeds.length) {
      const seed = seeds[next++]!;
      const r = await runOne(seed, o);
      results.set(seed, r);
      o.onSeed?.(r, results.size, seeds.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, seeds.length)) }, () => worker()));
  return seeds.map((s) => results.get(s)!);
}

function runOne(seed: number, o: SweepOptions): Promise<SeedResult> {
  const replay = replayCommand({ seed, gates: o.gates, hours: o.hours, faults: o.faults, xs: o.xs ?? 0 });
  const args = [BIN, 'simulate', '--seed', String(seed), '--gates', String(o.gates), '--xs', String(o.xs ?? 0), '--hours', String(o.hours), '--faults', o.faults.length === 0 ? 'none' : o.faults.join(','), '--json'];
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), SEED_TIMEOUT_MS);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = Math.round(performance.now() - started);
      try {
        const r = JSON.parse(out) as SimulationReport;
        resolve({ seed, digest: r.digest, violations: r.violations, wallMs, replay });
      } catch {
        const why = signal !== null ? `killed by ${signal}` : `exit ${String(code)}`;
        resolve({ seed, digest: null, violations: [{ invariant: 'the run completes', atMs: 0, detail: `the simulation process ended without its report (${why}): ${err.trim().split('\n').slice(-5).join(' | ')}`, lastEvents: [] }], wallMs, replay });
      }
    });
  });
}
