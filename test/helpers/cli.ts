// Runs the `subline` command as a user would, in a child process, with its
// exit code, stdout and stderr. Long-running commands (central serve) are
// started, watched for a line, and stopped with SIGTERM; any child still
// running when the test process exits is killed.
//
// The child runs the CLI's own sources, bundled by esbuild once per test
// process (cliEntry(), build-cli.mjs): the modules bin/subline.mjs loads
// through tsx, without paying tsx's loader again on each of hundreds of
// spawns. BIN, the real entry, stays for the tests that run `node
// bin/subline.mjs` themselves; SUBLINE_TEST_CLI=bin makes these helpers run
// it too.

import { trackChild } from '../../host-sim/broker.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'subline.mjs');

let entry: string | null = null;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The script the helpers run: the CLI bundled from the sources as they are now
 * (built on first use in each test process, so never stale) into a directory of
 * this process under .tmp/ (inside the repository: npm packages resolve from
 * node_modules/), removed when the process exits, or by a later test process
 * when this one was killed before its exit handlers ran.
 */
export function cliEntry(): string {
  if (process.env.SUBLINE_TEST_CLI === 'bin') return BIN;
  if (entry !== null) return entry;
  const parent = join(ROOT, '.tmp');
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const pid = /^test-cli-(\d+)-/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) rmSync(join(parent, name), { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(parent, `test-cli-${process.pid}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [join(ROOT, 'test', 'helpers', 'build-cli.mjs'), dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`test/helpers/build-cli.mjs failed (exit ${String(r.status ?? r.signal)}):\n${r.stdout}${r.stderr}`);
  entry = join(dir, 'subline.mjs');
  return entry;
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options that commands also read from the environment. */
const OPTION_ENV = ['SUBLINE_DATA', 'SUBLINE_DB', 'SUBLINE_BROKER', 'SUBLINE_GATE_PASSWORD', 'SUBLINE_BROKER_CA', 'SUBLINE_BROKER_CERT', 'SUBLINE_BROKER_KEY', 'SUBLINE_BROKER_USERNAME', 'SUBLINE_BROKER_PASSWORD'];

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // Options come from the command line or from the test's own `env`, never from the caller's environment.
  for (const k of OPTION_ENV) delete env[k];
  return { ...env, ...extra };
}

/** Runs `subline args...` to completion (killed after timeoutMs). */
export function runCli(args: readonly string[], options: { readonly timeoutMs?: number; readonly env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry(), ...args], { cwd: ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout + stderr match `re`; rejects if the process ends first or after timeoutMs. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s); resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts a long-running `subline` command (`env`: variables for it, e.g. SUBLINE_DB). */
export function startCli(args: readonly string[], options: { readonly env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, [cliEntry(), ...args], { cwd: ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitForOutput(re: RegExp, timeoutMs = 15_000): Promise<void> {
      const end = Date.now() + timeoutMs;
      while (!re.test(out + err)) {
        if (ended) throw new Error(`subline ${args.join(' ')} ended (exit ${String(child.exitCode)}) before printing ${String(re)}:\n${out}\n${err}`);
        if (Date.now() > end) throw new Error(`subline ${args.join(' ')}: no ${String(re)} within ${timeoutMs} ms:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(): Promise<number | null> {
      if (!ended) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
}

export function tempDir(prefix = 'subline-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
