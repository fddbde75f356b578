// Runs the `subline` command as a user would: `node bin/subline.mjs ...` in a
// child process, with its exit code, stdout and stderr. Long-running commands
// (central serve) are started, watched for a line, and stopped with SIGTERM;
// any child still running when the test process exits is killed.

import { trackChild } from '../../host-sim/broker.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'subline.mjs');

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
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
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
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
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
