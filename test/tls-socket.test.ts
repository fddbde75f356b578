// firmware/moddable/tls-socket.ts on Node: the parts that decide what the gate
// does when TLS fails (the real handshake runs on the SDK's XS in
// test/device-tls.test.ts). The socket classes given to it here only record
// calls and throw where ssl throws: inside the TCP callbacks and the TLS
// socket's constructor, which on the device would abort the machine.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyTlsError, failingSocket, isDerSequence, LinkFailure, LinkFailureAlarms, tlsSocketConfig, type LinkFailureReport } from '../firmware/moddable/tls-socket.js';

const t = suite('tls-socket: the gate TLS socket configuration and its failures');

const der = (n: number): Uint8Array => {
  const body = new Uint8Array(n).fill(7);
  if (n < 128) return new Uint8Array([0x30, n, ...body]);
  return new Uint8Array([0x30, 0x82, n >> 8, n & 0xff, ...body]);
};
const tls = { cert: der(300), key: der(1200), ca: der(90) };

t('DER sequences: the length must cover the bytes exactly', () => {
  assert.ok(isDerSequence(der(5)));
  assert.ok(isDerSequence(der(1200)));
  assert.not.ok(isDerSequence(new Uint8Array([0x30, 3, 1, 2])), 'short');
  assert.not.ok(isDerSequence(new Uint8Array([0x04, 1, 0])), 'not a SEQUENCE');
  assert.not.ok(isDerSequence(new TextEncoder().encode('-----BEGIN CERTIFICATE-----')), 'PEM');
});

t('ssl exceptions map to failure codes', () => {
  assert.is(classifyTlsError(new Error('certificate: auth err')).code, 'server_untrusted');
  assert.is(classifyTlsError(new Error('Resource not found: ca.ski')).code, 'server_untrusted');
  assert.is(classifyTlsError(new Error('alert: 2, 42')).code, 'refused_by_broker');
  assert.is(classifyTlsError(new Error('date validation failed')).code, 'certificate_dates');
  assert.is(classifyTlsError(new Error('invalid buffer')).code, 'handshake_failed');
  assert.is(classifyTlsError('x').detail, 'x');
});

t('no or corrupt certificate: no socket, a named failure', () => {
  const none = tlsSocketConfig({ TLSSocket: null, TCP: null, tls: undefined, serverName: 'b', now: () => 0 });
  assert.equal(none.ok ? null : none.failure.code, 'no_certificate');
  const bad = tlsSocketConfig({ TLSSocket: null, TCP: null, tls: { ...tls, key: new Uint8Array([1, 2, 3]) }, serverName: 'b', now: () => 0 });
  assert.equal(bad.ok ? null : bad.failure.detail, "the provisioning record's tls.key is not DER");
  const seen: LinkFailureReport[] = [];
  const s = failingSocket({ code: 'no_certificate', detail: 'none' }, (f) => seen.push(f));
  const Io = s.io as new () => unknown;
  assert.throws(() => new Io(), /none/);
  assert.equal(seen, [{ code: 'no_certificate', detail: 'none' }]);
});

interface Opened {
  options: Record<string, unknown>;
  closed: boolean;
}

