// The operators' console, served by the central (`central serve --http`,
// and the simulator's central under `npm start`): a JSON API under /api/ that
// the page itself uses (docs/API.md, docs/openapi.yaml), server-sent events
// for the live fleet and passages, and the page's assets from this package
// (assets/: no CDN, it works with no internet).
//
// Security (decisions/0022):
//   - only the page, its assets and POST /api/login answer without a session;
//     any other /api/ request without one gets 401;
//   - a session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie
//     (Secure whenever the console is on TLS), kept in this process (8 h);
//   - every change (any /api/ method but GET/HEAD) needs the session's CSRF
//     token in the X-CSRF-Token header (403 otherwise): a synchronizer
//     token bound to the session, compared in constant time;
//   - login attempts are rate-limited per client address (429);
//   - plain HTTP only on loopback: bound elsewhere, TLS is required;
//   - every query value reaches SQL as a parameter (event-query.ts); a
//     malformed query gets 400 with a message.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { OPERATOR_PREFIX } from '../pki/deployment-pki.js';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { stringify } from 'csv-stringify/sync';
import { fromHex } from '../../protocol/hex.js';
import type { Central } from '../central/central.js';
import { EventFilterError, EventQuery, type EventFilter, type QueriedEvent } from '../central/event-query.js';
import { fleetView } from '../central/fleet-view.js';
import { OperatorStore, type OperatorRole } from '../central/operator-store.js';
import { LiveFeed } from './live-feed.js';

const ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));
const COOKIE = 'subline_session';
const SESSION_SECONDS = 8 * 3600;
const MAX_SESSIONS = 10_000;
const SEARCH_MAX = 10_000;
/** Open live streams: in all, and per session; a stream whose reader lags this far behind is dropped. */
const MAX_STREAMS = 200;
const MAX_STREAMS_PER_SESSION = 8;
const STREAM_BUFFER_BYTES = 1 << 20;

interface Stream {
  readonly res: ServerResponse;
  readonly session: string;
}

export interface ConsoleServerOptions {
  readonly central: Central;
  /** Default 127.0.0.1. Anything but loopback needs `tls`. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /**
   * PEM certificate chain and key. With the deployment CA (`ca`, and its
   * `crl`), operators may also log in with their client certificate
   * (`central certs --operator NAME`): POST /api/login/certificate.
   */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer; readonly ca?: string | Buffer; readonly crl?: string | Buffer };
  /** Login attempts per client address per minute (default 10). */
  readonly loginsPerMinute?: number;
  /** How often a session's operator is read again (default 30 s): disabled, a new role or password ends the session. */
  readonly sessionRecheckMs?: number;
  readonly log?: (line: string) => void;
}

interface Session {
  readonly operator: string;
  readonly role: OperatorRole;
  readonly csrf: string;
  readonly expires: number;
  /** The operator's standing when the session was opened (password fingerprint), and when it was last checked. */
  readonly credential: string;
  checkedAt: number;
}

/** How often a session's operator is read again (disabled, role or password changed: the session ends). */
const RECHECK_MS = 30_000;

export class ConsoleError extends Error {}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export class ConsoleServer {
  readonly url: string;
  readonly #app: FastifyInstance;
  readonly #feed: LiveFeed;
  readonly #streams: Set<Stream>;
  readonly #sweep: NodeJS.Timeout;

  private constructor(app: FastifyInstance, url: string, feed: LiveFeed, streams: Set<Stream>, sweep: NodeJS.Timeout) {
    this.#app = app;
    this.url = url;
    this.#feed = feed;
    this.#streams = streams;
    this.#sweep = sweep;
  }

