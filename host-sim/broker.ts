// MQTT brokers for the simulator and the tests, on loopback only:
// - startEmbeddedBroker: aedes in this process, on node:net; open (anonymous)
//   unless `security` is given: then a TLS listener (client certificates from
//   the deployment CA, identity = the certificate's CN, CRL checked) and/or a
//   password listener, and broker-acl.ts's rules on every CONNECT, PUBLISH,
//   SUBSCRIBE and delivery; nothing anonymous.
// - startMosquitto: a real Mosquitto child process, either with a generated
//   anonymous config in a temporary folder, or (`configDir`) from a folder
//   written by `subline broker config` (broker-config.ts).
// Both return { url, port, close() }; close() ends every connection, the
// server or child process, and removes what it created. Secured brokers also
// have reload(): Mosquitto re-reads its config, ACL and CRL on SIGHUP; the
// embedded one re-reads its TLS files and takes a new ACL.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { BrokerAcl } from './broker-acl.js';
import { SUMMARY_FILE, type BrokerConfigSummary } from './broker-config.js';

export interface BrokerHandle {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A broker that authenticates everyone: url/port are its TLS listener if it has one, else its password listener. */
export interface SecuredBrokerHandle extends BrokerHandle {
  /** mqtts://127.0.0.1:<port>: client certificates from the deployment CA. */
  readonly tlsUrl?: string;
  readonly tlsPort?: number;
  /** mqtt://127.0.0.1:<port>: username and password (the central's and operators'). */
  readonly passwordUrl?: string;
  readonly passwordPort?: number;
  /**
   * Mosquitto: SIGHUP (config, ACL, CRL re-read), resolved once it has reloaded.
   * Embedded: re-reads the TLS files (so a new CRL refuses revoked certificates
   * from now on), takes `update`'s ACL and passwords, and closes the live
   * connections whose certificate is now revoked or whose identity lost its grants.
   */
  reload(update?: { readonly acl?: BrokerAcl; readonly passwords?: ReadonlyMap<string, string> }): Promise<void>;
}

/** The embedded broker's security: file paths for TLS (re-read on reload), passwords, the rules. */
export interface EmbeddedBrokerSecurity {
  readonly acl: BrokerAcl;
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string; readonly crl?: string };
  /** username (an identity of the ACL) -> password, for a plain listener on `port`. */
  readonly passwords?: ReadonlyMap<string, string>;
}

export interface EmbeddedBrokerOptions {
  /** The open broker's port, or the password listener's with `security.passwords` (0: a free one). */
  readonly port?: number;
  readonly host?: string;
  /** The TLS listener's port with `security.tls` (0: a free one). */
  readonly tlsPort?: number;
  readonly security?: EmbeddedBrokerSecurity;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function checkLoopback(host: string): void {
  if (!LOOPBACK.has(host)) throw new Error(`broker: host '${host}' is not a loopback address (127.0.0.1, ::1 or localhost only)`);
}

function urlOf(host: string, port: number): string {
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('broker: no TCP address'));
      else resolve(address.port);
    });
  });
}

/**
 * A password for `identity` derived from a secret (HMAC-SHA256, base64url): a
 * one-process simulator of many gates gives the broker and each gate theirs
 * without a certificate per gate (docs/decisions/0012).
 */
