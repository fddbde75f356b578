// Property tests: every decoder, fed random or mutated bytes, returns a
// result (never throws) with a documented code; valid messages round-trip.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, MESSAGE_SCHEMAS, KeyRing, openSigned, nobleCrypto, fromHex, type MessageSchema, type FieldSpec } from '../protocol/index.js';
import type { ErrorCode } from '../protocol/result.js';
import { scanStrict } from '../protocol/cbor/strict-scan.js';
import { loadTrustedKeys, loadVectorFiles } from './helpers/vectors.js';

const CODES: readonly ErrorCode[] = [
  'truncated', 'trailing_bytes', 'too_large', 'too_deep', 'indefinite_length', 'not_canonical', 'unsupported_type', 'invalid_utf8',
  'wrong_type', 'out_of_range', 'too_long', 'too_short', 'bad_value', 'missing_field', 'unknown_field', 'unknown_version',
  'wrong_message_type', 'bad_signature', 'unknown_key', 'bad_topic',
];
const seed = Number(process.env.FC_SEED ?? 20261127);
const runs = Number(process.env.FC_RUNS ?? 300);
const keys = new KeyRing(nobleCrypto, loadTrustedKeys());
const validSamples = loadVectorFiles().flatMap((f) => f.vectors.filter((v) => v.expect.ok).map((v) => fromHex(v.hex)));

function assertResult(r: unknown): void {
  assert.type(r, 'object');
  const res = r as { ok: boolean; error?: { code: ErrorCode } };
  if (!res.ok) assert.ok(CODES.includes(res.error!.code), `undocumented code ${res.error?.code}`);
}

/** Random mutation of a valid message: flip, insert, delete or truncate. */
const mutated = fc
  .tuple(fc.constantFrom(...validSamples), fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom('flip', 'insert', 'delete', 'cut')), { minLength: 1, maxLength: 4 }))
  .map(([base, edits]) => {
    let b = Array.from(base);
    for (const [pos, val, op] of edits) {
      const i = b.length === 0 ? 0 : pos % b.length;
      if (op === 'flip') b[i] = (b[i] ?? 0) ^ (1 << (val % 8));
      else if (op === 'insert') b.splice(i, 0, val);
      else if (op === 'delete') b.splice(i, 1);
      else b = b.slice(0, i);
    }
    return Uint8Array.from(b);
  });

const inputs = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated);

const fuzz = suite('protocol fuzz');
for (const schema of MESSAGE_SCHEMAS) {
  fuzz(`decode ${schema.type}: random and mutated bytes never throw`, () => {
    fc.assert(fc.property(inputs, (bytes) => assertResult(decodeMessage(schema, bytes))), { seed, numRuns: runs });
  });
}
for (const schema of MESSAGE_SCHEMAS.slice(0, 3)) {
  fuzz(`openSigned ${schema.type}: random and mutated envelopes never throw`, () => {
    fc.assert(fc.property(inputs, (bytes) => assertResult(openSigned(schema, bytes, keys))), { seed, numRuns: runs });
  });
}
fuzz('deeply nested input is refused as too_deep, not a stack overflow', () => {
  const deep = new Uint8Array(100000).fill(0x81); // [[[[...
  assert.equal(scanStrict(deep)?.code, 'too_deep');
});
fuzz('a huge declared length is truncation, not an allocation', () => {
  assert.equal(scanStrict(Uint8Array.from([0x9b, 0, 0, 0, 0x10, 0, 0, 0, 0]))?.code, 'truncated');
  assert.equal(scanStrict(Uint8Array.from([0x5a, 0xff, 0xff, 0xff, 0xff]))?.code, 'truncated');
});

// ---- round trip: arbitrary valid values encode canonically and decode equal ----
function arb(spec: FieldSpec): fc.Arbitrary<unknown> {
  switch (spec.kind) {
    case 'uint':
      return fc.integer({ min: spec.min ?? 0, max: Math.min(spec.max, 0xffffffff) });
    case 'text':
      return spec.pattern.source.includes('a-z0-9')
        ? fc.stringMatching(/^[a-z0-9][a-z0-9_-]*$/).filter((s) => s.length <= spec.max && s.length >= (spec.min ?? 0))
        : fc.string({ maxLength: spec.max }).filter((s) => spec.pattern.test(s));
    case 'enum':
      return fc.constantFrom(...spec.values);
    case 'bytes': {
      const m = spec.multipleOf ?? 1;
      return fc.integer({ min: Math.ceil(spec.min / m), max: Math.min(Math.floor(spec.max / m), 64) }).chain((n) => fc.uint8Array({ minLength: n * m, maxLength: n * m }));
    }
    case 'bool':
      return fc.boolean();
    case 'array':
      return fc.array(arb(spec.of), { minLength: spec.min ?? 0, maxLength: Math.min(spec.max, 4) });
    case 'map':
      return record(spec.fields);
  }
}
function record(fields: MessageSchema['fields']): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  const required: string[] = [];
  for (const [k, d] of Object.entries(fields)) {
    model[k] = arb(d.spec);
    if (d.optional !== true) required.push(k);
  }
  return fc.record(model, { requiredKeys: required });
}

for (const schema of MESSAGE_SCHEMAS) {
  fuzz(`round trip ${schema.type}`, () => {
    fc.assert(
      fc.property(record(schema.fields), (value) => {
        const bytes = encodeMessage(schema, value as never);
        const back = decodeMessage(schema, bytes);
        assert.ok(back.ok, back.ok ? '' : `${back.error.code} at ${back.error.field}`);
        assert.equal(back.value, structuredClone(value)); // fast-check records have a null prototype
        assert.equal(encodeMessage(schema, back.value as never), bytes);
      }),
      { seed, numRuns: 100 },
    );
  });
}
fuzz.run();
