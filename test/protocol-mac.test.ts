// HMAC-SHA256 (RFC 4231 vectors) on every Crypto and on XS, and the MACed
// envelope of gate <-> central messages (protocol/mac-envelope.ts): accepted
// only with the sender's key for that exact topic; any change to kid, body,
// MAC or topic refuses it with a stable code; hostile bytes never throw.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { fromHex, nobleCrypto, toHex } from '../protocol/index.js';
import { EventAck, EventBatch, encodeEventAck } from '../protocol/messages.js';
import { encodeMaced, openMaced, sealMaced } from '../protocol/mac-envelope.js';
import { hmacSha256With } from '../protocol/hmac.js';
import { HMAC_SHA256_VECTORS } from '../protocol/hmac-vectors.js';
import { decodeMessage } from '../protocol/schema.js';
import { Maced } from '../protocol/mac-envelope.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { startXs } from './helpers/xs.js';
import { loadVectorFiles } from './helpers/vectors.js';
import { runVector } from '../protocol/vectors.js';

const t = suite('protocol: HMAC-SHA256 and MACed envelopes');
const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
const TOPIC = 'subline/v1/gates/g-1/ack';
const ACK = { gate: 'g-1', epoch: 7, seq: 42, chain: new Uint8Array(32).fill(5) };
const keyFor = (kid: number) => (kid === 3 ? KEY : null);

t('RFC 4231 vectors: node:crypto, the pure-JS HMAC over noble SHA-256, and over node SHA-256 agree', () => {
  for (const v of HMAC_SHA256_VECTORS) {
    const key = fromHex(v.keyHex);
    const data = fromHex(v.dataHex);
    assert.is(toHex(nodeCrypto.hmacSha256(key, data)), v.macHex, `${v.name} node`);
    assert.is(toHex(nobleCrypto.hmacSha256(key, data)), v.macHex, `${v.name} noble`);
    assert.is(toHex(hmacSha256With((d) => nodeCrypto.sha256(d), key, data)), v.macHex, `${v.name} generic over node sha256`);
  }
});

t('a sealed message opens with the key for its kid and topic, and equals what was sealed', () => {
  const sealed = sealMaced(EventAck, ACK, TOPIC, KEY, 3, nodeCrypto);
  const r = openMaced(EventAck, sealed, TOPIC, keyFor, nobleCrypto);
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.value, ACK);
});

t('refused: another topic, another key, an unknown kid, a flipped bit anywhere, another message type', () => {
  const sealed = sealMaced(EventAck, ACK, TOPIC, KEY, 3, nodeCrypto);
  const code = (bytes: Uint8Array, topic = TOPIC, k: (kid: number) => Uint8Array | null = keyFor) => {
    const r = openMaced(EventAck, bytes, topic, k, nodeCrypto);
    return r.ok ? 'accepted' : r.error.code;
  };
  assert.is(code(sealed, 'subline/v1/gates/g-2/ack'), 'bad_mac', 'the same bytes for another gate');
  assert.is(code(sealed, 'subline/v1/gates/g-1/data'), 'bad_mac', 'the same bytes on another kind of topic');
  assert.is(code(sealed, TOPIC, () => new Uint8Array(32)), 'bad_mac', 'another key');
  assert.is(code(sealed, TOPIC, () => null), 'unknown_key');
  const env = decodeMessage({ ...Maced, maxSize: 1 << 20 }, sealed);
  assert.ok(env.ok);
  if (!env.ok) return;
  // Every bit of body and MAC matters.
  for (const field of ['body', 'mac'] as const) {
    for (let i = 0; i < env.value[field].length * 8; i += 5) {
      const copy = env.value[field].slice();
      copy[i >> 3]! ^= 1 << (i & 7);
      const c = code(encodeMaced({ ...env.value, [field]: copy }));
      assert.ok(c !== 'accepted', `${field} bit ${i} flipped was accepted`);
    }
  }
  assert.is(code(encodeMaced({ ...env.value, kid: 4 })), 'unknown_key', 'another kid');
  // An envelope with a made-up MAC, and a batch offered where an ack is expected.
  const other = encodeMaced({ kid: 3, body: encodeEventAck(ACK).slice(), mac: new Uint8Array(32) });
  assert.is(code(other), 'bad_mac');
  const batchBody = sealMaced(EventBatch, { gate: 'g-1', epoch: 7, first: 1, count: 1, records: new Uint8Array(16), prev: new Uint8Array(32), chain: new Uint8Array(32) }, TOPIC, KEY, 3, nodeCrypto);
  assert.is(code(batchBody), 'too_large', 'a batch-sized envelope is over the ack limit');
});

t('hostile bytes never throw and give a documented code', () => {
  const codes = new Set(['truncated', 'trailing_bytes', 'too_large', 'too_deep', 'indefinite_length', 'not_canonical', 'unsupported_type', 'invalid_utf8', 'wrong_type', 'out_of_range', 'too_long', 'too_short', 'bad_value', 'missing_field', 'unknown_field', 'unknown_version', 'wrong_message_type', 'unknown_key', 'bad_mac']);
  const sealed = sealMaced(EventAck, ACK, TOPIC, KEY, 3, nodeCrypto);
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(fc.nat(sealed.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const b = sealed.slice();
      b[i]! ^= x;
      return b;
    })), (bytes) => {
      const r = openMaced(EventAck, bytes, TOPIC, keyFor, nodeCrypto);
      if (!r.ok) assert.ok(codes.has(r.error.code), r.error.code);
      else assert.equal(r.value, ACK); // only a mutation that changes nothing may pass
    }),
    { seed: 12, numRuns: 3000 },
  );
});

t('the MACed golden vectors give the same outcomes with the node:crypto HMAC (the central) as with noble (the gate)', () => {
  const macFiles = loadVectorFiles().filter((f) => f.type.startsWith('mac:'));
  assert.is(macFiles.length, 5);
  for (const f of macFiles) for (const v of f.vectors) assert.equal(runVector(f, v, nodeCrypto, []), runVector(f, v, nobleCrypto, []), `${f.type}: ${v.name}`);
});

t('XS computes the same HMACs and envelopes, and refuses the same', async () => {
  const xs = await startXs('mac.entry.ts');
  try {
    const r = (await xs.call<{ macs: string[]; sealed: string; opened: number | string; otherTopic: string }>({ key: toHex(KEY), topic: TOPIC })).value;
    assert.equal(r.macs, HMAC_SHA256_VECTORS.map((v) => v.macHex));
    assert.is(r.sealed, toHex(sealMaced(EventAck, ACK, TOPIC, KEY, 3, nodeCrypto)), 'byte-identical envelope');
    assert.is(r.opened, 42);
    assert.is(r.otherTopic, 'bad_mac');
  } finally {
    await xs.close();
  }
});

t.run();
