#!/usr/bin/env node
// Runs the uvu suites under tsx and ends with the line CI reads:
//   N passed, N failed
// Usage: node scripts/test.mjs [pattern]   (pattern: a regex on test file names)

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2];
const pattern = filter ? `${filter}.*\\.test\\.ts$` : '\\.test\\.ts$';
const uvu = fileURLToPath(new URL('../node_modules/uvu/bin.js', import.meta.url));
// Suites that cannot run here for lack of a tool (the Moddable SDK) say why in this file;
// the reasons are printed just before the closing line, and nothing is counted for them.
const notRunDir = mkdtempSync(join(tmpdir(), 'subline-test-'));
const notRunFile = join(notRunDir, 'not-run');
const child = spawn(process.execPath, ['--import', 'tsx', uvu, 'test', pattern, '--no-color'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SUBLINE_NOT_RUN_FILE: notRunFile } });

let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out = (out + d.toString('utf8')).slice(-20000);
});
child.on('close', (code) => {
  let notRun = '';
  try {
    notRun = readFileSync(notRunFile, 'utf8');
  } catch {
    /* every suite ran */
  }
  rmSync(notRunDir, { recursive: true, force: true });
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = /Total:\s+(\d+)/.exec(plain);
  const passed = /Passed:\s+(\d+)/.exec(plain);
  if (total === null || passed === null) {
    console.log(`\ntest runner ended without a summary (exit ${code}): a suite crashed while loading`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const p = Number(passed[1]);
  const f = Number(total[1]) - p;
  console.log(`\n${notRun}${p} passed, ${f} failed`);
  process.exit(code !== 0 || f > 0 ? 1 : 0);
});
