// The plain reference model: Maps and objects, written from the spec in
// docs/DECISIONS.md, sharing no code with firmware/core. The property tests
// demand that the real store + engine agree with it on every tap.

import { Reason } from '../../protocol/reasons.js';
import { buildImageIndexed } from '../../host-sim/central/image-builder.js';
import { modelFromJson, type GrantJson, type Scenario, type ScenarioResult, type TapJson } from './whitelist-scenario.js';

type Override = 'none' | 'on' | 'off';
// Grants given by a delta are ids, resolved at decision time (a later delta may define them).
type GrantRef = GrantJson | number | undefined;
interface Cred {
  present: boolean;
  institution?: number;
  grant?: GrantRef;
  revoked: boolean;
  suspended: boolean;
}
interface Inst {
  industry?: number;
  grant?: GrantRef;
  baseSuspended: boolean;
  override: Override;
}
interface Ind {
  grant?: GrantRef;
  baseSuspended: boolean;
  override: Override;
}

const STALE_AFTER = { first: 3600, second: 900, strict: 900 } as const;
const POLICY = {
  first: { fresh: 'normal', stale: 'normal', expired: 'individual', unsynced: 'individual' },
  second: { fresh: 'normal', stale: 'individual', expired: 'deny', unsynced: 'deny' },
  strict: { fresh: 'normal', stale: 'deny', expired: 'deny', unsynced: 'deny' },
} as const;

function scheduleAllows(schedules: string[], index: number | undefined, now: number): boolean {
  if (index === undefined) return true;
  const hex = schedules[index];
  if (hex === undefined) return false;
  const local = new Date((now + 8 * 3600) * 1000);
  const day = (local.getUTCDay() + 6) % 7; // Monday = 0
  const slot = local.getUTCHours() * 2 + (local.getUTCMinutes() >= 30 ? 1 : 0);
  const byte = parseInt(hex.slice((day * 6 + Math.floor(slot / 8)) * 2, (day * 6 + Math.floor(slot / 8)) * 2 + 2), 16);
  return ((byte >> slot % 8) & 1) === 1;
}

