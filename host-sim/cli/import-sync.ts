// `subline central import --sync`: the files are the truth for the types
// they hold. Rows new to the registry are added, rows that differ are
// changed, and what the registry holds of those types but the files do not
// is removed — all in ONE registry transaction (Registry.bulk: one version,
// or consecutive ones when the records exceed a delta), or nothing at all.
//
// Identity by type: industries by code, institutions by name (the files have
// no institution ids), subjects by id, credentials by kind and raw id (their
// key), grants by level and target. Nothing is deleted (decisions/0018): ids
// are indices in every image and events name credentials, so "removed" means
// "grants nothing any more": a subject's active credentials are revoked and
// its individual grant removed; a credential is revoked; a grant assignment
// is removed; an institution or industry loses its grant. A subject's kind
// never changes (a row saying otherwise is refused).
//
// Scope: people, vehicles and consignments files sync the subjects of their
// kind (a `subjects` file: every kind). Credentials are synced for all
// subjects when a credentials file is given, else for the kinds whose files
// carry a card or uhf column. A reference into a synced type must point at
// a row of the files (a person naming an institution the sync removes is
// refused); references into other types resolve against the registry.

import { fromHex, toHex } from '../../protocol/hex.js';
import { CapacityError, RegistryError, type CredentialKind, type GrantLevel, type Registry, type SubjectKind } from '../central/registry.js';
import { CliError } from './cli-error.js';
import {
  DryRun, GRANT_COLUMNS, grantSpecOf, hexId, IMPLIED_KIND, industryRef, institutionRef, items, LEVELS, oneOf, ORDER, RowError, rowFail, registryCall, rowsOf, subjectOf, text, where,
  type ImportProgress, type ImportRow, type ImportSource, type ImportType,
} from './import.js';

export const SYNC_TYPES = ['industries', 'institutions', 'people', 'vehicles', 'consignments', 'credentials', 'grants'] as const;
export type SyncType = (typeof SYNC_TYPES)[number];
export type SyncCounts = Record<SyncType, number>;

const KINDS: readonly SubjectKind[] = ['person', 'vehicle', 'goods'];
const KIND_TYPE: Record<SubjectKind, SyncType> = { person: 'people', vehicle: 'vehicles', goods: 'consignments' };

export interface SyncSummary {
  readonly rows: number;
  /** The types the files are the truth for (subjects by kind). */
  readonly synced: readonly SyncType[];
  readonly added: SyncCounts;
  readonly changed: SyncCounts;
  readonly removed: SyncCounts;
  /** What the registry held of each type before: subjects by kind, active credentials, grant assignments. */
  readonly before: SyncCounts;
  /** Types of which the sync removes more than half of what the registry held. */
  readonly massRemovals: readonly SyncType[];
  readonly versionBefore: number;
  readonly versionAfter: number;
}

/** The sync would remove more than half of some type: rolled back, to be confirmed (`--yes`). */
export class MassRemovalError extends Error {
  constructor(readonly summary: SyncSummary) {
    super(`the sync would remove more than half of ${summary.massRemovals.join(', ')}`);
    this.name = 'MassRemovalError';
  }
}

export const zero = (): SyncCounts => Object.fromEntries(SYNC_TYPES.map((t) => [t, 0])) as SyncCounts;
export const total = (c: SyncCounts): number => SYNC_TYPES.reduce((n, t) => n + c[t], 0);

/** What the files are the truth for. */
interface Scope {
  readonly types: ReadonlySet<ImportType>;
  readonly subjectKinds: ReadonlySet<SubjectKind>;
  readonly credentialKinds: ReadonlySet<SubjectKind>;
}

const kindsOf = (type: ImportType): readonly SubjectKind[] => {
  const k = IMPLIED_KIND[type];
  return k !== undefined ? [k] : type === 'subjects' ? KINDS : [];
};

function scopeOf(sources: readonly ImportSource[]): Scope {
  const types = new Set<ImportType>();
  const subjectKinds = new Set<SubjectKind>();
  const credentialKinds = new Set<SubjectKind>();
  for (const s of sources) {
    for (const t of s.csv !== undefined ? [s.csv.type] : (s.jsonTypes ?? [])) types.add(t);
    if (s.csv !== undefined && (s.csv.header.includes('card') || s.csv.header.includes('uhf'))) for (const k of kindsOf(s.csv.type)) credentialKinds.add(k);
    for (const row of s.json ?? []) if (row.values.card !== undefined || row.values.uhf !== undefined) for (const k of kindsOf(row.type)) credentialKinds.add(k);
  }
  for (const t of types) for (const k of kindsOf(t)) subjectKinds.add(k);
  if (types.has('credentials')) for (const k of KINDS) credentialKinds.add(k);
  return { types, subjectKinds, credentialKinds };
}

