// How a host client (the central, the CLI, a host gate, the XS gates' bridge)
// proves who it is to a secured broker: a TLS client certificate from the
// deployment PKI (mqtts://), or a username and password (the loopback
// password listener of labs). One shape for every client, turned into MQTT.js
// options here; certificates may be PEM text or DER bytes (as in a gate's
// provisioning record).

import type { IClientOptions } from 'mqtt';
import type { ProvisioningRecord } from '../protocol/provisioning.js';

export interface BrokerAuth {
  /** The CA the broker's certificate must chain to (PEM or DER). */
  readonly ca?: string | Uint8Array;
  /** The client certificate and its private key (PEM, or DER: certificate / PKCS#8). */
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
  readonly username?: string;
  readonly password?: string | Uint8Array;
}

function pem(v: string | Uint8Array, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  if (typeof v === 'string') return v;
  const b64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * MQTT.js options for `auth` at `url` (nothing for none). TLS material only for
 * mqtts:// — MQTT.js would otherwise switch a mqtt:// connection to TLS when
 * it sees a certificate. The broker's certificate is always verified.
 */
export function mqttAuthOptions(auth: BrokerAuth | undefined, url: string): Partial<IClientOptions> {
  if (auth === undefined) return {};
  const creds = {
    ...(auth.username !== undefined ? { username: auth.username } : {}),
    ...(auth.password !== undefined ? { password: typeof auth.password === 'string' ? auth.password : Buffer.from(auth.password) } : {}),
  };
  if (!url.startsWith('mqtts:')) return creds;
  return {
    ...creds,
    ...(auth.ca !== undefined ? { ca: pem(auth.ca, 'CERTIFICATE') } : {}),
    ...(auth.cert !== undefined ? { cert: pem(auth.cert, 'CERTIFICATE') } : {}),
    ...(auth.key !== undefined ? { key: pem(auth.key, 'PRIVATE KEY') } : {}),
    rejectUnauthorized: true,
  };
}

/** A gate's identity at the broker from its provisioning record: its TLS certificate and/or MQTT username and password (undefined when it has neither). */
export function gateBrokerAuth(p: ProvisioningRecord): BrokerAuth | undefined {
  if (p.tls === undefined && p.username === undefined) return undefined;
  return {
    ...(p.tls !== undefined ? { ca: p.tls.ca, cert: p.tls.cert, key: p.tls.key } : {}),
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
  };
}
