// The provisioning record: everything one gate needs to know about itself,
// written by `subline provision`, stored in the gate's provisioning partition
// (device) or file (simulator), and decoded strictly at boot — a gate refuses
// to run with a missing or invalid record and says why.

import { bytes, decodeMessage, encodeMessage, id, oneOf, opt, printable, req, uint, type MessageOf, type MessageSchema } from './schema.js';
import type { Result } from './result.js';

const action = oneOf('normal', 'individual_only', 'deny');

export const Provisioning = {
  type: 'provision',
  version: 1,
  maxSize: 8192,
  fields: {
    gate: req(id()),
    site: req(id()),
    line: req(oneOf('first', 'second')),
    direction: req(oneOf('in', 'out')),
    lane: req(oneOf('person', 'vehicle', 'goods')),
    /** The whitelist this gate follows. */
    list: req(id()),
    topicRoot: req(printable(64)),
    /** mqtt://host:port or mqtts://host:port */
    broker: req(printable(200)),
    username: opt(printable(64)),
    password: opt(bytes(1, 128)),
    /** Ed25519 public keys trusted for heads, deltas and commands. */
    trustedKeys: req({ kind: 'array', min: 1, max: 8, of: bytes(32, 32) }),
    /** 32 secret bytes for credential keys (protocol/credential-key.ts). */
    deploymentKey: req(bytes(32, 32)),
    /**
     * This gate's own 32-byte secret: the HMAC-SHA256 key of every message it
     * exchanges with the central (protocol/mac-envelope.ts). The central
     * derives it from its master key, the gate id and gateKeyId (docs/decisions/0011).
     */
    gateKey: req(bytes(32, 32)),
    /** The generation of gateKey (the `kid` of its MACed envelopes). */
    gateKeyId: req(uint(0xffff)),
    /**
     * The gate's TLS client identity from the deployment PKI (host-sim/pki/):
     * its X.509 certificate (CN = gate id), its RSA-2048 key (PKCS#8) and the
     * deployment CA that the broker's certificate must chain to, all DER.
     * Absent in records for plain-MQTT labs.
     */
    tls: opt({ kind: 'map', fields: { cert: req(bytes(1, 2048)), key: req(bytes(1, 2048)), ca: req(bytes(1, 2048)) } }),
    /** Journal epoch: changes on every reflash or reprovision. */
    journalEpoch: req(uint()),
    policy: req({
      kind: 'map',
      fields: { staleAfterSeconds: req(uint(7 * 86400, 60)), fresh: req(action), stale: req(action), expired: req(action), unsynced: req(action) },
    }),
    passbackSeconds: req(uint(86400)),
  },
} as const satisfies MessageSchema;

export type ProvisioningRecord = MessageOf<typeof Provisioning>;

export const encodeProvisioning = (p: ProvisioningRecord): Uint8Array => encodeMessage(Provisioning, p);
export const decodeProvisioning = (b: Uint8Array): Result<ProvisioningRecord> => decodeMessage(Provisioning, b);
