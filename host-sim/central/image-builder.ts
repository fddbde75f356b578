// The central side of the whitelist format: builds the exact image bytes a
// gate installs, its chunk manifest and binding root, and delta records.
// Plain TypeScript with no Node APIs, so tests can also build images inside XS.

import type { Crypto } from '../../protocol/crypto.js';
import { crc32 } from '../../protocol/crc32.js';
import { toHex } from '../../protocol/hex.js';
import {
  CRED_BYTES, DELTA_RECORD_BYTES, DeltaOp, FLAG_SUSPENDED, GRANT_BYTES, H, IMAGE_FORMAT, IMAGE_HEADER_BYTES, IMAGE_MAGIC, INDUSTRY_BYTES, INSTITUTION_BYTES, MASK, NONE16, NONE8,
  SCHEDULE_BYTES, UNBOUNDED_UNTIL, type Direction, type LaneKind, type Line,
} from '../../protocol/whitelist-format.js';

export interface GrantSpec {
  readonly lines: readonly Line[];
  readonly directions: readonly Direction[];
  readonly lanes: readonly LaneKind[];
  /** UTC seconds; 0 / absent = unbounded. */
  readonly validFrom?: number;
  /** UTC seconds, inclusive; absent = unbounded. */
  readonly validUntil?: number;
  /** Index into the image's schedules. */
  readonly schedule?: number;
  /** 1-255; absent = no anti-passback. */
  readonly passbackGroup?: number;
}

export interface IndustrySpec {
  readonly suspended?: boolean;
  readonly grant?: GrantSpec;
}
export interface InstitutionSpec {
  readonly industry?: number;
  readonly suspended?: boolean;
  readonly grant?: GrantSpec;
}
export interface CredentialSpec {
  /** 8-byte credential key (protocol/credential-key.ts). */
  readonly key: Uint8Array;
  readonly institution?: number;
  readonly grant?: GrantSpec;
}

export interface ImageModel {
  readonly epoch: number;
  readonly version: number;
  /** Ids are indexes into these arrays. */
  readonly industries: readonly IndustrySpec[];
  readonly institutions: readonly InstitutionSpec[];
  readonly credentials: readonly CredentialSpec[];
  /** Weekly schedules, 48 bytes each (protocol/whitelist-format.ts). */
  readonly schedules: readonly Uint8Array[];
}

export function grantMasks(g: GrantSpec): number {
  let m = 0;
  for (const l of g.lines) m |= l === 'first' ? MASK.lineFirst : MASK.lineSecond;
  for (const d of g.directions) m |= d === 'in' ? MASK.dirIn : MASK.dirOut;
  for (const k of g.lanes) m |= k === 'person' ? MASK.lanePerson : k === 'vehicle' ? MASK.laneVehicle : MASK.laneGoods;
  return m;
}

/** The 16-byte grant record. */
export function encodeGrant(g: GrantSpec): Uint8Array {
  const b = new Uint8Array(GRANT_BYTES);
  const v = new DataView(b.buffer);
  v.setUint8(0, grantMasks(g));
  v.setUint8(1, g.schedule ?? NONE8);
  v.setUint8(2, g.passbackGroup ?? 0);
  v.setUint32(4, g.validFrom ?? 0, true);
  v.setUint32(8, g.validUntil ?? UNBOUNDED_UNTIL, true);
  return b;
}