  static async start(o: ConsoleServerOptions): Promise<ConsoleServer> {
    const host = o.host ?? '127.0.0.1';
    if (!isLoopback(host) && o.tls === undefined) throw new ConsoleError(`the console on ${host} needs TLS (a certificate and key); plain HTTP is only for loopback`);
    const central = o.central;
    const operators = new OperatorStore(central.store.db);
    const query = new EventQuery(central.store.db);
    const sessions = new Map<string, Session>();
    const streams = new Set<Stream>();
    const secure = o.tls !== undefined;
    const feed = new LiveFeed({ fleet: () => fleetView(central.store, { list: central.list, now: Math.floor(Date.now() / 1000) }), events: query });
    const tls = o.tls;
    // A client certificate is asked for, never required: a password login works without one.
    const https = tls === undefined ? undefined : { cert: tls.cert, key: tls.key, ...(tls.ca !== undefined ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false, ...(tls.crl !== undefined ? { crl: tls.crl } : {}) } : {}) };
    const app = Fastify({ logger: false, bodyLimit: 64 * 1024, ...(https !== undefined ? { https } : {}) });
    await app.register(cookie);
    await app.register(rateLimit, { global: false });
    await app.register(fastifyStatic, { root: ASSETS, prefix: '/assets/', index: false });

    const sessionOf = (req: FastifyRequest): [string, Session] | null => {
      const id = req.cookies[COOKIE];
      if (id === undefined) return null;
      const s = sessions.get(id);
      if (s === undefined) return null;
      if (s.expires < Date.now()) {
        sessions.delete(id);
        return null;
      }
      return [id, s];
    };

    // Deny by default, on the route fastify matched (never on the raw URL: '/%61pi/gates' or an
    // absolute-form 'http://host/api/gates' reach the same route).
    const loopback = isLoopback(host);
    app.addHook('onRequest', async (req, reply) => {
      // On loopback, only our own names: a DNS-rebinding page's Host is not one of them.
      if (loopback && !localHost(req.headers.host, app)) return reply.code(421).send({ error: 'unexpected Host header' });
      // Unmatched URLs too: without a session they get 401, with one the 404 handler.
      const route = req.routeOptions.url;
      if (route !== undefined && (PUBLIC_ROUTES.has(`${req.method} ${route}`) || route.startsWith('/assets/'))) return;
      const s = sessionOf(req);
      if (s === null) return reply.code(401).send({ error: 'not logged in' });
      if (Date.now() - s[1].checkedAt >= (o.sessionRecheckMs ?? RECHECK_MS)) {
        const now = await operators.standing(s[1].operator);
        if (now === undefined || now.disabled || now.role !== s[1].role || now.credential !== s[1].credential) {
          sessions.delete(s[0]);
          return reply.code(401).send({ error: 'not logged in' });
        }
        s[1].checkedAt = Date.now();
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const token = req.headers['x-csrf-token'];
        if (typeof token !== 'string' || !sameToken(token, s[1].csrf)) return reply.code(403).send({ error: 'missing or wrong X-CSRF-Token' });
      }
      (req as FastifyRequest & { session?: Session }).session = s[1];
    });
    app.setErrorHandler((e: Error & { statusCode?: number }, _req, reply) => {
      const code = e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
      if (code === 500) o.log?.(`console: ${e.stack ?? e.message}`);
      void reply.code(code).send({ error: code === 500 ? 'internal error' : e.message });
    });
    app.setNotFoundHandler((_req, reply) => void reply.code(404).send({ error: 'not found' }));

