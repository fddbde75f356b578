// Golden vectors, run on Node and on the real XS engine; both must match the
// expected outcome and each other. Valid vectors must also be standard CBOR
// by an independent strict decoder (cborg) and re-encode to the same bytes,
// as must the payload or body inside a signed or MACed envelope; every MAC in
// the mac-* files is recomputed with node:crypto over cborg's view of the body.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { nobleCrypto, Topics } from '../protocol/index.js';
import { fromHex, toHex } from '../protocol/hex.js';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';
import { runVector, type Outcome, type Vector, type VectorFile } from '../protocol/vectors.js';
import { loadTrustedKeys, loadTrustedKeysHex, loadVectorFiles } from './helpers/vectors.js';
import { startXs } from './helpers/xs.js';

const files = loadVectorFiles();
const keys = loadTrustedKeys();
const gateMacKey = (JSON.parse(readFileSync(new URL('../protocol/vectors/keys.json', import.meta.url), 'utf8')) as { gateMacKey: { kid: number; key: string } }).gateMacKey;
/** The MACed kinds and the gate topic each travels on. */
const MACED: Record<string, string> = { events: 'events', status: 'status', syncreq: 'sync', cmdres: 'cmdres', ack: 'ack' };
const strict = { strict: true, useMaps: true, rejectDuplicateMapKeys: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, tags: [] };

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
coverage('events, status, syncreq, cmdres and ack have MACed vectors: valid, another key, another topic, unknown kid, changed body, truncated MAC, another type', () => {
  assert.equal(files.filter((f) => f.type.startsWith('mac:')).map((f) => f.type.slice(4)).sort(), Object.keys(MACED).sort(), 'the MACed kinds');
  for (const [t, kind] of Object.entries(MACED)) {
    const f = files.find((x) => x.type === `mac:${t}`);
    assert.ok(f, `no MACed vectors for ${t}`);
    assert.ok(f.mac, `mac:${t}: no key and topic`);
    assert.equal({ kid: f.mac.kid, key: f.mac.key }, { kid: gateMacKey.kid, key: gateMacKey.key }, `mac:${t}: not the test gate key of keys.json`);
    const valid = f.vectors.find((v) => v.expect.ok);
    assert.ok(valid?.expect.ok, `mac:${t}: no valid vector`);
    const gate = (valid.expect.value as { gate: string }).gate;
    assert.is(f.mac.topic, new Topics('subline').gate(gate, kind as never), `mac:${t}: not the ${kind} topic of the body's gate`);
    const has = (code: string, field: string, pred: (v: Vector) => boolean = () => true) => f.vectors.some((v) => !v.expect.ok && v.expect.code === code && v.expect.field === field && pred(v));
    assert.ok(has('bad_mac', 'mac', (v) => /another gate key/.test(v.name) && v.topic === undefined), `mac:${t}: no MAC by another key`);
    assert.ok(has('bad_mac', 'mac', (v) => v.topic !== undefined && v.topic !== f.mac?.topic && v.hex === valid.hex), `mac:${t}: no valid envelope received on another topic`);
    assert.ok(has('bad_mac', 'mac', (v) => /body changed/.test(v.name)), `mac:${t}: no body changed after MACing`);
    assert.ok(has('unknown_key', 'kid'), `mac:${t}: no unknown kid`);
    assert.ok(has('too_short', 'mac'), `mac:${t}: no truncated MAC`);
    assert.ok(has('wrong_message_type', 'body.t'), `mac:${t}: no validly MACed body of another type`);
    assert.ok(has('too_large', 'body'), `mac:${t}: no body over its kind's limit`);
  }
});
coverage('status carries conn and refusal counts; refusal limits have vectors, plain and MACed', () => {
  const f = files.find((x) => x.type === 'status');
  assert.ok(f);
  const values = f.vectors.flatMap((v) => (v.expect.ok ? [v.expect.value as { conn: number; refused: { cause: string; count: number }[] }] : []));
  assert.ok(values.every((v) => typeof v.conn === 'number' && Array.isArray(v.refused)), 'every valid status has conn and refused');
  assert.ok(values.some((v) => v.refused.length >= 2), 'no status with several refusal causes');
  assert.ok(values.some((v) => v.refused.length === 16 && v.refused.some((r) => r.cause.length === 48)), 'no status at the refusal limits (16 causes, a 48-character cause)');
  const fields = f.vectors.flatMap((v) => (v.expect.ok ? [] : [`${v.expect.code} ${v.expect.field}`]));
  for (const want of ['too_long refused', 'too_long refused.1.cause', 'bad_value refused.0.cause', 'missing_field refused.0.count', 'missing_field conn']) assert.ok(fields.includes(want), `status: no ${want} vector`);
  const maced = files.find((x) => x.type === 'mac:status')?.vectors.find((v) => v.expect.ok);
  assert.ok(maced?.expect.ok, 'no valid MACed status');
  assert.ok((maced.expect.value as { refused: unknown[] }).refused.length >= 2, 'the MACed status carries no refusal causes');
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
      const decoded: unknown = cborgDecode(bytes, strict);
      assert.ok(decoded instanceof Map, 'top level is a map');
      // cborg's canonical encoder (RFC 8949 length-first key order) reproduces the bytes exactly.
      assert.is(toHex(cborgEncode(decoded)), v.hex);
      // Inside an envelope: the payload or body is a canonical message of the file's type.
      const inner = f.type.startsWith('signed:') ? 'payload' : f.type.startsWith('mac:') ? 'body' : null;
      if (inner === null) return;
      const raw: unknown = decoded.get(inner);
      assert.ok(raw instanceof Uint8Array, `${inner} is a byte string`);
      const message: unknown = cborgDecode(raw, strict);
      assert.ok(message instanceof Map, `${inner} is a map`);
      assert.is(message.get('t'), f.type.slice(f.type.indexOf(':') + 1), `${inner}.t`);
      assert.is(toHex(cborgEncode(message)), toHex(raw), `${inner} re-encodes to the same bytes`);
    });
  }
}
cborg.run();

