// The decision engine: a pure function of (credential key, gate config, time
// and clock state, whitelist, passback state, gate mode) to a verdict with a
// stable reason code. Writes into a caller-owned Decision: no allocation.
//
// Order of checks (each first failure decides; see docs/DECISIONS.md):
//  1. fire release      -> grant, emergency_release (overrides everything)
//  2. lockdown          -> deny lockdown
//  3. journal full      -> deny journal_full (no pass without a record)
//  4. freshness policy  -> may deny (clock_unsynced / whitelist_stale / whitelist_expired)
//                          or restrict grants to the individual level
//  5. credential        -> unknown_credential / revoked / subject_suspended
//  6. institution, then its industry suspended -> institution_suspended / industry_suspended
//  7. grants, individual then institution then industry: the first that passes
//     line, direction, lane, validity and schedule grants; otherwise the reason
//     of the grant that got furthest (ties: the earlier level); none at all ->
//     no_grant; only higher levels under an individual-only policy -> level_not_allowed
//  8. anti-passback of the granting grant's group -> passback_violation

import { Reason, type ReasonCode } from '../../protocol/reasons.js';
import { directionMask, laneMask, lineMask, NONE16, type Direction, type LaneKind, type Line } from '../../protocol/whitelist-format.js';
import type { PassbackTable } from './passback.js';
import { FOUND_ACTIVE, FOUND_NONE, FOUND_REVOKED, InstitutionFacts, Resolution, STAGE_NONE, STAGE_PASS, type Whitelist } from './whitelist.js';

export type Freshness = 'fresh' | 'stale' | 'expired' | 'unsynced';
export type FreshnessAction = 'normal' | 'individual_only' | 'deny';
export type GateMode = 'normal' | 'lockdown' | 'emergency';

export interface FreshnessPolicy {
  /** Age of the newest accepted head beyond which the whitelist is stale. */
  readonly staleAfterSeconds: number;
  readonly fresh: FreshnessAction;
  readonly stale: FreshnessAction;
  readonly expired: FreshnessAction;
  readonly unsynced: FreshnessAction;
}

/**
 * Defaults per line (docs/DECISIONS.md has the table and the reasoning): the
 * first line runs as a port (flexible), the second as a channel (enforced).
 */
export const DEFAULT_POLICY: Readonly<Record<Line, FreshnessPolicy>> = {
  first: { staleAfterSeconds: 3600, fresh: 'normal', stale: 'normal', expired: 'individual_only', unsynced: 'individual_only' },
  second: { staleAfterSeconds: 900, fresh: 'normal', stale: 'individual_only', expired: 'deny', unsynced: 'deny' },
};

export interface GateConfig {
  readonly line: Line;
  readonly direction: Direction;
  readonly lane: LaneKind;
  readonly policy: FreshnessPolicy;
  /** Anti-passback window: a repeat in the same direction within it is refused. */
  readonly passbackSeconds: number;
}

/** What the gate knows at the moment of the tap. */
export interface TapState {
  /** Best estimate of UTC seconds (see Freshness: not believed when clockTrusted is false). */
  readonly now: number;
  readonly clockTrusted: boolean;
  /** Issue time and expiry of the newest accepted head; 0/0 if none. */
  readonly headIssuedAt: number;
  readonly headExpires: number;
  readonly mode: GateMode;
  readonly journalFull: boolean;
}

export const LEVEL_NONE = 0;
export const LEVEL_INDIVIDUAL = 1;
export const LEVEL_INSTITUTION = 2;
export const LEVEL_INDUSTRY = 3;
export const LEVEL_EMERGENCY = 4;

export class Decision {
  granted = false;
  reason: ReasonCode = Reason.unknown_credential;
  /** Level of the granting grant (LEVEL_*). */
  level = LEVEL_NONE;
  /** Anti-passback group of the granting grant (0 = none). */
  passbackGroup = 0;
  freshness: Freshness = 'fresh';
}

