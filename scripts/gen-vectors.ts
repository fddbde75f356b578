// Regenerates protocol/vectors/*.json. The vectors are golden: tests never
// regenerate them, so a change to the wire format shows up as a failing test
// and, once intended, as a reviewed diff of these files.
//   node --import tsx scripts/gen-vectors.ts

import { writeFileSync } from 'node:fs';
import { encodeCbor, type CborValue } from '../protocol/cbor/codec.js';
import { sha256 } from '@noble/hashes/sha2.js';
import * as P from '../protocol/index.js';
import { canonicalKeys, type FieldSpec, type MessageSchema } from '../protocol/schema.js';
import { toJson, type Vector, type VectorFile } from '../protocol/vectors.js';

const OUT = new URL('../protocol/vectors/', import.meta.url);
const te = new TextEncoder();
export const TEST_SECRET = sha256(te.encode('subline-gate golden vector signing key (test only)'));
const OTHER_SECRET = sha256(te.encode('subline-gate unknown key (test only)'));
const TEST_PUBLIC = P.publicKeyOf(TEST_SECRET);
/** The gate MAC key of the mac-* vectors (test only), its kid, and another gate's key. */
export const TEST_GATE_KEY = sha256(te.encode('subline-gate golden vector gate MAC key (test only)'));
const TEST_GATE_KID = 1;
const OTHER_GATE_KEY = sha256(te.encode('subline-gate another gate MAC key (test only)'));
const TOPICS = new P.Topics('subline');
/** MACed kinds and the gate topic each travels on. */
const MACED: readonly [MessageSchema, P.GateTopicKind][] = [
  [P.EventBatch, 'events'],
  [P.GateStatus, 'status'],
  [P.SyncRequest, 'sync'],
  [P.CommandResult, 'cmdres'],
  [P.EventAck, 'ack'],
];

const b = (n: number, fill: number) => new Uint8Array(n).fill(fill);

/** Valid example values per type; the first is the canonical example. */
const examples: Record<string, Record<string, unknown>[]> = {
  head: [{ list: 'people', epoch: 3, version: 1207, issuedAt: 1795000000, expires: 1795086400, imageSize: 4194304, chunkSize: 16384, imageRoot: b(32, 0xa5) }],
  delta: [{ list: 'people', epoch: 3, version: 1208, issuedAt: 1795000060, records: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]) }],
  manifest: [{ list: 'vehicles', epoch: 1, version: 44, imageSize: 40000, chunkSize: 16384, hashes: Uint8Array.from({ length: 96 }, (_, i) => i) }],
  chunk: [{ list: 'goods', epoch: 1, version: 9, index: 2, data: b(300, 0x5a) }],
  syncreq: [
    { gate: 'fl-in-t01', list: 'people', epoch: 3, want: 'deltas', version: 1200, from: 1201, count: 7 },
    { gate: 'sl-out-v01', list: 'vehicles', epoch: 1, want: 'chunks', version: 44, from: 0, count: 3 },
  ],
  status: [
    {
      gate: 'fl-in-t01', state: 'online', journal: 1795000000, boot: 17, conn: 3, at: 1795000100, firmware: 'subline-gate 0.1.0', line: 'first', direction: 'in', lane: 'person',
      lists: [{ list: 'people', epoch: 3, version: 1207 }], backlog: 12, refused: [{ cause: 'ack_bad_mac', count: 4 }, { cause: 'head_bad_signature', count: 1 }],
    },
    { gate: 'sl-out-g01', state: 'offline', journal: 0, boot: 4, conn: 1, at: 0, firmware: '', line: 'second', direction: 'out', lane: 'goods', lists: [], backlog: 0, refused: [] },
    // At the limits: 16 refusal causes, one of 48 characters, counts up to 2^32 - 1.
    {
      gate: 'sl-in-v02', state: 'online', journal: 4294967295, boot: 4294967295, conn: 4294967295, at: 1795000100, firmware: 'subline-gate 0.1.0', line: 'second', direction: 'in', lane: 'vehicle',
      lists: [], backlog: 0, refused: Array.from({ length: 16 }, (_, i) => ({ cause: i === 0 ? 'c'.repeat(48) : `cause_${String(i).padStart(2, '0')}`, count: i === 0 ? 4294967295 : i })),
    },
  ],
  events: [{ gate: 'fl-in-t01', epoch: 2, first: 101, count: 2, records: b(64, 0x11), prev: b(32, 0), chain: b(32, 0xcc) }],
  ack: [{ gate: 'fl-in-t01', epoch: 2, seq: 102, chain: b(32, 0xcc) }, { gate: 'g', epoch: 0, seq: 0, chain: b(32, 0) }],
  cmd: [
    { gate: 'fl-in-t01', nonce: b(16, 0x42), issuedAt: 1795000200, expires: 1795000260, op: 'open' },
    { gate: 'sl-in-t02', nonce: b(16, 0x43), issuedAt: 1795000200, expires: 1795000260, op: 'config', params: Uint8Array.from([0xa1, 0x61, 0x78, 0x01]) },
  ],
  cmdres: [{ gate: 'fl-in-t01', nonce: b(16, 0x42), status: 'done', reason: 'granted', at: 1795000201 }],
};