// Every MAC in the mac-* files, recomputed independently (node:crypto HMAC over
// cborg's reading of the envelope): it must match exactly when the vector's
// expected outcome says the MAC was good (accepted, or refused only after the MAC check).
const hmac = suite('protocol vectors: MACs recomputed with node:crypto');
const AFTER_MAC = new Set(['wrong_message_type', 'bad_value', 'wrong_type', 'too_large']);
for (const f of files.filter((x) => x.type.startsWith('mac:'))) {
  for (const v of f.vectors) {
    hmac(`${f.type}: ${v.name}`, () => {
      const m = f.mac;
      assert.ok(m);
      let env: unknown;
      try {
        env = cborgDecode(fromHex(v.hex), strict);
      } catch {
        assert.ok(!v.expect.ok, 'cborg refuses an accepted vector');
        return;
      }
      if (!(env instanceof Map)) return;
      const { kid, body, mac } = { kid: env.get('kid') as unknown, body: env.get('body') as unknown, mac: env.get('mac') as unknown };
      if (env.get('t') !== 'mac' || kid !== m.kid || !(body instanceof Uint8Array) || !(mac instanceof Uint8Array) || mac.length !== 32) {
        assert.ok(!v.expect.ok, 'an accepted vector is not a well-formed envelope with the file kid');
        return;
      }
      const h = createHmac('sha256', Buffer.from(fromHex(m.key)));
      h.update('subline-mac-v1\0' + (v.topic ?? m.topic) + '\0', 'utf8');
      h.update(body);
      const good = toHex(h.digest()) === toHex(mac);
      const wantGood = v.expect.ok || (AFTER_MAC.has(v.expect.code) && v.expect.field.startsWith('body'));
      assert.is(good, wantGood, good ? 'the MAC is right but the vector expects bad_mac' : 'the MAC is wrong but the vector expects it to pass the MAC check');
    });
  }
}
hmac.run();

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
