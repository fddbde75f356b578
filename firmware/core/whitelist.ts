// The whitelist as the decision engine sees it: the overlay first, then the
// base image. Answers "what does this credential resolve to" into a reused
// object, and gives grant, institution and industry facts by id, whichever
// layer they live in.

import { NONE16, UNBOUNDED_UNTIL } from '../../protocol/whitelist-format.js';
import { CRED_ADDED, CRED_REVOKED, CRED_SUBJECT_SUSPENDED, OverlayIndex, SUSPEND_NONE, SUSPEND_ON } from './overlay.js';
import { scheduleBit, type WhitelistImage } from './whitelist-image.js';

export const FOUND_NONE = 0;
export const FOUND_ACTIVE = 1;
export const FOUND_REVOKED = 2;
export const FOUND_SUBJECT_SUSPENDED = 3;

/** Output of resolve(); one instance is reused per tap. */
export class Resolution {
  status = FOUND_NONE;
  institution = NONE16;
  grant = NONE16;
}

/** Institution facts from both layers, one instance reused per tap. */
export class InstitutionFacts {
  suspended = false;
  industry = NONE16;
  grant = NONE16;
}

// Stages a grant reaches for a gate (decision.ts): a higher stage is a more specific reason.
export const STAGE_NONE = 0; // no such grant
export const STAGE_LINE = 1;
export const STAGE_DIRECTION = 2;
export const STAGE_LANE = 3;
export const STAGE_VALIDITY = 4;
export const STAGE_SCHEDULE = 5;
export const STAGE_PASS = 6;

export class Whitelist {
  base: WhitelistImage | null;
  readonly overlay: OverlayIndex;

  constructor(base: WhitelistImage | null, overlay: OverlayIndex) {
    this.base = base;
    this.overlay = overlay;
  }

  resolve(hi: number, lo: number, out: Resolution): Resolution {
    out.status = FOUND_NONE;
    out.institution = NONE16;
    out.grant = NONE16;
    const o = this.overlay.findCredential(hi, lo);
    let state = 0;
    if (o >= 0) {
      state = this.overlay.credState(o);
      if ((state & CRED_REVOKED) !== 0) {
        out.status = FOUND_REVOKED;
        return out;
      }
      if ((state & CRED_ADDED) !== 0) {
        out.status = FOUND_ACTIVE;
        out.institution = this.overlay.credInstitution(o);
        out.grant = this.overlay.credGrant(o);
      }
    }
    if (out.status === FOUND_NONE && this.base !== null) {
      const i = this.base.findCredential(hi, lo);
      if (i >= 0) {
        out.status = FOUND_ACTIVE;
        out.institution = this.base.credInstitution(i);
        out.grant = this.base.credGrant(i);
      }
    }
    if (out.status === FOUND_ACTIVE && (state & CRED_SUBJECT_SUSPENDED) !== 0) out.status = FOUND_SUBJECT_SUSPENDED;
    return out;
  }

  /** All facts of an institution with one overlay probe (hot path). */
  institution(id: number, out: InstitutionFacts): InstitutionFacts {
    const o = this.overlay;
    const slot = o.institutionSlot(id);
    const inBase = this.base !== null && id < this.base.institutionCount;
    if (slot >= 0 && o.slotDefined(slot)) {
      out.industry = o.definedInstitutionIndustry(slot);
      out.grant = o.definedInstitutionGrant(slot);
    } else if (inBase) {
      out.industry = this.base!.institutionIndustry(id);
      out.grant = this.base!.institutionGrant(id);
    } else {
      out.industry = NONE16;
      out.grant = NONE16;
    }
    const s = slot >= 0 ? o.slotSuspension(slot) : SUSPEND_NONE;
    out.suspended = s !== SUSPEND_NONE ? s === SUSPEND_ON : inBase && this.base!.institutionSuspended(id);
    return out;
  }