export function derivePassword(secret: Uint8Array, identity: string): string {
  return createHmac('sha256', secret).update(`subline-broker-password-v1\0${identity}`, 'utf8').digest('base64url');
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
/** Constant-time comparison of two passwords (of any lengths). */
const samePassword = (a: string, b: string): boolean => timingSafeEqual(sha256(a), sha256(b));
/** A serial number as OpenSSL and @peculiar/x509 may print it: upper-case hex without leading zeros. */
const normalSerial = (hex: string): string => hex.replace(/[^0-9a-f]/gi, '').replace(/^0+/, '').toUpperCase();

/** The serials a CRL revokes. @peculiar/x509 is loaded only here (it needs reflect-metadata first), so the open broker stays light. */
async function revokedSerials(crlPath: string | undefined): Promise<Set<string>> {
  if (crlPath === undefined) return new Set();
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const crl = new x509.X509Crl(readFileSync(crlPath, 'utf8'));
  return new Set(crl.entries.map((e) => normalSerial(e.serialNumber)));
}

/** A CONNACK refusal: 2 identifier rejected, 5 not authorized. */
function refused(message: string, returnCode: 2 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode });
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions & { readonly security: EmbeddedBrokerSecurity }): Promise<SecuredBrokerHandle>;
export async function startEmbeddedBroker(options?: EmbeddedBrokerOptions): Promise<BrokerHandle>;
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<BrokerHandle | SecuredBrokerHandle> {
  const host = options.host ?? '127.0.0.1';
  checkLoopback(host);
  const security = options.security;
  if (security !== undefined && security.tls === undefined && security.passwords === undefined) throw new Error('broker: security needs tls, passwords or both (nothing anonymous)');
  let acl = security?.acl;
  let passwords = security?.passwords;
  // Who each connection is: the TLS listener puts the certificate's CN here before aedes sees the socket.
  const certIdentity = new WeakMap<Socket, { readonly cn: string; readonly serial: string }>();
  const passwordSockets = new WeakSet<Socket>();
  const identities = new WeakMap<Client, string>();
  const aedes = await Aedes.createBroker(
    security === undefined
      ? {}
      : {
          authenticate(client, username, password, done) {
            const cert = certIdentity.get(client.conn as Socket);
            let identity: string | null = null;
            if (cert !== undefined) identity = cert.cn; // like Mosquitto's use_identity_as_username: any username is ignored
            else if (passwordSockets.has(client.conn as Socket) && username !== undefined && password !== undefined) {
              const expected = passwords?.get(username);
              if (expected !== undefined && samePassword(expected, password.toString('utf8'))) identity = username;
            }
            const role = acl?.roleOf(identity);
            if (identity === null || role === null || role === undefined) return done(refused('not authorized', 5), false);
            // A client id names a session: a gate's is its gate id, and no one else may take a gate's (that would knock the gate off).
            if (role === 'gate' ? client.id !== identity : acl?.roleOf(client.id) === 'gate') return done(refused(`client id '${client.id}' is not ${identity}'s`, 2), false);
            identities.set(client, identity);
            done(null, true);
          },
          authorizePublish(client, packet, done) {
            // No client: a will left by an earlier broker instance; no one to vouch for it.
            const identity = client === null ? undefined : identities.get(client);
            const payload = packet.payload;
            const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
            if (acl?.canPublish(identity, packet.topic, { retain: packet.retain, empty: bytes === 0, bytes }) === true) done(null);
            else done(new Error(`publish to ${packet.topic} not authorized for ${identity ?? 'nobody'}`));
          },
          authorizeSubscribe(client, sub, done) {
            // Refused: granted 0x80, the connection stays (Mosquitto would grant it and deliver nothing).
            done(null, acl?.canSubscribe(identities.get(client), sub.topic) === true ? sub : null);
          },
          authorizeForward(client, packet) {
            // Belt and braces: whatever the subscription, deliver only what the subscriber may read.
            return acl?.canRead(identities.get(client), packet.topic) === true ? packet : null;
          },
        },
  );
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const servers: Server[] = [];
  const live = new Set<Client>();
  aedes.on('clientReady', (c) => live.add(c));
  aedes.on('clientDisconnect', (c) => live.delete(c));
  // A misbehaving client must never take the broker down.
  aedes.on('clientError', () => {});
  aedes.on('connectionError', () => {});
  const closeAll = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  };
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => (closed ??= closeAll());

  if (security === undefined) {
    const server = createServer((socket) => {
      track(socket);
      aedes.handle(socket);
    });
    servers.push(server);
    const port = await listen(server, options.port ?? 0, host);
    return { url: urlOf(host, port), port, close };
  }

  try {
    let passwordPort: number | undefined;
    if (security.passwords !== undefined) {
      const server = createServer((socket) => {
        track(socket);
        passwordSockets.add(socket);
        aedes.handle(socket);
      });
      servers.push(server);
      passwordPort = await listen(server, options.port ?? 0, host);
    }
    let tlsPort: number | undefined;
    const tlsFiles = security.tls;
    const tlsSockets = new Set<TLSSocket>();
    const context = () => {
      if (tlsFiles === undefined) return {};
      const read = (p: string) => readFileSync(p);
      return { ca: read(tlsFiles.ca), cert: read(tlsFiles.cert), key: read(tlsFiles.key), ...(tlsFiles.crl !== undefined ? { crl: read(tlsFiles.crl) } : {}) };
    };
    let tlsServer: ReturnType<typeof createTlsServer> | undefined;
    if (tlsFiles !== undefined) {
      tlsServer = createTlsServer({ ...context(), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2', noDelay: true }, (socket) => {
        const peer = socket.getPeerCertificate();
        const cn = (peer.subject as unknown as Record<string, string | undefined> | undefined)?.CN;
        if (typeof cn !== 'string' || cn === '') {
          socket.destroy();
          return;
        }
        track(socket);
        tlsSockets.add(socket);
        socket.on('close', () => tlsSockets.delete(socket));
        certIdentity.set(socket, { cn, serial: normalSerial(peer.serialNumber) });
        aedes.handle(socket);
      });
      // Plaintext, another CA, expired or revoked: the handshake fails; nothing reaches aedes.
      tlsServer.on('tlsClientError', (_e, socket) => socket.destroy());
      servers.push(tlsServer);
      tlsPort = await listen(tlsServer, options.tlsPort ?? 0, host);
    }
    const tlsUrl = tlsPort !== undefined ? `mqtts://${host.includes(':') ? `[${host}]` : host}:${tlsPort}` : undefined;
    const passwordUrl = passwordPort !== undefined ? urlOf(host, passwordPort) : undefined;
    return {
      url: (tlsUrl ?? passwordUrl) as string,
      port: (tlsPort ?? passwordPort) as number,
      ...(tlsUrl !== undefined ? { tlsUrl, tlsPort } : {}),
      ...(passwordUrl !== undefined ? { passwordUrl, passwordPort } : {}),
      close,
      async reload(update = {}) {
        // Read everything first: a bad file leaves the broker as it was.
        const next = tlsServer !== undefined ? context() : undefined;
        const revoked = await revokedSerials(tlsFiles?.crl);
        if (next !== undefined) tlsServer?.setSecureContext(next);
        if (update.acl !== undefined) acl = update.acl;
        if (update.passwords !== undefined) passwords = update.passwords;
        for (const c of [...live]) {
          const cert = certIdentity.get(c.conn as Socket);
          const identity = identities.get(c);
          if ((cert !== undefined && revoked.has(cert.serial)) || acl?.roleOf(identity) === null) c.close();
        }
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The mosquitto binary: /usr/sbin/mosquitto, else `mosquitto` on PATH; null if neither. */
/** `n` distinct free loopback ports (bound once, then released), for a broker configuration written before it starts. */
export async function freeLoopbackPorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve(srv));
    })),
  );
  const ports = servers.map((srv) => (srv.address() as { port: number }).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

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

interface MosquittoChild {
  readonly child: ChildProcess;
  readonly exited: () => boolean;
  readonly exit: Promise<void>;
  stderr(): string;
  /** How many times Mosquitto has said it reloaded its config. */
  reloads(): number;
  stop(): Promise<void>;
}

function mosquittoBin(): string {
  const bin = findMosquitto();
  if (bin === null) throw new Error('mosquitto is not installed (looked for /usr/sbin/mosquitto and mosquitto on PATH): apt-get install -y mosquitto');
  return bin;
}

/** Runs `mosquitto -c conf` and waits (10 s at most) until every port accepts; null and the reason if it did not start. */
async function spawnMosquitto(conf: string, host: string, ports: readonly number[]): Promise<{ ok: MosquittoChild } | { error: string }> {
  const child = spawn(mosquittoBin(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let stderr = '';
  let reloads = 0;
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    reloads += text.split('Reloading config.').length - 1;
    stderr = (stderr + text).slice(-8000);
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
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(timer);
    }
    child.stderr?.destroy();
  };
  const deadline = Date.now() + 10_000;
  const waiting = new Set(ports);
  while (!exited && waiting.size > 0 && Date.now() < deadline) {
    for (const port of [...waiting]) if (await accepts(host, port)) waiting.delete(port);
    if (waiting.size > 0) await new Promise((r) => setTimeout(r, 50));
  }
  if (waiting.size === 0 && !exited) return { ok: { child, exited: () => exited, exit, stderr: () => stderr, reloads: () => reloads, stop } };
  await stop();
  return { error: stderr.trim() || `no connection on ${host}:${[...waiting].join(',')} within 10 s` };
}

/**
 * Starts Mosquitto on 127.0.0.1 and waits until it accepts connections. Throws
 * if Mosquitto is not installed, saying how to install it.
 * - Without `configDir`: anonymous, persistence off, on `port` (a free one unless given).
 * - With `configDir` (written by `subline broker config` with loopback ports):
 *   secured, as configured there; the folder is left as it is on close().
 */
export async function startMosquitto(options: { readonly configDir: string }): Promise<SecuredBrokerHandle>;
export async function startMosquitto(options?: { readonly port?: number }): Promise<BrokerHandle>;
export async function startMosquitto(options: { readonly port?: number; readonly configDir?: string } = {}): Promise<BrokerHandle | SecuredBrokerHandle> {
  mosquittoBin();
  if (options.configDir !== undefined) return startConfigured(options.configDir);
  const host = '127.0.0.1';
  let lastError = '';
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = options.port !== undefined && options.port !== 0 ? options.port : await freePort(host);
    const dir = mkdtempSync(join(tmpdir(), 'subline-mosquitto-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, [`listener ${port} ${host}`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ''].join('\n'));
    const started = await spawnMosquitto(conf, host, [port]);
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    if ('ok' in started) {
      let closed: Promise<void> | null = null;
      return {
        url: urlOf(host, port),
        port,
        close(): Promise<void> {
          closed ??= started.ok.stop().then(cleanup);
          return closed;
        },
      };
    }
    cleanup();
    lastError = started.error;
    if (options.port !== undefined && options.port !== 0) break;
  }
  throw new Error(`mosquitto did not start: ${lastError}`);
}

async function startConfigured(configDir: string): Promise<SecuredBrokerHandle> {
  let summary: BrokerConfigSummary;
  try {
    summary = JSON.parse(readFileSync(join(configDir, SUMMARY_FILE), 'utf8')) as BrokerConfigSummary;
  } catch (e) {
    throw new Error(`broker: ${configDir} holds no ${SUMMARY_FILE} (write it with \`subline broker config --out ${configDir}\`): ${e instanceof Error ? e.message : String(e)}`);
  }
  const host = summary.tls.host ?? '127.0.0.1';
  checkLoopback(host);
  const started = await spawnMosquitto(summary.conf, '127.0.0.1', [summary.tls.port, summary.password.port]);
  if ('error' in started) throw new Error(`mosquitto did not start from ${summary.conf}: ${started.error}`);
  const m = started.ok;
  let closed: Promise<void> | null = null;
  const tlsUrl = `mqtts://${host.includes(':') ? `[${host}]` : host}:${summary.tls.port}`;
  return {
    url: tlsUrl,
    port: summary.tls.port,
    tlsUrl,
    tlsPort: summary.tls.port,
    passwordUrl: urlOf('127.0.0.1', summary.password.port),
    passwordPort: summary.password.port,
    close(): Promise<void> {
      closed ??= m.stop();
      return closed;
    },
    async reload(update) {
      if (update?.acl !== undefined || update?.passwords !== undefined) throw new Error('broker: Mosquitto takes its ACL and passwords from its config folder: run `subline broker config` again, then reload()');
      if (m.exited()) throw new Error(`mosquitto has exited: ${m.stderr().trim()}`);
      const before = m.reloads();
      m.child.kill('SIGHUP');
      // Mosquitto logs this before reloading, in the loop that accepts connections: anything that connects afterwards meets the new config.
      const deadline = Date.now() + 5000;
      while (m.reloads() === before) {
        if (m.exited() || Date.now() > deadline) throw new Error(`mosquitto did not reload: ${m.stderr().trim().slice(-500)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 50));
    },
  };
}
