// Read-only queries over the registry for people who ask "who is this, and
// does it pass?" (`subline central people|... list|show`, `central who-has`).
// Registry (registry.ts) owns the writes and the gate-facing reads; this
// class answers listings with filters and one-entity views, on SQLite and
// PostgreSQL alike: every value is a `?` parameter, and where clauses are
// built only from the filters given (PostgreSQL cannot type a parameter that
// is only compared with NULL).
//
// What a gate would say is modelled after firmware/core/decision.ts (steps
// 5-7): credential (unknown, revoked), then the subject's, its institution's
// and its industry's suspension, then the grants — individual, institution,
// industry, tried in that order at the tap, the first that matches the
// gate's line, direction, lane and time opens (they add up, none overrides
// another). Line, direction, lane, schedule and anti-passback depend on the
// gate and the moment, so "passes" here means: enrolled, not suspended, and
// holding at least one grant whose validity window contains now.

import { toHex } from '../../protocol/hex.js';
import type { ReasonName } from '../../protocol/reasons.js';
import { UNBOUNDED_UNTIL } from '../../protocol/whitelist-format.js';
import type { GrantSpec } from './image-builder.js';
import type { CredentialKind, GrantLevel, SubjectKind, SuspensionLevel } from './registry.js';
import type { SqlDb, SqlValue } from './store/sql-db.js';

/** A subject in a listing: `revoked` = no active credential; `suspended` = it, its institution or its industry is suspended; else `active`. */
export type SubjectState = 'active' | 'suspended' | 'revoked';

export interface Page {
  readonly limit: number;
  readonly offset: number;
}

export interface SubjectFilter extends Page {
  readonly kind: SubjectKind;
  /** Any of these institutions (an exact name may name several). */
  readonly institutions?: readonly number[];
  readonly industry?: number;
  /** Case-insensitive substring of the name. */
  readonly name?: string;
  readonly state?: SubjectState;
}

export interface GrantRef {
  readonly level: GrantLevel;
  readonly grant: number;
}

export interface SubjectRow {
  readonly id: string;
  readonly kind: SubjectKind;
  readonly name: string;
  readonly institution: number | null;
  readonly institutionName: string | null;
  readonly industry: number | null;
  readonly industryCode: string | null;
  readonly activeCredentials: number;
  readonly revokedCredentials: number;
  /** The grants that apply, in the order a gate tries them. */
  readonly grants: readonly GrantRef[];
  /** The levels whose suspension is in effect for it. */
  readonly suspended: readonly SuspensionLevel[];
  readonly state: SubjectState;
}

export interface InstitutionRow {
  readonly id: number;
  readonly name: string;
  readonly industry: number | null;
  readonly industryCode: string | null;
  readonly subjects: number;
  readonly grant: number | null;
  /** 'institution' (itself) and/or 'industry' (its industry). */
  readonly suspended: readonly ('institution' | 'industry')[];
  readonly state: 'active' | 'suspended';
}

export interface IndustryRow {
  readonly id: number;
  readonly code: string;
  readonly name: string;
  readonly institutions: number;
  readonly subjects: number;
  readonly grant: number | null;
  readonly state: 'active' | 'suspended';
}

/** A grant assignment: which rights a level's target holds. */
export interface GrantRow {
  readonly grant: number;
  readonly level: GrantLevel;
  /** As stored: a subject id, or an institution's or industry's id in decimal. */
  readonly target: string;
  /** The subject's, institution's or industry's name (null if the target is gone). */
  readonly targetName: string | null;
  readonly spec: GrantSpec;
}

export interface CredentialView {
  /** 16 hex digits, as `central events` shows keys. */
  readonly key: string;
  readonly kind: CredentialKind;
  readonly revoked: boolean;
  /** UTC seconds; null when active, or revoked before the registry kept the time. */
  readonly revokedAt: number | null;
}

export interface Suspension {
  readonly level: SuspensionLevel;
  readonly target: string;
  readonly name: string;
}