  /**
   * How far grant g gets at a gate with these masks at time now (STAGE_*),
   * STAGE_NONE if no layer holds it. One overlay probe, then one table.
   */
  grantStage(g: number, line: number, direction: number, lane: number, now: number): number {
    if (g === NONE16) return STAGE_NONE;
    const o = this.#overlayGrant(g);
    let masks: number;
    let from: number;
    let until: number;
    let schedule: number;
    if (o >= 0) {
      const v = this.overlay.grantView;
      masks = v.getUint8(o);
      schedule = v.getUint8(o + 1);
      from = v.getUint32(o + 4, true);
      until = v.getUint32(o + 8, true);
    } else {
      const b = this.base;
      if (b === null || g >= b.grantCount) return STAGE_NONE;
      masks = b.grantMasks(g);
      schedule = b.grantSchedule(g);
      from = b.grantValidFrom(g);
      until = b.grantValidUntil(g);
    }
    if ((masks & line) === 0) return STAGE_LINE;
    if ((masks & direction) === 0) return STAGE_DIRECTION;
    if ((masks & lane) === 0) return STAGE_LANE;
    if (now < from || now > until) return STAGE_VALIDITY;
    if (schedule !== 0xff && (this.base === null || schedule >= this.base.scheduleCount || !this.base.scheduleAllows(schedule, now))) return STAGE_SCHEDULE;
    return STAGE_PASS;
  }

  /** Whether the institution exists in either layer. */
  hasInstitution(id: number): boolean {
    return this.overlay.institutionDefinition(id) >= 0 || (this.base !== null && id < this.base.institutionCount);
  }
  institutionIndustry(id: number): number {
    const d = this.overlay.institutionDefinition(id);
    if (d >= 0) return this.overlay.definedInstitutionIndustry(d);
    return this.base !== null && id < this.base.institutionCount ? this.base.institutionIndustry(id) : NONE16;
  }
  institutionGrant(id: number): number {
    const d = this.overlay.institutionDefinition(id);
    if (d >= 0) return this.overlay.definedInstitutionGrant(d);
    return this.base !== null && id < this.base.institutionCount ? this.base.institutionGrant(id) : NONE16;
  }
  institutionSuspended(id: number): boolean {
    const s = this.overlay.institutionSuspension(id);
    if (s !== SUSPEND_NONE) return s === SUSPEND_ON;
    return this.base !== null && id < this.base.institutionCount && this.base.institutionSuspended(id);
  }
  industryGrant(id: number): number {
    const d = this.overlay.industryDefinedGrant(id);
    if (d >= 0) return d;
    return this.base !== null && id < this.base.industryCount ? this.base.industryGrant(id) : NONE16;
  }
  industrySuspended(id: number): boolean {
    const s = this.overlay.industrySuspension(id);
    if (s !== SUSPEND_NONE) return s === SUSPEND_ON;
    return this.base !== null && id < this.base.industryCount && this.base.industrySuspended(id);
  }

  /**
   * Overlay offset of a grant defined by a delta, or -1. Deltas define only ids
   * beyond the base image's grants (the central never redefines one), so a
   * base grant always comes from the base.
   */
  #overlayGrant(g: number): number {
    if (this.base !== null && g < this.base.grantCount) return -1;
    return this.overlay.grantOffset(g);
  }

  /** True if grant id exists in either layer. */
  hasGrant(g: number): boolean {
    return g !== NONE16 && ((this.base !== null && g < this.base.grantCount) || this.overlay.grantOffset(g) >= 0);
  }
  grantMasks(g: number): number {
    const o = this.#overlayGrant(g);
    if (o >= 0) return this.overlay.grantView.getUint8(o);
    return this.base !== null && g < this.base.grantCount ? this.base.grantMasks(g) : 0;
  }
  grantApbGroup(g: number): number {
    const o = this.#overlayGrant(g);
    if (o >= 0) return this.overlay.grantView.getUint8(o + 2);
    return this.base !== null && g < this.base.grantCount ? this.base.grantApbGroup(g) : 0;
  }
  grantValidFrom(g: number): number {
    const o = this.#overlayGrant(g);
    if (o >= 0) return this.overlay.grantView.getUint32(o + 4, true);
    return this.base !== null && g < this.base.grantCount ? this.base.grantValidFrom(g) : 0;
  }
  grantValidUntil(g: number): number {
    const o = this.#overlayGrant(g);
    if (o >= 0) return this.overlay.grantView.getUint32(o + 8, true);
    return this.base !== null && g < this.base.grantCount ? this.base.grantValidUntil(g) : UNBOUNDED_UNTIL;
  }
  /** Schedules live only in the base image; an overlay grant may reference them. 0xFF = none. */
  grantScheduleAllows(g: number, utcSeconds: number): boolean {
    const o = this.#overlayGrant(g);
    const s = o >= 0 ? this.overlay.grantView.getUint8(o + 1) : this.base !== null && g < this.base.grantCount ? this.base.grantSchedule(g) : 0xff;
    if (s === 0xff) return true;
    if (this.base === null || s >= this.base.scheduleCount) return false; // a dangling schedule never opens a gate
    return this.base.scheduleAllows(s, utcSeconds);
  }
}

export { scheduleBit };
