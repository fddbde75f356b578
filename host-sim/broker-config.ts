// `subline broker config` (issue 13): a complete Mosquitto configuration from
// a central's data directory, written into one folder:
//   mosquitto.conf      per_listener_settings; a TLS listener (client certificates
//                       from the deployment CA required, the CN is the username,
//                       CRL checked, TLS 1.2 with ECDHE suites only, for the gates) and a password listener on 127.0.0.1 only
//                       (labs and host tools); nothing anonymous on either
//   acl                 broker-acl.ts's rules for the central, the operators and
//                       every ACTIVE gate of the registry
//   passwords           Mosquitto's PBKDF2-SHA512 ($7$) entries for the central and
//                       each operator (the plain passwords go to
//                       <data>/pki/broker-passwords.json, 0600, for the host tools)
//   ca.crt.pem broker.crt.pem broker.key.pem crl.pem   copies from <data>/pki
//   subline-broker.json what was written (ports, counts), read by broker.ts
//   persist/            Mosquitto's retained messages across restarts
// Run it again after provisioning or decommissioning a gate (or revoking a
// certificate), then SIGHUP the broker: everything is regenerated from the
// registry and the PKI; existing passwords are kept.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { BrokerAcl, messageSizeLimit } from './broker-acl.js';
import { openCentralStore, openDb, StoreOpenError } from './central/store/open-store.js';
import { isPostgresUrl, redactUrl } from './central/store/sql-db.js';
import { CENTRAL_IDENTITY, DeploymentPki } from './pki/deployment-pki.js';
import { isValidRoot } from '../protocol/topics.js';

export const SUMMARY_FILE = 'subline-broker.json';
export const PASSWORDS_FILE = 'broker-passwords.json';
export const DEFAULT_TLS_PORT = 8883;
export const DEFAULT_PASSWORD_PORT = 1883;
/** mosquitto_passwd's defaults (Mosquitto 2.0): 12-byte salt, 101 iterations. The passwords are random, so more iterations would only slow every connect. */
const PBKDF2_ITERATIONS = 101;

export interface BrokerConfigOptions {
  /** The central's data directory (central.db, pki/). */
  readonly data: string;
  /** The central's database when not DATA/central.db (a postgres:// URL or a SQLite path). */
  readonly db?: string;
  /** Where to write the configuration. */
  readonly out: string;
  /** The password listener's port (always on 127.0.0.1). */
  readonly port?: number;
  readonly tlsPort?: number;
  /** The TLS listener's bind address (default: every interface). */
  readonly host?: string;
  readonly topicRoot?: string;
}

export interface BrokerConfigSummary {
  readonly out: string;
  readonly conf: string;
  readonly tls: { readonly host: string | null; readonly port: number };
  readonly password: { readonly host: '127.0.0.1'; readonly port: number };
  readonly topicRoot: string;
  readonly gates: number;
  readonly operators: readonly string[];
  readonly messageSizeLimit: number;
  readonly user: string;
  /** Where the plain passwords of the password listener are. */
  readonly passwords: string;
}

/** `kind` input: bad options (exit 2); missing: no database or PKI in the data directory (exit 3). */
export class BrokerConfigError extends Error {
  constructor(
    message: string,
    /** unreachable: the database server did not answer. */
    readonly kind: 'input' | 'missing' | 'unreachable',
  ) {
    super(message);
    this.name = 'BrokerConfigError';
  }
}

/** One line of a Mosquitto 2.0 password file: user:$7$iterations$salt$hash (PBKDF2-HMAC-SHA512, base64). */
export function mosquittoPasswordEntry(user: string, password: string, salt: Uint8Array = randomBytes(12)): string {
  if (user.includes(':') || /\s/.test(user)) throw new BrokerConfigError(`username '${user}' cannot go into a password file`, 'input');
  const hash = pbkdf2Sync(password, salt, PBKDF2_ITERATIONS, 64, 'sha512');
  return `${user}:$7$${PBKDF2_ITERATIONS}$${Buffer.from(salt).toString('base64')}$${hash.toString('base64')}`;
}

