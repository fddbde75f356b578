// What a reader sends on its UART for a credential, in the three formats the
// firmware decodes (docs/READERS.md, firmware/drivers/): the simulated
// readers in front of XS gates. Each throws when the id cannot be carried by
// that reader (wrong length), so a test never taps an id the wire cannot hold.

/** RDM6300 / EM4100 ASCII: STX, 10 hex digits of the 5-byte id, 2 of their XOR, ETX. */
export function em4100Frame(id: Uint8Array): Uint8Array {
  if (id.length !== 5) throw new RangeError(`an EM4100 card id is 5 bytes, got ${id.length}`);
  const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, '0');
  let x = 0;
  let s = '';
  for (const b of id) {
    s += hex(b);
    x ^= b;
  }
  s += hex(x);
  const f = new Uint8Array(14);
  f[0] = 0x02;
  for (let i = 0; i < 12; i++) f[1 + i] = s.charCodeAt(i);
  f[13] = 0x03;
  return f;
}

/** CRC-16/GENIBUS, the EPC Gen2 tag CRC. */
function crc16(b: Uint8Array): number {
  let crc = 0xffff;
  for (const x of b) {
    crc ^= x << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return ~crc & 0xffff;
}

/** M100 inventory notification for one EPC (2 to 62 bytes, whole 16-bit words). */
export function uhfFrame(epc: Uint8Array, rssi = 0xc9): Uint8Array {
  if (epc.length < 2 || epc.length > 62 || epc.length % 2 !== 0) throw new RangeError(`an EPC is 2 to 62 bytes in whole words, got ${epc.length}`);
  const pc = (epc.length / 2) << 11;
  const tag = new Uint8Array(2 + epc.length);
  tag[0] = pc >> 8;
  tag[1] = pc & 0xff;
  tag.set(epc, 2);
  const crc = crc16(tag);
  const params = new Uint8Array(1 + tag.length + 2);
  params[0] = rssi;
  params.set(tag, 1);
  params[params.length - 2] = crc >> 8;
  params[params.length - 1] = crc & 0xff;
  const pl = params.length;
  const f = new Uint8Array(7 + pl);
  f[0] = 0xbb;
  f[1] = 0x02;
  f[2] = 0x22;
  f[3] = pl >> 8;
  f[4] = pl & 0xff;
  f.set(params, 5);
  let sum = 0;
  for (let i = 1; i < 5 + pl; i++) sum = (sum + (f[i] as number)) & 0xff;
  f[5 + pl] = sum;
  f[6 + pl] = 0x7e;
  return f;
}

/**
 * A Wiegand-to-UART line for a decoded Wiegand id ([bit count, payload bytes
 * right-aligned], firmware/drivers/wiegand-uart.ts): 26-bit H10301 and 34-bit
 * H10306 (parity bits added).
 */
export function wiegandFrame(id: Uint8Array): Uint8Array {
  const bits = id[0];
  if ((bits !== 26 && bits !== 34) || id.length !== (bits === 26 ? 4 : 5)) throw new RangeError('wiegandFrame: [26, 3 payload bytes] or [34, 4 payload bytes]');
  const payloadBits = bits - 2;
  const payload: number[] = [];
  for (let i = 0; i < payloadBits; i++) {
    const bit = payloadBits - 1 - i;
    const byte = id[id.length - 1 - (bit >> 3)] as number;
    payload.push((byte >> (bit & 7)) & 1);
  }
  const half = payloadBits / 2;
  const even = payload.slice(0, half).reduce((a, b) => a ^ b, 0);
  const odd = 1 ^ payload.slice(half).reduce((a, b) => a ^ b, 0);
  const line = `W${bits}:${[even, ...payload, odd].join('')}\r\n`;
  return new TextEncoder().encode(line);
}
