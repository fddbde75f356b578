// Golden vectors, run on Node and on the real XS engine; both must match the
// expected outcome and each other. Valid vectors must also be standard CBOR
// by an independent strict decoder (cborg) and re-encode to the same bytes.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import { nobleCrypto } from '../protocol/index.js';
import { fromHex, toHex } from '../protocol/hex.js';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';
import { runVector, type Outcome, type Vector, type VectorFile } from '../protocol/vectors.js';
import { loadTrustedKeys, loadTrustedKeysHex, loadVectorFiles } from './helpers/vectors.js';
import { startXs } from './helpers/xs.js';

const files = loadVectorFiles();
const keys = loadTrustedKeys();

function check(outcome: Outcome, v: Vector): void {
  if (v.expect.ok) {
    assert.ok(outcome.ok, `expected acceptance, got ${outcome.code} at '${outcome.field}'`);
    assert.equal(outcome.value, v.expect.value);
    if (outcome.reencoded !== undefined) assert.is(outcome.reencoded, v.hex, 'canonical re-encoding differs');
  } else {
    assert.equal({ ok: outcome.ok, code: outcome.code, field: outcome.field }, { ok: false, code: v.expect.code, field: v.expect.field });
  }
}

const coverage = suite('protocol vectors: coverage');
coverage('every message type has ≥ 1 valid and ≥ 3 invalid vectors', () => {
  for (const s of MESSAGE_SCHEMAS) {
    const f = files.find((x) => x.type === s.type);
    assert.ok(f, `no vectors for ${s.type}`);
    assert.ok(f.vectors.filter((v) => v.expect.ok).length >= 1, `${s.type}: no valid vector`);
    assert.ok(f.vectors.filter((v) => !v.expect.ok).length >= 3, `${s.type}: fewer than 3 invalid vectors`);
  }
});
coverage('signed head, delta and command have forged and truncated signature vectors', () => {
  for (const t of ['head', 'delta', 'cmd']) {
    const f = files.find((x) => x.type === `signed:${t}`);
    assert.ok(f, `no signed vectors for ${t}`);
    const codes = f.vectors.map((v) => (v.expect.ok ? 'ok' : v.expect.code));
    for (const c of ['ok', 'bad_signature', 'too_short', 'unknown_key', 'wrong_message_type']) assert.ok(codes.includes(c), `${t}: no ${c} vector`);
  }
});
coverage.run();

const node = suite('protocol vectors: node');
for (const f of files) for (const v of f.vectors) node(`${f.type}: ${v.name}`, () => check(runVector(f, v, nobleCrypto, keys), v));
node.run();

const cborg = suite('protocol vectors: independent CBOR decoder (cborg)');
for (const f of files) {
  for (const v of f.vectors.filter((x) => x.expect.ok)) {
    cborg(`${f.type}: ${v.name}`, () => {
      const bytes = fromHex(v.hex);
      const strict = { strict: true, useMaps: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, tags: [] };
      const decoded: unknown = cborgDecode(bytes, strict);
      assert.ok(decoded instanceof Map, 'top level is a map');
      // cborg's canonical encoder (RFC 8949 length-first key order) reproduces the bytes exactly.
      assert.is(toHex(cborgEncode(decoded)), v.hex);
    });
  }
}
cborg.run();

// One XS worker runs every vector; each vector is then its own test.
let xsOutcomes: Promise<Outcome[][]> | null = null;
function xsRun(all: VectorFile[]): Promise<Outcome[][]> {
  xsOutcomes ??= (async () => {
    const xs = await startXs('vectors.entry.ts');
    try {
      return (await xs.call<Outcome[][]>({ files: all, keys: loadTrustedKeysHex() })).value;
    } finally {
      await xs.close();
    }
  })();
  return xsOutcomes;
}

const xs = suite('protocol vectors: xs');
files.forEach((f, i) =>
  f.vectors.forEach((v, j) =>
    xs(`${f.type}: ${v.name}`, async () => {
      const outcome = (await xsRun(files))[i]?.[j];
      assert.ok(outcome, 'XS returned no outcome');
      check(outcome, v);
      assert.equal(outcome, runVector(f, v, nobleCrypto, keys), 'XS and Node disagree');
    }),
  ),
);
xs.run();
