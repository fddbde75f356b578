// The people who log in to the console (host-sim/console/): a name, a role
// and a password hash, in the central's database (schema 4, `operators`), so
// every central process sharing a PostgreSQL database knows the same
// operators. Passwords are hashed with node:crypto's scrypt (N 2^15, r 8, p 1,
// 32-byte key, 16-byte salt), stored as scrypt$N$r$p$salt$hash (base64url), and
// compared in constant time; an unknown name costs the same hash, so timing
// does not tell which names exist.
//
// Roles: viewer (reads), operator (reads and acts), admin (also manages
// operators). `add` without a password makes a one-time one and returns it
// once; only its hash is kept.

import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { SqlDb } from './store/sql-db.js';

export const OPERATOR_ROLES = ['viewer', 'operator', 'admin'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export interface Operator {
  readonly name: string;
  readonly role: OperatorRole;
  /** UTC seconds. */
  readonly createdAt: number;
  readonly disabled: boolean;
}

export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

const SCRYPT = { N: 1 << 15, r: 8, p: 1, keyBytes: 32, saltBytes: 16 } as const;
/** A given password's least length (a generated one has 20 characters of base64url: 120 bits). */
export const MIN_PASSWORD_LENGTH = 12;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function scrypt(password: string, salt: Uint8Array, o: { N: number; r: number; p: number; keyBytes: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, o.keyBytes, options, (e, key) => (e !== null ? reject(e) : resolve(key))));
}

/** scrypt$N$r$p$salt$hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const key = await scrypt(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` hashes to `stored`; false for a malformed `stored` too. */
export async function checkPassword(password: string, stored: string): Promise<boolean> {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (m === null) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5]!, 'base64url');
  // Only parameters this build would write (a tampered row must not make a login cost minutes).
  if (N > 1 << 17 || r > 16 || p > 4 || expected.length < 16 || expected.length > 64) return false;
  const key = await scrypt(password, Buffer.from(m[4]!, 'base64url'), { N, r, p, keyBytes: expected.length });
  return timingSafeEqual(key, expected);
}

/** A one-time password: 20 characters of base64url (120 random bits). */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

export function isOperatorRole(v: string): v is OperatorRole {
  return (OPERATOR_ROLES as readonly string[]).includes(v);
}

interface Row {
  name: string;
  role: string;
  password: string;
  created_at: number;
  disabled: number;
}

const toOperator = (r: Row): Operator => ({ name: r.name, role: r.role as OperatorRole, createdAt: Number(r.created_at), disabled: Number(r.disabled) !== 0 });

export class OperatorStore {
  readonly #db: SqlDb;
  readonly #now: () => number;
  /** Hashed once: what an unknown name is checked against (same cost as a real one). */
  #dummy: Promise<string> | null = null;

  constructor(db: SqlDb, options: { readonly now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** A new operator; without `password` a one-time one is made. Returns the password (shown once). */
  async add(name: string, role: string, password?: string): Promise<{ operator: Operator; password: string }> {
    if (!NAME.test(name)) throw new OperatorError(`operator name '${name}': 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (!isOperatorRole(role)) throw new OperatorError(`role '${role}': one of ${OPERATOR_ROLES.join(', ')}`);
    const pw = password ?? generatePassword();
    checkNewPassword(pw);
    const hash = await hashPassword(pw);
    const operator: Operator = { name, role, createdAt: this.#now(), disabled: false };
    const added = await this.#db.run('INSERT INTO operators (name, role, password, created_at, disabled) VALUES (?, ?, ?, ?, 0) ON CONFLICT (name) DO NOTHING', [name, role, hash, operator.createdAt]);
    if (added === 0) throw new OperatorError(`operator '${name}' exists already`);
    return { operator, password: pw };
  }

  /** Replaces an operator's password (a one-time one without `password`); returns it. */
  async setPassword(name: string, password?: string): Promise<string> {
    const pw = password ?? generatePassword();
    checkNewPassword(pw);
    const changed = await this.#db.run('UPDATE operators SET password = ? WHERE name = ?', [await hashPassword(pw), name]);
    if (changed === 0) throw new OperatorError(`no operator '${name}'`);
    return pw;
  }

  /** The operator when name and password match and it is not disabled; null otherwise (the same time either way). */
  async verify(name: string, password: string): Promise<Operator | null> {
    const row = typeof name === 'string' && name.length <= 64 ? await this.#db.get<Row>('SELECT name, role, password, created_at, disabled FROM operators WHERE name = ?', [name]) : undefined;
    this.#dummy ??= hashPassword(generatePassword());
    const ok = await checkPassword(typeof password === 'string' ? password.slice(0, 1024) : '', row?.password ?? (await this.#dummy));
    if (row === undefined || !ok || Number(row.disabled) !== 0 || !isOperatorRole(row.role)) return null;
    return toOperator(row);
  }

  /** Disables (or enables again) an operator: a disabled one cannot log in, and the console drops its sessions. */
  async setDisabled(name: string, disabled: boolean): Promise<void> {
    const changed = await this.#db.run('UPDATE operators SET disabled = ? WHERE name = ?', [disabled ? 1 : 0, name]);
    if (changed === 0) throw new OperatorError(`no operator '${name}'`);
  }

  /**
   * What a session was opened on: role, not disabled, and a fingerprint of the
   * password hash (a new password changes it). Undefined when the operator is gone.
   */
  async standing(name: string): Promise<{ role: OperatorRole; disabled: boolean; credential: string } | undefined> {
    const row = await this.#db.get<Row>('SELECT name, role, password, created_at, disabled FROM operators WHERE name = ?', [name]);
    if (row === undefined || !isOperatorRole(row.role)) return undefined;
    return { role: row.role, disabled: Number(row.disabled) !== 0, credential: row.password.slice(-16) };
  }

  async get(name: string): Promise<Operator | undefined> {
    const row = await this.#db.get<Row>('SELECT name, role, password, created_at, disabled FROM operators WHERE name = ?', [name]);
    return row === undefined ? undefined : toOperator(row);
  }

  async list(): Promise<Operator[]> {
    return (await this.#db.all<Row>('SELECT name, role, password, created_at, disabled FROM operators ORDER BY name')).map(toOperator);
  }

  async count(role?: OperatorRole): Promise<number> {
    const r = role === undefined ? await this.#db.get<{ n: number }>('SELECT COUNT(*) AS n FROM operators') : await this.#db.get<{ n: number }>('SELECT COUNT(*) AS n FROM operators WHERE role = ?', [role]);
    return Number(r?.n ?? 0);
  }
}

function checkNewPassword(pw: string): void {
  if (pw.length < MIN_PASSWORD_LENGTH) throw new OperatorError(`a password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  if (pw.length > 1024) throw new OperatorError('a password has at most 1024 characters');
}
