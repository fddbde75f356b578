// The overlay: whitelist changes newer than the base image, indexed in RAM.
// Built at boot by replaying the overlay log, updated as each delta becomes
// durable, consulted before the base image. Fixed capacities, typed arrays,
// open addressing: no allocation after construction, bounded probes.

import { DELTA_RECORD_BYTES, DeltaOp, GRANT_BYTES, MAX_DELTA_OP, NONE16 } from '../../protocol/whitelist-format.js';

export interface OverlayCapacity {
  /** Distinct credential keys (adds, revocations, subject suspensions). */
  readonly credentials: number;
  readonly institutions: number;
  readonly industries: number;
  readonly grants: number;
}

export const DEFAULT_OVERLAY_CAPACITY: OverlayCapacity = { credentials: 4096, institutions: 256, industries: 64, grants: 256 };

export const CRED_ADDED = 1; // institution/grant come from the overlay
export const CRED_REVOKED = 2;
export const CRED_SUBJECT_SUSPENDED = 4;

export const SUSPEND_NONE = 0; // no overlay opinion: the base image decides
export const SUSPEND_ON = 1;
export const SUSPEND_OFF = 2;

export type OverlayApplyError = 'bad_length' | 'bad_op' | 'bad_reserved' | 'overlay_full';

function pow2Above(n: number): number {
  let p = 16;
  while (p < n * 2) p *= 2;
  return p;
}

/** A small open-addressing table from u16 ids to slots. */
class IdTable {
  readonly ids: Uint16Array;
  readonly used: Uint8Array;
  readonly mask: number;
  readonly capacity: number;
  count = 0;
  constructor(capacity: number) {
    const size = pow2Above(capacity);
    this.ids = new Uint16Array(size);
    this.used = new Uint8Array(size);
    this.mask = size - 1;
    this.capacity = capacity;
  }
  find(id: number): number {
    let i = (id * 0x9e37) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      if (this.used[i] === 0) return -1;
      if (this.ids[i] === id) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }
  /** Slot for id, inserting if absent; -1 when full. */
  slot(id: number): number {
    let i = (id * 0x9e37) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      if (this.used[i] === 0) {
        if (this.count >= this.capacity) return -1;
        this.used[i] = 1;
        this.ids[i] = id;
        this.count++;
        return i;
      }
      if (this.ids[i] === id) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }
  clear(): void {
    this.used.fill(0);
    this.count = 0;
  }
}

export class OverlayIndex {
  readonly capacity: OverlayCapacity;
  // credentials
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  readonly #state: Uint8Array;
  readonly #inst: Uint16Array;
  readonly #grant: Uint16Array;
  readonly #used: Uint8Array;
  readonly #mask: number;
  #credCount = 0;
  // institutions: suspension opinion and optional definition
  readonly #instIds: IdTable;
  readonly #instSuspend: Uint8Array;
  readonly #instDefined: Uint8Array;
  readonly #instIndustry: Uint16Array;
  readonly #instGrant: Uint16Array;
  // industries
  readonly #indIds: IdTable;
  readonly #indSuspend: Uint8Array;
  readonly #indDefined: Uint8Array;
  readonly #indGrant: Uint16Array;
  // grants defined by deltas
  readonly #grantIds: IdTable;
  readonly #grants: Uint8Array;
  readonly grantView: DataView;
  /** Delta records applied since the last reset (for "overlay is growing, pull a new base"). */
  recordCount = 0;

