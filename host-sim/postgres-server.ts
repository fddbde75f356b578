// A throwaway PostgreSQL server for tests and benches, like startMosquitto:
// Debian's `postgresql` package binaries (/usr/lib/postgresql/<version>/bin,
// or PG_BIN), `initdb` into a temporary directory, a free loopback port, the
// Unix socket in that directory, stopped and deleted by close(). initdb and
// postgres refuse to run as root: as root they run as the `postgres` user
// (the package creates it; else `nobody`) through setpriv, which execs in
// place, so the server is this process's own child and gets its signals.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPorts, trackChild } from './broker.js';

export interface PostgresHandle {
  /** postgres://subline@127.0.0.1:PORT/subline (trust authentication on loopback). */
  readonly url: string;
  readonly port: number;
  /** The server's directory (data and socket); close() deletes it. */
  readonly dir: string;
  /** Fast shutdown, then the data directory is deleted. */
  close(): Promise<void>;
}

export type PostgresLocation = { readonly ok: true; readonly bin: string; readonly version: string } | { readonly ok: false; readonly reason: string };

/** Where the server binaries are: PG_BIN, else the highest /usr/lib/postgresql/<version>/bin. */
export function locatePostgres(): PostgresLocation {
  const env = process.env.PG_BIN;
  if (env !== undefined && env !== '') {
    return existsSync(join(env, 'initdb')) ? { ok: true, bin: env, version: 'PG_BIN' } : { ok: false, reason: `PG_BIN=${env} has no initdb` };
  }
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')));
  } catch {
    /* not installed */
  }
  versions.sort((a, b) => Number(b) - Number(a));
  const v = versions[0];
  if (v === undefined) return { ok: false, reason: 'no PostgreSQL server binaries (apt-get install postgresql, or set PG_BIN)' };
  return { ok: true, bin: join(root, v, 'bin'), version: v };
}

/** The uid/gid to run the server as when we are root (initdb refuses root). */
function serverUser(): { user: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  for (const user of ['postgres', 'nobody']) {
    const id = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (id.status === 0 && gid.status === 0) return { user, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new Error('running as root and there is no postgres or nobody user to run PostgreSQL as');
}

function asUser(cmd: string, args: readonly string[], user: ReturnType<typeof serverUser>): [string, string[]] {
  if (user === null) return [cmd, [...args]];
  return ['setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--', cmd, ...args]];
}

function waitReady(bin: string, dir: string, port: number, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    let exited = false;
    child.once('exit', (code, signal) => {
      exited = true;
      reject(new Error(`postgres exited (${signal ?? code}) before accepting connections: ${log().trim().slice(-2000)}`));
    });
    const probe = () => {
      if (exited) return;
      const r = spawnSync(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)]);
      if (r.status === 0) return resolve();
      if (Date.now() > end) return reject(new Error(`postgres did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms: ${log().trim().slice(-2000)}`));
      setTimeout(probe, 100);
    };
    probe();
  });
}

/**
 * Starts a server. `durable: false` (the default, for tests) turns fsync off:
 * transactions still behave, a machine crash would lose them; benches that
 * measure commits pass `durable: true`.
 */
export async function startPostgres(options: { readonly durable?: boolean; readonly timeoutMs?: number; readonly background?: boolean } = {}): Promise<PostgresHandle> {
  const where = locatePostgres();
  if (!where.ok) throw new Error(where.reason);
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'subline-pg-'));
  const data = join(dir, 'data');
  if (user !== null) chownSync(dir, user.uid, user.gid);
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const [cmd, args] = asUser(join(where.bin, 'initdb'), ['-D', data, '-U', 'subline', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], user);
    const init = spawnSync(cmd, args, { encoding: 'utf8', cwd: dir });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${`${init.stderr}${init.stdout}`.trim().slice(-2000)}`);
  } catch (e) {
    cleanup();
    throw e;
  }
  let lastError: unknown;
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port] = (await freeLoopbackPorts(1)) as [number];
    const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=100', '-c', `fsync=${options.durable === true ? 'on' : 'off'}`, '-c', 'log_min_messages=warning'];
    // A background server is killed (SIGKILL) at exit: its shared memory then lives in the data directory, which is deleted, not in /dev/shm.
    if (options.background === true) settings.push('-c', 'dynamic_shared_memory_type=mmap');
    const [cmd, args] = asUser(join(where.bin, 'postgres'), ['-D', data, '-p', String(port), ...settings], user);
    const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    trackChild(child);
    if (options.background === true) {
      // The server does not keep this process alive: a test process ends when its work does (trackChild kills the server at exit).
      child.unref();
      (child.stderr as { unref?: () => void } | null)?.unref?.();
    }
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString('utf8')).slice(-8000)));
    try {
      await waitReady(where.bin, dir, port, child, () => log, options.timeoutMs ?? 30_000);
    } catch (e) {
      lastError = e;
      child.kill('SIGKILL');
      continue;
    }
    const created = spawnSync(join(where.bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'subline', 'subline'], { encoding: 'utf8' });
    if (created.status !== 0) {
      child.kill('SIGKILL');
      cleanup();
      throw new Error(`createdb failed: ${created.stderr.trim()}`);
    }
    let closed: Promise<void> | null = null;
    return {
      url: `postgres://subline@127.0.0.1:${port}/subline`,
      port,
      dir,
      close(): Promise<void> {
        closed ??= new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGINT'); // fast shutdown: roll back open transactions, exit
        }).then(cleanup);
        return closed;
      },
    };
  }
  cleanup();
  throw new Error(`postgres did not start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}