function syncedTypes(sc: Scope): SyncType[] {
  return SYNC_TYPES.filter((t) => {
    if (t === 'people' || t === 'vehicles' || t === 'consignments') return sc.subjectKinds.has(IMPLIED_KIND[t] as SubjectKind);
    if (t === 'credentials') return sc.credentialKinds.size > 0;
    return sc.types.has(t);
  });
}

/** What the files hold, as the sync goes: the identities seen (to find what they do not hold) and the ids they resolve to. */
interface Seen {
  readonly industries: Map<string, number>;
  readonly industryIds: Set<number>;
  readonly institutions: Map<string, number>;
  readonly institutionIds: Set<number>;
  readonly subjects: Set<string>;
  /** Credential keys, upper-case hex (as the registry reads them out). */
  readonly keys: Set<string>;
  /** `level:target`. */
  readonly grants: Set<string>;
}

export interface SyncOptions {
  readonly dryRun?: boolean;
  readonly every?: number;
  readonly progress?: (p: ImportProgress) => void;
  /** Commit even when more than half of a type goes (else MassRemovalError, rolled back). */
  readonly allowMassRemoval?: boolean;
  /** The counts a confirmed first pass found: a different result (the registry changed meanwhile) is rolled back. */
  readonly expect?: SyncSummary;
}

class Syncer {
  readonly added = zero();
  readonly changed = zero();
  readonly removed = zero();
  readonly seen: Seen = { industries: new Map(), industryIds: new Set(), institutions: new Map(), institutionIds: new Set(), subjects: new Set(), keys: new Set(), grants: new Set() };

  constructor(
    readonly r: Registry,
    readonly sc: Scope,
  ) {}

  async row(row: ImportRow): Promise<void> {
    const { r, seen } = this;
    switch (row.type) {
      case 'industries': {
        const code = text(row, 'code', true);
        const name = text(row, 'name', true);
        if (seen.industries.has(code)) rowFail(row, 'code', `industry '${code}' is in the files twice`);
        let id = await r.industryByCode(code);
        if (id === undefined) {
          id = await registryCall(row, { code: 'code', name: 'name' }, () => r.addIndustry({ code, name }));
          this.added.industries++;
        } else if ((await r.industry(id))?.name !== name) {
          const known = id;
          await registryCall(row, { name: 'name' }, () => r.updateIndustry(known, { name }));
          this.changed.industries++;
        }
        seen.industries.set(code, id);
        seen.industryIds.add(id);
        break;
      }
      case 'institutions': {
        const name = text(row, 'name', true);
        if (seen.institutions.has(name)) rowFail(row, 'name', `institution '${name}' is in the files twice`);
        const industry = row.values.industry === undefined ? null : await this.industry(row, 'industry');
        const ids = await r.institutionsNamed(name);
        if (ids.length > 1) rowFail(row, 'name', `the registry holds ${ids.length} institutions named '${name}' (ids ${ids.join(', ')}): a sync, which knows institutions by name, cannot tell which this is`);
        let id = ids[0];
        if (id === undefined) {
          id = await registryCall(row, { name: 'name', industry: 'industry' }, () => r.addInstitution({ name, industry }));
          this.added.institutions++;
        } else if ((await r.institution(id))?.industry !== industry) {
          const known = id;
          await registryCall(row, { name: 'name', industry: 'industry' }, () => r.updateInstitution(known, { name, industry }));
          this.changed.institutions++;
        }
        seen.institutions.set(name, id);
        seen.institutionIds.add(id);
        break;
      }
      case 'people':
      case 'vehicles':
      case 'consignments':
      case 'subjects': {
        const { id, kind, name } = subjectOf(row);
        if (seen.subjects.has(id)) rowFail(row, 'id', `subject '${id}' is in the files twice`);
        const institution = row.values.institution === undefined ? null : await this.institution(row, 'institution');
        const columns = { id: 'id', kind: 'kind', name: 'name', institution: 'institution' };
        const current = await r.subject(id);
        if (current === undefined) {
          await registryCall(row, columns, () => r.addSubject({ id, kind, name, institution }));
          this.added[KIND_TYPE[kind]]++;
        } else if (current.kind !== kind) {
          rowFail(row, row.values.kind === undefined ? 'id' : 'kind', `'${id}' is a ${current.kind} in the registry, and a subject's kind does not change`);
        } else if (current.name !== name || current.institution !== institution) {
          await registryCall(row, columns, () => r.updateSubject(id, { name, institution }));
          this.changed[KIND_TYPE[kind]]++;
        }
        seen.subjects.add(id);
        for (const field of ['card', 'uhf'] as const) for (const raw of items(row, field)) await this.credential(row, id, field, hexId(row, field, raw), field);
        break;
      }
      case 'credentials': {
        const subject = text(row, 'subject', true);
        const kind = oneOf(row, 'kind', ['card', 'uhf'] as const);
        const rawId = hexId(row, 'raw_id', text(row, 'raw_id', true));
        await this.subjectRef(row, 'subject', subject);
        await this.credential(row, subject, kind, rawId, 'raw_id');
        break;
      }
      case 'grants': {
        const level = oneOf(row, 'level', LEVELS);
        let target: string | number;
        if (level === 'individual') {
          target = text(row, 'target', true);
          await this.subjectRef(row, 'target', target);
        } else target = level === 'institution' ? await this.institution(row, 'target') : await this.industry(row, 'target');
        const at = `${level}:${String(target)}`;
        if (seen.grants.has(at)) rowFail(row, 'target', `the grant of ${level} '${String(target)}' is in the files twice`);
        const spec = grantSpecOf(row);
        const before = await r.assignedGrant(level, target);
        await registryCall(row, GRANT_COLUMNS, () => r.grant(level, target, spec));
        const after = await r.assignedGrant(level, target);
        if (before === null) this.added.grants++;
        else if (before !== after) this.changed.grants++;
        seen.grants.add(at);
        break;
      }
    }
  }

