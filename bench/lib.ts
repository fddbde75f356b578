// Benchmark plumbing: one JSON object per line on stdout and in
// bench/results/<name>.json, each stating metric, value, unit, engine,
// entries (whitelist size, 0 where not applicable) and the machine.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

export interface BenchLine {
  metric: string;
  value: number;
  unit: string;
  /** node; xs = @agoric/xsnap's XS; moddable-xs = the Moddable SDK's XS in an x-cli-lin program. */
  engine: 'node' | 'xs' | 'moddable-xs';
  entries: number;
  [extra: string]: unknown;
}

export const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
};

export class BenchReport {
  readonly #lines: BenchLine[] = [];
  constructor(readonly name: string) {}

  add(line: BenchLine): void {
    const full = { bench: this.name, ...line, machine, at: new Date().toISOString() };
    this.#lines.push(full);
    console.log(JSON.stringify(full));
  }

  write(): string {
    const dir = new URL('./results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL(`${this.name}.json`, dir);
    writeFileSync(file, this.#lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    return file.pathname;
  }
}

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}
