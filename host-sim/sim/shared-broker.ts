// The simulator on a broker it shares: before its central publishes anything,
// `subline sim --broker URL` looks for a head retained under its topic root
// (<root>/v1/lists/main/head). One signed by a key that is not the
// simulator's is another central's: the simulator would overwrite it, and
// its gates and events would land in that deployment, so it does not start.

import mqtt from 'mqtt';
import { keyIdOf } from '../../protocol/crypto.js';
import { Signed } from '../../protocol/envelope.js';
import { bytesEqual, toHex } from '../../protocol/hex.js';
import { decodeMessage } from '../../protocol/schema.js';
import { Topics } from '../../protocol/topics.js';
import { mqttAuthOptions, type BrokerAuth } from '../broker-auth.js';
import { nodeCrypto } from '../node-crypto.js';

/** A signed envelope of any payload size (the signer's key id is what is looked at). */
const ANY_SIGNED = { ...Signed, maxSize: 1 << 21 };

export type HeadProbe =
  | { readonly found: 'none' }
  | { readonly found: 'own' }
  /** kid: the key id of the head's signer (hex), or null when the retained message is not a signed envelope. */
  | { readonly found: 'other'; readonly kid: string | null };

/**
 * Subscribes to the retained head of `list` under `root` for up to `waitMs`
 * (a broker sends retained messages right after the subscription is
 * granted). Rejects when the broker cannot be reached or refuses the
 * subscription.
 */
export async function probeRetainedHead(url: string, root: string, publicKey: Uint8Array, o: { auth?: BrokerAuth; list?: string; waitMs?: number; connectTimeoutMs?: number } = {}): Promise<HeadProbe> {
  const topic = new Topics(root).list(o.list ?? 'main', 'head');
  const ownKid = keyIdOf(nodeCrypto, publicKey);
  const client = mqtt.connect(url, { clientId: `subline-sim-probe-${process.pid}-${Math.floor(Math.random() * 1e6)}`, clean: true, reconnectPeriod: 0, connectTimeout: o.connectTimeoutMs ?? 10000, ...mqttAuthOptions(o.auth, url) });
  try {
    return await new Promise<HeadProbe>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = setTimeout(() => reject(new Error(`no connection to the broker ${url} within ${Math.round((o.connectTimeoutMs ?? 10000) / 1000)} s`)), (o.connectTimeoutMs ?? 10000) + 1000);
      const done = (r: HeadProbe | Error) => {
        clearTimeout(deadline);
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      client.on('error', (e) => done(new Error(`cannot connect to the broker ${url}: ${e.message}`)));
      client.on('close', () => done(new Error(`cannot connect to the broker ${url}: connection closed`)));
      client.on('message', (t, payload, packet) => {
        if (t !== topic || !packet.retain || payload.length === 0) return;
        const env = decodeMessage(ANY_SIGNED, new Uint8Array(payload));
        if (!env.ok) return done({ found: 'other', kid: null });
        done(bytesEqual(env.value.kid, ownKid) ? { found: 'own' } : { found: 'other', kid: toHex(env.value.kid) });
      });
      client.once('connect', () => {
        client.subscribe(topic, { qos: 1 }, (err, granted) => {
          if (err) return done(new Error(`the broker ${url} refused a subscription to ${topic}: ${err.message}`));
          if (granted?.[0]?.qos === 128) return done(new Error(`the broker ${url} refused a subscription to ${topic} (not allowed for this identity)`));
          timer = setTimeout(() => done({ found: 'none' }), o.waitMs ?? 1500);
        });
      });
    });
  } finally {
    client.end(true);
  }
}

/**
 * Clears retained messages (an empty retained payload on each topic): what a
 * run without a lasting key leaves (its head, its gates' statuses) would
 * otherwise be taken for another central's by the next run on that root.
 */
export async function clearRetained(url: string, topics: readonly string[], o: { auth?: BrokerAuth; timeoutMs?: number } = {}): Promise<void> {
  const client = mqtt.connect(url, { clientId: `subline-sim-clear-${process.pid}-${Math.floor(Math.random() * 1e6)}`, clean: true, reconnectPeriod: 0, connectTimeout: o.timeoutMs ?? 5000, ...mqttAuthOptions(o.auth, url) });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the broker ${url} did not acknowledge the clearing within ${Math.round((o.timeoutMs ?? 5000) / 1000)} s`)), (o.timeoutMs ?? 5000) + 1000);
      client.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      client.once('connect', () => {
        void Promise.all(topics.map((t) => client.publishAsync(t, Buffer.alloc(0), { qos: 1, retain: true }))).then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (e: unknown) => {
            clearTimeout(timer);
            reject(e instanceof Error ? e : new Error(String(e)));
          },
        );
      });
    });
  } finally {
    client.end(true);
  }
}