function withTV(schema: MessageSchema, fields: Record<string, unknown>): Map<string, CborValue> {
  // The message as an ordered Map of CBOR values, keys in canonical order.
  const all: Record<string, unknown> = { t: schema.type, v: schema.version, ...fields };
  const m = new Map<string, CborValue>();
  for (const k of canonicalKeys(all)) if (all[k] !== undefined) m.set(k, toCbor(all[k]));
  return m;
}

function toCbor(v: unknown): CborValue {
  if (Array.isArray(v)) return v.map(toCbor);
  if (v instanceof Uint8Array) return v;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const m = new Map<string, CborValue>();
    for (const k of canonicalKeys(o)) m.set(k, toCbor(o[k]));
    return m;
  }
  return v as CborValue;
}

const hex = P.toHex;
const valid = (name: string, bytes: Uint8Array, value: unknown): Vector => ({ name, hex: hex(bytes), expect: { ok: true, value: toJson(value) } });
const invalid = (name: string, bytes: Uint8Array, code: P.ErrorCode, field = ''): Vector => ({ name, hex: hex(bytes), expect: { ok: false, code, field } });

function firstField(schema: MessageSchema, pred: (s: FieldSpec) => boolean): string | undefined {
  return canonicalKeys(schema.fields).find((k) => pred((schema.fields[k] as { spec: FieldSpec }).spec));
}

