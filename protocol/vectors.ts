// Golden-vector runner shared by the Node tests and the XS harness: both
// engines run exactly this code on exactly these bytes and must agree.
// JSON form of values: byte strings are {"$bytes": "<hex>"}.

import { decodeMessage, encodeMessage, type MessageSchema } from './schema.js';
import { MESSAGE_SCHEMAS } from './messages.js';
import { KeyRing, openSigned } from './envelope.js';
import { fromHex, toHex } from './hex.js';
import type { Crypto } from './crypto.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export type Expectation = { ok: true; value: JsonValue } | { ok: false; code: string; field: string };

export interface Vector {
  name: string;
  hex: string;
  expect: Expectation;
}

export interface VectorFile {
  /** Message type ("t"), or "signed:<type>" for envelopes carrying that type. */
  type: string;
  vectors: Vector[];
}

export interface Outcome {
  ok: boolean;
  value?: JsonValue;
  code?: string;
  field?: string;
  /** For accepted messages: the canonical re-encoding, which must equal the input. */
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

/** Runs one vector; returns what this engine concluded (compared with `expect` by the caller). */
export function runVector(file: VectorFile, vector: Vector, crypto: Crypto, trustedKeys: readonly Uint8Array[]): Outcome {
  const signed = file.type.startsWith('signed:');
  const schema = schemaByType(signed ? file.type.slice(7) : file.type);
  if (schema === undefined) return { ok: false, code: 'no_such_type', field: file.type };
  const bytes = fromHex(vector.hex);
  const r = signed ? openSigned(schema, bytes, new KeyRing(crypto, trustedKeys)) : decodeMessage(schema, bytes);
  if (!r.ok) return { ok: false, code: r.error.code, field: r.error.field };
  const out: Outcome = { ok: true, value: toJson(r.value) };
  if (!signed) out.reencoded = toHex(encodeMessage(schema, r.value as never));
  return out;
}

export function runVectorFiles(files: readonly VectorFile[], crypto: Crypto, trustedKeys: readonly Uint8Array[]): Outcome[][] {
  return files.map((f) => f.vectors.map((v) => runVector(f, v, crypto, trustedKeys)));
}
