// The plain reference model of the gate's access decisions: Maps and objects,
// written from the spec in docs/DECISIONS.md, sharing no code with
// firmware/core (nothing here imports firmware/). The property tests
// (test/whitelist-model.test.ts) demand that the real store + engine agree
// with it on every tap; the whole-system simulation uses it incrementally as
// the oracle of what each gate should decide with the list it holds.
//
// ReferenceWhitelist is one list version: a base image plus the deltas
// applied on top. ReferencePassback is one gate's passback history.
// referenceRun replays a whole Scenario with them.

import { Reason } from '../../protocol/reasons.js';
import type { Direction } from '../../protocol/whitelist-format.js';
import { buildImageIndexed } from '../central/image-builder.js';
import { modelFromJson, type DeltaOpJson, type GrantJson, type ModelJson, type Scenario, type ScenarioResult, type TapJson, type TapResult } from './whitelist-model.js';

export type { DeltaOpJson, GateMode, GrantJson, ModelJson, Scenario, ScenarioResult, TapJson, TapResult } from './whitelist-model.js';

type Override = 'none' | 'on' | 'off';
// Grants given by a delta are ids, resolved at decision time (a later delta may define them).
type GrantRef = GrantJson | number | undefined;
// Entries are never changed in place (an update sets a new object), so a
// shallow copy of the Maps is an independent copy of the list.
interface Cred {
  readonly present: boolean;
  readonly institution?: number;
  readonly grant?: GrantRef;
  readonly revoked: boolean;
  readonly suspended: boolean;
}
interface Inst {
  readonly industry?: number;
  readonly grant?: GrantRef;
  readonly baseSuspended: boolean;
  readonly override: Override;
}
interface Ind {
  readonly grant?: GrantRef;
  readonly baseSuspended: boolean;
  readonly override: Override;
}
interface Tables {
  /** Of the base image (deltas do not change schedules). */
  readonly schedules: readonly string[];
  /** Grants of the base image; a delta may define only ids from here on. */
  readonly baseGrantCount: number;
  readonly grants: Map<number, GrantJson>;
  readonly creds: Map<string, Cred>;
  readonly insts: Map<number, Inst>;
  readonly inds: Map<number, Ind>;
  version: number;
}

const STALE_AFTER = { first: 3600, second: 900, strict: 900 } as const;
const POLICY = {
  first: { fresh: 'normal', stale: 'normal', expired: 'individual', unsynced: 'individual' },
  second: { fresh: 'normal', stale: 'individual', expired: 'deny', unsynced: 'deny' },
  strict: { fresh: 'normal', stale: 'deny', expired: 'deny', unsynced: 'deny' },
} as const;

function scheduleAllows(schedules: readonly string[], index: number | undefined, now: number): boolean {
  if (index === undefined) return true;
  const hex = schedules[index];
  if (hex === undefined) return false;
  const local = new Date((now + 8 * 3600) * 1000);
  const day = (local.getUTCDay() + 6) % 7; // Monday = 0
  const slot = local.getUTCHours() * 2 + (local.getUTCMinutes() >= 30 ? 1 : 0);
  const byte = parseInt(hex.slice((day * 6 + Math.floor(slot / 8)) * 2, (day * 6 + Math.floor(slot / 8)) * 2 + 2), 16);
  return ((byte >> slot % 8) & 1) === 1;
}

function suspended(x: { baseSuspended: boolean; override: Override } | undefined): boolean {
  if (x === undefined) return false;
  return x.override === 'none' ? x.baseSuspended : x.override === 'on';
}

/**
 * One gate's anti-passback history: per (credential, group) the direction and
 * time of the last recorded passage. Unbounded (the real table may evict,
 * which only weakens passback; the scenarios stay far below its capacity).
 */
export class ReferencePassback {
  readonly #last = new Map<string, { readonly direction: Direction; readonly time: number }>();

  /** (credential, group) pairs with a recorded passage. */
  get size(): number {
    return this.#last.size;
  }

  /** True if the last passage of `key` in `group` was in `direction` less than `windowSeconds` before `now`. */
  violates(key: string, group: number, direction: Direction, now: number, windowSeconds: number): boolean {
    const last = this.#last.get(`${group}:${key}`);
    return last !== undefined && last.direction === direction && now - last.time < windowSeconds;
  }

  /** Records a passage (group 0 = no anti-passback: nothing to record). */
  record(key: string, group: number, direction: Direction, time: number): void {
    if (group !== 0) this.#last.set(`${group}:${key}`, { direction, time });
  }

  /** Forgets every passage (a wiped gate). */
  clear(): void {
    this.#last.clear();
  }
}

