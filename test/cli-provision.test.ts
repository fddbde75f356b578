// `subline provision` on both store engines: provisioning records written with the central's
// keys, checked, refused with bad values (see cli.test.ts for the context).


import { type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesEqual, toHex } from '../protocol/hex.js';
import { decodeProvisioning } from '../protocol/provisioning.js';
import { deriveGateKey } from '../host-sim/central/gate-keys.js';
import { commonName } from '../host-sim/pki/deployment-pki.js';
import { aclOfData } from '../host-sim/broker-config.js';
import { readKeyFile } from '../host-sim/central/keys.js';
import { BIN, tempDir } from './helpers/cli.js';
import { engineSuites } from './helpers/store-engines.js';
import { spawn } from 'node:child_process';

import { context, parallel, type Ctx } from './helpers/cli-context.js';


engineSuites('cli provision', (prov, engine) => provisionSuite(prov, context(engine)));

function provisionSuite(prov: Test, c: Ctx): void {
  const { cli } = c;
  // Not registered at all on PostgreSQL (nothing skipped): these are about SQLite files.
  const sqliteOnly = (name: string, fn: () => Promise<void>): void => {
    if (!c.pg) prov(name, fn);
  };

  prov('writes a record with the central keys, verifies it, --check prints it without secrets; bad values named', async () => {
    const data = tempDir();
    try {
      await cli(['central', 'init', '--data', data], 0);
      const keys = readKeyFile(join(data, 'keys.json'));
      const file = join(data, 'gate.cbor');
      const base = ['provision', '--data', data, '--gate', 'sl-out-t07', '--site', 'huanggang', '--line', 'second', '--direction', 'out', '--lane', 'vehicle'];
      const r = await cli([...base, '--broker', 'mqtts://broker.example:8883', '--username', 'gate7', '--password', 's3cret', '--journal-epoch', '42', '--policy', 'stale=deny,unsynced=individual_only', '--stale-after', '600', '--passback', '30', '--out', file], 0);
      assert.match(r.stdout, /wrote .*gate\.cbor/);
      assert.is(statSync(file).mode & 0o777, 0o600);
      const p = decodeProvisioning(new Uint8Array(readFileSync(file)));
      if (!p.ok) throw new Error('the record does not decode');
      assert.is(p.value.gate, 'sl-out-t07');
      assert.equal([p.value.site, p.value.line, p.value.direction, p.value.lane, p.value.list, p.value.topicRoot, p.value.broker, p.value.username], ['huanggang', 'second', 'out', 'vehicle', 'main', 'subline', 'mqtts://broker.example:8883', 'gate7']);
      assert.ok(bytesEqual(p.value.trustedKeys[0] as Uint8Array, keys.publicKey));
      assert.ok(bytesEqual(p.value.deploymentKey, keys.deploymentKey));
      assert.ok(bytesEqual(p.value.gateKey, deriveGateKey(keys.gateMasterKey, 'sl-out-t07', 1)), "the gate's MAC key is derived from the master key, the id and the key id");
      assert.is(p.value.gateKeyId, 1);
      assert.match(r.stdout, /gate identity: sl-out-t07 registered/);
      // Its TLS client identity from the deployment PKI: certificate CN = gate id, chained to the data directory's CA.
      const tls = p.value.tls;
      if (tls === undefined) throw new Error('no TLS identity in the record');
      assert.is(commonName(tls.cert), 'sl-out-t07');
      assert.ok(new X509Certificate(Buffer.from(tls.cert)).verify(new X509Certificate(Buffer.from(tls.ca)).publicKey), 'signed by the CA in the record');
      assert.equal(new X509Certificate(Buffer.from(tls.ca)).raw.toString('base64'), new X509Certificate(readFileSync(join(data, 'pki', 'ca.crt.pem'))).raw.toString('base64'), "the record's CA is the data directory's");
      createPrivateKey({ key: Buffer.from(tls.key), format: 'der', type: 'pkcs8' });
      assert.is(p.value.journalEpoch, 42);
      assert.equal(p.value.policy, { staleAfterSeconds: 600, fresh: 'normal', stale: 'deny', expired: 'deny', unsynced: 'individual_only' });
      assert.is(p.value.passbackSeconds, 30);

      const other = join(data, 'other.cbor');
      const bad: [string[], number, RegExp][] = [
        [['--gate', 'FL-IN'], 2, /--gate 'FL-IN' must be 1-32 characters/],
        [['--site', 'Futian Port'], 2, /--site 'Futian Port'/],
        [['--line', 'third'], 2, /'--line <line>' argument 'third' is invalid/],
        [['--stale-after', '5'], 2, /--stale-after must be in 60\.\.604800/],
        [['--policy', 'stale=maybe'], 2, /--policy: stale='maybe' is not an action/],
        [['--passback', '-1'], 2, /--passback must be in 0\.\.86400/],
        [['--broker', 'http://x:1'], 2, /--broker 'http:\/\/x:1' must start with mqtt:\/\/ or mqtts:\/\//],
        [['--password', 'x'], 2, /--password needs --username/],
        [['--out', file], 3, /already exists \(pass --force/],
      ];
      const variant = (extra: string[]): string[] => {
        const args = [...base, '--out', other];
        for (let i = 0; i < extra.length; i += 2) {
          const at = args.indexOf(extra[i] as string);
          if (at >= 0) args.splice(at, 2);
          args.push(extra[i] as string, extra[i + 1] as string);
        }
        return args;
      };
      writeFileSync(join(data, 'junk.cbor'), new Uint8Array([0xa1, 0x61, 0x74, 0x69]));
      // PostgreSQL: the values are checked and the record read the same on both engines; what it writes to the database is exercised below.
      const jobs: (() => Promise<unknown>)[] = [
        ...(c.pg
          ? []
          : [
              ...bad.map(([extra, code, re]) => () => cli(variant(extra), code, re)),
              () => cli([...base], 2, /--out is required/),
              () => cli(['provision', '--check', join(data, 'nothing.cbor')], 2, /no such file/),
              () => cli(['provision', '--check', join(data, 'junk.cbor')], 2, /not a valid provisioning record: /),
              async () => {
                const chk = await cli(['provision', '--data', data, '--check', file], 0);
                assert.match(chk.stdout, /valid provisioning record/);
                assert.ok(chk.stdout.includes(`trusted key 1: ${toHex(keys.publicKey)} (this central)`), chk.stdout);
                assert.not.ok(chk.stdout.includes(toHex(keys.deploymentKey)), 'deployment key not shown');
                assert.not.ok(chk.stdout.includes(toHex(p.value.gateKey)), 'gate key not shown');
                assert.match(chk.stdout, /gateKeyId: 1/);
                assert.not.ok(chk.stdout.includes('s3cret'), 'password not shown');
              },
              async () => assert.is((JSON.parse((await cli(['provision', '--data', data, '--check', file, '--json'], 0)).stdout) as { gate: string }).gate, 'sl-out-t07'),
            ]),
        async () => {
          const g1 = join(data, 'g1.cbor');
          await cli(['provision', '--data', data, '--gate', 'fl-in-t01', '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', g1], 0);
          const d = decodeProvisioning(new Uint8Array(readFileSync(g1)));
          assert.ok(d.ok && Math.abs(d.value.journalEpoch - Date.now() / 1000) < 60, 'journal epoch defaults to now');
          assert.ok(d.ok && d.value.passbackSeconds === 0 && d.value.policy.stale === 'normal', "defaults: no passback, the first line's policy");
        },
      ];
      await parallel(jobs, 4, async (job) => {
        await job();
      });
      assert.not.ok(existsSync(other), 'no record written by a refused call');
      // Re-provisioning: the next key id, and the old record's key no longer matches; a refused write registers nothing.
      const again = await cli([...base, '--out', file, '--force'], 0);
      assert.match(again.stdout, /re-provisioned \(key id 2; records written before this one no longer work\)/);
      assert.match(again.stdout, /1 earlier certificate\(s\) of this gate revoked/);
      const p2 = decodeProvisioning(new Uint8Array(readFileSync(file)));
      assert.ok(p2.ok && p2.value.gateKeyId === 2 && !bytesEqual(p2.value.gateKey, p.value.gateKey));
      await cli([...base, '--out', file], 3, /already exists/);
      const listed = JSON.parse((await cli(['central', 'gates', '--data', data, '--json'], 0)).stdout) as { gates: { gate: string; identity: { state: string; keyId: number } | null; state: string }[] };
      assert.equal(listed.gates.map((g) => [g.gate, g.identity?.state, g.identity?.keyId, g.state]), [['fl-in-t01', 'active', 1, 'never seen'], ['sl-out-t07', 'active', 2, 'never seen']]);
      // Decommissioning ends the identity: listed as such, and it cannot be provisioned again.
      const dec = await cli(['central', 'gates', '--data', data, '--decommission', 'sl-out-t07'], 0);
      assert.match(dec.stdout, /gate sl-out-t07 decommissioned/);
      assert.match(dec.stdout, /1 TLS certificate\(s\) of sl-out-t07 revoked/, 'the current one (the earlier one was revoked at re-provisioning)');
      const issued = JSON.parse(readFileSync(join(data, 'pki', 'issued.json'), 'utf8')) as { cn: string; revokedAt?: string }[];
      assert.ok(issued.filter((c) => c.cn === 'sl-out-t07').every((c) => c.revokedAt !== undefined), 'every certificate of the gate is on the CRL');
      await cli(['central', 'gates', '--data', data, '--decommission', 'sl-out-t07'], 3, /already decommissioned/);
      await cli(['central', 'gates', '--data', data, '--decommission', 'nope'], 3, /not provisioned here/);
      await cli([...base, '--out', join(data, 'again.cbor')], 3, /decommissioned.*identity has ended/);
      assert.not.ok(existsSync(join(data, 'again.cbor')));
      // Operators' certificates, and the list of every certificate with its revocation.
      await cli(['central', 'certs', '--data', data, '--operator', 'alice'], 0);
      await cli(['central', 'certs', '--data', data, '--operator', 'alice'], 3, /already has a certificate/);
      await cli(['central', 'certs', '--data', data, '--operator', 'Alice'], 2, /--operator 'Alice'/);
      const certs = JSON.parse((await cli(['central', 'certs', '--data', data, '--json'], 0)).stdout) as { cn: string; role: string; revokedAt?: string }[];
      assert.equal(certs.filter((c) => c.role !== 'gate').map((c) => [c.cn, c.role]), [['subline.broker', 'broker'], ['subline.central', 'central'], ['subline.operator.alice', 'operator']]);
      assert.is(statSync(join(data, 'pki', 'operators', 'alice.key.pem')).mode & 0o777, 0o600);
      const table = (await cli(['central', 'gates', '--data', data], 0)).stdout;
      assert.match(table, /^sl-out-t07\s+decommissioned \(key 2\)\s+never seen/m);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  // The image format and --check of files: the same on both engines (SQLite only).
  sqliteOnly('--out FILE.bin writes the framed partition image (0600); --check reads a bare record, an image and a partition dump, and names a torn one', async () => {
    const data = tempDir();
    try {
      await cli(['central', 'init', '--data', data], 0);
      const bin = join(data, 'g-014.bin');
      const r = await cli(['provision', '--data', data, '--gate', 'g-014', '--site', 'park-1', '--line', 'second', '--direction', 'in', '--lane', 'person', '--broker', 'mqtt://10.1.0.5:1883', '--out', bin], 0);
      assert.match(r.stdout, /framed for the provision partition/);
      assert.is(statSync(bin).mode & 0o777, 0o600, 'the image holds the deployment key and the gate key');
      const image = new Uint8Array(readFileSync(bin));
      assert.equal([...image.subarray(0, 4)], [0x53, 0x47, 0x50, 0x31], 'SGP1');
      const dump = join(data, 'check.bin');
      const padded = new Uint8Array(0x10000).fill(0xff);
      padded.set(image);
      writeFileSync(dump, padded);
      for (const f of [bin, dump]) {
        const c = await cli(['provision', '--check', f, '--data', data, '--json'], 0);
        assert.is((JSON.parse(c.stdout) as { gate: string }).gate, 'g-014', f);
      }
      const torn = join(data, 'torn.bin');
      const t = image.slice();
      t[20] = (t[20] as number) ^ 1;
      writeFileSync(torn, t);
      await cli(['provision', '--check', torn], 2, /not a valid provisioning record: bad_crc/);
      // A reader that stops early (| head) is not an error: here the reader is gone before the first line.
      const args = await c.withDb(['provision', '--check', bin, '--data', data]);
      const head = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        child.on('close', (code) => resolve({ code, stderr }));
      });
      assert.is(head.code, 0, head.stderr);
      assert.not.match(head.stderr, /EPIPE|Unhandled/, head.stderr);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  prov('broker config: the ACL of the active gates of the database, re-run after provisioning and decommissioning', async () => {
    const data = tempDir();
    const out = join(data, 'mosquitto');
    try {
      await cli(['central', 'init', '--data', data], 0);
      const provision = (gate: string) => cli(['provision', '--data', data, '--gate', gate, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--out', join(data, `${gate}.cbor`)], 0);
      await Promise.all([provision('fl-in-t01'), provision('fl-in-t02')]);
      const first = JSON.parse((await cli(['broker', 'config', '--data', data, '--out', out, '--json'], 0)).stdout) as { gates: number };
      assert.is(first.gates, 2);
      const acl = (): string => readFileSync(join(out, 'acl'), 'utf8');
      assert.ok(acl().includes('user fl-in-t01\n') && acl().includes('user fl-in-t02\n'), acl());
      await cli(['central', 'gates', '--data', data, '--decommission', 'fl-in-t02'], 0);
      const again = await cli(['broker', 'config', '--data', data, '--out', out], 0);
      assert.match(again.stdout, /ACL for 1 active gate\(s\)/);
      assert.ok(acl().includes('user fl-in-t01\n') && !acl().includes('user fl-in-t02\n'), 'the decommissioned gate has left the ACL');
      assert.equal((await aclOfData(data, 'subline', await c.target(data))).identities().filter((i) => i.startsWith('fl-')), ['fl-in-t01']);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
}
// ---------------------------------------------------------------- against a broker