  /** Enrols a credential the files give a subject: new (or revoked) → added; active on another subject → moved (changed). */
  async credential(row: ImportRow, subject: string, kind: CredentialKind, rawId: string, field: string): Promise<void> {
    const { r } = this;
    const columns = { rawId: field, kind: field, subject: field === 'raw_id' ? 'subject' : 'id', credential: field, key: field };
    const key = await registryCall(row, columns, () => Promise.resolve(r.credentialKey(kind, rawId)));
    const hex = toHex(key).toUpperCase();
    if (this.seen.keys.has(hex)) rowFail(row, field, `${kind} '${rawId}' is in the files twice`);
    this.seen.keys.add(hex);
    const current = await r.credential({ key });
    if (current !== undefined && !current.revoked && current.subject === subject) return;
    if (current !== undefined && !current.revoked) await registryCall(row, columns, () => r.revokeCredential({ key }));
    await registryCall(row, columns, () => r.addCredential({ subject, kind, rawId }));
    if (current !== undefined && !current.revoked) this.changed.credentials++;
    else this.added.credentials++;
  }

  /** A subject a row refers to: of a synced kind, it must be one of the files' (the sync removes the others). */
  async subjectRef(row: ImportRow, field: string, id: string): Promise<void> {
    const s = await this.r.subject(id);
    if (s !== undefined && this.sc.subjectKinds.has(s.kind) && !this.seen.subjects.has(id)) rowFail(row, field, `subject '${id}' is not among the ${KIND_TYPE[s.kind]} in the files (the sync removes it)`);
  }

  async industry(row: ImportRow, field: string): Promise<number> {
    if (!this.sc.types.has('industries')) return industryRef(this.r, row, field);
    return this.synced(row, field, 'industry', this.seen.industries, this.seen.industryIds);
  }

  async institution(row: ImportRow, field: string): Promise<number> {
    if (!this.sc.types.has('institutions')) return institutionRef(this.r, row, field);
    return this.synced(row, field, 'institution', this.seen.institutions, this.seen.institutionIds);
  }

  /** An industry or institution by id, code or name, among the files' rows. */
  synced(row: ImportRow, field: string, what: string, byName: ReadonlyMap<string, number>, ids: ReadonlySet<number>): Promise<number> {
    const v = row.values[field];
    const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : rowFail(row, field, `must be the ${what}'s id or name`);
    const id = /^\d+$/.test(s) ? (ids.has(Number(s)) ? Number(s) : undefined) : byName.get(s);
    if (id === undefined) rowFail(row, field, `${what} '${s}' is not among the ${what === 'industry' ? 'industries' : 'institutions'} in the files`);
    return Promise.resolve(id);
  }

