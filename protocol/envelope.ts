// Signed envelope: { t: "signed", v: 1, kid, sig, payload } where sig is an
// RFC 8032 Ed25519 signature over the exact payload bytes and kid names the
// signing key. The signature is checked before the payload is parsed, and the
// payload's own "t" field stops a signed message of one type from being
// accepted as another.

import { keyIdOf, KEY_ID_BYTES, type Crypto } from './crypto.js';
import { signEd25519, publicKeyOf } from './crypto-noble.js';
import { bytesEqual } from './hex.js';
import { fail, type Result } from './result.js';
import { bytes, decodeMessage, encodeMessage, req, type MessageOf, type MessageSchema } from './schema.js';

const ENVELOPE_OVERHEAD: number = 128;

/** The envelope's own schema; `maxSize` is widened per payload type when opening. */
export const Signed = {
  type: 'signed',
  version: 1,
  maxSize: ENVELOPE_OVERHEAD,
  fields: {
    kid: req(bytes(KEY_ID_BYTES, KEY_ID_BYTES)),
    sig: req(bytes(64, 64)),
    payload: req(bytes(1, 1 << 20)),
  },
} as const satisfies MessageSchema;

export type SignedEnvelope = MessageOf<typeof Signed>;

interface TrustedKey {
  readonly kid: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The public keys a gate trusts, looked up by key id. Bounded and small by design. */
export class KeyRing {
  static readonly MAX_KEYS = 8;
  readonly #keys: TrustedKey[] = [];
  readonly crypto: Crypto;

  constructor(crypto: Crypto, publicKeys: readonly Uint8Array[]) {
    if (publicKeys.length > KeyRing.MAX_KEYS) throw new Error(`at most ${KeyRing.MAX_KEYS} trusted keys`);
    this.crypto = crypto;
    for (const pk of publicKeys) {
      if (pk.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
      this.#keys.push({ kid: keyIdOf(crypto, pk), publicKey: pk.slice() });
    }
  }

  find(kid: Uint8Array): Uint8Array | undefined {
    for (const k of this.#keys) if (bytesEqual(k.kid, kid)) return k.publicKey;
    return undefined;
  }
}

function envelopeSchemaFor(inner: MessageSchema): typeof Signed {
  return { ...Signed, maxSize: inner.maxSize + ENVELOPE_OVERHEAD };
}

const envelopeCache = new WeakMap<MessageSchema, typeof Signed>();
function envelopeFor(inner: MessageSchema): typeof Signed {
  let s = envelopeCache.get(inner);
  if (s === undefined) {
    s = envelopeSchemaFor(inner);
    envelopeCache.set(inner, s);
  }
  return s;
}

/** Verifies then decodes. Never throws. */
export function openSigned<M extends MessageSchema>(schema: M, bytesIn: Uint8Array, keys: KeyRing): Result<MessageOf<M>> {
  const env = decodeMessage(envelopeFor(schema), bytesIn);
  if (!env.ok) return env;
  const { kid, sig, payload } = env.value;
  if (payload.length > schema.maxSize) return fail('too_large', 'payload');
  const publicKey = keys.find(kid);
  if (publicKey === undefined) return fail('unknown_key', 'kid');
  if (!keys.crypto.verifyEd25519(sig, payload, publicKey)) return fail('bad_signature', 'sig');
  const inner = decodeMessage(schema, payload);
  if (!inner.ok) return fail(inner.error.code, inner.error.field === '' ? 'payload' : `payload.${inner.error.field}`);
  return inner;
}

/** Encodes, signs and wraps a message (central side). */
export function sealSigned<M extends MessageSchema>(schema: M, value: MessageOf<M>, secretKey: Uint8Array, crypto: Crypto): Uint8Array {
  const payload = encodeMessage(schema, value);
  const kid = keyIdOf(crypto, publicKeyOf(secretKey));
  return encodeMessage(envelopeFor(schema), { kid, sig: signEd25519(payload, secretKey), payload });
}

/** Wraps payload bytes with a given signature (tests build forged envelopes with it). */
export function encodeEnvelope(env: SignedEnvelope): Uint8Array {
  return encodeMessage({ ...Signed, maxSize: 1 << 21 }, env);
}