/** Dedupes grants into a table; returns the index of each grant. */
class GrantTable {
  readonly records: Uint8Array[] = [];
  readonly specs: GrantSpec[] = [];
  readonly #index = new Map<string, number>();
  add(g: GrantSpec | undefined): number {
    if (g === undefined) return NONE16;
    const rec = encodeGrant(g);
    const k = toHex(rec);
    let i = this.#index.get(k);
    if (i === undefined) {
      i = this.records.length;
      if (i >= NONE16) throw new Error('more than 65534 distinct grants');
      this.records.push(rec);
      this.specs.push(g);
      this.#index.set(k, i);
    }
    return i;
  }
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 8; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

export class ImageBuildError extends Error {}

/**
 * The image as tables with explicit ids, as the central keeps them: grant,
 * institution and industry ids are stable across versions (deltas refer to
 * them), so images are built from the ids, not from a fresh numbering.
 */
export interface TableModel {
  readonly epoch: number;
  readonly version: number;
  /** Index = grant id. `null` for a retired id (kept so later ids stay put). */
  readonly grants: readonly (GrantSpec | null)[];
  readonly industries: readonly { readonly grant?: number; readonly suspended?: boolean }[];
  readonly institutions: readonly { readonly industry?: number; readonly grant?: number; readonly suspended?: boolean }[];
  readonly credentials: readonly { readonly key: Uint8Array; readonly institution?: number; readonly grant?: number }[];
  readonly schedules: readonly Uint8Array[];
}

/** Builds the exact image bytes. Refuses duplicate credential keys (a 64-bit collision or a double enrolment). */
export function buildImage(model: ImageModel): Uint8Array {
  return buildImageIndexed(model).bytes;
}

/** The image bytes plus the deduplicated grant table in index order (deltas refer to grants by index). */
export function buildImageIndexed(model: ImageModel): { bytes: Uint8Array; grants: GrantSpec[] } {
  const grants = new GrantTable();
  const credentials = model.credentials.map((c) => ({ key: c.key, institution: c.institution, grant: c.grant === undefined ? undefined : grants.add(c.grant) }));
  const institutions = model.institutions.map((s) => ({ industry: s.industry, suspended: s.suspended, grant: s.grant === undefined ? undefined : grants.add(s.grant) }));
  const industries = model.industries.map((s) => ({ suspended: s.suspended, grant: s.grant === undefined ? undefined : grants.add(s.grant) }));
  const bytes = buildImageFromTables({ epoch: model.epoch, version: model.version, grants: grants.specs, industries, institutions, credentials, schedules: model.schedules });
  return { bytes, grants: grants.specs };
}

const NEVER: GrantSpec = { lines: [], directions: [], lanes: [] };

export function buildImageFromTables(model: TableModel): Uint8Array {
  const grantCount = model.grants.length;
  const checkGrant = (g: number | undefined, what: string): number => {
    if (g === undefined) return NONE16;
    if (!Number.isInteger(g) || g < 0 || g >= grantCount) throw new ImageBuildError(`${what} refers to unknown grant ${g}`);
    return g;
  };
  if (grantCount >= NONE16) throw new ImageBuildError('more than 65534 grants');
  const creds = model.credentials.map((c) => {
    if (c.key.length !== 8) throw new ImageBuildError('credential keys are 8 bytes');
    if (c.institution !== undefined && (c.institution < 0 || c.institution >= model.institutions.length)) throw new ImageBuildError(`credential refers to unknown institution ${c.institution}`);
    return { key: c.key, institution: c.institution ?? NONE16, grant: checkGrant(c.grant, 'credential') };
  });
  creds.sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 1; i < creds.length; i++) {
    if (compareKeys((creds[i - 1] as { key: Uint8Array }).key, (creds[i] as { key: Uint8Array }).key) === 0) throw new ImageBuildError(`duplicate credential key ${toHex((creds[i] as { key: Uint8Array }).key)}`);
  }
  const insts = model.institutions.map((s) => {
    if (s.industry !== undefined && (s.industry < 0 || s.industry >= model.industries.length)) throw new ImageBuildError(`institution refers to unknown industry ${s.industry}`);
    return { industry: s.industry ?? NONE16, grant: checkGrant(s.grant, 'institution'), flags: s.suspended === true ? FLAG_SUSPENDED : 0 };
  });
  const inds = model.industries.map((s) => ({ grant: checkGrant(s.grant, 'industry'), flags: s.suspended === true ? FLAG_SUSPENDED : 0 }));
  for (const s of model.schedules) if (s.length !== SCHEDULE_BYTES) throw new ImageBuildError('schedules are 48 bytes');
  if (model.schedules.length >= NONE8) throw new ImageBuildError('at most 254 schedules');
  if (insts.length >= NONE16 || inds.length >= NONE16) throw new ImageBuildError('too many institutions or industries');
  const grantRecords = model.grants.map((g) => encodeGrant(g ?? NEVER));

  const credOffset = IMAGE_HEADER_BYTES;
  const grantOffset = credOffset + creds.length * CRED_BYTES;
  const instOffset = grantOffset + grantRecords.length * GRANT_BYTES;
  const indOffset = instOffset + insts.length * INSTITUTION_BYTES;
  const schedOffset = indOffset + inds.length * INDUSTRY_BYTES;
  // Padded to whole 16-byte units: flash encryption programs 16 bytes at a time.
  const total = (schedOffset + model.schedules.length * SCHEDULE_BYTES + 15) & ~15;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(H.magic, IMAGE_MAGIC, true);
  v.setUint16(H.format, IMAGE_FORMAT, true);
  v.setUint16(H.headerBytes, IMAGE_HEADER_BYTES, true);
  v.setUint32(H.epoch, model.epoch, true);
  v.setUint32(H.version, model.version, true);
  v.setUint32(H.credCount, creds.length, true);
  v.setUint32(H.grantCount, grantRecords.length, true);
  v.setUint32(H.institutionCount, insts.length, true);
  v.setUint32(H.industryCount, inds.length, true);
  v.setUint32(H.scheduleCount, model.schedules.length, true);
  v.setUint32(H.credOffset, credOffset, true);
  v.setUint32(H.grantOffset, grantOffset, true);
  v.setUint32(H.institutionOffset, instOffset, true);
  v.setUint32(H.industryOffset, indOffset, true);
  v.setUint32(H.scheduleOffset, schedOffset, true);
  v.setUint32(H.totalBytes, total, true);
  v.setUint32(H.headerCrc, crc32(out, 0, H.headerCrc), true);
  creds.forEach((c, i) => {
    const at = credOffset + i * CRED_BYTES;
    out.set(c.key, at);
    v.setUint16(at + 8, c.institution, true);
    v.setUint16(at + 10, c.grant, true);
  });
  grantRecords.forEach((r, i) => out.set(r, grantOffset + i * GRANT_BYTES));
  insts.forEach((s, i) => {
    const at = instOffset + i * INSTITUTION_BYTES;
    v.setUint16(at, s.industry, true);
    v.setUint16(at + 2, s.grant, true);
    v.setUint8(at + 4, s.flags);
  });
  inds.forEach((s, i) => {
    const at = indOffset + i * INDUSTRY_BYTES;
    v.setUint16(at, s.grant, true);
    v.setUint8(at + 2, s.flags);
  });
  model.schedules.forEach((s, i) => out.set(s, schedOffset + i * SCHEDULE_BYTES));
  return out;
}