function vectorsFor(schema: MessageSchema): VectorFile {
  const ex = examples[schema.type];
  if (ex === undefined || ex.length === 0) throw new Error(`no example for ${schema.type}`);
  const base = ex[0] as Record<string, unknown>;
  const vs: Vector[] = ex.map((e, i) => valid(`valid example ${i + 1}`, P.encodeMessage(schema, e as never), e));
  const good = P.encodeMessage(schema, base as never);
  const enc = (fields: Record<string, unknown>, s = schema) => encodeCbor(withTV(s, fields));

  // Framing and wire profile.
  vs.push(invalid('truncated by one byte', good.slice(0, -1), 'truncated'));
  vs.push(invalid('truncated to the map header', good.slice(0, 1), 'truncated'));
  vs.push(invalid('empty input', new Uint8Array(0), 'truncated'));
  vs.push(invalid('trailing byte', Uint8Array.from([...good, 0x00]), 'trailing_bytes'));
  vs.push(invalid('oversize message', new Uint8Array(schema.maxSize + 1).fill(0xa0), 'too_large'));
  vs.push(invalid('array instead of map', encodeCbor([schema.type, 1]), 'wrong_type'));
  const indefinite = good.slice();
  indefinite[0] = 0xbf; // indefinite-length map header instead of a definite one
  vs.push(invalid('indefinite-length map', indefinite, 'indefinite_length'));
  const nonShortest = Uint8Array.from([0xb8, good[0]! & 0x1f, ...good.slice(1)]);
  vs.push(invalid('map length not in shortest form', nonShortest, 'not_canonical'));
  const entries = [...withTV(schema, base)];
  const swapped = new Map([entries[1]!, entries[0]!, ...entries.slice(2)]);
  vs.push(invalid('map keys out of canonical order', encodeCbor(swapped), 'not_canonical'));
  vs.push(invalid('tagged message', Uint8Array.from([0xd8, 0x18, ...good]), 'unsupported_type'));
  vs.push(invalid('version as a float', floatVersion(schema, base), 'unsupported_type'));

  // Envelope fields.
  vs.push(invalid('missing type', encodeCbor(new Map([...withTV(schema, base)].filter(([k]) => k !== 't'))), 'missing_field', 't'));
  vs.push(invalid('another message type', enc({ ...base }, { ...schema, type: schema.type === 'ack' ? 'cmd' : 'ack' }), 'wrong_message_type', 't'));
  vs.push(invalid('unknown version', enc(base, { ...schema, version: 2 }), 'unknown_version', 'v'));
  vs.push(invalid('missing version', encodeCbor(new Map([...withTV(schema, base)].filter(([k]) => k !== 'v'))), 'missing_field', 'v'));

  // Fields.
  const required = canonicalKeys(schema.fields).find((k) => (schema.fields[k] as { optional?: boolean }).optional !== true) as string;
  const { [required]: _dropped, ...missing } = base;
  vs.push(invalid(`missing field ${required}`, enc(missing), 'missing_field', required));
  vs.push(invalid('unknown field', enc({ ...base, zz: 1 }), 'unknown_field', 'zz'));
  const u = firstField(schema, (s) => s.kind === 'uint');
  if (u !== undefined) {
    vs.push(invalid(`${u} as text`, enc({ ...base, [u]: '1' }), 'wrong_type', u));
    vs.push(invalid(`${u} negative`, enc({ ...base, [u]: -1 }), 'out_of_range', u));
    vs.push(invalid(`${u} beyond 2^53`, enc({ ...base, [u]: 2n ** 60n }), 'out_of_range', u));
    const spec = (schema.fields[u] as { spec: { max: number } }).spec;
    if (spec.max < 0xffffffff) vs.push(invalid(`${u} above its maximum`, enc({ ...base, [u]: spec.max + 1 }), 'out_of_range', u));
  }
  const t = firstField(schema, (s) => s.kind === 'text');
  if (t !== undefined) {
    const spec = (schema.fields[t] as { spec: { max: number } }).spec;
    vs.push(invalid(`${t} over its length limit`, enc({ ...base, [t]: 'a'.repeat(spec.max + 1) }), 'too_long', t));
    vs.push(invalid(`${t} outside its alphabet`, enc({ ...base, [t]: 'Gate+#' }), 'bad_value', t));
    vs.push(invalid(`${t} as bytes`, enc({ ...base, [t]: b(3, 0x61) }), 'wrong_type', t));
    const bad = encodeCbor(withTV(schema, base));
    const at = P.toHex(bad).indexOf(P.toHex(encodeCbor(base[t] as string)));
    if (at >= 0 && at % 2 === 0) {
      const withBadUtf8 = bad.slice();
      withBadUtf8[at / 2 + 1] = 0xff; // first character of the string becomes an invalid UTF-8 byte
      vs.push(invalid(`${t} with invalid UTF-8`, withBadUtf8, 'invalid_utf8'));
    }
  }
  const e = firstField(schema, (s) => s.kind === 'enum');
  if (e !== undefined) vs.push(invalid(`${e} outside its enumeration`, enc({ ...base, [e]: 'nope' }), 'bad_value', e));
  const y = firstField(schema, (s) => s.kind === 'bytes');
  if (y !== undefined) {
    const spec = (schema.fields[y] as { spec: { min: number; max: number } }).spec;
    if (spec.min > 0) vs.push(invalid(`${y} too short`, enc({ ...base, [y]: new Uint8Array(spec.min - 1) }), 'too_short', y));
    if (spec.max + 300 < schema.maxSize) vs.push(invalid(`${y} too long`, enc({ ...base, [y]: new Uint8Array(spec.max + 1) }), 'too_long', y));
    vs.push(invalid(`${y} as text`, enc({ ...base, [y]: 'abc' }), 'wrong_type', y));
  }
  if (schema === P.GateStatus) vs.push(...refusalVectors(enc, base));
  return { type: schema.type, vectors: vs };
}

