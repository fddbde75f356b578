// The deployment's PKI (issue 13): one CA per data directory, and from it the
// broker's server certificate, the central's and each operator's client
// certificates, and each gate's client certificate (issued at `subline
// provision`; its key goes into the gate's provisioning record and is not
// kept here). RSA-2048 with SHA-256 throughout: Moddable's TLS 1.2 client signs
// its CertificateVerify with RSA PKCS#1 v1.5 only, and an RSA server chain is
// the safe choice for the same reason. X.509 is built with @peculiar/x509 over
// node:crypto's WebCrypto (no hand-written ASN.1).
//
// Files in <data>/pki/ (keys mode 0600):
//   ca.crt.pem ca.key.pem        the deployment CA
//   broker.crt.pem broker.key.pem the broker's server certificate (localhost, 127.0.0.1 and --broker-host names)
//   central.crt.pem central.key.pem       CN subline.central
//   operators/<name>.crt.pem .key.pem     CN subline.operator.<name>
//   gates/<id>.crt.pem                    CN <gate id> (the key is only in the gate's record)
//   issued.json                   every certificate issued: serial, CN, role, validity, revocation
//   crl.pem                       the CRL: every revoked serial, re-signed on each change
//
// Identities (the certificate's CN, which brokers take as the MQTT username):
// a gate is its gate id ([a-z0-9_-], never a '.'), the central and operators
// carry a dotted prefix, so no gate id can ever name one of them.

import 'reflect-metadata';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { webcrypto, randomBytes, X509Certificate as NodeX509 } from 'node:crypto';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { writeFileAtomic } from '../atomic-file.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

export const CENTRAL_IDENTITY = 'subline.central';
export const OPERATOR_PREFIX = 'subline.operator.';
export const operatorIdentity = (name: string): string => `${OPERATOR_PREFIX}${name}`;

export type IdentityRole = 'gate' | 'central' | 'operator' | 'broker';

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
const DAY_MS = 86_400_000;
const CA_DAYS = 3650;
const LEAF_DAYS = 825;
const te = new TextEncoder();

export interface IssuedCertificate {
  readonly serial: string;
  readonly cn: string;
  readonly role: IdentityRole;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly revokedAt?: string;
}

export interface ClientCredentials {
  /** PEM. */
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface GateCredentials {
  readonly certDer: Uint8Array;
  /** PKCS#8 DER. */
  readonly keyDer: Uint8Array;
  readonly caDer: Uint8Array;
  readonly serial: string;
}

/** Validity override (tests make expired certificates with it). */
export interface Validity {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export class PkiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PkiError';
  }
}

const pemKey = (der: ArrayBuffer): string => x509.PemConverter.encode(der, 'PRIVATE KEY');

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PkiError(`${what} ${path}: ${code === 'ENOENT' ? 'not found (run `subline central init` to create the deployment PKI)' : `cannot be read (${code ?? String(e)})`}`);
  }
}

function serialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // positive
  return b.toString('hex');
}

export class DeploymentPki {
  readonly dir: string;
  readonly #ca: x509.X509Certificate;
  readonly #caKey: CryptoKey;

  private constructor(dir: string, ca: x509.X509Certificate, caKey: CryptoKey) {
    this.dir = dir;
    this.#ca = ca;
    this.#caKey = caKey;
  }

  static exists(dir: string): boolean {
    return existsSync(join(dir, 'ca.crt.pem')) && existsSync(join(dir, 'ca.key.pem'));
  }