    const page = (_req: FastifyRequest, reply: FastifyReply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').sendFile('index.html');
    app.get('/', page);

    /** A new session id at every login (an id set before the login never becomes a session); the cookie set. */
    const openSession = async (req: FastifyRequest, reply: FastifyReply, op: { name: string; role: OperatorRole }, how: string) => {
      const old = req.cookies[COOKIE];
      if (old !== undefined) sessions.delete(old);
      if (sessions.size >= MAX_SESSIONS) pruneSessions(sessions);
      const id = randomBytes(32).toString('base64url');
      const standing = await operators.standing(op.name);
      const s: Session = { operator: op.name, role: op.role, csrf: randomBytes(32).toString('base64url'), expires: Date.now() + SESSION_SECONDS * 1000, credential: standing?.credential ?? '', checkedAt: Date.now() };
      sessions.set(id, s);
      o.log?.(`console: ${op.name} (${op.role}) logged in${how} from ${req.ip}`);
      void reply.setCookie(COOKIE, id, { path: '/', httpOnly: true, sameSite: 'strict', secure, maxAge: SESSION_SECONDS });
      return { name: s.operator, role: s.role, csrf: s.csrf };
    };

    app.post('/api/login', { config: { rateLimit: { max: o.loginsPerMinute ?? 10, timeWindow: 60_000 } } }, async (req, reply) => {
      const b = req.body as { name?: unknown; password?: unknown } | undefined;
      if (typeof b?.name !== 'string' || typeof b.password !== 'string') return reply.code(400).send({ error: 'give name and password (JSON strings)' });
      const op = await operators.verify(b.name, b.password);
      if (op === null) {
        o.log?.(`console: login refused for ${JSON.stringify(b.name.slice(0, 64))} from ${req.ip}`);
        return reply.code(401).send({ error: 'wrong name or password' });
      }
      return openSession(req, reply, op, '');
    });
    // An operator certificate of the deployment CA (verified by TLS against the CA and its CRL), CN subline.operator.NAME, of an operator in the table.
    app.post('/api/login/certificate', { config: { rateLimit: { max: o.loginsPerMinute ?? 10, timeWindow: 60_000 } } }, async (req, reply) => {
      const socket = req.raw.socket as TLSSocket;
      const cert = typeof socket.getPeerCertificate === 'function' && socket.authorized === true ? socket.getPeerCertificate() : null;
      const cn = cert?.subject?.CN;
      const name = typeof cn === 'string' && cn.startsWith(OPERATOR_PREFIX) ? cn.slice(OPERATOR_PREFIX.length) : null;
      const op = name === null ? undefined : await operators.get(name);
      if (op === undefined || op.disabled) {
        o.log?.(`console: certificate login refused from ${req.ip}${typeof cn === 'string' ? ` (${cn})` : ''}`);
        return reply.code(401).send({ error: 'no valid operator certificate of this deployment, or no such operator' });
      }
      return openSession(req, reply, op, ' with a certificate');
    });
    app.get('/api/session', (req) => {
      const s = (req as FastifyRequest & { session: Session }).session;
      return { name: s.operator, role: s.role, csrf: s.csrf };
    });
    app.post('/api/logout', (req, reply) => {
      const id = req.cookies[COOKIE];
      if (id !== undefined) sessions.delete(id);
      void reply.clearCookie(COOKIE, { path: '/' });
      return { ok: true };
    });

    app.get('/api/gates', () => fleetView(central.store, { list: central.list, now: Math.floor(Date.now() / 1000) }));
    app.get('/api/gates/:gate', async (req, reply) => {
      const gate = (req.params as { gate: string }).gate;
      const fleet = await fleetView(central.store, { list: central.list, now: Math.floor(Date.now() / 1000) });
      const g = fleet.gates.find((x) => x.gate === gate);
      if (g === undefined) return reply.code(404).send({ error: `no gate '${gate}'` });
      const recent = await query.latest({ gate }, 50);
      const alarms = await query.latest({ gate, type: 'alarm' }, 20);
      return { gate: g, list: fleet.list, passages: recent, alarms };
    });

    app.get('/api/events', async (req, reply) => {
      const q = req.query as Record<string, string | string[] | undefined>;
      const { filter, limit, csv } = searchOf(q, central);
      const rows: QueriedEvent[] = [];
      try {
        for await (const e of query.find(filter, limit)) rows.push(e);
      } catch (e) {
        if (e instanceof EventFilterError) throw badRequest(e.message);
        throw e;
      }
      if (!csv) return { events: rows, count: rows.length, limit };
      const columns = ['time', 'gate', 'site', 'line', 'direction', 'type', 'reason', 'level', 'key', 'subject', 'institution', 'epoch', 'seq', 'clockUntrusted', 'receivedAt'] as const;
      void reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="passages.csv"');
      return stringify(rows.map((e) => columns.map((c) => spreadsheetSafe(e[c] ?? ''))), { header: true, columns: [...columns] });
    });

    app.get('/api/stream', (req, reply) => {
      const session = req.cookies[COOKIE]!; // the hook checked it
      if (streams.size >= MAX_STREAMS) return reply.code(503).send({ error: 'too many live streams open' });
      let mine = 0;
      for (const st of streams) if (st.session === session) mine++;
      if (mine >= MAX_STREAMS_PER_SESSION) return reply.code(429).send({ error: `at most ${MAX_STREAMS_PER_SESSION} live streams per session` });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': subline console stream\n\n');
      const stream: Stream = { res, session };
      streams.add(stream);
      const stop = feed.subscribe((event, data) => {
        // A reader that does not keep up is dropped, not buffered for without end.
        if (res.writableLength > STREAM_BUFFER_BYTES) return void res.destroy();
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      });
      res.on('close', () => {
        stop();
        streams.delete(stream);
      });
    });