/** Status: the refusal counts by cause. */
function refusalVectors(enc: (fields: Record<string, unknown>) => Uint8Array, base: Record<string, unknown>): Vector[] {
  const causes = (n: number) => Array.from({ length: n }, (_, i) => ({ cause: `cause_${i}`, count: 1 }));
  return [
    invalid('refused: more than 16 causes', enc({ ...base, refused: causes(P.LIMITS.maxRefusalCauses + 1) }), 'too_long', 'refused'),
    invalid('refused: a cause over 48 characters', enc({ ...base, refused: [{ cause: 'ack_bad_mac', count: 1 }, { cause: 'c'.repeat(49), count: 1 }] }), 'too_long', 'refused.1.cause'),
    invalid('refused: a cause outside the id alphabet', enc({ ...base, refused: [{ cause: 'ack.bad_mac', count: 1 }] }), 'bad_value', 'refused.0.cause'),
    invalid('refused: an empty cause', enc({ ...base, refused: [{ cause: '', count: 1 }] }), 'too_short', 'refused.0.cause'),
    invalid('refused: a negative count', enc({ ...base, refused: [{ cause: 'ack_bad_mac', count: -1 }] }), 'out_of_range', 'refused.0.count'),
    invalid('refused: an entry without its count', enc({ ...base, refused: [{ cause: 'ack_bad_mac' }] }), 'missing_field', 'refused.0.count'),
    invalid('refused: an entry with an unknown field', enc({ ...base, refused: [{ cause: 'ack_bad_mac', count: 1, at: 5 }] }), 'unknown_field', 'refused.0.at'),
    invalid('refused as a map', enc({ ...base, refused: { ack_bad_mac: 4 } }), 'wrong_type', 'refused'),
    invalid('missing field conn', enc(Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'conn'))), 'missing_field', 'conn'),
    invalid('conn above 2^32 - 1', enc({ ...base, conn: 2n ** 32n }), 'out_of_range', 'conn'),
  ];
}

/** The canonical example with "v" encoded as a float (0xf9 half-float 1.0). */
function floatVersion(schema: MessageSchema, base: Record<string, unknown>): Uint8Array {
  const good = encodeCbor(withTV(schema, base));
  const h = P.toHex(good);
  const i = h.indexOf('617601'); // "v": 1
  if (i < 0 || i % 2 !== 0) throw new Error('cannot find v');
  return P.fromHex(h.slice(0, i) + '6176f93c00' + h.slice(i + 6));
}

