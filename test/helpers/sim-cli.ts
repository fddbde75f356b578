// Runs `subline` (bin/subline.mjs) or `npm start` as a child process for the simulator suites.

import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const bin = fileURLToPath(new URL('../../bin/subline.mjs', import.meta.url));
export const root = fileURLToPath(new URL('../..', import.meta.url));

export interface RunResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

export function runSubline(args: readonly string[], timeoutMs = 90000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, out: stdout, err: stderr });
    });
  });
}

export interface Ended {
  /** Exit code, or null when ended by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly out: string;
}

/**
 * Starts a command in its own process group (as a shell does for a
 * foreground job); `interrupt` sends SIGINT to the whole group, as Ctrl-C in
 * a terminal does, once `ready` matches the output.
 */
export function startGroup(cmd: string, args: readonly string[], o: { ready?: RegExp; interrupt?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const onData = (d: Buffer) => {
      out += d.toString('utf8');
      if (!sent && o.interrupt !== undefined && o.ready !== undefined && o.ready.test(out)) {
        sent = true;
        process.kill(-c.pid!, o.interrupt);
      }
    };
    c.stdout.on('data', onData);
    c.stderr.on('data', onData);
    const timer = setTimeout(() => {
      process.kill(-c.pid!, 'SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${o.timeoutMs ?? 90000} ms\n${out}`));
    }, o.timeoutMs ?? 90000);
    c.on('error', reject);
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}