    // A stream lives only as long as its session: logout, expiry or a dropped session end it.
    const sweep = setInterval(() => {
      for (const st of streams) {
        const sess = sessions.get(st.session);
        if (sess === undefined || sess.expires < Date.now()) st.res.end();
      }
    }, 1000);
    sweep.unref();

    await app.listen({ host, port: o.port ?? 0 });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : (o.port ?? 0);
    const shown = host.includes(':') ? `[${host}]` : host;
    return new ConsoleServer(app, `${secure ? 'https' : 'http'}://${shown}:${port}/`, feed, streams, sweep);
  }

  #closed: Promise<void> | null = null;

  /** Stops serving (again: the same promise). */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#feed.close();
    // Open streams would hold the server open (and a browser reconnects): end them first.
    for (const st of this.#streams) st.res.end();
    this.#streams.clear();
    await this.#app.close();
  }
}

/** What answers without a session: the page, its assets (by prefix) and the two logins. */
const PUBLIC_ROUTES = new Set(['GET /', 'HEAD /', 'POST /api/login', 'POST /api/login/certificate']);

/** The Host header names this loopback server (127.0.0.1, localhost or ::1, on its port). */
function localHost(header: string | undefined, app: FastifyInstance): boolean {
  if (header === undefined) return false;
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : -1;
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+)(?::(\d+))?$/.exec(header.trim().toLowerCase());
  if (m === null) return false;
  const name = m[1]!;
  const p = m[2] === undefined ? 80 : Number(m[2]);
  return p === port && (name === 'localhost' || name === '[::1]' || /^127(\.\d{1,3}){3}$/.test(name));
}

/** A cell a spreadsheet would run as a formula (=, +, -, @ first) gets a leading quote. */
function spreadsheetSafe(v: string | number | boolean | null): string | number | boolean | null {
  return typeof v === 'string' && /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function pruneSessions(sessions: Map<string, Session>): void {
  const now = Date.now();
  for (const [id, s] of sessions) if (s.expires < now) sessions.delete(id);
  // Still full: the oldest go (insertion order).
  for (const id of sessions.keys()) {
    if (sessions.size < MAX_SESSIONS) break;
    sessions.delete(id);
  }
}

function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

const one = (v: string | string[] | undefined, name: string): string | undefined => {
  if (Array.isArray(v)) throw badRequest(`${name} given more than once`);
  return v === undefined || v === '' ? undefined : v;
};

function seconds(v: string | undefined, name: string, endOfDay: boolean): number | undefined {
  if (v === undefined) return undefined;
  let s: number;
  if (/^\d{1,10}$/.test(v)) s = Number(v);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(v)) s = Date.parse(`${v}T00:00:00Z`) / 1000 + (endOfDay ? 86_399 : 0);
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/.test(v)) s = Math.floor(Date.parse(/(Z|[+-]\d{2}:\d{2})$/.test(v) ? v : `${v}Z`) / 1000);
  else throw badRequest(`${name} '${v.slice(0, 40)}': a date (2027-01-01), an ISO date and time or UTC seconds`);
  if (!Number.isSafeInteger(s) || s < 0 || s > 0xffffffff) throw badRequest(`${name} '${v.slice(0, 40)}' is not a valid time`);
  return s;
}

