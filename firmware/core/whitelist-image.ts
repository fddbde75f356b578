// Read-only view of one whitelist image, in place: the bytes stay in (mapped)
// flash and every accessor reads from them through one DataView. Lookup is a
// binary search over fixed-width sorted records with no allocation.

import { crc32 } from '../../protocol/crc32.js';
import {
  CRED_BYTES, FLAG_SUSPENDED, GRANT_BYTES, H, IMAGE_FORMAT, IMAGE_HEADER_BYTES, IMAGE_MAGIC, INDUSTRY_BYTES, INSTITUTION_BYTES, SCHEDULE_BYTES, SCHEDULE_UTC_OFFSET_SECONDS,
} from '../../protocol/whitelist-format.js';

export type ImageError = 'too_short' | 'bad_magic' | 'bad_format' | 'bad_header_crc' | 'bad_layout';

export class WhitelistImage {
  readonly epoch: number;
  readonly version: number;
  readonly credCount: number;
  readonly grantCount: number;
  readonly institutionCount: number;
  readonly industryCount: number;
  readonly scheduleCount: number;
  readonly totalBytes: number;
  readonly #v: DataView;
  readonly #cred: number;
  readonly #grant: number;
  readonly #inst: number;
  readonly #ind: number;
  readonly #sched: number;

  private constructor(v: DataView) {
    this.#v = v;
    this.epoch = v.getUint32(H.epoch, true);
    this.version = v.getUint32(H.version, true);
    this.credCount = v.getUint32(H.credCount, true);
    this.grantCount = v.getUint32(H.grantCount, true);
    this.institutionCount = v.getUint32(H.institutionCount, true);
    this.industryCount = v.getUint32(H.industryCount, true);
    this.scheduleCount = v.getUint32(H.scheduleCount, true);
    this.totalBytes = v.getUint32(H.totalBytes, true);
    this.#cred = v.getUint32(H.credOffset, true);
    this.#grant = v.getUint32(H.grantOffset, true);
    this.#inst = v.getUint32(H.institutionOffset, true);
    this.#ind = v.getUint32(H.industryOffset, true);
    this.#sched = v.getUint32(H.scheduleOffset, true);
  }

  /** Checks the header and that every table lies inside the bytes; the content itself was verified by hash at install. */
  static open(bytes: Uint8Array): WhitelistImage | ImageError {
    if (bytes.length < IMAGE_HEADER_BYTES) return 'too_short';
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (v.getUint32(H.magic, true) !== IMAGE_MAGIC) return 'bad_magic';
    if (v.getUint16(H.format, true) !== IMAGE_FORMAT || v.getUint16(H.headerBytes, true) !== IMAGE_HEADER_BYTES) return 'bad_format';
    if (crc32(bytes, 0, H.headerCrc) !== v.getUint32(H.headerCrc, true)) return 'bad_header_crc';
    const total = v.getUint32(H.totalBytes, true);
    if (total > bytes.length) return 'too_short';
    const tables: [number, number, number][] = [
      [H.credOffset, H.credCount, CRED_BYTES],
      [H.grantOffset, H.grantCount, GRANT_BYTES],
      [H.institutionOffset, H.institutionCount, INSTITUTION_BYTES],
      [H.industryOffset, H.industryCount, INDUSTRY_BYTES],
      [H.scheduleOffset, H.scheduleCount, SCHEDULE_BYTES],
    ];
    for (const [off, count, size] of tables) {
      const start = v.getUint32(off, true);
      const n = v.getUint32(count, true);
      if (start < IMAGE_HEADER_BYTES || start + n * size > total) return 'bad_layout';
    }
    // Ids are u16 with 0xFFFF meaning none, so no table may reach 0xFFFF entries.
    if (v.getUint32(H.grantCount, true) >= 0xffff || v.getUint32(H.institutionCount, true) >= 0xffff || v.getUint32(H.industryCount, true) >= 0xffff || v.getUint32(H.scheduleCount, true) >= 0xff) return 'bad_layout';
    return new WhitelistImage(v);
  }

  /** Index of the credential whose key is (hi, lo) as two big-endian u32, or -1. */
  findCredential(hi: number, lo: number): number {
    const v = this.#v;
    const base = this.#cred;
    let low = 0;
    let high = this.credCount - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = base + mid * CRED_BYTES;
      const h = v.getUint32(at, false);
      if (h < hi) low = mid + 1;
      else if (h > hi) high = mid - 1;
      else {
        const l = v.getUint32(at + 4, false);
        if (l < lo) low = mid + 1;
        else if (l > lo) high = mid - 1;
        else return mid;
      }
    }
    return -1;
  }

  credKeyHi(i: number): number {
    return this.#v.getUint32(this.#cred + i * CRED_BYTES, false);
  }
  credKeyLo(i: number): number {
    return this.#v.getUint32(this.#cred + i * CRED_BYTES + 4, false);
  }
  credInstitution(i: number): number {
    return this.#v.getUint16(this.#cred + i * CRED_BYTES + 8, true);
  }
  credGrant(i: number): number {
    return this.#v.getUint16(this.#cred + i * CRED_BYTES + 10, true);
  }

  grantMasks(g: number): number {
    return this.#v.getUint8(this.#grant + g * GRANT_BYTES);
  }
  grantSchedule(g: number): number {
    return this.#v.getUint8(this.#grant + g * GRANT_BYTES + 1);
  }
  grantApbGroup(g: number): number {
    return this.#v.getUint8(this.#grant + g * GRANT_BYTES + 2);
  }
  grantValidFrom(g: number): number {
    return this.#v.getUint32(this.#grant + g * GRANT_BYTES + 4, true);
  }
  grantValidUntil(g: number): number {
    return this.#v.getUint32(this.#grant + g * GRANT_BYTES + 8, true);
  }

  institutionIndustry(i: number): number {
    return this.#v.getUint16(this.#inst + i * INSTITUTION_BYTES, true);
  }
  institutionGrant(i: number): number {
    return this.#v.getUint16(this.#inst + i * INSTITUTION_BYTES + 2, true);
  }
  institutionSuspended(i: number): boolean {
    return (this.#v.getUint8(this.#inst + i * INSTITUTION_BYTES + 4) & FLAG_SUSPENDED) !== 0;
  }

  industryGrant(i: number): number {
    return this.#v.getUint16(this.#ind + i * INDUSTRY_BYTES, true);
  }
  industrySuspended(i: number): boolean {
    return (this.#v.getUint8(this.#ind + i * INDUSTRY_BYTES + 2) & FLAG_SUSPENDED) !== 0;
  }

  /** True if schedule s allows the half-hour containing utcSeconds (evaluated in UTC+8). */
  scheduleAllows(s: number, utcSeconds: number): boolean {
    return scheduleBit(this.#v, this.#sched + s * SCHEDULE_BYTES, utcSeconds);
  }
}

/** Weekly schedule bit for a time: day 0 = Monday in UTC+8, 48 half-hour slots a day. */
export function scheduleBit(v: DataView, at: number, utcSeconds: number): boolean {
  const local = utcSeconds + SCHEDULE_UTC_OFFSET_SECONDS;
  const days = Math.floor(local / 86400);
  const day = (days + 3) % 7; // 1970-01-01 was a Thursday: Monday = 0
  const slot = Math.floor((local - days * 86400) / 1800);
  const byte = v.getUint8(at + day * 6 + (slot >> 3));
  return ((byte >> (slot & 7)) & 1) === 1;
}
