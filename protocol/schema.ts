// Declarative message schemas. One table per message type drives the strict
// decoder, the canonical encoder, the TypeScript type (inferred) and the
// CDDL check in the tests, so the four cannot drift apart.

import { decodeCbor, encodeCbor, type CborValue } from './cbor/codec.js';
import { fail, ok, type Result } from './result.js';

export const UINT32_MAX = 0xffffffff;

/** Identifier alphabet for gate ids, list names and reason codes: lower-case ASCII letters, digits, '-' and '_', starting with a letter or digit. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
/** Printable ASCII, for human-facing strings such as firmware versions. */
export const PRINTABLE_PATTERN = /^[\x20-\x7e]*$/;

export type FieldSpec =
  | { readonly kind: 'uint'; readonly min?: number; readonly max: number }
  | { readonly kind: 'text'; readonly max: number; readonly min?: number; readonly pattern: RegExp }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'bytes'; readonly min: number; readonly max: number; readonly multipleOf?: number }
  | { readonly kind: 'bool' }
  | { readonly kind: 'array'; readonly of: FieldSpec; readonly min?: number; readonly max: number }
  | { readonly kind: 'map'; readonly fields: Readonly<Record<string, FieldDef>> };

export interface FieldDef {
  readonly spec: FieldSpec;
  readonly optional?: boolean;
}

export interface MessageSchema {
  /** Value of the "t" field; also the CDDL rule name. */
  readonly type: string;
  readonly version: number;
  /** Largest accepted encoding, in bytes; checked before parsing. */
  readonly maxSize: number;
  readonly fields: Readonly<Record<string, FieldDef>>;
}

// ---- type inference from the tables ----
type InferSpec<S> = S extends { kind: 'uint' }
  ? number
  : S extends { kind: 'text' }
    ? string
    : S extends { kind: 'enum'; values: readonly (infer E)[] }
      ? E
      : S extends { kind: 'bytes' }
        ? Uint8Array
        : S extends { kind: 'bool' }
          ? boolean
          : S extends { kind: 'array'; of: infer O }
            ? InferSpec<O>[]
            : S extends { kind: 'map'; fields: infer F }
              ? InferFields<F>
              : never;

type RequiredKeys<F> = { [K in keyof F]: F[K] extends { optional: true } ? never : K }[keyof F];
type OptionalKeys<F> = { [K in keyof F]: F[K] extends { optional: true } ? K : never }[keyof F];
type InferFields<F> = { [K in RequiredKeys<F>]: F[K] extends { spec: infer S } ? InferSpec<S> : never } & {
  [K in OptionalKeys<F>]?: F[K] extends { spec: infer S } ? InferSpec<S> : never;
};
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The decoded value of a message: its fields, without "t" and "v". */
export type MessageOf<M extends MessageSchema> = Simplify<InferFields<M['fields']>>;

// ---- field helpers, so tables read like the CDDL ----
export const uint = (max = UINT32_MAX, min = 0) => ({ kind: 'uint', min, max }) as const;
export const id = (max = 32) => ({ kind: 'text', min: 1, max, pattern: ID_PATTERN }) as const;
export const printable = (max: number) => ({ kind: 'text', min: 0, max, pattern: PRINTABLE_PATTERN }) as const;
export const bytes = (min: number, max: number, multipleOf?: number) =>
  (multipleOf === undefined ? { kind: 'bytes', min, max } : { kind: 'bytes', min, max, multipleOf }) as { readonly kind: 'bytes'; readonly min: number; readonly max: number; readonly multipleOf?: number };
export const oneOf = <const E extends readonly string[]>(...values: E) => ({ kind: 'enum', values }) as const;
export const req = <const S extends FieldSpec>(spec: S) => ({ spec }) as const;
export const opt = <const S extends FieldSpec>(spec: S) => ({ spec, optional: true }) as const;

// ---- canonical key order (RFC 8949 §4.2.1: bytewise order of the encoded keys) ----
const keyOrderCache = new WeakMap<object, readonly string[]>();
export function canonicalKeys(fields: Readonly<Record<string, unknown>>): readonly string[] {
  let keys = keyOrderCache.get(fields);
  if (keys === undefined) {
    const encoded = Object.keys(fields).map((k) => ({ k, b: encodeCbor(k) }));
    encoded.sort((a, c) => compare(a.b, c.b));
    keys = encoded.map((e) => e.k);
    keyOrderCache.set(fields, keys);
  }
  return keys;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---- validation of a decoded CBOR value against a spec ----
function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function checkValue(spec: FieldSpec, value: CborValue, path: string): Result<unknown> {
  switch (spec.kind) {
    case 'uint':
      if (typeof value === 'bigint') return fail('out_of_range', path); // beyond 2^53: never in range
      if (typeof value !== 'number' || !Number.isInteger(value)) return fail('wrong_type', path);
      if (value < (spec.min ?? 0) || value > spec.max) return fail('out_of_range', path);
      return ok(value);
    case 'text':
      if (typeof value !== 'string') return fail('wrong_type', path);
      if (value.length > spec.max) return fail('too_long', path);
      if (value.length < (spec.min ?? 0)) return fail('too_short', path);
      if (!spec.pattern.test(value)) return fail('bad_value', path);
      return ok(value);
    case 'enum':
      if (typeof value !== 'string') return fail('wrong_type', path);
      if (!spec.values.includes(value)) return fail('bad_value', path);
      return ok(value);
    case 'bytes': {
      if (!(value instanceof Uint8Array)) return fail('wrong_type', path);
      if (value.length > spec.max) return fail('too_long', path);
      if (value.length < spec.min) return fail('too_short', path);
      if (spec.multipleOf !== undefined && value.length % spec.multipleOf !== 0) return fail('bad_value', path);
      const copy = new Uint8Array(value.length); // detach from the input buffer (and from Node's Buffer)
      copy.set(value);
      return ok(copy);
    }
    case 'bool':
      if (typeof value !== 'boolean') return fail('wrong_type', path);
      return ok(value);
    case 'array': {
      if (!Array.isArray(value)) return fail('wrong_type', path);
      if (value.length > spec.max) return fail('too_long', path);
      if (value.length < (spec.min ?? 0)) return fail('too_short', path);
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i++) {
        const r = checkValue(spec.of, value[i] as CborValue, join(path, String(i)));
        if (!r.ok) return r;
        out.push(r.value);
      }
      return ok(out);
    }
    case 'map':
      if (!(value instanceof Map)) return fail('wrong_type', path);
      return checkFields(spec.fields, value, path);
  }
}