function signedVectors(schema: MessageSchema): VectorFile {
  const base = (examples[schema.type] as Record<string, unknown>[])[0] as Record<string, unknown>;
  const env = P.sealSigned(schema, base as never, TEST_SECRET, P.nobleCrypto);
  const payload = P.encodeMessage(schema, base as never);
  const kid = P.keyIdOf(P.nobleCrypto, TEST_PUBLIC);
  const sig = P.signEd25519(payload, TEST_SECRET);
  const forged = sig.slice();
  forged[10] = (forged[10] as number) ^ 0x01;
  const tampered = payload.slice();
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0x01;
  const other = P.Head === schema ? P.Command : P.Head;
  const otherBase = (examples[other.type] as Record<string, unknown>[])[0] as never;
  const otherPayload = P.encodeMessage(other, otherBase);
  const vs: Vector[] = [
    valid('valid signed message', env, base),
    invalid('forged signature (one bit)', P.encodeEnvelope({ kid, sig: forged, payload }), 'bad_signature', 'sig'),
    invalid('payload changed after signing', P.encodeEnvelope({ kid, sig, payload: tampered }), 'bad_signature', 'sig'),
    invalid('truncated signature', encodeCbor(withTV(P.Signed, { kid, sig: sig.slice(0, 63), payload })), 'too_short', 'sig'),
    invalid('signature by an untrusted key', P.sealSigned(schema, base as never, OTHER_SECRET, P.nobleCrypto), 'unknown_key', 'kid'),
    invalid('validly signed message of another type', P.encodeEnvelope({ kid, sig: P.signEd25519(otherPayload, TEST_SECRET), payload: otherPayload }), 'wrong_message_type', 'payload.t'),
    invalid('truncated envelope', env.slice(0, env.length - 5), 'truncated'),
  ];
  return { type: `signed:${schema.type}`, vectors: vs };
}

/**
 * MACed envelopes of one kind, opened with the test gate key on its topic
 * (`<root>/v1/gates/<gate>/<kind>` of the example's gate). A vector with its
 * own `topic` is received there instead.
 */