  constructor(capacity: OverlayCapacity = DEFAULT_OVERLAY_CAPACITY) {
    this.capacity = capacity;
    const size = pow2Above(capacity.credentials);
    this.#hi = new Uint32Array(size);
    this.#lo = new Uint32Array(size);
    this.#state = new Uint8Array(size);
    this.#inst = new Uint16Array(size);
    this.#grant = new Uint16Array(size);
    this.#used = new Uint8Array(size);
    this.#mask = size - 1;
    this.#instIds = new IdTable(capacity.institutions);
    const isz = this.#instIds.mask + 1;
    this.#instSuspend = new Uint8Array(isz);
    this.#instDefined = new Uint8Array(isz);
    this.#instIndustry = new Uint16Array(isz);
    this.#instGrant = new Uint16Array(isz);
    this.#indIds = new IdTable(capacity.industries);
    this.#indSuspend = new Uint8Array(this.#indIds.mask + 1);
    this.#indDefined = new Uint8Array(this.#indIds.mask + 1);
    this.#indGrant = new Uint16Array(this.#indIds.mask + 1);
    this.#grantIds = new IdTable(capacity.grants);
    this.#grants = new Uint8Array((this.#grantIds.mask + 1) * GRANT_BYTES);
    this.grantView = new DataView(this.#grants.buffer);
  }

  /** RAM held by the index's typed arrays (fixed at construction). */
  get ramBytes(): number {
    let n = this.#hi.byteLength + this.#lo.byteLength + this.#state.byteLength + this.#inst.byteLength + this.#grant.byteLength + this.#used.byteLength;
    n += this.#instIds.ids.byteLength + this.#instIds.used.byteLength + this.#instSuspend.byteLength + this.#instDefined.byteLength + this.#instIndustry.byteLength + this.#instGrant.byteLength;
    n += this.#indIds.ids.byteLength + this.#indIds.used.byteLength + this.#indSuspend.byteLength + this.#indDefined.byteLength + this.#indGrant.byteLength;
    n += this.#grantIds.ids.byteLength + this.#grantIds.used.byteLength + this.#grants.byteLength;
    return n;
  }

  get credentialCount(): number {
    return this.#credCount;
  }

  reset(): void {
    this.#used.fill(0);
    this.#credCount = 0;
    this.#instIds.clear();
    this.#instSuspend.fill(0);
    this.#instDefined.fill(0);
    this.#indIds.clear();
    this.#indSuspend.fill(0);
    this.#indDefined.fill(0);
    this.#grantIds.clear();
    this.recordCount = 0;
  }

  // ---- lookups (hot path) ----
  findCredential(hi: number, lo: number): number {
    let i = (lo ^ hi) & this.#mask;
    for (let probes = 0; probes <= this.#mask; probes++) {
      if (this.#used[i] === 0) return -1;
      if (this.#lo[i] === lo && this.#hi[i] === hi) return i;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }
  credState(slot: number): number {
    return this.#state[slot] as number;
  }
  credInstitution(slot: number): number {
    return this.#inst[slot] as number;
  }
  credGrant(slot: number): number {
    return this.#grant[slot] as number;
  }
  /** Slot of an institution the overlay has any opinion on, or -1 (one probe for all its facts). */
  institutionSlot(id: number): number {
    return this.#instIds.find(id);
  }
  slotSuspension(slot: number): number {
    return this.#instSuspend[slot] as number;
  }
  slotDefined(slot: number): boolean {
    return this.#instDefined[slot] === 1;
  }
  /** SUSPEND_NONE / SUSPEND_ON / SUSPEND_OFF. */
  institutionSuspension(id: number): number {
    const s = this.#instIds.find(id);
    return s < 0 ? SUSPEND_NONE : (this.#instSuspend[s] as number);
  }
  /** Slot if the overlay defines this institution, else -1. */
  institutionDefinition(id: number): number {
    const s = this.#instIds.find(id);
    return s >= 0 && this.#instDefined[s] === 1 ? s : -1;
  }
  definedInstitutionIndustry(slot: number): number {
    return this.#instIndustry[slot] as number;
  }
  definedInstitutionGrant(slot: number): number {
    return this.#instGrant[slot] as number;
  }
  /** The grant an overlay definition gives this industry, or -1 if the overlay does not define it. */
  industryDefinedGrant(id: number): number {
    const s = this.#indIds.find(id);
    return s >= 0 && this.#indDefined[s] === 1 ? (this.#indGrant[s] as number) : -1;
  }
  industrySuspension(id: number): number {
    const s = this.#indIds.find(id);
    return s < 0 ? SUSPEND_NONE : (this.#indSuspend[s] as number);
  }
  /** Byte offset of grant id's record in grantView, or -1. */
  grantOffset(id: number): number {
    const s = this.#grantIds.find(id);
    return s < 0 ? -1 : s * GRANT_BYTES;
  }

  // ---- updates ----
  #credSlot(hi: number, lo: number): number {
    let i = (lo ^ hi) & this.#mask;
    for (let probes = 0; probes <= this.#mask; probes++) {
      if (this.#used[i] === 0) {
        if (this.#credCount >= this.capacity.credentials) return -1;
        this.#used[i] = 1;
        this.#hi[i] = hi;
        this.#lo[i] = lo;
        this.#state[i] = 0;
        this.#inst[i] = NONE16;
        this.#grant[i] = NONE16;
        this.#credCount++;
        return i;
      }
      if (this.#lo[i] === lo && this.#hi[i] === hi) return i;
      i = (i + 1) & this.#mask;
    }
    return -1;
  }

  /**
   * Validates a delta's records, then applies all of them or none. Capacity
   * is checked before the first change, so a full overlay leaves the index as it was.
   */
  apply(records: Uint8Array): OverlayApplyError | null {
    const error = this.check(records);
    if (error !== null) return error;
    this.applyChecked(records);
    return null;
  }

  /** The validation half of apply(): changes nothing. */
  check(records: Uint8Array): OverlayApplyError | null {
    if (records.length === 0 || records.length % DELTA_RECORD_BYTES !== 0) return 'bad_length';
    const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
    const n = records.length / DELTA_RECORD_BYTES;
    let newCreds = 0;
    let newInst = 0;
    let newInd = 0;
    let newGrants = 0;
    for (let r = 0; r < n; r++) {
      const at = r * DELTA_RECORD_BYTES;
      const op = v.getUint8(at);
      if (op < 1 || op > MAX_DELTA_OP) return 'bad_op';
      if (v.getUint8(at + 1) !== 0) return 'bad_reserved';
      // Upper bounds on growth (duplicates within one delta are counted twice: conservative).
      if (op <= DeltaOp.resumeSubject) {
        if (this.findCredential(v.getUint32(at + 4, false), v.getUint32(at + 8, false)) < 0) newCreds++;
      } else if (op === DeltaOp.suspendInstitution || op === DeltaOp.resumeInstitution || op === DeltaOp.defineInstitution) {
        if (this.#instIds.find(v.getUint16(at + 2, true)) < 0) newInst++;
      } else if (op === DeltaOp.suspendIndustry || op === DeltaOp.resumeIndustry || op === DeltaOp.defineIndustry) {
        if (this.#indIds.find(v.getUint16(at + 2, true)) < 0) newInd++;
      } else if (op === DeltaOp.defineGrant) {
        if (this.#grantIds.find(v.getUint16(at + 2, true)) < 0) newGrants++;
      }
    }
    const c = this.capacity;
    if (this.#credCount + newCreds > c.credentials || this.#instIds.count + newInst > c.institutions || this.#indIds.count + newInd > c.industries || this.#grantIds.count + newGrants > c.grants) return 'overlay_full';
    return null;
  }

  /** The update half of apply(): only after check() returned null for the same records. */
  applyChecked(records: Uint8Array): void {
    const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
    const n = records.length / DELTA_RECORD_BYTES;
    for (let r = 0; r < n; r++) this.#applyOne(v, r * DELTA_RECORD_BYTES);
    this.recordCount += n;
  }

  #applyOne(v: DataView, at: number): void {
    const op = v.getUint8(at);
    const a = v.getUint16(at + 2, true);
    const b = v.getUint16(at + 12, true);
    const c = v.getUint16(at + 14, true);
    if (op <= DeltaOp.resumeSubject) {
      const s = this.#credSlot(v.getUint32(at + 4, false), v.getUint32(at + 8, false));
      const st = this.#state[s] as number;
      if (op === DeltaOp.addCredential) {
        this.#state[s] = (st & CRED_SUBJECT_SUSPENDED) | CRED_ADDED;
        this.#inst[s] = a;
        this.#grant[s] = b;
      } else if (op === DeltaOp.revokeCredential) this.#state[s] = st | CRED_REVOKED;
      else if (op === DeltaOp.suspendSubject) this.#state[s] = st | CRED_SUBJECT_SUSPENDED;
      else this.#state[s] = st & ~CRED_SUBJECT_SUSPENDED;
      return;
    }
    switch (op) {
      case DeltaOp.suspendInstitution:
      case DeltaOp.resumeInstitution: {
        const s = this.#instIds.slot(a);
        this.#instSuspend[s] = op === DeltaOp.suspendInstitution ? SUSPEND_ON : SUSPEND_OFF;
        return;
      }
      case DeltaOp.defineInstitution: {
        const s = this.#instIds.slot(a);
        this.#instDefined[s] = 1;
        this.#instIndustry[s] = b;
        this.#instGrant[s] = c;
        return;
      }
      case DeltaOp.suspendIndustry:
      case DeltaOp.resumeIndustry: {
        const s = this.#indIds.slot(a);
        this.#indSuspend[s] = op === DeltaOp.suspendIndustry ? SUSPEND_ON : SUSPEND_OFF;
        return;
      }
      case DeltaOp.defineIndustry: {
        const s = this.#indIds.slot(a);
        this.#indDefined[s] = 1;
        this.#indGrant[s] = c;
        return;
      }
      case DeltaOp.noop:
        return;
      case DeltaOp.defineGrant: {
        const s = this.#grantIds.slot(a);
        const o = s * GRANT_BYTES;
        for (let i = 0; i < 8; i++) this.#grants[o + i] = v.getUint8(at + 4 + i);
        this.grantView.setUint16(o + 8, b, true); // validUntil, low half
        this.grantView.setUint16(o + 10, c, true); // validUntil, high half
        this.grantView.setUint32(o + 12, 0, true);
        return;
      }
    }
  }
}