export function referenceRun(s: Scenario): ScenarioResult {
  const built = buildImageIndexed(modelFromJson(s.model)); // only for the central's grant numbering
  const grantsById = new Map<number, GrantJson>(built.grants.map((g, i) => [i, g as GrantJson]));
  const creds = new Map<string, Cred>();
  for (const c of s.model.credentials) creds.set(c.key, { present: true, institution: c.institution, grant: c.grant, revoked: false, suspended: false });
  const insts = new Map<number, Inst>(s.model.institutions.map((x, i) => [i, { industry: x.industry, grant: x.grant, baseSuspended: x.suspended === true, override: 'none' }]));
  const inds = new Map<number, Ind>(s.model.industries.map((x, i) => [i, { grant: x.grant, baseSuspended: x.suspended === true, override: 'none' }]));
  const baseGrantCount = built.grants.length;

  const deltaErrors: (string | null)[] = [];
  let version = s.model.version;
  for (const ops of s.deltas) {
    // Capacity is far above what the generators produce; every delta applies.
    for (const o of ops) {
      switch (o.op) {
        case 'add': {
          const prev = creds.get(o.key);
          creds.set(o.key, { present: true, institution: o.institution, grant: o.grant, revoked: false, suspended: prev?.suspended ?? false });
          break;
        }
        case 'revoke':
          creds.set(o.key, { ...(creds.get(o.key) ?? { present: false, suspended: false }), revoked: true });
          break;
        case 'suspendSubject':
        case 'resumeSubject':
          creds.set(o.key, { ...(creds.get(o.key) ?? { present: false, revoked: false }), suspended: o.op === 'suspendSubject' });
          break;
        case 'suspendInstitution':
        case 'resumeInstitution': {
          const i = insts.get(o.institution) ?? { baseSuspended: false, override: 'none' };
          insts.set(o.institution, { ...i, override: o.op === 'suspendInstitution' ? 'on' : 'off' });
          break;
        }
        case 'suspendIndustry':
        case 'resumeIndustry': {
          const i = inds.get(o.industry) ?? { baseSuspended: false, override: 'none' };
          inds.set(o.industry, { ...i, override: o.op === 'suspendIndustry' ? 'on' : 'off' });
          break;
        }
        case 'defineGrant':
          if (o.id >= baseGrantCount) grantsById.set(o.id, o.grant);
          break;
        case 'defineIndustry': {
          const i = inds.get(o.industry) ?? { baseSuspended: false, override: 'none' as Override };
          inds.set(o.industry, { ...i, grant: o.grant });
          break;
        }
        case 'noop':
          break;
        case 'defineInstitution': {
          const i = insts.get(o.institution) ?? { baseSuspended: false, override: 'none' as Override };
          insts.set(o.institution, { ...i, industry: o.industry, grant: o.grant });
          break;
        }
      }
    }
    deltaErrors.push(null);
    version++;
  }

  const resolve = (g: GrantRef): GrantJson | undefined => (typeof g === 'number' ? grantsById.get(g) : g);
  const history: { key: string; group: number; direction: string; time: number }[] = [];
  const taps = s.taps.map((t) => decideRef(t));
  return { deltaErrors, version, taps };

  function suspended(x: { baseSuspended: boolean; override: Override } | undefined): boolean {
    if (x === undefined) return false;
    return x.override === 'none' ? x.baseSuspended : x.override === 'on';
  }

  function decideRef(t: TapJson): { granted: boolean; reason: number; level: number } {
    const deny = (reason: number) => ({ granted: false, reason, level: 0 });
    const profile = t.strict ? 'strict' : t.line;
    const freshness = !t.clockTrusted ? 'unsynced' : t.headIssuedAt === 0 || t.now >= t.headExpires ? 'expired' : t.now - t.headIssuedAt > STALE_AFTER[profile] ? 'stale' : 'fresh';
    if (t.mode === 'emergency') return { granted: true, reason: Reason.emergency_release, level: 4 };
    if (t.mode === 'lockdown') return deny(Reason.lockdown);
    if (t.journalFull) return deny(Reason.journal_full);
    const action = POLICY[profile][freshness];
    if (action === 'deny') return deny(freshness === 'unsynced' ? Reason.clock_unsynced : freshness === 'stale' ? Reason.whitelist_stale : Reason.whitelist_expired);
    const c = creds.get(t.key);
    if (c === undefined) return deny(Reason.unknown_credential);
    if (c.revoked) return deny(Reason.revoked);
    if (!c.present) return deny(Reason.unknown_credential);
    if (c.suspended) return deny(Reason.subject_suspended);
    let inst: Inst | undefined;
    let ind: Ind | undefined;
    if (c.institution !== undefined) {
      inst = insts.get(c.institution);
      if (suspended(inst)) return deny(Reason.institution_suspended);
      if (inst?.industry !== undefined) {
        ind = inds.get(inst.industry);
        if (suspended(ind)) return deny(Reason.industry_suspended);
      }
    }
    const levels: [number, GrantJson | undefined][] = [
      [1, resolve(c.grant)],
      [2, resolve(inst?.grant)],
      [3, resolve(ind?.grant)],
    ];
    const individualOnly = action === 'individual';
    const reasons = [Reason.wrong_line, Reason.wrong_direction, Reason.wrong_lane, Reason.outside_validity, Reason.outside_schedule];
    let best = -1;
    for (const [level, g] of levels) {
      if (g === undefined || (individualOnly && level !== 1)) continue;
      let failed = -1;
      if (!g.lines.includes(t.line)) failed = 0;
      else if (!g.directions.includes(t.direction)) failed = 1;
      else if (!g.lanes.includes(t.lane)) failed = 2;
      else if (t.now < (g.validFrom ?? 0) || t.now > (g.validUntil ?? 0xffffffff)) failed = 3;
      else if (!scheduleAllows(s.model.schedules, g.schedule, t.now)) failed = 4;
      if (failed < 0) {
        const group = g.passbackGroup ?? 0;
        if (group !== 0) {
          const last = [...history].reverse().find((h) => h.key === t.key && h.group === group);
          if (last !== undefined && last.direction === t.direction && t.now - last.time < t.passbackSeconds) return deny(Reason.passback_violation);
          if (t.record) history.push({ key: t.key, group, direction: t.direction, time: t.now });
        }
        return { granted: true, reason: Reason.granted, level };
      }
      if (failed > best) best = failed;
    }
    if (best < 0) return deny(individualOnly && (levels[1]![1] !== undefined || levels[2]![1] !== undefined) ? Reason.level_not_allowed : Reason.no_grant);
    return deny(reasons[best]!);
  }
}