export function freshnessOf(t: TapState, policy: FreshnessPolicy): Freshness {
  if (!t.clockTrusted) return 'unsynced';
  if (t.headIssuedAt === 0 || t.now >= t.headExpires) return 'expired';
  if (t.now - t.headIssuedAt > policy.staleAfterSeconds) return 'stale';
  return 'fresh';
}

// Reason for the furthest stage a grant reached (whitelist.ts STAGE_*).
const STAGE_REASON: readonly ReasonCode[] = [Reason.no_grant, Reason.wrong_line, Reason.wrong_direction, Reason.wrong_lane, Reason.outside_validity, Reason.outside_schedule, Reason.granted];

function deny(out: Decision, reason: ReasonCode): Decision {
  out.granted = false;
  out.reason = reason;
  out.level = LEVEL_NONE;
  out.passbackGroup = 0;
  return out;
}

const scratch = new Resolution();
const inst = new InstitutionFacts();

export function decide(keyHi: number, keyLo: number, gate: GateConfig, t: TapState, wl: Whitelist, passback: PassbackTable | null, out: Decision): Decision {
  const fresh = freshnessOf(t, gate.policy);
  out.freshness = fresh;
  if (t.mode === 'emergency') {
    out.granted = true;
    out.reason = Reason.emergency_release;
    out.level = LEVEL_EMERGENCY;
    out.passbackGroup = 0;
    return out;
  }
  if (t.mode === 'lockdown') return deny(out, Reason.lockdown);
  if (t.journalFull) return deny(out, Reason.journal_full);

  const action = gate.policy[fresh];
  if (action === 'deny') return deny(out, fresh === 'unsynced' ? Reason.clock_unsynced : fresh === 'stale' ? Reason.whitelist_stale : Reason.whitelist_expired);

  const r = wl.resolve(keyHi, keyLo, scratch);
  if (r.status === FOUND_NONE) return deny(out, Reason.unknown_credential);
  if (r.status === FOUND_REVOKED) return deny(out, Reason.revoked);
  if (r.status !== FOUND_ACTIVE) return deny(out, Reason.subject_suspended);

  let industry = NONE16;
  let instGrant = NONE16;
  if (r.institution !== NONE16) {
    wl.institution(r.institution, inst);
    if (inst.suspended) return deny(out, Reason.institution_suspended);
    industry = inst.industry;
    instGrant = inst.grant;
    if (industry !== NONE16 && wl.industrySuspended(industry)) return deny(out, Reason.industry_suspended);
  }
  const indGrant = industry !== NONE16 ? wl.industryGrant(industry) : NONE16;
  const individualOnly = action === 'individual_only';
  const line = lineMask(gate.line);
  const dir = directionMask(gate.direction);
  const lane = laneMask(gate.lane);

  let best = 0;
  let level = LEVEL_NONE;
  let granting = NONE16;
  let higherLevels = false; // a higher-level grant exists (for level_not_allowed)
  for (let l = LEVEL_INDIVIDUAL; l <= LEVEL_INDUSTRY; l++) {
    const g = l === LEVEL_INDIVIDUAL ? r.grant : l === LEVEL_INSTITUTION ? instGrant : indGrant;
    if (g === NONE16) continue;
    if (individualOnly && l !== LEVEL_INDIVIDUAL) {
      if (!higherLevels && wl.hasGrant(g)) higherLevels = true;
      continue;
    }
    const stage = wl.grantStage(g, line, dir, lane, t.now);
    if (stage === STAGE_PASS) {
      level = l;
      granting = g;
      break;
    }
    if (stage > best) best = stage;
  }
  if (granting === NONE16) {
    if (best === STAGE_NONE) return deny(out, individualOnly && higherLevels ? Reason.level_not_allowed : Reason.no_grant);
    return deny(out, STAGE_REASON[best] as ReasonCode);
  }

  const group = wl.grantApbGroup(granting);
  if (group !== 0 && passback !== null && passback.violates(keyHi, keyLo, group, gate.direction, t.now, gate.passbackSeconds)) return deny(out, Reason.passback_violation);
  out.granted = true;
  out.reason = Reason.granted;
  out.level = level;
  out.passbackGroup = group;
  return out;
}
