// Authenticates what gates send and MACs what the central sends to one gate
// (protocol/mac-envelope.ts). Every uplink message is looked up by the gate id
// in its topic: an unknown or decommissioned id is refused before anything
// else (no MAC is computed for it), then the MAC is checked with that gate's
// key for its current key id, then the body is decoded. The registry row is
// read for every message, so a decommission by another process (the CLI)
// takes effect at once; derived keys are cached (bounded).

import type { Crypto } from '../../protocol/crypto.js';
import { openMaced, sealMaced } from '../../protocol/mac-envelope.js';
import type { MessageOf, MessageSchema } from '../../protocol/schema.js';
import { deriveGateKey } from './gate-keys.js';
import type { GateIdentityState } from './gate-registry.js';

/** Where the authenticator reads a gate's state and key id (GateRegistry). */
export interface GateAuthSource {
  authState(gate: string): Promise<{ readonly state: GateIdentityState; readonly keyId: number } | null>;
}

/** Derived keys kept; the cache is cleared when it is full (a fleet is far smaller). */
const KEY_CACHE_CAPACITY = 4096;

export interface GateAuthenticatorOptions {
  readonly gates: GateAuthSource;
  /** 32 bytes (the key file's gateMasterKey). */
  readonly masterKey: Uint8Array;
  readonly crypto: Crypto;
}

/** An opened message, or why it was refused (a cause counted per gate: refusal-log.ts). */
export type Opened<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly cause: string };

export class GateAuthenticator {
  readonly #o: GateAuthenticatorOptions;
  readonly #keys = new Map<string, Uint8Array>();

  constructor(options: GateAuthenticatorOptions) {
    if (options.masterKey.length !== 32) throw new Error('gate authenticator: the master key must be 32 bytes');
    this.#o = options;
  }

  /**
   * Opens a MACed message from `gate` received on `topic`. Error codes:
   * unknown_gate, decommissioned, stale_key (a kid other than the gate's
   * current one), bad_mac, and the decoders' codes. Rejects only when the
   * database cannot be read.
   */
  async open<M extends MessageSchema>(gate: string, topic: string, schema: M, bytes: Uint8Array): Promise<Opened<MessageOf<M>>> {
    const a = await this.#o.gates.authState(gate);
    if (a === null) return { ok: false, cause: 'unknown_gate' };
    if (a.state !== 'active') return { ok: false, cause: 'decommissioned' };
    const r = openMaced(schema, bytes, topic, (kid) => (kid === a.keyId ? this.#key(gate, kid) : null), this.#o.crypto);
    if (r.ok) return r;
    return { ok: false, cause: r.error.code === 'unknown_key' ? 'stale_key' : r.error.code };
  }

  /** MACs a message for one gate (its current key), or null when the gate is not active. */
  async seal<M extends MessageSchema>(gate: string, topic: string, schema: M, value: MessageOf<M>): Promise<Uint8Array | null> {
    const a = await this.#o.gates.authState(gate);
    if (a === null || a.state !== 'active') return null;
    return sealMaced(schema, value, topic, this.#key(gate, a.keyId), a.keyId, this.#o.crypto);
  }

  /** The key a gate holds for `kid` (what `subline provision` writes into its record). */
  keyFor(gate: string, kid: number): Uint8Array {
    return this.#key(gate, kid);
  }

  #key(gate: string, kid: number): Uint8Array {
    const k = `${gate}\u0000${kid}`;
    let key = this.#keys.get(k);
    if (key === undefined) {
      if (this.#keys.size >= KEY_CACHE_CAPACITY) this.#keys.clear();
      key = deriveGateKey(this.#o.masterKey, gate, kid);
      this.#keys.set(k, key);
    }
    return key;
  }
}