/** One whitelist version: the base image, then the deltas applied to it, as the reference sees it. */
export class ReferenceWhitelist {
  // A TS-private field, not #: clone() builds the copy without the constructor (no image rebuild).
  private t: Tables;

  /** The base image (its version is model.version). */
  constructor(model: ModelJson) {
    const built = buildImageIndexed(modelFromJson(model)); // only for the central's grant numbering
    this.t = {
      schedules: [...model.schedules],
      baseGrantCount: built.grants.length,
      grants: new Map<number, GrantJson>(built.grants.map((g, i) => [i, g as GrantJson])),
      creds: new Map<string, Cred>(model.credentials.map((c) => [c.key, { present: true, institution: c.institution, grant: c.grant, revoked: false, suspended: false }])),
      insts: new Map<number, Inst>(model.institutions.map((x, i) => [i, { industry: x.industry, grant: x.grant, baseSuspended: x.suspended === true, override: 'none' }])),
      inds: new Map<number, Ind>(model.industries.map((x, i) => [i, { grant: x.grant, baseSuspended: x.suspended === true, override: 'none' }])),
      version: model.version,
    };
  }

  /** The list version: the base image's, plus one per applied delta. */
  get version(): number {
    return this.t.version;
  }

  /** An independent copy: applying a delta to either leaves the other as it was. */
  clone(): ReferenceWhitelist {
    const t = this.t;
    const copy = Object.create(ReferenceWhitelist.prototype) as ReferenceWhitelist;
    copy.t = { ...t, grants: new Map(t.grants), creds: new Map(t.creds), insts: new Map(t.insts), inds: new Map(t.inds) };
    return copy;
  }

  /** Applies one delta (version + 1). Capacity is far above what the scenarios produce: every delta applies. */
  apply(ops: readonly DeltaOpJson[]): void {
    const { creds, insts, inds, grants } = this.t;
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
          if (o.id >= this.t.baseGrantCount) grants.set(o.id, o.grant);
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
    this.t.version++;
  }

  /**
   * The decision for a tap with this list and this gate's passback history
   * (docs/DECISIONS.md, "Order of checks"). Records the passage in `passback`
   * when granted by a grant with a passback group and tap.record is set.
   */
  /** The passback group of the grant at `level` (1 individual, 2 institution, 3 industry) for the tap's credential (0: none). */
  passbackGroup(tap: TapJson, level: number): number {
    const { creds, insts, inds, grants } = this.t;
    const resolve = (g: GrantRef): GrantJson | undefined => (typeof g === 'number' ? grants.get(g) : g);
    const c = creds.get(tap.key);
    if (c === undefined) return 0;
    const inst = c.institution !== undefined ? insts.get(c.institution) : undefined;
    const ind = inst?.industry !== undefined ? inds.get(inst.industry) : undefined;
    const g = level === 1 ? resolve(c.grant) : level === 2 ? resolve(inst?.grant) : level === 3 ? resolve(ind?.grant) : undefined;
    return g?.passbackGroup ?? 0;
  }

  decide(tap: TapJson, passback: ReferencePassback): TapResult {
    const { creds, insts, inds, grants, schedules } = this.t;
    const t = tap;
    const deny = (reason: number): TapResult => ({ granted: false, reason, level: 0 });
    const resolve = (g: GrantRef): GrantJson | undefined => (typeof g === 'number' ? grants.get(g) : g);
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
      else if (!scheduleAllows(schedules, g.schedule, t.now)) failed = 4;
      if (failed < 0) {
        const group = g.passbackGroup ?? 0;
        if (group !== 0) {
          if (passback.violates(t.key, group, t.direction, t.now, t.passbackSeconds)) return deny(Reason.passback_violation);
          if (t.record) passback.record(t.key, group, t.direction, t.now);
        }
        return { granted: true, reason: Reason.granted, level };
      }
      if (failed > best) best = failed;
    }
    if (best < 0) return deny(individualOnly && (levels[1]![1] !== undefined || levels[2]![1] !== undefined) ? Reason.level_not_allowed : Reason.no_grant);
    return deny(reasons[best]!);
  }
}

/** Replays a whole scenario: the base image, every delta, then the taps on one gate. */
export function referenceRun(s: Scenario): ScenarioResult {
  const list = new ReferenceWhitelist(s.model);
  const deltaErrors = s.deltas.map((ops): string | null => {
    list.apply(ops);
    return null;
  });
  const passback = new ReferencePassback();
  // A reboot (s.reboot) changes nothing here: the passback history is empty before the first tap.
  const taps = s.taps.map((t) => list.decide(t, passback));
  return { deltaErrors, version: list.version, taps };
}