/** What a gate would answer, as far as the registry can tell (see the file comment). */
export interface Effective {
  readonly passes: boolean;
  /** `granted`, or the gate's reason for refusing. */
  readonly reason: Extract<ReasonName, 'granted' | 'unknown_credential' | 'revoked' | 'subject_suspended' | 'institution_suspended' | 'industry_suspended' | 'no_grant' | 'outside_validity'>;
}

export interface SubjectDetail extends SubjectRow {
  readonly industryName: string | null;
  readonly credentials: readonly CredentialView[];
  /** The grants that apply with their rights, in the order a gate tries them. */
  readonly grantDetails: readonly GrantRow[];
  readonly suspensions: readonly Suspension[];
  readonly effective: Effective;
}

export interface InstitutionDetail extends InstitutionRow {
  readonly industryName: string | null;
  readonly subjectsByKind: Readonly<Record<SubjectKind, number>>;
  readonly activeCredentials: number;
  /** Its own grant, and its industry's (which its members hold too). */
  readonly grantDetails: readonly GrantRow[];
}

export interface IndustryDetail extends IndustryRow {
  readonly activeCredentials: number;
  readonly grantDetail: GrantRow | null;
}

export interface GrantDetail {
  readonly id: number;
  /** null: retired (nothing refers to it any more; its id is never reused). */
  readonly spec: GrantSpec | null;
  readonly assignments: readonly Omit<GrantRow, 'spec'>[];
}

export interface CredentialHolder extends CredentialView {
  readonly subject: string;
}

const LEVEL_ORDER = "CASE a.level WHEN 'individual' THEN 0 WHEN 'institution' THEN 1 ELSE 2 END";
const suspendedExpr = (level: SuspensionLevel, target: string): string =>
  `CASE WHEN EXISTS (SELECT 1 FROM suspensions sp WHERE sp.level = '${level}' AND sp.target = ${target} AND sp.active <> 0) THEN 1 ELSE 0 END`;

/** LIKE pattern for a substring, with LIKE's wildcards in it taken literally (ESCAPE '\'). */
const containsPattern = (text: string): string => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
const NAME_LIKE = (column: string): string => `lower(${column}) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\'`;

const keyHex = (k: unknown): string => toHex(k as Uint8Array);
const flag = (v: unknown): boolean => Number(v) !== 0;

interface SubjectSqlRow {
  id: string;
  kind: SubjectKind;
  name: string;
  institution: number | null;
  institution_name: string | null;
  industry: number | null;
  industry_code: string | null;
  active_credentials: number;
  revoked_credentials: number;
  individual_grant: number | null;
  institution_grant: number | null;
  industry_grant: number | null;
  subject_suspended: number;
  institution_suspended: number;
  industry_suspended: number;
}

export class RegistryReader {
  readonly #db: SqlDb;

  constructor(db: SqlDb) {
    this.#db = db;
  }

  // ---------------------------------------------------------------- names

