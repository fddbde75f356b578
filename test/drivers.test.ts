// Reader frame decoders (firmware/drivers/): published example frames, every
// reject reason, arbitrary splits, noise and resync, the UHF duplicate window,
// fast-check properties, and the same streams on Node and on XS.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { fromHex, toHex } from '../protocol/hex.js';
import { FRAME_REJECT_REASONS, type FrameRejectReason } from '../firmware/drivers/frame.js';
import { WiegandUartDecoder } from '../firmware/drivers/wiegand-uart.js';
import { UhfFrameDecoder } from '../firmware/drivers/uhf-frame.js';
import { runChunks, runStreams, type DecoderName, type StreamCase, type StreamOutcome } from './helpers/drivers.js';
import { startXs } from './helpers/xs.js';

const seed = Number(process.env.FC_SEED ?? 20261127);
const runs = Number(process.env.FC_RUNS ?? 300);

// ---- helpers -------------------------------------------------------------

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => fromHex(s.replace(/\s+/g, ''));
function cat(...parts: (Uint8Array | readonly number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

type Options = StreamCase['options'];
function run(name: DecoderName, stream: Uint8Array, options?: Options, atMs = 1000): StreamOutcome {
  return runChunks(name, [{ bytes: stream, atMs }], options);
}
const readIds = (o: StreamOutcome): string[] => o.events.flatMap((e) => ('read' in e ? [e.read.id] : []));
const rejectReasons = (o: StreamOutcome): FrameRejectReason[] => o.events.flatMap((e) => ('reject' in e ? [e.reject] : []));
interface Stats {
  ok: number;
  noise: number;
  rejected: Record<FrameRejectReason, number>;
  duplicate?: number;
  ignored?: number;
}
const statsOf = (o: StreamOutcome): Stats => o.stats as Stats;

/** stats.ok counts the reads reported, stats.rejected[r] the rejects reported with r. */
function assertConsistent(o: StreamOutcome): void {
  const s = statsOf(o);
  assert.is(s.ok, readIds(o).length, 'stats.ok = reads');
  const reasons = rejectReasons(o);
  for (const r of FRAME_REJECT_REASONS) assert.is(s.rejected[r], reasons.filter((x) => x === r).length, `stats.rejected.${r}`);
  assert.is(reasons.length, FRAME_REJECT_REASONS.reduce((n, r) => n + s.rejected[r], 0), 'no undocumented reason');
}

/** Whole, split in two at every byte boundary, and one byte at a time: identical outcomes. */
function assertSplitInvariant(name: DecoderName, stream: Uint8Array, options?: Options): StreamOutcome {
  const whole = run(name, stream, options, 5);
  for (let i = 0; i <= stream.length; i++) {
    const split = runChunks(name, [{ bytes: stream.subarray(0, i), atMs: 5 }, { bytes: stream.subarray(i), atMs: 5 }], options);
    assert.equal(split, whole, `split at ${i}`);
  }
  const bytewise = runChunks(name, Array.from(stream, (b) => ({ bytes: Uint8Array.of(b), atMs: 5 })), options);
  assert.equal(bytewise, whole, 'one byte at a time');
  return whole;
}

// ---- Wiegand encoders (written from the format definitions, not from the decoder) ----

const bin = (v: number, width: number): string => v.toString(2).padStart(width, '0');
const ones = (s: string): number => [...s].filter((c) => c === '1').length;
/** H10301: even parity over data bits 0-11, odd over 12-23. */
function w26(fcode: number, card: number): string {
  const d = bin(fcode, 8) + bin(card, 16);
  return `${ones(d.slice(0, 12)) % 2}${d}${1 - (ones(d.slice(12)) % 2)}`;
}
/** H10306: even over the first 16 data bits, odd over the last 16. */
function w34(fcode: number, card: number): string {
  const d = bin(fcode, 16) + bin(card, 16);
  return `${ones(d.slice(0, 16)) % 2}${d}${1 - (ones(d.slice(16)) % 2)}`;
}
/** Corporate 1000 35-bit: bit 1 even over 2,3,5,6..32,33; bit 34 odd over 1,2,4,5..31,32; bit 0 odd over everything. */
function w35(company: number, card: number): string {
  const b = [0, 0, ...[...(bin(company, 12) + bin(card, 20))].map(Number), 0];
  const pick = (from: number, to: number): number => b.slice(from, to + 1).filter((_, k) => k % 3 !== 2).reduce((x, y) => x ^ y, 0);
  b[1] = pick(2, 33);
  b[34] = 1 ^ pick(1, 32);
  b[0] = 1 ^ b.slice(1).reduce((x, y) => x ^ y, 0);
  return b.join('');
}
/** H10304: bit 0 even over 1-18, bit 36 odd over 18-35. */
function w37(fcode: number, card: number): string {
  const d = bin(fcode, 16) + bin(card, 19);
  return `${ones(d.slice(0, 18)) % 2}${d}${1 - (ones(d.slice(17)) % 2)}`;
}
const wline = (bits: string, eol = '\r\n'): Uint8Array => ascii(`W${bits.length}:${bits}${eol}`);
const flipFirst = (bits: string): string => (bits[0] === '1' ? '0' : '1') + bits.slice(1);
/** Expected id: bit count, then the payload right-aligned big-endian. */
function wid(length: number, payload: bigint, payloadBits: number): string {
  return length.toString(16).padStart(2, '0') + payload.toString(16).padStart(Math.ceil(payloadBits / 8) * 2, '0');
}
const W_FORMATS = [
  { len: 26, enc: w26, fcBits: 8, cnBits: 16 },
  { len: 34, enc: w34, fcBits: 16, cnBits: 16 },
  { len: 35, enc: w35, fcBits: 12, cnBits: 20 },
  { len: 37, enc: w37, fcBits: 16, cnBits: 19 },
] as const;
const widOf = (len: number, fcode: number, card: number, cnBits: number, fcBits: number): string => wid(len, (BigInt(fcode) << BigInt(cnBits)) | BigInt(card), fcBits + cnBits);

// ---- EM4100 and UHF encoders ----

/** RDM6300 frame for 5 data bytes (hex); checksum = XOR of the bytes unless given. */
function em(data: string, opts: { checksum?: number; lower?: boolean } = {}): Uint8Array {
  const d = fromHex(data);
  const x = opts.checksum ?? d.reduce((a, b) => a ^ b, 0);
  let text = data.toUpperCase() + x.toString(16).padStart(2, '0').toUpperCase();
  if (opts.lower === true) text = text.toLowerCase();
  return cat([0x02], ascii(text), [0x03]);
}

function crc16Genibus(b: Uint8Array): number {
  let c = 0xffff;
  for (const x of b) {
    c ^= x << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  }
  return ~c & 0xffff;
}
/** Any M100 frame with a correct checksum. */
function uhfRaw(type: number, cmd: number, params: Uint8Array | readonly number[]): Uint8Array {
  const body = cat([type, cmd, params.length >> 8, params.length & 0xff], params);
  return cat([0xbb], body, [body.reduce((a, b) => a + b, 0) & 0xff, 0x7e]);
}
/** A tag report (type 02, command 22) for an EPC of whole words. */
function uhf(epcHex: string, opts: { rssi?: number; pc?: number; crc?: number } = {}): Uint8Array {
  const epc = fromHex(epcHex);
  const pc = opts.pc ?? (epc.length / 2) << 11;
  const crc = opts.crc ?? crc16Genibus(cat([pc >> 8, pc & 0xff], epc));
  return uhfRaw(0x02, 0x22, cat([opts.rssi ?? 0xc9, pc >> 8, pc & 0xff], epc, [crc >> 8, crc & 0xff]));
}

// ---- published examples ----------------------------------------------------

/** Allegion knowledge base, "26A" (H10301) example: FC 101, card 4095. */
const ALLEGION_26 = '00110010100001111111111111';
/** CIVINTEC CN56 reader manual 6.4.2 / 6.4.5: data D4 1B 81 (26-bit) and 89 D4 1B 81 (34-bit). */
const CN56_26 = '1' + '110101000001101110000001' + '0';
const CN56_34 = '1' + '10001001110101000001101110000001' + '1';
/** A Doppelganger reader log line: C1k35s, Hex_Value 2D4A64FB8E (HID preamble 0b101 + 35 bits), FC 2643, CN 163271. */
const DOPPELGANGER_35 = (0x2d4a64fb8en & ((1n << 35n) - 1n)).toString(2).padStart(35, '0');
/** Seeed RDM630/RDM6300 wiki: card 62E3086CED, checksum 08. */
const SEEED_EM = em('62E3086CED');
/** M100 command manual, single inventory notification. */
const M100_NOTIFICATION = hex('BB 02 22 00 11 C9 34 00 30 75 1F EB 70 5C 59 04 E3 D5 0D 70 3A 76 EF 7E');
/** A logged read of an Impinj-style EPC (E200...) from an M100 module. */
const M100_LOGGED = hex('BB 02 22 00 11 C9 30 00 E2 00 00 17 27 02 02 67 12 80 EE 17 45 76 0B 7E');
/** M100 error response, "no tag" (type 01, command FF, parameter 15). */
const M100_NO_TAG = hex('BB 01 FF 00 01 15 16 7E');

// ---- Wiegand -------------------------------------------------------------------

const wiegand = suite('drivers: wiegand-uart');

wiegand('published 26-bit frames: Allegion 26A (FC 101, card 4095) and the CN56 manual (D4 1B 81)', () => {
  assert.is(w26(101, 4095), ALLEGION_26, 'our encoder agrees with the published bits');
  assert.is(w26(0xd4, 0x1b81), CN56_26);
  const o = run('wiegand', cat(wline(ALLEGION_26), wline(CN56_26)));
  assert.equal(o.events, [{ read: { kind: 'card', id: '1a650fff', atMs: 1000 } }, { read: { kind: 'card', id: '1ad41b81', atMs: 1000 } }]);
  assertConsistent(o);
});
wiegand('published 34-bit frame: CN56 manual (89 D4 1B 81)', () => {
  assert.is(w34(0x89d4, 0x1b81), CN56_34);
  assert.equal(readIds(run('wiegand', wline(CN56_34))), ['2289d41b81']);
});
wiegand('published 35-bit Corporate 1000 frame: company 2643, card 163271', () => {
  assert.is(w35(2643, 163271), DOPPELGANGER_35, 'our encoder agrees with the logged bits');
  assert.equal(readIds(run('wiegand', wline(DOPPELGANGER_35))), [widOf(35, 2643, 163271, 20, 12)]);
  assert.is(widOf(35, 2643, 163271, 20, 12), '23a5327dc7');
});
wiegand('37-bit H10304 frames, including the overlapping parity bit 18', () => {
  for (const [f, c] of [[12345, 345678], [0, 0], [65535, 524287], [1, 1 << 18]] as const) {
    assert.equal(readIds(run('wiegand', wline(w37(f, c)))), [widOf(37, f, c, 19, 16)], `FC ${f} card ${c}`);
  }
  assert.is(w37(0, 0), '0' + '0'.repeat(35) + '1');
});
wiegand('every format round-trips through the decoder; LF alone ends a line too', () => {
  for (const f of W_FORMATS) {
    const [fcode, card] = [(1 << f.fcBits) - 2, (1 << f.cnBits) - 3];
    const o = run('wiegand', cat(wline(f.enc(fcode, card)), wline(f.enc(1, 2), '\n')));
    assert.equal(readIds(o), [widOf(f.len, fcode, card, f.cnBits, f.fcBits), widOf(f.len, 1, 2, f.cnBits, f.fcBits)]);
    assertConsistent(o);
  }
});
wiegand('the same payload in two formats gives two different ids', () => {
  assert.not.equal(readIds(run('wiegand', wline(w26(0, 1)))), readIds(run('wiegand', wline(w34(0, 1)))));
  assert.equal(readIds(run('wiegand', wline(w26(0, 1)))), ['1a000001']);
  assert.equal(readIds(run('wiegand', wline(w34(0, 1)))), ['2200000001']);
});
wiegand('parity: every single-bit flip of a good frame is rejected, in every format', () => {
  for (const f of W_FORMATS) {
    const good = f.enc(0xa5, 0x5a5);
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice(0, i) + (good[i] === '1' ? '0' : '1') + good.slice(i + 1);
      const o = run('wiegand', wline(bad));
      assert.equal(o.events, [{ reject: 'parity', atMs: 1000 }], `${f.len}-bit, bit ${i}`);
      assertConsistent(o);
    }
  }
});
wiegand('length: bit count differs from the declared one, or an unknown format', () => {
  const good = w26(1, 2);
  for (const text of [`W26:${good.slice(1)}`, `W26:${good}0`, `W26:`, `W30:${'0'.repeat(30)}`, `W37:${w34(1, 2)}`, `W34:${w35(1, 2)}`, `W9:000000000`]) {
    assert.equal(rejectReasons(run('wiegand', ascii(`${text}\r\n`))), ['length'], text);
  }
});
wiegand('format: a non-0/1 character, a bad header, a CR inside the bits, a line cut by the next W', () => {
  const good = w26(1, 2);
  for (const text of [`W26:${good.slice(0, 25)}2`, `W26:${good.slice(0, 10)} ${good.slice(10)}`, `W2a:${good}`, `W26${good}`, `W:${good}`, `W026:${good}`, `W26:${good.slice(0, 3)}\r${good.slice(3)}`, 'W']) {
    assert.equal(rejectReasons(run('wiegand', ascii(`${text}\r\n`))), ['format'], JSON.stringify(text));
  }
  const o = run('wiegand', cat(ascii(`W26:${good.slice(0, 7)}`), wline(good)));
  assert.equal(o.events, [{ reject: 'format', atMs: 1000 }, { read: { kind: 'card', id: '1a010002', atMs: 1000 } }]);
});
wiegand('overflow: an over-long line is rejected once, the rest of it dropped, and the next frame read', () => {
  const long = ascii(`W26:${'01'.repeat(100000)}\r\n`);
  const o = run('wiegand', cat(long, wline(ALLEGION_26)));
  assert.equal(o.events, [{ reject: 'overflow', atMs: 1000 }, { read: { kind: 'card', id: '1a650fff', atMs: 1000 } }]);
  assert.is(statsOf(o).noise, 0, 'the dropped tail is not noise');
  // A 'W' inside the dropped tail starts a new line at once.
  const o2 = run('wiegand', cat(ascii(`W26:${'1'.repeat(60)}`), wline(CN56_26)));
  assert.equal(rejectReasons(o2), ['overflow']);
  assert.equal(readIds(o2), ['1ad41b81']);
});
wiegand('noise between frames is counted and skipped', () => {
  const o = run('wiegand', cat(ascii('hello\r\n'), wline(ALLEGION_26), [0, 0xff, 0x80], wline(CN56_26), ascii('\n\n')));
  assert.equal(readIds(o), ['1a650fff', '1ad41b81']);
  assert.is(statsOf(o).noise, 7 + 3 + 2);
  assert.equal(rejectReasons(o), []);
});
wiegand('split at every byte boundary: identical results', () => {
  const stream = cat(ascii('xx'), wline(ALLEGION_26), ascii(`W26:${'0'.repeat(60)}\n`), wline(flipFirst(w26(1, 2))), wline(DOPPELGANGER_35, '\n'), ascii('W99:1\r\n'), wline(w37(7, 9)));
  const o = assertSplitInvariant('wiegand', stream);
  assert.equal(rejectReasons(o), ['overflow', 'parity', 'length']);
  assert.is(readIds(o).length, 3);
});
wiegand('close() drops a partial line and ignores later bytes', () => {
  const ids: string[] = [];
  const d = new WiegandUartDecoder({ onRead: (r) => void ids.push(toHex(r.id)) });
  const line = wline(ALLEGION_26);
  d.push(line.subarray(0, 10), 1);
  d.close();
  d.push(line.subarray(10), 2);
  d.push(line, 3);
  assert.equal(ids, []);
  assert.is(d.stats.ok, 0);
});
wiegand.run();

// ---- EM4100 ------------------------------------------------------------------------

const em4100 = suite('drivers: em4100-ascii');

em4100('published frame: Seeed RDM630 wiki, card 62E3086CED, checksum 08', () => {
  assert.equal(SEEED_EM, cat([0x02], ascii('62E3086CED08'), [0x03]));
  const o = run('em4100', SEEED_EM);
  assert.equal(o.events, [{ read: { kind: 'card', id: '62e3086ced', atMs: 1000 } }]);
  assertConsistent(o);
});
em4100('lower-case digits are accepted', () => {
  assert.equal(readIds(run('em4100', em('0a1b2c3d4e', { lower: true }))), ['0a1b2c3d4e']);
});
em4100('checksum: a wrong XOR byte is rejected', () => {
  assert.equal(run('em4100', em('62E3086CED', { checksum: 0x09 })).events, [{ reject: 'checksum', atMs: 1000 }]);
});
em4100('format: a non-hex byte among the digits; the rest of the frame is dropped, not noise', () => {
  const bad = cat([0x02], ascii('62E3G86CED08'), [0x03]);
  const o = run('em4100', cat(bad, SEEED_EM));
  assert.equal(rejectReasons(o), ['format']);
  assert.equal(readIds(o), ['62e3086ced']);
  assert.is(statsOf(o).noise, 0);
});
em4100('length: ETX early, ETX missing at byte 13, or a new STX cutting the frame', () => {
  for (const bad of [cat([0x02], ascii('62E3086CED'), [0x03]), cat([0x02], ascii('62E3086CED08'), ascii('0'), [0x03]), cat([0x02], ascii('62E3086CED08'), ascii('\r\n'), [0x03]), cat([0x02], ascii('62E30'))]) {
    const o = run('em4100', cat(bad, SEEED_EM));
    assert.equal(rejectReasons(o), ['length'], toHex(bad));
    assert.equal(readIds(o), ['62e3086ced'], 'the next frame is read');
  }
});
em4100('noise outside frames is counted and skipped', () => {
  const o = run('em4100', cat(ascii('\r\n'), SEEED_EM, [0x03, 0x41, 0xff], SEEED_EM));
  assert.equal(readIds(o), ['62e3086ced', '62e3086ced']);
  assert.is(statsOf(o).noise, 5);
});
em4100('split at every byte boundary: identical results', () => {
  const stream = cat([0x41], SEEED_EM, em('0102030405', { checksum: 0 }), cat([0x02], ascii('0X')), em('FFFFFFFFFF'), [0x02, 0x02, 0x03], em('0000000000'));
  const o = assertSplitInvariant('em4100', stream);
  assert.equal(rejectReasons(o), ['checksum', 'format', 'length', 'length']);
  assert.equal(readIds(o), ['62e3086ced', 'ffffffffff', '0000000000']);
});
em4100.run();

// ---- UHF ----------------------------------------------------------------------------

const uhfSuite = suite('drivers: uhf-frame');

uhfSuite('published frames: the M100 manual notification and a logged read (checksum and tag CRC verify)', () => {
  assert.equal(uhf('30751FEB705C5904E3D50D70', { pc: 0x3400 }), M100_NOTIFICATION, 'our encoder agrees with the manual (PC 3400: UMI bit set)');
  assert.equal(uhf('E20000172702026712 80EE17'.replace(/ /g, ''), { pc: 0x3000 }), M100_LOGGED);
  const o = run('uhf', cat(M100_NOTIFICATION, M100_LOGGED));
  assert.equal(o.events, [{ read: { kind: 'uhf', id: '30751feb705c5904e3d50d70', atMs: 1000 } }, { read: { kind: 'uhf', id: 'e2000017270202671280ee17', atMs: 1000 } }]);
  assertConsistent(o);
});
uhfSuite('EPC length comes from the PC word: 1 to 31 words', () => {
  for (const words of [1, 2, 6, 8, 31]) {
    const epc = toHex(Uint8Array.from({ length: words * 2 }, (_, i) => (i * 37 + words) & 0xff));
    assert.equal(readIds(run('uhf', uhf(epc))), [epc], `${words} words`);
  }
});
uhfSuite('other well-formed frames (responses, "no tag") are ignored, not rejected', () => {
  const o = run('uhf', cat(M100_NO_TAG, uhfRaw(0x01, 0x03, ascii('M100 26dBm V1.0')), M100_NOTIFICATION));
  assert.equal(readIds(o), ['30751feb705c5904e3d50d70']);
  assert.equal(rejectReasons(o), []);
  assert.is(statsOf(o).ignored, 2);
});
uhfSuite('each reject reason, and the next frame is still read', () => {
  const good = M100_NOTIFICATION;
  const withByte = (i: number, v: number): Uint8Array => {
    const b = good.slice();
    b[i] = v;
    return b;
  };
  const cases: [string, Uint8Array, FrameRejectReason][] = [
    ['checksum byte', withByte(22, 0xee), 'checksum'],
    ['EPC byte (checksum then fails)', withByte(10, 0x00), 'checksum'],
    ['tag CRC', uhf('30751FEB705C5904E3D50D70', { crc: 0x3a77 }), 'crc'],
    ['end byte', withByte(23, 0x7f), 'length'],
    ['PC says 5 words, PL says 6', uhf('30751FEB705C5904E3D50D70', { pc: 0x2c00 }), 'length'],
    ['empty EPC', uhfRaw(0x02, 0x22, [0xc9, 0x00, 0x00, 0xe2, 0xf0]), 'length'],
    ['short notification', uhfRaw(0x02, 0x22, [0xc9]), 'length'],
    ['unknown type', uhfRaw(0x05, 0x22, [1, 2, 3]), 'format'],
    ['notification that is not an inventory report', uhfRaw(0x02, 0x27, [1, 2, 3]), 'format'],
    ['parameters longer than any tag report', cat([0xbb, 0x01, 0x39, 0x01, 0x00], new Uint8Array(256 + 2)), 'overflow'],
  ];
  for (const [what, bad, reason] of cases) {
    const o = run('uhf', cat(bad, good));
    assert.equal(rejectReasons(o).slice(0, 1), [reason], what);
    assert.equal(readIds(o), ['30751feb705c5904e3d50d70'], `${what}: next frame read`);
    assertConsistent(o);
  }
});
uhfSuite('a stray header in noise does not swallow the frame behind it', () => {
  const o = run('uhf', cat([0x00, 0xbb, 0x02, 0x22, 0x00, 0x11, 0xc9], M100_NOTIFICATION));
  assert.equal(readIds(o), ['30751feb705c5904e3d50d70']);
  assert.equal(rejectReasons(o), ['length'], 'the false header is refused as soon as its PC disagrees with PL');
  const o2 = run('uhf', cat([0xbb, 0x01, 0x10, 0x00, 0x20, 1, 2, 3], M100_LOGGED, new Uint8Array(20)));
  assert.equal(readIds(o2), ['e2000017270202671280ee17'], 'a false response header: found on rescan');
  assert.equal(rejectReasons(o2), ['length']);
});
uhfSuite('duplicate window: a repeat within the window of the last report is dropped', () => {
  const f = M100_NOTIFICATION;
  const o = runChunks('uhf', [0, 1, 1999, 2000, 2001, 3999, 4000].map((atMs) => ({ bytes: f, atMs })));
  assert.equal(
    o.events.map((e) => ('read' in e ? e.read.atMs : -1)),
    [0, 2000, 4000],
  );
  assert.is(statsOf(o).duplicate, 4);
  assertConsistent(o);
  const custom = runChunks('uhf', [0, 400, 500, 999].map((atMs) => ({ bytes: f, atMs })), { duplicateWindowMs: 500 });
  assert.equal(custom.events.map((e) => ('read' in e ? e.read.atMs : -1)), [0, 500]);
  const off = runChunks('uhf', [0, 0, 1].map((atMs) => ({ bytes: f, atMs })), { duplicateWindowMs: 0 });
  assert.is(readIds(off).length, 3);
});
uhfSuite('duplicate table: at capacity the oldest EPC is evicted', () => {
  const [a, b, c] = ['1111', '2222', '3333'].map((e) => uhf(e)) as [Uint8Array, Uint8Array, Uint8Array];
  const seq: [Uint8Array, number][] = [[a, 0], [b, 10], [c, 20], [b, 30], [a, 40], [c, 50], [b, 60]];
  const o = runChunks('uhf', seq.map(([bytes, atMs]) => ({ bytes, atMs })), { duplicateCapacity: 2 });
  // c evicts a (oldest); b at 30 is a repeat; a at 40 is new again and evicts b (reported at 10); c at 50 a repeat; b at 60 new.
  assert.equal(o.events.map((e) => ('read' in e ? `${e.read.id}@${e.read.atMs}` : '')), ['1111@0', '2222@10', '3333@20', '1111@40', '2222@60']);
  assert.is(statsOf(o).duplicate, 2);
  const big = runChunks('uhf', seq.map(([bytes, atMs]) => ({ bytes, atMs })));
  assert.is(readIds(big).length, 3, 'the default capacity keeps all three');
});
uhfSuite('options are checked at construction', () => {
  const onRead = (): void => undefined;
  for (const bad of [{ duplicateCapacity: 0 }, { duplicateCapacity: 1.5 }, { duplicateCapacity: 5000 }, { duplicateWindowMs: -1 }, { duplicateWindowMs: Number.NaN }]) {
    assert.throws(() => new UhfFrameDecoder({ onRead, ...bad }), (e: unknown) => e instanceof RangeError, JSON.stringify(bad));
  }
});
uhfSuite('split at every byte boundary: identical results', () => {
  const stream = cat([0x7e, 0xbb], M100_NOTIFICATION, M100_NO_TAG, uhf('0102', { crc: 0 }), [0xbb, 0xbb], M100_LOGGED, uhf('abcd'.repeat(31)), M100_NOTIFICATION);
  const o = assertSplitInvariant('uhf', stream);
  assert.equal(readIds(o), ['30751feb705c5904e3d50d70', 'e2000017270202671280ee17', 'abcd'.repeat(31)]);
  assert.is(statsOf(o).duplicate, 1);
  assert.is(statsOf(o).ignored, 1);
});
uhfSuite.run();

// ---- properties ------------------------------------------------------------------------

interface Framed {
  bytes: Uint8Array;
  id: string;
}
const wiegandFrame: fc.Arbitrary<Framed> = fc
  .tuple(fc.constantFrom(...W_FORMATS), fc.nat(), fc.nat(), fc.constantFrom('\r\n', '\n'))
  .map(([f, a, b, eol]) => {
    const [fcode, card] = [a % (1 << f.fcBits), b % (1 << f.cnBits)];
    return { bytes: wline(f.enc(fcode, card), eol), id: widOf(f.len, fcode, card, f.cnBits, f.fcBits) };
  });
const emFrame: fc.Arbitrary<Framed> = fc.tuple(fc.uint8Array({ minLength: 5, maxLength: 5 }), fc.boolean()).map(([d, lower]) => ({ bytes: em(toHex(d), { lower }), id: toHex(d) }));
const uhfEpc = fc.integer({ min: 1, max: 31 }).chain((w) => fc.uint8Array({ minLength: 2 * w, maxLength: 2 * w }));
const uhfFrames: fc.Arbitrary<Framed[]> = fc.uniqueArray(uhfEpc, { maxLength: 6, selector: toHex }).map((epcs) => epcs.map((e) => ({ bytes: uhf(toHex(e)), id: toHex(e) })));

/** Noise: arbitrary bytes, or bytes from the format's own alphabet (the harder case: near-frames). */
const noiseFrom = (alphabet: readonly number[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.array(fc.constantFrom(...alphabet), { maxLength: 60 }).map((a) => Uint8Array.from(a)));
const NOISE: Record<DecoderName, fc.Arbitrary<Uint8Array>> = {
  wiegand: noiseFrom([...ascii('W0123456789:\r\n0101010101')]),
  em4100: noiseFrom([0x02, 0x03, ...ascii('0123456789ABCDEFabcdefG\r\n')]),
  uhf: noiseFrom([0xbb, 0xbb, 0x01, 0x02, 0x22, 0x00, 0x00, 0x11, 0x30, 0x34, 0x7e, 0xc9, 0xff]),
};
/** Noise that alone decodes to no read (random near-frames can, rarely, be valid frames). */
const quietNoise = (name: DecoderName): fc.Arbitrary<Uint8Array> => NOISE[name].filter((n) => readIds(run(name, n)).length === 0);
const FRAMES: Record<DecoderName, fc.Arbitrary<Framed[]>> = {
  wiegand: fc.array(wiegandFrame, { maxLength: 6 }),
  em4100: fc.array(emFrame, { maxLength: 6 }),
  uhf: uhfFrames,
};

/** Cuts a stream at the given points (taken modulo its length + 1). */
function chunked(stream: Uint8Array, cuts: readonly number[], atMs: (i: number) => number): { bytes: Uint8Array; atMs: number }[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
  const chunks: { bytes: Uint8Array; atMs: number }[] = [];
  let from = 0;
  for (const p of [...points, stream.length]) {
    chunks.push({ bytes: stream.subarray(from, p), atMs: atMs(chunks.length) });
    from = p;
  }
  return chunks;
}

const props = suite('drivers: properties');
for (const name of ['wiegand', 'em4100', 'uhf'] as const) {
  props(`${name}: random streams in random pieces never throw, count consistently, and do not depend on the split`, () => {
    const stream = fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.array(NOISE[name], { maxLength: 8 }).map((parts) => cat(...parts)));
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 12 }), (bytes, cuts) => {
        const whole = run(name, bytes, undefined, 7);
        assertConsistent(whole);
        assert.equal(runChunks(name, chunked(bytes, cuts, () => 7)), whole);
      }),
      { seed, numRuns: runs },
    );
  });
  props(`${name}: every valid frame after noise is read exactly once, in order, in any split`, () => {
    fc.assert(
      fc.property(FRAMES[name], fc.array(quietNoise(name), { minLength: 7, maxLength: 7 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, noise, cuts) => {
        const parts: Uint8Array[] = [];
        frames.forEach((f, i) => parts.push(noise[i % noise.length]!, f.bytes));
        parts.push(noise[6]!);
        // A binary stream needs up to one frame capacity of later bytes to expose
        // a good frame behind a false header: a quiet line (zeros) at the end.
        if (name === 'uhf') parts.push(new Uint8Array(80));
        const o = runChunks(name, chunked(cat(...parts), cuts, (i) => i * 10));
        assert.equal(readIds(o), frames.map((f) => f.id));
        assertConsistent(o);
      }),
      { seed, numRuns: runs },
    );
  });
}
props.run();

