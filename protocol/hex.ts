// Hex helpers (no Buffer on the device).

const DIGITS = '0123456789abcdef';

export function toHex(bytes: Uint8Array): string {
  // join, not +=: XS concatenation copies, which is quadratic on long inputs.
  const parts: string[] = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    parts[i] = (DIGITS[b >> 4] as string) + (DIGITS[b & 15] as string);
  }
  return parts.join('');
}

function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Parses lower- or upper-case hex; throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  // Work on the UTF-8 bytes: XS stores strings as UTF-8, so indexing a long
  // string character by character would be quadratic.
  const chars = new TextEncoder().encode(hex);
  if (chars.length % 2 !== 0) throw new Error('hex: odd length');
  const out = new Uint8Array(chars.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(chars[2 * i] as number);
    const lo = nibble(chars[2 * i + 1] as number);
    if (hi < 0 || lo < 0) throw new Error(`hex: bad digit near offset ${2 * i}`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}