  /** Institutions by id (digits) or exact name: the ids (several when the name is shared; none when unknown). */
  async institutionIds(ref: string): Promise<number[]> {
    if (/^\d+$/.test(ref)) return (await this.#db.get('SELECT id FROM institutions WHERE id = ?', [Number(ref)])) === undefined ? [] : [Number(ref)];
    return (await this.#db.rows('SELECT id FROM institutions WHERE name = ? ORDER BY id', [ref])).map(([id]) => Number(id));
  }

  /** An industry by id (digits) or code. */
  async industryId(ref: string): Promise<number | undefined> {
    const r = /^\d+$/.test(ref)
      ? await this.#db.get<{ id: number }>('SELECT id FROM industries WHERE id = ?', [Number(ref)])
      : await this.#db.get<{ id: number }>('SELECT id FROM industries WHERE code = ?', [ref]);
    return r === undefined ? undefined : Number(r.id);
  }

  // ---------------------------------------------------------------- listings (limit + 1 rows read: `more` says whether a next page exists)

  async subjects(f: SubjectFilter): Promise<{ rows: SubjectRow[]; more: boolean }> {
    const where = ['s.kind = ?'];
    const params: SqlValue[] = [f.kind];
    if (f.institutions !== undefined) {
      // An empty set matches nothing (IN () is not SQL).
      where.push(f.institutions.length === 0 ? '1 = 0' : `s.institution IN (${f.institutions.map(() => '?').join(', ')})`);
      params.push(...f.institutions);
    }
    if (f.industry !== undefined) {
      where.push('i.industry = ?');
      params.push(f.industry);
    }
    if (f.name !== undefined) {
      where.push(NAME_LIKE('s.name'));
      params.push(containsPattern(f.name));
    }
    const suspendedSum = 'x.subject_suspended + x.institution_suspended + x.industry_suspended';
    const state = { revoked: 'x.active_credentials = 0', suspended: `x.active_credentials > 0 AND ${suspendedSum} > 0`, active: `x.active_credentials > 0 AND ${suspendedSum} = 0` };
    const outer = f.state === undefined ? '' : `WHERE ${state[f.state]}`;
    const rows = await this.#db.all<SubjectSqlRow>(`SELECT * FROM (${this.#subjectSelect(where.join(' AND '))}) x ${outer} ORDER BY x.id LIMIT ? OFFSET ?`, [...params, f.limit + 1, f.offset]);
    return { rows: rows.slice(0, f.limit).map(subjectRow), more: rows.length > f.limit };
  }

  async institutions(f: Page & { readonly industry?: number; readonly name?: string }): Promise<{ rows: InstitutionRow[]; more: boolean }> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.industry !== undefined) {
      where.push('i.industry = ?');
      params.push(f.industry);
    }
    if (f.name !== undefined) {
      where.push(NAME_LIKE('i.name'));
      params.push(containsPattern(f.name));
    }
    const rows = await this.#db.all<InstitutionSqlRow>(`${INSTITUTION_SELECT} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY i.id LIMIT ? OFFSET ?`, [...params, f.limit + 1, f.offset]);
    return { rows: rows.slice(0, f.limit).map(institutionRow), more: rows.length > f.limit };
  }

  /** `name` matches the name or the code. */
  async industries(f: Page & { readonly name?: string }): Promise<{ rows: IndustryRow[]; more: boolean }> {
    const params: SqlValue[] = [];
    let where = '';
    if (f.name !== undefined) {
      where = `WHERE (${NAME_LIKE('d.name')} OR ${NAME_LIKE('d.code')})`;
      params.push(containsPattern(f.name), containsPattern(f.name));
    }
    const rows = await this.#db.all<IndustrySqlRow>(`${INDUSTRY_SELECT} ${where} ORDER BY d.id LIMIT ? OFFSET ?`, [...params, f.limit + 1, f.offset]);
    return { rows: rows.slice(0, f.limit).map(industryRow), more: rows.length > f.limit };
  }