// ---- Node and XS agree -----------------------------------------------------------------------

const h = (b: Uint8Array): string => toHex(b);
const one = (decoder: DecoderName, bytes: Uint8Array, atMs = 1000): StreamCase => ({ decoder, chunks: [{ hex: h(bytes), atMs }] });
const xsCases: [string, StreamCase][] = [
  ['wiegand published frames', one('wiegand', cat(wline(ALLEGION_26), wline(CN56_26), wline(CN56_34), wline(DOPPELGANGER_35, '\n'), wline(w37(12345, 345678))))],
  ['wiegand rejects and noise', one('wiegand', cat(ascii('noise'), wline(flipFirst(ALLEGION_26)), ascii('W26:01\r\nW30:0\r\nW2x:1\r\n'), ascii(`W26:${'1'.repeat(70)}\r\n`), wline(CN56_26)))],
  ['em4100 frames and rejects', one('em4100', cat([0x41], SEEED_EM, em('62E3086CED', { checksum: 1 }), cat([0x02], ascii('6Z')), [0x02, 0x03], em('0a0b0c0d0e', { lower: true })))],
  ['uhf frames, rejects, ignored', one('uhf', cat(M100_NO_TAG, [0xbb, 0x02, 0x22, 0x00], M100_NOTIFICATION, uhf('1234', { crc: 1 }), uhfRaw(7, 0, []), M100_LOGGED))],
  ['uhf duplicate window and eviction', { decoder: 'uhf', options: { duplicateWindowMs: 100, duplicateCapacity: 2 }, chunks: [[M100_NOTIFICATION, 0], [M100_LOGGED, 1], [uhf('abcd'), 2], [M100_LOGGED, 50], [M100_NOTIFICATION, 60], [M100_NOTIFICATION, 160]].map(([b, t]) => ({ hex: h(b as Uint8Array), atMs: t as number })) }],
];
// Random streams (fixed seed), cut into random pieces.
for (const name of ['wiegand', 'em4100', 'uhf'] as const) {
  const samples = fc.sample(fc.tuple(FRAMES[name], fc.array(NOISE[name], { minLength: 7, maxLength: 7 }), fc.array(fc.nat(), { maxLength: 20 })), { seed, numRuns: 4 });
  samples.forEach(([frames, noise, cuts], i) => {
    const stream = cat(...frames.flatMap((f, k) => [noise[k]!, f.bytes]), noise[6]!, fc.sample(fc.uint8Array({ maxLength: 200 }), { seed: seed + i, numRuns: 1 })[0]!);
    xsCases.push([`${name} random stream ${i}`, { decoder: name, chunks: chunked(stream, cuts, (k) => k).map((c) => ({ hex: h(c.bytes), atMs: c.atMs })) }]);
  });
}