function checkFields(fields: Readonly<Record<string, FieldDef>>, map: Map<string, CborValue>, path: string, skip?: readonly string[]): Result<Record<string, unknown>> {
  for (const key of map.keys()) {
    if (skip !== undefined && skip.includes(key)) continue;
    if (!Object.prototype.hasOwnProperty.call(fields, key)) return fail('unknown_field', join(path, key));
  }
  const out: Record<string, unknown> = {};
  for (const key of canonicalKeys(fields)) {
    const def = fields[key] as FieldDef;
    const raw = map.get(key);
    if (raw === undefined) {
      if (def.optional === true) continue;
      return fail('missing_field', join(path, key));
    }
    const r = checkValue(def.spec, raw, join(path, key));
    if (!r.ok) return r;
    out[key] = r.value;
  }
  return ok(out);
}

/** Strict decode of one message: size, wire profile, type tag, version, fields. Never throws. */
export function decodeMessage<M extends MessageSchema>(schema: M, bytes: Uint8Array): Result<MessageOf<M>> {
  try {
    if (!(bytes instanceof Uint8Array)) return fail('wrong_type');
    if (bytes.length > schema.maxSize) return fail('too_large');
    const decoded = decodeCbor(bytes);
    if (!decoded.ok) return fail(decoded.error.code);
    const map = decoded.value;
    if (!(map instanceof Map)) return fail('wrong_type');
    const t = map.get('t');
    if (t === undefined) return fail('missing_field', 't');
    if (typeof t !== 'string') return fail('wrong_type', 't');
    if (t !== schema.type) return fail('wrong_message_type', 't');
    const v = map.get('v');
    if (v === undefined) return fail('missing_field', 'v');
    if (typeof v !== 'number' && typeof v !== 'bigint') return fail('wrong_type', 'v');
    if (v !== schema.version) return fail('unknown_version', 'v');
    return checkFields(schema.fields, map, '', ['t', 'v']) as Result<MessageOf<M>>;
  } catch {
    // Defence in depth: nothing above should throw, but a decoder of hostile input must not.
    return fail('unsupported_type');
  }
}

function toCbor(spec: FieldSpec, value: unknown): CborValue {
  if (spec.kind === 'map') return fieldsToMap(spec.fields, value as Record<string, unknown>);
  if (spec.kind === 'array') return (value as unknown[]).map((v) => toCbor(spec.of, v));
  return value as CborValue;
}

function fieldsToMap(fields: Readonly<Record<string, FieldDef>>, value: Record<string, unknown>): Map<string, CborValue> {
  const map = new Map<string, CborValue>();
  for (const key of canonicalKeys(fields)) {
    const v = value[key];
    if (v === undefined) continue;
    map.set(key, toCbor((fields[key] as FieldDef).spec, v));
  }
  return map;
}

const envelopeKeys = new WeakMap<MessageSchema, readonly string[]>();

/**
 * Canonical encoding of a message. Throws on an invalid value: that is a bug
 * in the caller, never a property of received input.
 */
export function encodeMessage<M extends MessageSchema>(schema: M, value: MessageOf<M>): Uint8Array {
  let order = envelopeKeys.get(schema);
  if (order === undefined) {
    order = canonicalKeys({ t: 0, v: 0, ...schema.fields });
    envelopeKeys.set(schema, order);
  }
  const body = fieldsToMap(schema.fields, value);
  body.set('t', schema.type);
  body.set('v', schema.version);
  const map = new Map<string, CborValue>();
  for (const key of order) {
    const v = body.get(key);
    if (v !== undefined) map.set(key, v);
  }
  const bytes = encodeCbor(map);
  const check = decodeMessage(schema, bytes);
  if (!check.ok) throw new Error(`encode ${schema.type}: ${check.error.code} at '${check.error.field}'`);
  return bytes;
}

/** The "t" of an encoded message without decoding the rest, or null (for routing on shared topics). */
export function peekType(bytes: Uint8Array): string | null {
  try {
    const d = decodeCbor(bytes);
    if (!d.ok || !(d.value instanceof Map)) return null;
    const t = d.value.get('t');
    return typeof t === 'string' ? t : null;
  } catch {
    return null;
  }
}
