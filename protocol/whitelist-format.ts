// Byte layouts of the whitelist image and of delta records: built by the
// central (host-sim/central/image-builder.ts), read in place by the gate
// (firmware/core/). All integers little-endian except credential keys, which
// are compared as big-endian byte strings (sorted bytewise).
//
// Image = header | credentials | grants | institutions | industries | schedules
//
// The gate never sorts or rewrites an image: the central builds the exact
// bytes, the gate checks the header and reads records where they lie.

export const IMAGE_MAGIC = 0x4c57_4c53; // "SLWL" little-endian
export const IMAGE_FORMAT = 1;
export const IMAGE_HEADER_BYTES = 64;

/** Header field offsets. */
export const H = {
  magic: 0, // u32
  format: 4, // u16
  headerBytes: 6, // u16
  epoch: 8, // u32
  version: 12, // u32
  credCount: 16, // u32
  grantCount: 20, // u32
  institutionCount: 24, // u32
  industryCount: 28, // u32
  scheduleCount: 32, // u32
  credOffset: 36, // u32
  grantOffset: 40, // u32
  institutionOffset: 44, // u32
  industryOffset: 48, // u32
  scheduleOffset: 52, // u32
  totalBytes: 56, // u32
  headerCrc: 60, // u32: CRC-32 of bytes 0..59
} as const;

/** Credential record: key[8] | institution u16 | grant u16. Sorted by key. */
export const CRED_BYTES = 12;
/** Grant record: masks u8 | schedule u8 | apbGroup u8 | level-reserved u8 | validFrom u32 | validUntil u32 | reserved u32. */
export const GRANT_BYTES = 16;
/** Institution record: industry u16 | grant u16 | flags u8 | reserved[3]. */
export const INSTITUTION_BYTES = 8;
/** Industry record: grant u16 | flags u8 | reserved u8. */
export const INDUSTRY_BYTES = 4;
/** Weekly schedule, UTC+8: 7 days (Monday first) x 48 half-hour slots, 6 bytes a day, bit i = slot i. */
export const SCHEDULE_BYTES = 48;
export const SCHEDULE_UTC_OFFSET_SECONDS = 8 * 3600;

export const NONE16 = 0xffff;
export const NONE8 = 0xff;
export const UNBOUNDED_UNTIL = 0xffffffff;
export const FLAG_SUSPENDED = 1;

/** Grant masks byte. */
export const MASK = {
  lineFirst: 0x01,
  lineSecond: 0x02,
  dirIn: 0x04,
  dirOut: 0x08,
  lanePerson: 0x10,
  laneVehicle: 0x20,
  laneGoods: 0x40,
} as const;

export type Line = 'first' | 'second';
export type Direction = 'in' | 'out';
export type LaneKind = 'person' | 'vehicle' | 'goods';

export const lineMask = (l: Line): number => (l === 'first' ? MASK.lineFirst : MASK.lineSecond);
export const directionMask = (d: Direction): number => (d === 'in' ? MASK.dirIn : MASK.dirOut);
export const laneMask = (k: LaneKind): number => (k === 'person' ? MASK.lanePerson : k === 'vehicle' ? MASK.laneVehicle : MASK.laneGoods);

// ---- delta records (the `records` of a delta message), 16 bytes each ----
// op u8 | reserved u8 | a u16 | key[8] | b u16 | c u16
export const DELTA_RECORD_BYTES = 16;
export const DeltaOp = {
  /** key, a = institution (NONE16), b = grant (NONE16). Adds or replaces a credential. */
  addCredential: 1,
  /** key. The credential is refused from now on (reason revoked). */
  revokeCredential: 2,
  /** key. The subject holding this credential is suspended (the central lists each of its credentials). */
  suspendSubject: 3,
  /** key. Lifts suspendSubject for this credential (not a revocation). */
  resumeSubject: 4,
  /** a = institution id. */
  suspendInstitution: 5,
  resumeInstitution: 6,
  /** a = industry id. */
  suspendIndustry: 7,
  resumeIndustry: 8,
  /** a = grant id (≥ the base image's grant count); key bytes hold the grant record's first 8 bytes, b|c its validUntil. */
  defineGrant: 9,
  /** a = institution id, b = industry id (NONE16), c = grant id (NONE16). Adds or replaces an institution. */
  defineInstitution: 10,
  /** a = industry id, c = grant id (NONE16). Sets an industry's grant. */
  defineIndustry: 11,
  /** Nothing: the delta of a version whose change means nothing to a gate. */
  noop: 12,
} as const;
export type DeltaOpCode = (typeof DeltaOp)[keyof typeof DeltaOp];
export const MAX_DELTA_OP = 12;
