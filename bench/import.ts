// npm run bench -- import : `subline central import` of 1,000,000 people with
// one card each (one CSV file, --over-capacity) into a fresh data directory,
// as an operator runs it: rows per second and the process's peak RSS (VmHWM
// from /proc, sampled every 100 ms until it exits). Node, better-sqlite3 on
// the local disk; no flash involved.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BenchReport } from './lib.js';

const BIN = fileURLToPath(new URL('../bin/subline.mjs', import.meta.url));
const ROWS = 1_000_000;

function peakRssKiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined; // exited
  }
}

async function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; peakKiB: number; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  let peakKiB = 0;
  const timer = setInterval(() => {
    const p = child.pid !== undefined ? peakRssKiB(child.pid) : undefined;
    if (p !== undefined) peakKiB = Math.max(peakKiB, p);
  }, 100);
  const [code] = (await once(child, 'close')) as [number | null];
  clearInterval(timer);
  return { code, stdout, stderr, peakKiB, ms: performance.now() - t0 };
}

export async function benchImport(): Promise<string> {
  const report = new BenchReport('import');
  const dir = mkdtempSync(join(tmpdir(), 'subline-bench-import-'));
  try {
    const file = join(dir, 'people.csv');
    const out = createWriteStream(file);
    out.write('id,name,institution,card\n');
    for (let i = 0; i < ROWS; i++) if (!out.write(`p-${i},Person ${i},,${(0x04000000 + i).toString(16).padStart(8, '0')}\n`)) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    const data = join(dir, 'data');
    const init = await run(['central', 'init', '--data', data]);
    if (init.code !== 0) throw new Error(`central init failed: ${init.stderr}`);
    const r = await run(['central', 'import', '--data', data, file, '--over-capacity', '--json']);
    if (r.code !== 0) throw new Error(`central import failed (${r.code}): ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { rows: number; versionAfter: number };
    const common = { engine: 'node' as const, entries: ROWS, what: `subline central import of ${ROWS} people with one card each (CSV, one file) into a new data directory, a child process`, versions: j.versionAfter };
    report.add({ metric: 'import_rows_per_second', value: Math.round(j.rows / (r.ms / 1000)), unit: 'rows/s', ...common, seconds: Math.round(r.ms / 100) / 10 });
    report.add({ metric: 'import_peak_rss_mib', value: Math.round(r.peakKiB / 1024), unit: 'MiB', ...common, sampled: 'VmHWM every 100 ms' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return report.write();
}
