// The wire profile every message must satisfy before any decoder touches it.
// A bounded, allocation-free walk over the bytes that enforces what cbor-x
// would accept leniently: definite lengths only, shortest-form integers and
// lengths, map keys that are text, unique and in canonical (bytewise) order,
// no tags, no floats, no simple values other than true/false, valid UTF-8,
// and bounded nesting. Together these make each message's encoding unique,
// so equal messages have equal bytes (dedupe and replay checks rely on it).

import type { ErrorCode } from '../result.js';

export const MAX_DEPTH = 8;

export interface ScanError {
  readonly code: ErrorCode;
  readonly offset: number;
}

class Scanner {
  pos = 0;
  error: ScanError | null = null;
  constructor(readonly bytes: Uint8Array) {}

  fail(code: ErrorCode): false {
    if (this.error === null) this.error = { code, offset: this.pos };
    return false;
  }

  /** Reads the head of an item; returns its argument or -1 on error. Sets `major`. */
  major = 0;
  head(): number {
    const b = this.bytes;
    if (this.pos >= b.length) return (this.fail('truncated'), -1);
    const initial = b[this.pos] as number;
    this.major = initial >> 5;
    const info = initial & 0x1f;
    this.pos += 1;
    if (info < 24) return info;
    if (info === 31) return (this.fail(this.major === 7 ? 'unsupported_type' : 'indefinite_length'), -1);
    if (info > 27) return (this.fail('not_canonical'), -1); // reserved additional-info values
    if (this.major === 7) return (this.fail('unsupported_type'), -1); // floats and one-byte simple values
    const size = 1 << (info - 24); // 1, 2, 4 or 8 bytes
    if (this.pos + size > b.length) return (this.fail('truncated'), -1);
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (b[this.pos + i] as number);
    this.pos += size;
    // Shortest form: the argument must not fit the next-smaller encoding.
    const floor = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 0x100000000;
    if (value < floor) return (this.pos -= size + 1, this.fail('not_canonical'), -1);
    return value; // values above 2^53 lose precision but stay ≥ floor; bounds are checked later
  }

  item(depth: number): boolean {
    if (depth > MAX_DEPTH) return this.fail('too_deep');
    const start = this.pos;
    const arg = this.head();
    if (arg < 0) return false;
    const remaining = this.bytes.length - this.pos;
    switch (this.major) {
      case 0:
      case 1:
        return true;
      case 2:
        if (arg > remaining) return this.fail('truncated');
        this.pos += arg;
        return true;
      case 3:
        if (arg > remaining) return this.fail('truncated');
        if (!validUtf8(this.bytes, this.pos, this.pos + arg)) return (this.pos = start, this.fail('invalid_utf8'));
        this.pos += arg;
        return true;
      case 4:
        // Each element takes at least one byte: a claimed length beyond what is
        // left is truncation, and nothing is ever sized from an untrusted count.
        if (arg > remaining) return this.fail('truncated');
        for (let i = 0; i < arg; i++) if (!this.item(depth + 1)) return false;
        return true;
      case 5: {
        if (arg * 2 > remaining) return this.fail('truncated');
        let prevStart = -1;
        let prevEnd = -1;
        for (let i = 0; i < arg; i++) {
          const keyStart = this.pos;
          if (keyStart >= this.bytes.length) return this.fail('truncated');
          if ((this.bytes[keyStart] as number) >> 5 !== 3) return this.fail('unsupported_type');
          if (!this.item(depth + 1)) return false;
          const keyEnd = this.pos;
          if (prevStart >= 0 && compareBytes(this.bytes, prevStart, prevEnd, keyStart, keyEnd) >= 0) {
            this.pos = keyStart;
            return this.fail('not_canonical');
          }
          prevStart = keyStart;
          prevEnd = keyEnd;
          if (!this.item(depth + 1)) return false;
        }
        return true;
      }
      case 6:
        this.pos = start;
        return this.fail('unsupported_type');
      default:
        // major 7 with a one-byte argument: only false (20) and true (21) are allowed.
        if (arg === 20 || arg === 21) return true;
        this.pos = start;
        return this.fail('unsupported_type');
    }
  }
}

/** Checks one complete CBOR item against the profile; null when it conforms. */
export function scanStrict(bytes: Uint8Array): ScanError | null {
  const s = new Scanner(bytes);
  if (!s.item(0)) return s.error;
  if (s.pos !== bytes.length) return { code: 'trailing_bytes', offset: s.pos };
  return null;
}

function compareBytes(b: Uint8Array, aStart: number, aEnd: number, cStart: number, cEnd: number): number {
  const aLen = aEnd - aStart;
  const cLen = cEnd - cStart;
  const n = aLen < cLen ? aLen : cLen;
  for (let i = 0; i < n; i++) {
    const d = (b[aStart + i] as number) - (b[cStart + i] as number);
    if (d !== 0) return d;
  }
  return aLen - cLen;
}

/** RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
export function validUtf8(b: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const c = b[i] as number;
    if (c < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else return false;
    if (i + need >= end) return false; // the sequence runs past the string
    for (let k = 1; k <= need; k++) {
      const cc = b[i + k] as number;
      if ((cc & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}
