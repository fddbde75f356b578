// MACed envelope: { t: "mac", v: 1, kid, body, mac } for the messages between
// one gate and the central (event batches, status, sync requests, command
// results up; acks down). mac = HMAC-SHA256(gate key, "subline-mac-v1" ‖ 0 ‖
// topic ‖ 0 ‖ body): the topic names the gate and the message kind, so a MAC
// made for one gate or one kind is worthless on another. `kid` is the key's
// generation (the central derives gate keys from its master key, the gate id
// and kid: docs/decisions/0011). The MAC is checked before the body is parsed,
// and the body's own "t" stops one type being taken for another.
// Heads, deltas and commands stay Ed25519-signed (envelope.ts): one signer,
// many verifiers.

import type { Crypto } from './crypto.js';
import { bytesEqual } from './hex.js';
import { fail, type Result } from './result.js';
import { bytes, decodeMessage, encodeMessage, req, uint, type MessageOf, type MessageSchema } from './schema.js';

export const MAC_BYTES = 32;
const OVERHEAD: number = 64;
const CONTEXT = 'subline-mac-v1';

export const Maced = {
  type: 'mac',
  version: 1,
  maxSize: OVERHEAD,
  fields: {
    kid: req(uint()),
    body: req(bytes(1, 1 << 20)),
    mac: req(bytes(MAC_BYTES, MAC_BYTES)),
  },
} as const satisfies MessageSchema;

export type MacedEnvelope = MessageOf<typeof Maced>;

const cache = new WeakMap<MessageSchema, typeof Maced>();
function envelopeFor(inner: MessageSchema): typeof Maced {
  let s = cache.get(inner);
  if (s === undefined) {
    s = { ...Maced, maxSize: inner.maxSize + OVERHEAD };
    cache.set(inner, s);
  }
  return s;
}

const te = new TextEncoder();
const contextBytes = te.encode(CONTEXT);

/** The bytes the MAC covers: context, topic and body, each separated by a zero byte. */
export function macInput(topic: string, body: Uint8Array): Uint8Array {
  const t = te.encode(topic);
  const out = new Uint8Array(contextBytes.length + 1 + t.length + 1 + body.length);
  out.set(contextBytes, 0);
  out.set(t, contextBytes.length + 1);
  out.set(body, contextBytes.length + 1 + t.length + 1);
  return out;
}

/** Encodes a message and wraps it with its MAC for `topic`. */
export function sealMaced<M extends MessageSchema>(schema: M, value: MessageOf<M>, topic: string, key: Uint8Array, kid: number, crypto: Crypto): Uint8Array {
  const body = encodeMessage(schema, value);
  return encodeMessage(envelopeFor(schema), { kid, body, mac: crypto.hmacSha256(key, macInput(topic, body)) });
}

/** Wraps already-encoded body bytes (tests build forgeries with it). */
export function encodeMaced(env: MacedEnvelope): Uint8Array {
  return encodeMessage({ ...Maced, maxSize: 1 << 21 }, env);
}

/**
 * Checks the MAC with the key for the envelope's kid, then decodes the body.
 * `keyFor` returns null for a kid it does not know (code unknown_key). Never throws.
 */
export function openMaced<M extends MessageSchema>(schema: M, bytesIn: Uint8Array, topic: string, keyFor: (kid: number) => Uint8Array | null, crypto: Crypto): Result<MessageOf<M>> {
  const env = decodeMessage(envelopeFor(schema), bytesIn);
  if (!env.ok) return env;
  const { kid, body, mac } = env.value;
  if (body.length > schema.maxSize) return fail('too_large', 'body');
  const key = keyFor(kid);
  if (key === null) return fail('unknown_key', 'kid');
  if (!bytesEqual(crypto.hmacSha256(key, macInput(topic, body)), mac)) return fail('bad_mac', 'mac');
  const inner = decodeMessage(schema, body);
  if (!inner.ok) return fail(inner.error.code, inner.error.field === '' ? 'body' : `body.${inner.error.field}`);
  return inner;
}