function macVectors(schema: MessageSchema, kind: P.GateTopicKind): VectorFile {
  const base = (examples[schema.type] as Record<string, unknown>[])[0] as Record<string, unknown>;
  const gate = base['gate'] as string;
  const topic = TOPICS.gate(gate, kind);
  const kid = TEST_GATE_KID;
  const macOf = (body: Uint8Array, key = TEST_GATE_KEY, on = topic) => P.nobleCrypto.hmacSha256(key, P.macInput(on, body));
  // Envelopes are built field by field, so invalid ones can be written too.
  const env = (fields: { kid: unknown; body: unknown; mac: unknown }) => encodeCbor(withTV(P.Maced, fields));
  const sealed = P.sealMaced(schema, base as never, topic, TEST_GATE_KEY, kid, P.nobleCrypto);
  const body = P.encodeMessage(schema, base as never);
  const mac = macOf(body);
  if (P.toHex(env({ kid, body, mac })) !== P.toHex(sealed)) throw new Error('sealMaced is not the envelope of body and mac');
  const tampered = body.slice();
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0x01;
  const other = schema === P.EventAck ? P.CommandResult : P.EventAck;
  const otherBody = P.encodeMessage(other, (examples[other.type] as Record<string, unknown>[])[0] as never);
  const text = firstField(schema, (s) => s.kind === 'text') as string;
  const badField = encodeCbor(withTV(schema, { ...base, [text]: 'Gate+#' }));
  const notMap = Uint8Array.from([0x01]);
  const otherGate = TOPICS.gate(gate === 'fl-in-t02' ? 'fl-in-t03' : 'fl-in-t02', kind);
  const otherKind = TOPICS.gate(gate, kind === 'ack' ? 'cmdres' : 'ack');
  const at = (v: Vector, on: string): Vector => ({ name: v.name, hex: v.hex, topic: on, expect: v.expect });
  const vs: Vector[] = [
    valid('valid sealed message', sealed, base),
    invalid('MAC by another gate key', P.sealMaced(schema, base as never, topic, OTHER_GATE_KEY, kid, P.nobleCrypto), 'bad_mac', 'mac'),
    at(invalid("MACed for this topic, received on another gate's topic", sealed, 'bad_mac', 'mac'), otherGate),
    at(invalid("MACed for this topic, received on another kind's topic", sealed, 'bad_mac', 'mac'), otherKind),
    invalid("MACed for another gate's topic", env({ kid, body, mac: macOf(body, TEST_GATE_KEY, otherGate) }), 'bad_mac', 'mac'),
    invalid('unknown kid', P.sealMaced(schema, base as never, topic, TEST_GATE_KEY, kid + 1, P.nobleCrypto), 'unknown_key', 'kid'),
    invalid('body changed after MACing (one bit)', env({ kid, body: tampered, mac }), 'bad_mac', 'mac'),
    invalid('MAC changed (one bit)', env({ kid, body, mac: Uint8Array.from(mac, (x, i) => (i === 7 ? x ^ 0x80 : x)) }), 'bad_mac', 'mac'),
    invalid('MAC of zeros', env({ kid, body, mac: new Uint8Array(32) }), 'bad_mac', 'mac'),
    invalid('truncated MAC', env({ kid, body, mac: mac.slice(0, 31) }), 'too_short', 'mac'),
    invalid('MAC too long', env({ kid, body, mac: Uint8Array.from([...mac, 0]) }), 'too_long', 'mac'),
    invalid('missing MAC', encodeCbor(new Map([...withTV(P.Maced, { kid, body, mac })].filter(([k]) => k !== 'mac'))), 'missing_field', 'mac'),
    invalid('kid as bytes', env({ kid: Uint8Array.from([kid]), body, mac }), 'wrong_type', 'kid'),
    invalid('body as a map, not a byte string', env({ kid, body: withTV(schema, base), mac }), 'wrong_type', 'body'),
    invalid('validly MACed message of another type', env({ kid, body: otherBody, mac: macOf(otherBody) }), 'wrong_message_type', 'body.t'),
    invalid(`validly MACed body with an invalid ${text}`, env({ kid, body: badField, mac: macOf(badField) }), 'bad_value', `body.${text}`),
    invalid('validly MACed body that is not a map', env({ kid, body: notMap, mac: macOf(notMap) }), 'wrong_type', 'body'),
    invalid('a signed envelope instead of a MACed one', encodeCbor(withTV(P.Signed, { kid: b(8, 1), sig: b(64, 2), payload: notMap })), 'wrong_message_type', 't'),
    invalid('truncated envelope', sealed.slice(0, sealed.length - 5), 'truncated'),
    invalid('trailing byte', Uint8Array.from([...sealed, 0]), 'trailing_bytes'),
  ];
  // Size limits: the body at most the kind's maxSize, the envelope at most 64 bytes more.
  const big = new Uint8Array(schema.maxSize + 1).fill(0xa0);
  const overBody = env({ kid, body: big, mac: macOf(big) });
  if (overBody.length > schema.maxSize + 64) throw new Error(`${schema.type}: no room for a body one byte over its limit`);
  vs.push(invalid("validly MACed body one byte over its kind's limit", overBody, 'too_large', 'body'));
  vs.push(invalid("envelope over its kind's limit", new Uint8Array(schema.maxSize + 65).fill(0xa0), 'too_large'));
  return { type: `mac:${schema.type}`, mac: { key: hex(TEST_GATE_KEY), kid, topic }, vectors: vs };
}

const files: VectorFile[] = P.MESSAGE_SCHEMAS.map(vectorsFor);
for (const s of [P.Head, P.Delta, P.Command]) files.push(signedVectors(s));
for (const [s, kind] of MACED) files.push(macVectors(s, kind));
for (const f of files) writeFileSync(new URL(`${f.type.replace(':', '-')}.json`, OUT), JSON.stringify(f, null, 1) + '\n');
const keys = {
  note: 'Test-only keys; the secrets are derived in scripts/gen-vectors.ts and never used outside tests.',
  trustedPublicKeys: [hex(TEST_PUBLIC)],
  gateMacKey: { note: 'Test-only gate MAC key of the mac-*.json vectors (HMAC-SHA256); real gate keys come from provisioning.', kid: TEST_GATE_KID, key: hex(TEST_GATE_KEY) },
};
writeFileSync(new URL('keys.json', OUT), JSON.stringify(keys, null, 1) + '\n');
console.log(`wrote ${files.length} vector files, ${files.reduce((n, f) => n + f.vectors.length, 0)} vectors`);