export interface ChunkedImage {
  readonly chunkSize: number;
  readonly chunks: Uint8Array[];
  /** SHA-256 of each chunk, concatenated (the manifest's `hashes`). */
  readonly hashes: Uint8Array;
  /** SHA-256(hashes): the head's imageRoot. */
  readonly root: Uint8Array;
}

export function chunkImage(image: Uint8Array, chunkSize: number, crypto: Crypto): ChunkedImage {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < image.length; at += chunkSize) chunks.push(image.slice(at, Math.min(image.length, at + chunkSize)));
  const hashes = new Uint8Array(chunks.length * 32);
  chunks.forEach((c, i) => hashes.set(crypto.sha256(c), i * 32));
  return { chunkSize, chunks, hashes, root: crypto.sha256(hashes) };
}

/** A weekly schedule from [day (0 = Monday), fromHalfHour, toHalfHour exclusive] intervals, UTC+8. */
export function buildSchedule(intervals: readonly (readonly [number, number, number])[]): Uint8Array {
  const s = new Uint8Array(SCHEDULE_BYTES);
  for (const [day, from, to] of intervals) for (let slot = from; slot < to; slot++) s[day * 6 + (slot >> 3)]! |= 1 << (slot & 7);
  return s;
}

// ---- deltas ----
export type DeltaOpSpec =
  | { readonly op: 'add'; readonly key: Uint8Array; readonly institution?: number; readonly grant?: number }
  | { readonly op: 'revoke' | 'suspendSubject' | 'resumeSubject'; readonly key: Uint8Array }
  | { readonly op: 'suspendInstitution' | 'resumeInstitution'; readonly institution: number }
  | { readonly op: 'suspendIndustry' | 'resumeIndustry'; readonly industry: number }
  | { readonly op: 'defineGrant'; readonly id: number; readonly grant: GrantSpec }
  | { readonly op: 'defineInstitution'; readonly institution: number; readonly industry?: number; readonly grant?: number }
  | { readonly op: 'defineIndustry'; readonly industry: number; readonly grant?: number }
  | { readonly op: 'noop' };

export function encodeDeltaRecords(ops: readonly DeltaOpSpec[]): Uint8Array {
  const out = new Uint8Array(ops.length * DELTA_RECORD_BYTES);
  const v = new DataView(out.buffer);
  ops.forEach((o, i) => {
    const at = i * DELTA_RECORD_BYTES;
    switch (o.op) {
      case 'add':
        v.setUint8(at, DeltaOp.addCredential);
        v.setUint16(at + 2, o.institution ?? NONE16, true);
        out.set(o.key, at + 4);
        v.setUint16(at + 12, o.grant ?? NONE16, true);
        break;
      case 'revoke':
      case 'suspendSubject':
      case 'resumeSubject':
        v.setUint8(at, o.op === 'revoke' ? DeltaOp.revokeCredential : o.op === 'suspendSubject' ? DeltaOp.suspendSubject : DeltaOp.resumeSubject);
        out.set(o.key, at + 4);
        break;
      case 'suspendInstitution':
      case 'resumeInstitution':
        v.setUint8(at, o.op === 'suspendInstitution' ? DeltaOp.suspendInstitution : DeltaOp.resumeInstitution);
        v.setUint16(at + 2, o.institution, true);
        break;
      case 'suspendIndustry':
      case 'resumeIndustry':
        v.setUint8(at, o.op === 'suspendIndustry' ? DeltaOp.suspendIndustry : DeltaOp.resumeIndustry);
        v.setUint16(at + 2, o.industry, true);
        break;
      case 'defineGrant': {
        const rec = encodeGrant(o.grant);
        v.setUint8(at, DeltaOp.defineGrant);
        v.setUint16(at + 2, o.id, true);
        out.set(rec.subarray(0, 8), at + 4);
        out.set(rec.subarray(8, 12), at + 12); // validUntil, little-endian: low half then high half
        break;
      }
      case 'defineInstitution':
        v.setUint8(at, DeltaOp.defineInstitution);
        v.setUint16(at + 2, o.institution, true);
        v.setUint16(at + 12, o.industry ?? NONE16, true);
        v.setUint16(at + 14, o.grant ?? NONE16, true);
        break;
      case 'defineIndustry':
        v.setUint8(at, DeltaOp.defineIndustry);
        v.setUint16(at + 2, o.industry, true);
        v.setUint16(at + 12, NONE16, true);
        v.setUint16(at + 14, o.grant ?? NONE16, true);
        break;
      case 'noop':
        v.setUint8(at, DeltaOp.noop);
        break;
    }
  });
  return out;
}