  /** What the files do not hold, of the types they are the truth for, stops granting anything. */
  async removals(): Promise<void> {
    const { r, sc, seen } = this;
    if (sc.subjectKinds.size > 0) {
      for (const [id, kind] of await r.allSubjects()) {
        if (!sc.subjectKinds.has(kind) || seen.subjects.has(id)) continue;
        let any = false;
        for (const c of await r.credentials(id)) {
          if (c.revoked) continue;
          await r.revokeCredential({ key: c.key });
          this.removed.credentials++;
          any = true;
        }
        if ((await this.ungrant('individual', id)) > 0) any = true;
        if (any) this.removed[KIND_TYPE[kind]]++;
      }
    }
    if (sc.credentialKinds.size > 0) {
      for (const [hex, , kind] of await r.allActiveCredentials()) {
        if (!sc.credentialKinds.has(kind) || seen.keys.has(hex)) continue;
        await r.revokeCredential({ key: fromHex(hex) });
        this.removed.credentials++;
      }
    }
    if (sc.types.has('institutions')) {
      for (const i of await r.allInstitutions()) if (!seen.institutionIds.has(i.id)) this.removed.institutions += await this.ungrant('institution', i.id);
    }
    if (sc.types.has('industries')) {
      for (const i of await r.allIndustries()) if (!seen.industryIds.has(i.id)) this.removed.industries += await this.ungrant('industry', i.id);
    }
    if (sc.types.has('grants')) {
      for (const a of await r.grantAssignments()) {
        if (seen.grants.has(`${a.level}:${a.target}`)) continue;
        await this.ungrant(a.level, a.level === 'individual' ? a.target : Number(a.target));
      }
    }
  }

  /** Removes a grant assignment if there is one (counted under grants); 1 if it did. */
  async ungrant(level: GrantLevel, target: string | number): Promise<number> {
    if ((await this.r.assignedGrant(level, target)) === null) return 0;
    await this.r.grant(level, target, null);
    this.removed.grants++;
    return 1;
  }
}

/** What the registry holds of each type (the mass-removal guard's base). */
async function holdings(r: Registry): Promise<SyncCounts> {
  const c = await r.counts();
  const held = zero();
  held.industries = c.industries;
  held.institutions = c.institutions;
  held.credentials = c.credentials;
  held.grants = (await r.grantAssignments()).length;
  for (const [, kind] of await r.allSubjects()) held[KIND_TYPE[kind]]++;
  return held;
}

const sameCounts = (a: SyncSummary, b: SyncSummary): boolean => JSON.stringify([a.added, a.changed, a.removed]) === JSON.stringify([b.added, b.changed, b.removed]);

/**
 * Makes the registry match the files for every type they hold, in one
 * transaction: rows in ORDER (as an import), then the removals. With dryRun
 * everything is checked and rolled back. More than half of a type removed
 * throws MassRemovalError (rolled back) unless allowMassRemoval; a list over
 * its capacity afterwards throws CapacityError (unless the registry allows it).
 */
export async function applySync(r: Registry, sources: readonly ImportSource[], options: SyncOptions = {}): Promise<SyncSummary> {
  const sc = scopeOf(sources);
  const versionBefore = await r.version();
  const every = options.every ?? 5000;
  const totalBytes = sources.reduce((n, s) => n + s.bytes, 0);
  let rows = 0;
  let bytes = 0;
  let summary: SyncSummary | undefined;
  const report = () => options.progress?.({ rows, bytes, totalBytes });
  try {
    await r.bulk(async (reg) => {
      const before = await holdings(reg);
      const s = new Syncer(reg, sc);
      for (const type of ORDER) {
        for await (const row of rowsOf(sources, type, (n) => (bytes += n))) {
          await s.row(row);
          if (++rows % every === 0) report();
        }
      }
      bytes = totalBytes;
      report();
      await s.removals();
      if (!reg.allowOverCapacity) {
        const n = (await reg.counts()).credentials;
        const limit = await reg.tightestCapacity();
        if (n > limit.capacity) throw new CapacityError(limit.list, n, limit.capacity);
      }
      const massRemovals = SYNC_TYPES.filter((t) => s.removed[t] > 0 && s.removed[t] * 2 > before[t]);
      summary = { rows, synced: syncedTypes(sc), added: s.added, changed: s.changed, removed: s.removed, before, massRemovals, versionBefore, versionAfter: versionBefore };
      if (options.dryRun === true) throw new DryRun('dry run');
      if (massRemovals.length > 0 && options.allowMassRemoval !== true) throw new MassRemovalError(summary);
      if (options.expect !== undefined && !sameCounts(options.expect, summary)) throw new CliError('the registry changed while the sync was being confirmed; nothing imported (run it again)', 1);
    });
  } catch (e) {
    if (e instanceof DryRun && summary !== undefined) return summary;
    if (e instanceof RowError) throw new CliError(`${where(e.row, e.field)}: ${e.message}; nothing imported`, 2);
    if (e instanceof RegistryError) throw new CliError(`${e.message}; nothing imported`, 2);
    throw e;
  }
  if (summary === undefined) throw new Error('sync: no summary');
  return { ...summary, versionAfter: await r.version() };
}
