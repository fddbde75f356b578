// MQTT brokers for the simulator and the tests, on loopback only:
// - startEmbeddedBroker: aedes in this process, on node:net;
// - startMosquitto: a real Mosquitto child process with a generated config
//   (persistence off, anonymous on a 127.0.0.1 listener) in a temporary folder.
// Both return { url, port, close() }; close() ends every connection, the
// server or child process, and removes what it created.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Aedes } from 'aedes';

export interface BrokerHandle {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function checkLoopback(host: string): void {
  if (!LOOPBACK.has(host)) throw new Error(`broker: host '${host}' is not a loopback address (127.0.0.1, ::1 or localhost only)`);
}

function urlOf(host: string, port: number): string {
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export async function startEmbeddedBroker(options: { readonly port?: number; readonly host?: string } = {}): Promise<BrokerHandle> {
  const host = options.host ?? '127.0.0.1';
  checkLoopback(host);
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    aedes.handle(socket);
  });
  // A misbehaving client must never take the broker down.
  aedes.on('clientError', () => {});
  aedes.on('connectionError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker: no TCP address');
  let closed: Promise<void> | null = null;
  return {
    url: urlOf(host, address.port),
    port: address.port,
    close(): Promise<void> {
      closed ??= (async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closed;
    },
  };
}

/** The mosquitto binary: /usr/sbin/mosquitto, else `mosquitto` on PATH; null if neither. */
export function findMosquitto(): string | null {
  const candidates = ['/usr/sbin/mosquitto', ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'mosquitto'))];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return null;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = a !== null && typeof a !== 'string' ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

const children = new Set<ChildProcess>();
let exitHook = false;
/** Kills the child when this process exits (a broker or CLI run is never left behind, even when a test run dies). */
export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHook) {
    exitHook = true;
    // Never leave a broker behind, even when a test run dies.
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

/**
 * Starts Mosquitto on 127.0.0.1 (a free port unless given) and waits until it
 * accepts connections. Throws if Mosquitto is not installed, saying how to install it.
 */
export async function startMosquitto(options: { readonly port?: number } = {}): Promise<BrokerHandle> {
  const bin = findMosquitto();
  if (bin === null) throw new Error('mosquitto is not installed (looked for /usr/sbin/mosquitto and mosquitto on PATH): apt-get install -y mosquitto');
  const host = '127.0.0.1';
  let lastError = '';
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = options.port !== undefined && options.port !== 0 ? options.port : await freePort(host);
    const dir = mkdtempSync(join(tmpdir(), 'subline-mosquitto-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${port} ${host}`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ''].join('\n'));
    const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    trackChild(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4000);
    });
    let exited = false;
    const exit = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        exited = true;
        resolve();
        return;
      }
      child.once('exit', () => {
        exited = true;
        resolve();
      });
    });
    child.once('error', (e) => {
      stderr += String(e);
    });
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await accepts(host, port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    if (up && !exited) {
      let closed: Promise<void> | null = null;
      return {
        url: urlOf(host, port),
        port,
        close(): Promise<void> {
          closed ??= (async () => {
            if (!exited) {
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
              await exit;
              clearTimeout(timer);
            }
            child.stderr?.destroy();
            cleanup();
          })();
          return closed;
        },
      };
    }
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    child.stderr?.destroy();
    cleanup();
    lastError = stderr.trim() || `no connection on ${host}:${port} within 10 s`;
    if (options.port !== undefined && options.port !== 0) break;
  }
  throw new Error(`mosquitto did not start: ${lastError}`);
}