/** The plain passwords written by broker config (identity -> password); empty if none yet. */
export function readBrokerPasswords(data: string): Map<string, string> {
  const p = join(resolve(data), 'pki', PASSWORDS_FILE);
  if (!existsSync(p)) return new Map();
  const v = JSON.parse(readFileSync(p, 'utf8')) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BrokerConfigError(`${p}: not a JSON object (corrupt?)`, 'input');
  return new Map(Object.entries(v as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** The ACL of a data directory: its active gates, its operators (not revoked) and the central. */
export async function aclOfData(data: string, topicRoot = 'subline', db?: string): Promise<BrokerAcl> {
  return (await readDeployment(resolve(data), topicRoot, db)).acl;
}

async function readDeployment(data: string, topicRoot: string, dbTarget?: string): Promise<{ acl: BrokerAcl; pki: DeploymentPki; gates: number; operators: string[] }> {
  const db = dbTarget === undefined ? join(data, 'central.db') : isPostgresUrl(dbTarget) ? dbTarget : resolve(dbTarget);
  if (!isPostgresUrl(db) && !existsSync(db)) throw new BrokerConfigError(`no database at ${db}: run \`subline central init --data ${data}\` first (or pass --data)`, 'missing');
  const pkiDir = join(data, 'pki');
  if (!DeploymentPki.exists(pkiDir)) throw new BrokerConfigError(`no deployment PKI in ${pkiDir}: run \`subline central init --data ${data}\` (it creates one)`, 'missing');
  const pki = await DeploymentPki.load(pkiDir);
  let gates;
  try {
    const store = await openCentralStore(await openDb(db));
    try {
      gates = (await store.identities.all()).filter((g) => g.state === 'active');
    } finally {
      await store.close();
    }
  } catch (e) {
    if (e instanceof StoreOpenError) throw new BrokerConfigError(e.code === 'unreachable' ? `${e.message} (is the database server running? check --db / SUBLINE_DB)` : `${redactUrl(db)}: ${e.message}`, e.code === 'unreachable' ? 'unreachable' : 'missing');
    if (e instanceof Error && e.name === 'SchemaError') throw new BrokerConfigError(e.message, 'missing');
    throw e;
  }
  const operators = [...new Set(pki.issued().filter((c) => c.role === 'operator' && c.revokedAt === undefined).map((c) => c.cn))];
  const acl = new BrokerAcl({ topicRoot, gates: gates.map((g) => ({ id: g.gate, list: g.list })), central: CENTRAL_IDENTITY, operators });
  return { acl, pki, gates: gates.length, operators };
}

function checkPort(n: number | undefined, fallback: number, what: string): number {
  const p = n ?? fallback;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BrokerConfigError(`${what} must be a port in 1..65535 (got ${String(n)})`, 'input');
  return p;
}

/** The login name of a uid (Mosquitto's `user` takes a name), from /etc/passwd or `id`. */
function userName(uid: number): string {
  if (typeof process.getuid === 'function' && process.getuid() === uid) return userInfo().username;
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === String(uid) && f[0] !== undefined && f[0] !== '') return f[0];
    }
  } catch {
    /* fall through */
  }
  try {
    return execFileSync('id', ['-nu', String(uid)], { encoding: 'utf8' }).trim();
  } catch {
    throw new BrokerConfigError(`no user name for uid ${uid} (the owner of the output directory)`, 'input');
  }
}

const te = new TextEncoder();