  /**
   * Grant assignments, by grant id then level. `target` is taken as `central
   * grant --target` takes it: a subject id, an institution id or exact name,
   * an industry id or code.
   */
  async grants(f: Page & { readonly level?: GrantLevel; readonly target?: string }): Promise<{ rows: GrantRow[]; more: boolean }> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.level !== undefined) {
      where.push('a.level = ?');
      params.push(f.level);
    }
    if (f.target !== undefined) {
      where.push("(a.target = ? OR (a.level = 'institution' AND i.name = ?) OR (a.level = 'industry' AND d.code = ?))");
      params.push(f.target, f.target, f.target);
    }
    const rows = await this.#db.all<GrantSqlRow>(`${GRANT_SELECT} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY a.grant_id, ${LEVEL_ORDER}, a.target LIMIT ? OFFSET ?`, [...params, f.limit + 1, f.offset]);
    return { rows: rows.slice(0, f.limit).map(grantRow), more: rows.length > f.limit };
  }

  // ---------------------------------------------------------------- one of each

  /** Everything about one subject; `now` (UTC seconds) decides which grants are valid. */
  async subject(id: string, now: number): Promise<SubjectDetail | undefined> {
    const r = await this.#db.get<SubjectSqlRow & { industry_name: string | null }>(`SELECT x.*, d.name AS industry_name FROM (${this.#subjectSelect('s.id = ?')}) x LEFT JOIN industries d ON d.id = x.industry`, [id]);
    if (r === undefined) return undefined;
    const row = subjectRow(r);
    const credentials = (await this.#db.all<{ key: Uint8Array; kind: CredentialKind; revoked: number; revoked_at: number | null }>('SELECT key, kind, revoked, revoked_at FROM credentials WHERE subject = ? ORDER BY key', [id])).map(
      (c): CredentialView => ({ key: keyHex(c.key), kind: c.kind, revoked: flag(c.revoked), revokedAt: flag(c.revoked) && c.revoked_at !== null ? Number(c.revoked_at) : null }),
    );
    const targets: [GrantLevel, string | null][] = [
      ['individual', row.id],
      ['institution', row.institution === null ? null : String(row.institution)],
      ['industry', row.industry === null ? null : String(row.industry)],
    ];
    const grantDetails = await this.#assignments(targets);
    const suspensions: Suspension[] = [];
    if (flag(r.subject_suspended)) suspensions.push({ level: 'subject', target: row.id, name: row.name });
    if (flag(r.institution_suspended)) suspensions.push({ level: 'institution', target: String(row.institution), name: row.institutionName ?? '' });
    if (flag(r.industry_suspended)) suspensions.push({ level: 'industry', target: String(row.industry), name: r.industry_name ?? '' });
    return { ...row, industryName: r.industry_name, credentials, grantDetails, suspensions, effective: effective(credentials, suspensions, grantDetails, now) };
  }

  async institution(id: number): Promise<InstitutionDetail | undefined> {
    const r = await this.#db.get<InstitutionSqlRow & { industry_name: string | null }>(`SELECT x.*, d.name AS industry_name FROM (${INSTITUTION_SELECT} WHERE i.id = ?) x LEFT JOIN industries d ON d.id = x.industry`, [id]);
    if (r === undefined) return undefined;
    const row = institutionRow(r);
    const byKind: Record<SubjectKind, number> = { person: 0, vehicle: 0, goods: 0 };
    for (const [kind, n] of await this.#db.rows('SELECT kind, COUNT(*) FROM subjects WHERE institution = ? GROUP BY kind', [id])) byKind[kind as SubjectKind] = Number(n);
    const credentials = await this.#db.get<{ n: number }>('SELECT COUNT(*) AS n FROM credentials c JOIN subjects s ON s.id = c.subject WHERE s.institution = ? AND c.revoked = 0', [id]);
    const grantDetails = await this.#assignments([
      ['institution', String(id)],
      ['industry', row.industry === null ? null : String(row.industry)],
    ]);
    return { ...row, industryName: r.industry_name, subjectsByKind: byKind, activeCredentials: Number(credentials?.n ?? 0), grantDetails };
  }

  async industry(id: number): Promise<IndustryDetail | undefined> {
    const r = await this.#db.get<IndustrySqlRow>(`${INDUSTRY_SELECT} WHERE d.id = ?`, [id]);
    if (r === undefined) return undefined;
    const credentials = await this.#db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM credentials c JOIN subjects s ON s.id = c.subject JOIN institutions i ON i.id = s.institution WHERE i.industry = ? AND c.revoked = 0',
      [id],
    );
    const [grantDetail] = await this.#assignments([['industry', String(id)]]);
    return { ...industryRow(r), activeCredentials: Number(credentials?.n ?? 0), grantDetail: grantDetail ?? null };
  }

  /** A grant and whom it is assigned to; undefined if the id was never used. */
  async grant(id: number): Promise<GrantDetail | undefined> {
    const g = await this.#db.get<{ spec: string | null }>('SELECT spec FROM grants WHERE id = ?', [id]);
    if (g === undefined) return undefined;
    const rows = await this.#db.all<GrantSqlRow>(`${GRANT_SELECT} WHERE a.grant_id = ? ORDER BY ${LEVEL_ORDER}, a.target`, [id]);
    return { id, spec: g.spec === null ? null : (JSON.parse(g.spec) as GrantSpec), assignments: rows.map((r) => ({ grant: Number(r.grant_id), level: r.level, target: r.target, targetName: r.target_name })) };
  }

  /** The credential with this 8-byte key, and its holder. */
  async credential(key: Uint8Array): Promise<CredentialHolder | undefined> {
    const c = await this.#db.get<{ key: Uint8Array; subject: string; kind: CredentialKind; revoked: number; revoked_at: number | null }>('SELECT key, subject, kind, revoked, revoked_at FROM credentials WHERE key = ?', [key]);
    if (c === undefined) return undefined;
    return { key: keyHex(c.key), subject: c.subject, kind: c.kind, revoked: flag(c.revoked), revokedAt: flag(c.revoked) && c.revoked_at !== null ? Number(c.revoked_at) : null };
  }

  // ---------------------------------------------------------------- internals

  /** The grant of each (level, target) that has one, in the given order. */
  async #assignments(targets: readonly (readonly [GrantLevel, string | null])[]): Promise<GrantRow[]> {
    const out: GrantRow[] = [];
    for (const [level, target] of targets) {
      if (target === null) continue;
      const r = await this.#db.get<GrantSqlRow>(`${GRANT_SELECT} WHERE a.level = ? AND a.target = ?`, [level, target]);
      if (r !== undefined) out.push(grantRow(r));
    }
    return out;
  }

  #subjectSelect(where: string): string {
    return `SELECT s.id, s.kind, s.name, s.institution, i.name AS institution_name, i.industry, d.code AS industry_code,
        (SELECT COUNT(*) FROM credentials c WHERE c.subject = s.id AND c.revoked = 0) AS active_credentials,
        (SELECT COUNT(*) FROM credentials c WHERE c.subject = s.id AND c.revoked <> 0) AS revoked_credentials,
        ga.grant_id AS individual_grant, gi.grant_id AS institution_grant, gd.grant_id AS industry_grant,
        ${suspendedExpr('subject', 's.id')} AS subject_suspended,
        ${suspendedExpr('institution', 'CAST(s.institution AS TEXT)')} AS institution_suspended,
        ${suspendedExpr('industry', 'CAST(i.industry AS TEXT)')} AS industry_suspended
      FROM subjects s
      LEFT JOIN institutions i ON i.id = s.institution
      LEFT JOIN industries d ON d.id = i.industry
      LEFT JOIN grant_assignments ga ON ga.level = 'individual' AND ga.target = s.id
      LEFT JOIN grant_assignments gi ON gi.level = 'institution' AND gi.target = CAST(s.institution AS TEXT)
      LEFT JOIN grant_assignments gd ON gd.level = 'industry' AND gd.target = CAST(i.industry AS TEXT)
      WHERE ${where}`;
  }
}

