#!/usr/bin/env node
// Runs the uvu suites under tsx, one process per test file, a few files at a time, and ends
// with the line CI reads:
//   N passed, N failed
// Usage: node scripts/test.mjs [pattern]   (pattern: a regex on test file names)
// SUBLINE_TEST_JOBS=N sets how many files run at once (default: the cores, at least 2, at most 4).
//
// Why one process per file: most suites wait on brokers, databases and child processes, so two
// or three files at a time finish the whole run in well under CI's 15 minutes on two cores;
// a crash while loading one file is also reported against that file instead of ending the run.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2];
const match = new RegExp(filter ? `${filter}.*\\.test\\.ts$` : '\\.test\\.ts$');
const uvu = fileURLToPath(new URL('../node_modules/uvu/bin.js', import.meta.url));
const jobs = Math.max(1, Number(process.env.SUBLINE_TEST_JOBS) || Math.min(4, Math.max(2, availableParallelism())));

// The longest files start first so that the pool ends together (measured on the CI machine).
const SLOW_FIRST = [
  'cli-live.test.ts',
  'cli.test.ts',
  'cli-provision.test.ts',
  'static-checks.test.ts',
  'device-sdk.test.ts',
  'xs-gate-powercut.test.ts',
  'central.test.ts',
  'sim.test.ts',
  'whitelist-powercut.test.ts',
  'cli-store.test.ts',
  'impostor.test.ts',
  'wiped-gate.test.ts',
];
const rank = (f) => {
  const i = SLOW_FIRST.indexOf(f);
  return i === -1 ? SLOW_FIRST.length : i;
};
const files = readdirSync(join(root, 'test'))
  .filter((f) => match.test(f))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

// Suites that cannot run here for lack of a tool (the Moddable SDK) say why in this file;
// the reasons are printed just before the closing line, and nothing is counted for them.
const notRunDir = mkdtempSync(join(tmpdir(), 'subline-test-'));
const notRunFile = join(notRunDir, 'not-run');

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Runs one file; resolves to its counts and its output (without uvu's totals). */
function runFile(file) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', uvu, 'test', `^${escape(file)}$`, '--no-color'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SUBLINE_NOT_RUN_FILE: notRunFile },
    });
    const chunks = [];
    child.stdout.on('data', (d) => chunks.push(d));
    child.stderr.on('data', (d) => chunks.push(d));
    child.on('close', (code) => {
      const out = Buffer.concat(chunks).toString('utf8');
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const total = /Total:\s+(\d+)/.exec(plain);
      const passed = /Passed:\s+(\d+)/.exec(plain);
      const seconds = (Date.now() - started) / 1000;
      if (total === null || passed === null) {
        resolve({ file, out: `${out}\n${file}: ended without a summary (exit ${code}): the file crashed while loading or running\n`, passed: 0, failed: 1, seconds });
        return;
      }
      const p = Number(passed[1]);
      let f = Number(total[1]) - p;
      let note = '';
      if (code !== 0 && f === 0) {
        // Every test passed but the process failed (an unhandled error after the suites): a failure.
        f = 1;
        note = `${file}: exited with code ${code} after its tests passed\n`;
      }
      resolve({ file, out: out.replace(/\n\s*Total:[\s\S]*$/, '\n') + note, passed: p, failed: f, seconds });
    });
  });
}

let passed = 0;
let failed = 0;
const failedFiles = [];
const timings = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const file = files[next++];
    const r = await runFile(file);
    // Each file's output stays together; uvu's per-file totals are dropped, ours is at the end.
    process.stdout.write(r.out);
    passed += r.passed;
    failed += r.failed;
    if (r.failed > 0) failedFiles.push(file);
    timings.push([file, r.seconds]);
  }
}
const startedAll = Date.now();
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

let notRun = '';
try {
  notRun = readFileSync(notRunFile, 'utf8');
} catch {
  /* every suite ran */
}
rmSync(notRunDir, { recursive: true, force: true });
timings.sort((a, b) => b[1] - a[1]);
console.log(`\n${files.length} files, ${jobs} at a time, ${((Date.now() - startedAll) / 1000).toFixed(0)} s; slowest: ${timings.slice(0, 5).map(([f, s]) => `${f} ${s.toFixed(0)} s`).join(', ')}`);
if (failedFiles.length > 0) console.log(`failed in: ${failedFiles.join(', ')}`);
console.log(`${notRun}${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