let xsOutcomes: Promise<StreamOutcome[]> | null = null;
function xsRun(): Promise<StreamOutcome[]> {
  xsOutcomes ??= (async () => {
    const xs = await startXs('drivers.entry.ts');
    try {
      return (await xs.call<StreamOutcome[]>({ streams: xsCases.map(([, c]) => c) })).value;
    } finally {
      await xs.close();
    }
  })();
  return xsOutcomes;
}

const xs = suite('drivers: node and xs agree');
const nodeOutcomes = runStreams(xsCases.map(([, c]) => c));
xsCases.forEach(([what], i) => {
  xs(what, async () => {
    const outcome = (await xsRun())[i];
    assert.ok(outcome, 'XS returned no outcome');
    assert.equal(outcome, nodeOutcomes[i], 'XS and Node disagree');
    assertConsistent(outcome);
  });
});
xs('the XS streams exercise reads, rejects and duplicates', () => {
  const all = nodeOutcomes.flatMap((o) => o.events);
  assert.ok(all.some((e) => 'read' in e));
  const reasons = new Set(all.flatMap((e) => ('reject' in e ? [e.reject] : [])));
  for (const r of FRAME_REJECT_REASONS) assert.ok(reasons.has(r), `no ${r} reject in the XS streams`);
  assert.ok(nodeOutcomes.some((o) => (statsOf(o).duplicate ?? 0) > 0));
});
xs.run();