// ---------------------------------------------------------------- rows

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function subjectRow(r: SubjectSqlRow): SubjectRow {
  const grants: GrantRef[] = [];
  if (r.individual_grant !== null) grants.push({ level: 'individual', grant: Number(r.individual_grant) });
  if (r.institution_grant !== null) grants.push({ level: 'institution', grant: Number(r.institution_grant) });
  if (r.industry_grant !== null) grants.push({ level: 'industry', grant: Number(r.industry_grant) });
  const suspended: SuspensionLevel[] = [];
  if (flag(r.subject_suspended)) suspended.push('subject');
  if (flag(r.institution_suspended)) suspended.push('institution');
  if (flag(r.industry_suspended)) suspended.push('industry');
  const active = Number(r.active_credentials);
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    institution: num(r.institution),
    institutionName: r.institution_name,
    industry: num(r.industry),
    industryCode: r.industry_code,
    activeCredentials: active,
    revokedCredentials: Number(r.revoked_credentials),
    grants,
    suspended,
    state: active === 0 ? 'revoked' : suspended.length > 0 ? 'suspended' : 'active',
  };
}

interface InstitutionSqlRow {
  id: number;
  name: string;
  industry: number | null;
  industry_code: string | null;
  subjects: number;
  grant_id: number | null;
  suspended: number;
  industry_suspended: number;
}

