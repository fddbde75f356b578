// The deployment PKI (host-sim/pki/deployment-pki.ts), checked by real TLS
// handshakes with node:tls on loopback: a gate's or operator's certificate from
// this CA is accepted by a server that trusts the CA and its CRL; another CA,
// an expired certificate and a revoked one (once the CRL is reloaded) are
// refused. The brokers' own checks are in broker-security.test.ts.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CENTRAL_IDENTITY, commonName, DeploymentPki, operatorIdentity, PkiError } from '../host-sim/pki/deployment-pki.js';

const t = suite('deployment PKI');
const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'subline-pki-'));
  dirs.push(d);
  return d;
};

/** One handshake against a server that requires a client certificate from `pki`'s CA; resolves with the CN the server saw, or the error. */
async function handshake(pki: DeploymentPki, client: { cert: string | Buffer; key: string | Buffer; ca?: string }): Promise<string> {
  const files = pki.serverFiles();
  const server = createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(files.ca), crl: readFileSync(files.crl), requestCert: true, rejectUnauthorized: true });
  const seen = new Promise<string>((resolve) => {
    server.on('secureConnection', (s: TLSSocket) => {
      resolve(String((s.getPeerCertificate().subject as unknown as Record<string, string>).CN));
      s.end('ok');
    });
    server.on('tlsClientError', (e) => resolve(`refused: ${e.message}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const sock = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: client.ca ?? pki.caPem, cert: client.cert, key: client.key });
    sock.on('error', () => undefined);
    sock.on('data', () => sock.end());
    return await seen;
  } finally {
    server.close();
  }
}

const derToPem = (der: Uint8Array, label: string) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----\n`;

t('create: CA, broker and central certificates; keys 0600; nothing replaced', async () => {
  const dir = temp();
  const pki = await DeploymentPki.create(dir, { brokerHosts: ['broker.park.example'] });
  for (const f of ['ca.key.pem', 'broker.key.pem', 'central.key.pem', 'issued.json']) assert.is(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  assert.is(commonName(readFileSync(join(dir, 'central.crt.pem'), 'utf8')), CENTRAL_IDENTITY);
  assert.equal(pki.issued().map((c) => [c.cn, c.role]), [['subline.broker', 'broker'], [CENTRAL_IDENTITY, 'central']]);
  let refused = false;
  try {
    await DeploymentPki.create(dir);
  } catch (e) {
    refused = e instanceof PkiError && /already holds a deployment CA/.test(e.message);
  }
  assert.ok(refused, 'an existing CA is never replaced');
  const again = await DeploymentPki.load(dir);
  assert.is(again.caPem, pki.caPem);
});

t('TLS: a gate, an operator and the central are accepted with their CN; another CA, expired and (after the CRL) revoked certificates are refused', async () => {
  const pki = await DeploymentPki.create(temp());
  const gate = await pki.issueGate('fl-in-t01');
  assert.is(await handshake(pki, { cert: derToPem(gate.certDer, 'CERTIFICATE'), key: derToPem(gate.keyDer, 'PRIVATE KEY') }), 'fl-in-t01');
  const op = await pki.issueOperator('alice');
  assert.is(await handshake(pki, op), operatorIdentity('alice'));
  assert.is(await handshake(pki, { cert: readFileSync(join(pki.dir, 'central.crt.pem')), key: readFileSync(join(pki.dir, 'central.key.pem')) }), CENTRAL_IDENTITY);
  const other = await DeploymentPki.create(temp());
  const stranger = await other.issueGate('fl-in-t01');
  assert.match(await handshake(pki, { cert: derToPem(stranger.certDer, 'CERTIFICATE'), key: derToPem(stranger.keyDer, 'PRIVATE KEY') }), /^refused/, 'a certificate of another CA');
  const old = await pki.issueOperator('bob', { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  assert.match(await handshake(pki, old), /^refused/, 'an expired certificate');
  assert.is(await pki.revoke('fl-in-t01'), 1);
  assert.match(await handshake(pki, { cert: derToPem(gate.certDer, 'CERTIFICATE'), key: derToPem(gate.keyDer, 'PRIVATE KEY') }), /^refused/, 'revoked (the server loaded the new CRL)');
  assert.is(await handshake(pki, op), operatorIdentity('alice'), 'others unaffected');
  assert.is(await pki.revoke('fl-in-t01'), 0, 'nothing left to revoke');
  assert.ok(pki.issued().some((c) => c.cn === 'fl-in-t01' && c.revokedAt !== undefined));
});

t('bad names are refused', async () => {
  const pki = await DeploymentPki.create(temp());
  for (const bad of ['Bad', 'a.b', '', 'x'.repeat(33)]) {
    let ok = false;
    try {
      await pki.issueGate(bad);
    } catch (e) {
      ok = e instanceof PkiError;
    }
    assert.ok(ok, bad);
  }
});

t.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

t.run();
