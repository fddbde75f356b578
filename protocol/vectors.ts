// Golden-vector runner shared by the Node tests, the XS harness and the
// Moddable SDK device check: every engine runs exactly this code on exactly
// these bytes and must agree. No Node built-ins here (it runs on XS).
// JSON form of values: byte strings are {"$bytes": "<hex>"}.

import { decodeMessage, encodeMessage, type MessageSchema } from './schema.js';
import { MESSAGE_SCHEMAS } from './messages.js';
import { KeyRing, openSigned } from './envelope.js';
import { openMaced, sealMaced } from './mac-envelope.js';
import { fromHex, toHex } from './hex.js';
import type { Crypto } from './crypto.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export type Expectation = { ok: true; value: JsonValue } | { ok: false; code: string; field: string };

export interface Vector {
  name: string;
  hex: string;
  /** "mac:<type>" files only: the topic this message is received on, when not the file's. */
  topic?: string;
  expect: Expectation;
}

/** The gate key "mac:<type>" vectors are opened with (test-only), and the topic they are received on. */
export interface MacParams {
  /** The gate key, hex (32 bytes). */
  key: string;
  /** The key's id: an envelope with another kid is refused as unknown_key. */
  kid: number;
  topic: string;
}

export interface VectorFile {
  /** Message type ("t"), "signed:<type>" for signed envelopes carrying that type, "mac:<type>" for MACed ones. */
  type: string;
  /** "mac:<type>" files: the key and topic their vectors are opened with. */
  mac?: MacParams;
  vectors: Vector[];
}

export interface Outcome {
  ok: boolean;
  value?: JsonValue;
  code?: string;
  field?: string;
  /** For accepted messages: the canonical re-encoding (MACed ones: sealed again with the same key, kid and topic), which must equal the input. */
  reencoded?: string;
}

export function toJson(v: unknown): JsonValue {
  if (v instanceof Uint8Array) return { $bytes: toHex(v) };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') {
    const o: { [k: string]: JsonValue } = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x);
    return o;
  }
  return v as JsonValue;
}

export function fromJson(v: JsonValue): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') {
    const b = v['$bytes'];
    if (typeof b === 'string' && Object.keys(v).length === 1) return fromHex(b);
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJson(x);
    return o;
  }
  return v;
}

export function schemaByType(type: string): MessageSchema | undefined {
  return MESSAGE_SCHEMAS.find((s) => s.type === type);
}

/**
 * Runs one vector; returns what this engine concluded (compared with `expect` by the caller).
 * Plain types are decoded; "signed:<type>" envelopes are opened with `trustedKeys`;
 * "mac:<type>" envelopes are opened with `crypto.hmacSha256`, the file's key and kid
 * and the vector's topic (else the file's), and an accepted one is sealed again.
 */
export function runVector(file: VectorFile, vector: Vector, crypto: Crypto, trustedKeys: readonly Uint8Array[]): Outcome {
  const colon = file.type.indexOf(':');
  const wrap = colon < 0 ? '' : file.type.slice(0, colon);
  const schema = wrap === '' || wrap === 'signed' || wrap === 'mac' ? schemaByType(file.type.slice(colon + 1)) : undefined;
  if (schema === undefined) return { ok: false, code: 'no_such_type', field: file.type };
  const bytes = fromHex(vector.hex);
  if (wrap === 'mac') {
    const m = file.mac;
    if (m === undefined) return { ok: false, code: 'no_mac_key', field: file.type };
    const key = fromHex(m.key);
    const topic = vector.topic ?? m.topic;
    const r = openMaced(schema, bytes, topic, (kid) => (kid === m.kid ? key : null), crypto);
    if (!r.ok) return { ok: false, code: r.error.code, field: r.error.field };
    return { ok: true, value: toJson(r.value), reencoded: toHex(sealMaced(schema, r.value as never, topic, key, m.kid, crypto)) };
  }
  const r = wrap === 'signed' ? openSigned(schema, bytes, new KeyRing(crypto, trustedKeys)) : decodeMessage(schema, bytes);
  if (!r.ok) return { ok: false, code: r.error.code, field: r.error.field };
  const out: Outcome = { ok: true, value: toJson(r.value) };
  if (wrap === '') out.reencoded = toHex(encodeMessage(schema, r.value as never));
  return out;
}

export function runVectorFiles(files: readonly VectorFile[], crypto: Crypto, trustedKeys: readonly Uint8Array[]): Outcome[][] {
  return files.map((f) => f.vectors.map((v) => runVector(f, v, crypto, trustedKeys)));
}