const INSTITUTION_SELECT = `SELECT i.id, i.name, i.industry, d.code AS industry_code,
    (SELECT COUNT(*) FROM subjects s WHERE s.institution = i.id) AS subjects,
    g.grant_id,
    ${suspendedExpr('institution', 'CAST(i.id AS TEXT)')} AS suspended,
    ${suspendedExpr('industry', 'CAST(i.industry AS TEXT)')} AS industry_suspended
  FROM institutions i
  LEFT JOIN industries d ON d.id = i.industry
  LEFT JOIN grant_assignments g ON g.level = 'institution' AND g.target = CAST(i.id AS TEXT)`;

function institutionRow(r: InstitutionSqlRow): InstitutionRow {
  const suspended: ('institution' | 'industry')[] = [];
  if (flag(r.suspended)) suspended.push('institution');
  if (flag(r.industry_suspended)) suspended.push('industry');
  return { id: Number(r.id), name: r.name, industry: num(r.industry), industryCode: r.industry_code, subjects: Number(r.subjects), grant: num(r.grant_id), suspended, state: suspended.length > 0 ? 'suspended' : 'active' };
}

interface IndustrySqlRow {
  id: number;
  code: string;
  name: string;
  institutions: number;
  subjects: number;
  grant_id: number | null;
  suspended: number;
}

const INDUSTRY_SELECT = `SELECT d.id, d.code, d.name,
    (SELECT COUNT(*) FROM institutions i WHERE i.industry = d.id) AS institutions,
    (SELECT COUNT(*) FROM subjects s JOIN institutions i ON i.id = s.institution WHERE i.industry = d.id) AS subjects,
    g.grant_id,
    ${suspendedExpr('industry', 'CAST(d.id AS TEXT)')} AS suspended
  FROM industries d
  LEFT JOIN grant_assignments g ON g.level = 'industry' AND g.target = CAST(d.id AS TEXT)`;

function industryRow(r: IndustrySqlRow): IndustryRow {
  return { id: Number(r.id), code: r.code, name: r.name, institutions: Number(r.institutions), subjects: Number(r.subjects), grant: num(r.grant_id), state: flag(r.suspended) ? 'suspended' : 'active' };
}

interface GrantSqlRow {
  grant_id: number;
  level: GrantLevel;
  target: string;
  target_name: string | null;
  spec: string | null;
}

const GRANT_SELECT = `SELECT a.grant_id, a.level, a.target, g.spec,
    CASE a.level WHEN 'individual' THEN s.name WHEN 'institution' THEN i.name ELSE d.name END AS target_name
  FROM grant_assignments a
  JOIN grants g ON g.id = a.grant_id
  LEFT JOIN subjects s ON a.level = 'individual' AND s.id = a.target
  LEFT JOIN institutions i ON a.level = 'institution' AND CAST(i.id AS TEXT) = a.target
  LEFT JOIN industries d ON a.level = 'industry' AND CAST(d.id AS TEXT) = a.target`;

// An assigned grant always has its spec (only unassigned grants are retired); `lines: []` would never open.
const NEVER: GrantSpec = { lines: [], directions: [], lanes: [] };

function grantRow(r: GrantSqlRow): GrantRow {
  return { grant: Number(r.grant_id), level: r.level, target: r.target, targetName: r.target_name, spec: r.spec === null ? NEVER : (JSON.parse(r.spec) as GrantSpec) };
}

/** The gate's checks in its order (firmware/core/decision.ts), as far as they do not depend on the gate or the time of day. */
function effective(credentials: readonly CredentialView[], suspensions: readonly Suspension[], grants: readonly GrantRow[], now: number): Effective {
  if (credentials.length === 0) return { passes: false, reason: 'unknown_credential' };
  if (credentials.every((c) => c.revoked)) return { passes: false, reason: 'revoked' };
  for (const level of ['subject', 'institution', 'industry'] as const) {
    if (suspensions.some((s) => s.level === level)) return { passes: false, reason: `${level}_suspended` };
  }
  if (grants.length === 0) return { passes: false, reason: 'no_grant' };
  const valid = grants.some((g) => (g.spec.validFrom ?? 0) <= now && now <= (g.spec.validUntil ?? UNBOUNDED_UNTIL) && g.spec.lines.length > 0);
  return valid ? { passes: true, reason: 'granted' } : { passes: false, reason: 'outside_validity' };
}