export async function writeBrokerConfig(options: BrokerConfigOptions): Promise<BrokerConfigSummary> {
  const data = resolve(options.data);
  const out = resolve(options.out);
  const port = checkPort(options.port, DEFAULT_PASSWORD_PORT, '--port');
  const tlsPort = checkPort(options.tlsPort, DEFAULT_TLS_PORT, '--tls-port');
  if (port === tlsPort) throw new BrokerConfigError(`--port and --tls-port are both ${port}`, 'input');
  const host = options.host ?? null;
  if (host !== null && !/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45})$/.test(host)) throw new BrokerConfigError(`--host '${host}' is not a host name or an IP address`, 'input');
  const topicRoot = options.topicRoot ?? 'subline';
  if (!isValidRoot(topicRoot)) throw new BrokerConfigError(`--topic-root '${topicRoot}' must be 1-4 segments of [A-Za-z0-9._-], each 1-32 characters`, 'input');
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new BrokerConfigError(`--out ${out} exists and is not a directory`, 'input');
    // Never write over a folder this command did not make (say /etc/mosquitto).
    if (readdirSync(out).length > 0 && !existsSync(join(out, SUMMARY_FILE))) throw new BrokerConfigError(`--out ${out} is not empty and was not written by \`subline broker config\` (no ${SUMMARY_FILE}): choose an empty or new directory`, 'input');
  }
  const { acl, pki, gates, operators } = await readDeployment(data, topicRoot, options.db);

  mkdirSync(join(out, 'persist'), { recursive: true, mode: 0o700 });
  const user = userName(statSync(out).uid);

  // Passwords: kept for identities that have one, new for the others; only the central's and the operators'.
  const passwordsPath = join(pki.dir, PASSWORDS_FILE);
  const previous = readBrokerPasswords(data);
  const passwords: Record<string, string> = {};
  for (const id of [CENTRAL_IDENTITY, ...operators]) passwords[id] = previous.get(id) ?? randomBytes(24).toString('base64url');
  writeFileAtomic(passwordsPath, te.encode(`${JSON.stringify(passwords, null, 1)}\n`), { mode: 0o600 });
  writeFileAtomic(join(out, 'passwords'), te.encode(Object.entries(passwords).map(([u, p]) => `${mosquittoPasswordEntry(u, p)}\n`).join('')), { mode: 0o600 });

  const files = pki.serverFiles();
  const copy = (from: string, name: string, mode: number) => {
    const to = join(out, name);
    writeFileAtomic(to, readFileSync(from), { mode });
    return to;
  };
  const ca = copy(files.ca, 'ca.crt.pem', 0o644);
  const cert = copy(files.cert, 'broker.crt.pem', 0o644);
  const key = copy(files.key, 'broker.key.pem', 0o600);
  const crl = copy(files.crl, 'crl.pem', 0o644);
  const aclPath = join(out, 'acl');
  writeFileAtomic(aclPath, te.encode(acl.mosquittoAcl()), { mode: 0o644 });

  const limit = messageSizeLimit();
  const conf = join(out, 'mosquitto.conf');
  const text = [
    `# Generated by \`subline broker config --data ${data}\`; do not edit (run it again).`,
    '# Start: mosquitto -c <this file>. After provisioning or decommissioning a gate,',
    '# or revoking a certificate: run `subline broker config` again, then SIGHUP mosquitto.',
    'per_listener_settings true',
    `# Started as root, Mosquitto switches to this user: the owner of ${out}, who can read the keys and the ACL.`,
    `user ${user}`,
    'persistence true',
    `persistence_location ${join(out, 'persist')}/`,
    `# The protocol's largest message (a signed manifest); anything bigger is dropped.`,
    `message_size_limit ${limit}`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    '',
    '# The gates, the central and operators: a client certificate from the deployment CA; its CN is the username.',
    `listener ${tlsPort}${host !== null ? ` ${host}` : ''}`,
    'allow_anonymous false',
    `cafile ${ca}`,
    `certfile ${cert}`,
    `keyfile ${key}`,
    `crlfile ${crl}`,
    'require_certificate true',
    'use_identity_as_username true',
    '# The minimum: TLS 1.2 (Moddable\'s TLS client) or newer.',
    'tls_version tlsv1.2',
    "# TLS 1.2 suites: ECDHE only (forward secrecy). Without this line OpenSSL picks static-RSA AES256-SHA256 for a",
    "# Moddable gate, which offers RSA key exchange first. TLS 1.3 clients (Node's) are not affected (ciphers_tls1.3).",
    'ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
    `acl_file ${aclPath}`,
    '',
    '# Loopback only, for labs and host tools: the central and operators with the passwords in',
    `# ${passwordsPath}. Never expose it: passwords travel in clear text here.`,
    `listener ${port} 127.0.0.1`,
    'allow_anonymous false',
    `password_file ${join(out, 'passwords')}`,
    `acl_file ${aclPath}`,
    '',
  ].join('\n');
  const summary: BrokerConfigSummary = {
    out,
    conf,
    tls: { host, port: tlsPort },
    password: { host: '127.0.0.1', port },
    topicRoot,
    gates,
    operators,
    messageSizeLimit: limit,
    user,
    passwords: passwordsPath,
  };
  writeFileAtomic(conf, te.encode(text), { mode: 0o644 });
  writeFileAtomic(join(out, SUMMARY_FILE), te.encode(`${JSON.stringify(summary, null, 1)}\n`), { mode: 0o644 });
  // Run as root for a folder someone else owns: hand the files to that owner, the `user` Mosquitto switches to.
  const owner = statSync(out);
  if (typeof process.getuid === 'function' && process.getuid() === 0 && owner.uid !== 0) {
    for (const f of [join(out, 'persist'), join(out, 'passwords'), ca, cert, key, crl, aclPath, conf, join(out, SUMMARY_FILE)]) chownSync(f, owner.uid, owner.gid);
  }
  return summary;
}