  /** Creates a new CA, the broker's server certificate and the central's client certificate in `dir`. */
  static async create(dir: string, options: { readonly brokerHosts?: readonly string[]; readonly name?: string } = {}): Promise<DeploymentPki> {
    if (DeploymentPki.exists(dir)) throw new PkiError(`${dir} already holds a deployment CA (not replaced)`);
    mkdirSync(join(dir, 'gates'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'operators'), { recursive: true, mode: 0o700 });
    const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
    const now = Date.now();
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialHex(),
      name: `CN=${options.name ?? 'subline deployment CA'}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + CA_DAYS * DAY_MS),
      keys,
      signingAlgorithm: RSA,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        // Its own key id again (RFC 5280 allows it in a self-signed CA): Moddable's
        // TLS client (ssl/cert verify()) compares the last certificate's AKI with its
        // trusted CA's SKI and throws on a chain whose CA has none (docs/decisions/0014).
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    writeFileAtomic(join(dir, 'ca.key.pem'), te.encode(pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))), { mode: 0o600 });
    writeFileAtomic(join(dir, 'ca.crt.pem'), te.encode(ca.toString('pem')), { mode: 0o644 });
    writeFileAtomic(join(dir, 'issued.json'), te.encode('[]\n'), { mode: 0o600 });
    const pki = new DeploymentPki(dir, ca, keys.privateKey);
    await pki.issueBroker(options.brokerHosts ?? []);
    await pki.issueClient('central', CENTRAL_IDENTITY, 'central');
    await pki.writeCrl();
    return pki;
  }

  static async load(dir: string): Promise<DeploymentPki> {
    const ca = new x509.X509Certificate(readText(join(dir, 'ca.crt.pem'), 'deployment CA certificate'));
    const keyPem = readText(join(dir, 'ca.key.pem'), 'deployment CA key');
    const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), RSA, false, ['sign']);
    return new DeploymentPki(dir, ca, caKey);
  }

  get caPem(): string {
    return this.#ca.toString('pem');
  }

  get caDer(): Uint8Array {
    return new Uint8Array(this.#ca.rawData);
  }

  /** Every certificate issued, oldest first. */
  issued(): IssuedCertificate[] {
    const p = join(this.dir, 'issued.json');
    if (!existsSync(p)) return [];
    const v = JSON.parse(readText(p, 'issued list')) as unknown;
    if (!Array.isArray(v)) throw new PkiError(`${p}: not a JSON array (corrupt?)`);
    return v as IssuedCertificate[];
  }

  /** A gate's client certificate and key (DER), issued now; only the certificate is kept here. */
  async issueGate(gate: string, validity: Validity = {}): Promise<GateCredentials> {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(gate)) throw new PkiError(`gate id '${gate}' is not a valid id`);
    const { cert, key, serial } = await this.#leaf(gate, 'gate', false, [], validity);
    writeFileAtomic(join(this.dir, 'gates', `${gate}.crt.pem`), te.encode(cert.toString('pem')), { mode: 0o644 });
    return { certDer: new Uint8Array(cert.rawData), keyDer: new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', key)), caDer: this.caDer, serial };
  }

  /** An operator's client certificate (files in operators/). */
  async issueOperator(name: string, validity: Validity = {}): Promise<ClientCredentials> {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(name)) throw new PkiError(`operator name '${name}' must be 1-32 of [a-z0-9_-]`);
    return this.issueClient('operators', operatorIdentity(name), 'operator', name, validity);
  }

  /** Issues a client certificate and writes it with its key under `sub`. */
  async issueClient(sub: 'central' | 'operators', cn: string, role: 'central' | 'operator', file = 'central', validity: Validity = {}): Promise<ClientCredentials> {
    const { cert, key } = await this.#leaf(cn, role, false, [], validity);
    const base = sub === 'central' ? join(this.dir, 'central') : join(this.dir, 'operators', file);
    const keyPem = pemKey(await webcrypto.subtle.exportKey('pkcs8', key));
    writeFileAtomic(`${base}.key.pem`, te.encode(keyPem), { mode: 0o600 });
    writeFileAtomic(`${base}.crt.pem`, te.encode(cert.toString('pem')), { mode: 0o644 });
    return { cert: cert.toString('pem'), key: keyPem, ca: this.caPem };
  }

  /** The broker's server certificate: localhost, 127.0.0.1, ::1 and `hosts` (names or IP addresses). */
  async issueBroker(hosts: readonly string[]): Promise<void> {
    const names = [...new Set(['localhost', '127.0.0.1', '::1', ...hosts])];
    const san = new x509.SubjectAlternativeNameExtension(names.map((n) => (/^[0-9.]+$|:/.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })));
    const { cert, key } = await this.#leaf('subline.broker', 'broker', true, [san]);
    writeFileAtomic(join(this.dir, 'broker.key.pem'), te.encode(pemKey(await webcrypto.subtle.exportKey('pkcs8', key))), { mode: 0o600 });
    writeFileAtomic(join(this.dir, 'broker.crt.pem'), te.encode(cert.toString('pem')), { mode: 0o644 });
  }

  /** Revokes every unrevoked certificate of `cn` and re-signs the CRL. Returns how many were revoked. */
  revoke(cn: string): Promise<number> {
    return this.#revokeWhere((c) => c.cn === cn);
  }

  /** Revokes the certificates of `cn` other than `keep` (a re-provisioned gate's earlier ones). */
  revokeOthers(cn: string, keep: string): Promise<number> {
    return this.#revokeWhere((c) => c.cn === cn && c.serial !== keep);
  }

  /** Revokes one certificate by serial (one issued for a record that was never written). */
  revokeSerial(serial: string): Promise<number> {
    return this.#revokeWhere((c) => c.serial === serial);
  }

  async #revokeWhere(pred: (c: IssuedCertificate) => boolean): Promise<number> {
    const list = this.issued();
    const at = new Date().toISOString();
    let n = 0;
    const next = list.map((c) => {
      if (!pred(c) || c.revokedAt !== undefined) return c;
      n++;
      return { ...c, revokedAt: at };
    });
    if (n === 0) return 0;
    this.#writeIssued(next);
    await this.writeCrl();
    return n;
  }

  /** Re-signs crl.pem (next update in 30 days) with every revoked serial. */
  async writeCrl(): Promise<string> {
    const revoked = this.issued().filter((c) => c.revokedAt !== undefined);
    const now = Date.now();
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.#ca.subject,
      thisUpdate: new Date(now - 60_000),
      nextUpdate: new Date(now + 30 * DAY_MS),
      signingAlgorithm: RSA,
      signingKey: this.#caKey,
      entries: revoked.map((c) => ({ serialNumber: c.serial, revocationDate: new Date(c.revokedAt as string), reason: x509.X509CrlReason.cessationOfOperation })),
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(this.#ca, false)],
    });
    // RFC 7468's label is 'X509 CRL' (OpenSSL, and so Mosquitto and node:tls, read nothing else).
    const pem = x509.PemConverter.encode(crl.rawData, 'X509 CRL');
    writeFileAtomic(join(this.dir, 'crl.pem'), te.encode(pem), { mode: 0o644 });
    return pem;
  }

  /** Paths of the files a TLS server (the broker) needs. */
  serverFiles(): { readonly ca: string; readonly cert: string; readonly key: string; readonly crl: string } {
    return { ca: join(this.dir, 'ca.crt.pem'), cert: join(this.dir, 'broker.crt.pem'), key: join(this.dir, 'broker.key.pem'), crl: join(this.dir, 'crl.pem') };
  }

  async #leaf(cn: string, role: IdentityRole, server: boolean, extra: x509.Extension[], validity: Validity = {}): Promise<{ cert: x509.X509Certificate; key: CryptoKey; serial: string }> {
    const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
    const serial = serialHex();
    const now = Date.now();
    const notBefore = validity.notBefore ?? new Date(now - 60_000);
    const notAfter = validity.notAfter ?? new Date(now + LEAF_DAYS * DAY_MS);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${cn}`,
      issuer: this.#ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.#caKey,
      signingAlgorithm: RSA,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(this.#ca, false),
        ...extra,
      ],
    });
    this.#writeIssued([...this.issued(), { serial, cn, role, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() }]);
    return { cert, key: keys.privateKey, serial };
  }

  #writeIssued(list: readonly IssuedCertificate[]): void {
    writeFileAtomic(join(this.dir, 'issued.json'), te.encode(`${JSON.stringify(list, null, 1)}\n`), { mode: 0o600 });
  }
}

/** The CN of a PEM or DER certificate (node:crypto's parser), or null. */
export function commonName(cert: string | Uint8Array): string | null {
  try {
    const c = new NodeX509(typeof cert === 'string' ? cert : Buffer.from(cert));
    const m = /(?:^|\n)CN=([^\n]+)/.exec(c.subject);
    return m === null ? null : (m[1] as string);
  } catch {
    return null;
  }
}