t('the TLS socket gets the CA, the client certificate and key, the server name; a throw in a TCP callback becomes a named error', () => {
  const tcps: Opened[] = [];
  class FakeTcp {
    readonly o: Opened;
    constructor(options: Record<string, unknown>) {
      this.o = { options, closed: false };
      tcps.push(this.o);
    }
    read(): undefined {
      return undefined;
    }
    write(): number {
      return 0;
    }
    close(): void {
      this.o.closed = true;
    }
  }
  let tlsOptions: Record<string, unknown> = {};
  // Like tlssocket.js: builds the TCP socket from options.TCP.io with its own callbacks, and throws from ssl inside them.
  class FakeTls {
    readonly tcp: { close(): void };
    constructor(options: Record<string, unknown>) {
      tlsOptions = options;
      const Io = (options.TCP as { io: new (o: Record<string, unknown>) => { close(): void } }).io;
      this.tcp = new Io({
        ...options,
        onReadable: () => {
          throw new Error('certificate: auth err');
        },
        onWritable: () => (options.onWritable as (n: number) => void)(100),
        onError: () => (options.onError as () => void)(),
      });
    }
    read(): undefined {
      return undefined;
    }
    write(): number {
      return 0;
    }
    close(): void {
      this.tcp.close();
    }
  }
  const failures: LinkFailureReport[] = [];
  const handshakes: number[] = [];
  let clock = 1000;
  const c = tlsSocketConfig({ TLSSocket: FakeTls, TCP: FakeTcp, tls, serverName: 'broker.lan', now: () => clock, onFailure: (f) => failures.push(f), onHandshake: (ms) => handshakes.push(ms) });
  assert.ok(c.ok);
  if (!c.ok) return;
  const Socket = c.socket.io as new (o: Record<string, unknown>) => unknown;
  let errors = 0;
  let writable = 0;
  new Socket({ address: '10.0.0.1', port: 8883, onWritable: (n: number) => (writable = n), onError: () => errors++ });
  const secure = tlsOptions.secure as Record<string, unknown>;
  assert.equal(new Uint8Array(secure.certificate as ArrayBuffer), tls.ca);
  assert.equal(new Uint8Array((secure.clientCertificates as ArrayBuffer[])[0] as ArrayBuffer), tls.cert);
  assert.equal(new Uint8Array(secure.clientKey as ArrayBuffer), tls.key);
  assert.is(secure.serverName, 'broker.lan');
  assert.is(secure.verify, true);

  const tcp = tcps[0] as Opened;
  clock = 1250;
  (tcp.options.onWritable as (n: number) => void)(100); // the TLS socket reports writable: the handshake is done
  assert.equal(handshakes, [250]);
  assert.is(writable, 100);
  // ssl throws inside the TCP socket's readable callback: nothing escapes, the TCP socket is closed, one error upwards.
  (tcp.options.onReadable as (n: number) => void)(5);
  assert.equal(failures.map((f) => f.code), ['server_untrusted']);
  assert.ok(tcp.closed, 'the TCP socket is closed');
  assert.is(errors, 1);
  (tcp.options.onReadable as (n: number) => void)(5);
  assert.is(errors, 1, 'a failed socket reports nothing more');
});

t('a close during the handshake is a named failure; the constructor throwing is named and rethrown', () => {
  class QuietTcp {
    constructor(readonly options: Record<string, unknown>) {}
    close(): void {}
  }
  let last: Record<string, unknown> = {};
  class ClosingTls {
    constructor(options: Record<string, unknown>) {
      last = options;
    }
  }
  const failures: string[] = [];
  const c = tlsSocketConfig({ TLSSocket: ClosingTls, TCP: QuietTcp, tls, serverName: 'b', now: () => 0, onFailure: (f) => failures.push(f.code) });
  if (!c.ok) return assert.unreachable();
  const Socket = c.socket.io as new (o: Record<string, unknown>) => unknown;
  new Socket({ onError: () => {} });
  (last.onError as () => void)();
  assert.equal(failures, ['handshake_failed']);

  class ThrowingTls {
    constructor() {
      throw new Error('date validation failed');
    }
  }
  const d = tlsSocketConfig({ TLSSocket: ThrowingTls, TCP: QuietTcp, tls, serverName: 'b', now: () => 0, onFailure: (f) => failures.push(f.code) });
  if (!d.ok) return assert.unreachable();
  const S2 = d.socket.io as new (o: Record<string, unknown>) => unknown;
  assert.throws(() => new S2({}), /date validation/);
  assert.equal(failures, ['handshake_failed', 'certificate_dates']);
});

t('link failures are journaled once per code per 10 minutes, the code in key[0]', () => {
  let now = 0;
  const keys: number[][] = [];
  const a = new LinkFailureAlarms({ now: () => now, raise: (k) => keys.push([...k]) });
  assert.ok(a.report({ code: 'server_untrusted', detail: '' }));
  now = 30_000;
  assert.not.ok(a.report({ code: 'server_untrusted', detail: '' }), 'retries within 10 minutes are not journaled');
  assert.ok(a.report({ code: 'refused_by_broker', detail: '' }), 'another code is');
  now = 600_001;
  assert.ok(a.report({ code: 'server_untrusted', detail: '' }));
  assert.equal(keys, [[LinkFailure.server_untrusted, 0, 0, 0, 0, 0, 0, 0], [LinkFailure.refused_by_broker, 0, 0, 0, 0, 0, 0, 0], [LinkFailure.server_untrusted, 0, 0, 0, 0, 0, 0, 0]]);
});

t.run();