const ALLOWED = new Set(['subject', 'card', 'uhf', 'key', 'institution', 'gate', 'site', 'line', 'direction', 'reason', 'type', 'denied', 'from', 'to', 'limit', 'format']);

/** The search a query string asks for (400 for anything malformed). */
function searchOf(q: Record<string, string | string[] | undefined>, central: Central): { filter: EventFilter; limit: number; csv: boolean } {
  for (const k of Object.keys(q)) if (!ALLOWED.has(k)) throw badRequest(`unknown parameter '${k.slice(0, 40)}' (known: ${[...ALLOWED].join(', ')})`);
  const get = (k: string) => one(q[k], k);
  const hex = (k: string, min: number, max: number): Uint8Array | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const t = v.replace(/[\s:-]/g, '');
    if (!/^([0-9a-fA-F]{2})+$/.test(t) || t.length / 2 < min || t.length / 2 > max) throw badRequest(`${k} '${v.slice(0, 40)}': ${min === max ? `${min}` : `${min}-${max}`} bytes of hex as printed`);
    return fromHex(t.toLowerCase());
  };
  const ids = ['card', 'uhf', 'key'].filter((k) => get(k) !== undefined);
  if (ids.length > 1) throw badRequest('give one of card, uhf and key');
  const card = hex('card', 1, 64);
  const uhf = hex('uhf', 1, 64);
  const key = hex('key', 8, 8);
  const credential = card !== undefined ? central.registry.credentialKey('card', card) : uhf !== undefined ? central.registry.credentialKey('uhf', uhf) : key;
  const institution = get('institution');
  if (institution !== undefined && !/^\d{1,15}$/.test(institution)) throw badRequest(`institution '${institution.slice(0, 40)}': an institution id (a number)`);
  const idLike = (k: string): string | undefined => {
    const v = get(k);
    if (v !== undefined && (v.length > 128 || /[\u0000-\u001f]/.test(v))) throw badRequest(`${k}: at most 128 printable characters`);
    return v;
  };
  const limitText = get('limit');
  const limit = limitText === undefined ? 200 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > SEARCH_MAX) throw badRequest(`limit '${limitText ?? ''}': 1-${SEARCH_MAX}`);
  const format = get('format') ?? 'json';
  if (format !== 'json' && format !== 'csv') throw badRequest(`format '${format.slice(0, 20)}': json or csv`);
  const since = seconds(get('from'), 'from', false);
  const until = seconds(get('to'), 'to', true);
  if (since !== undefined && until !== undefined && since > until) throw badRequest('from is after to');
  const denied = get('denied');
  if (denied !== undefined && denied !== 'true' && denied !== 'false') throw badRequest('denied: true or false');
  const filter: EventFilter = {
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(idLike('gate') !== undefined ? { gate: idLike('gate') } : {}),
    ...(idLike('site') !== undefined ? { site: idLike('site') } : {}),
    ...(idLike('line') !== undefined ? { line: idLike('line') } : {}),
    ...(idLike('direction') !== undefined ? { direction: idLike('direction') } : {}),
    ...(idLike('subject') !== undefined ? { subject: idLike('subject') } : {}),
    ...(institution !== undefined ? { institution: Number(institution) } : {}),
    ...(credential !== undefined ? { credential } : {}),
    ...(idLike('reason') !== undefined ? { reason: idLike('reason') } : {}),
    ...(idLike('type') !== undefined ? { type: idLike('type') } : {}),
    ...(denied === 'true' ? { denied: true } : {}),
  };
  return { filter, limit, csv: format === 'csv' };
}
