// The MQTT client's socket for an mqtts:// broker: the SDK's ECMA-419 TLS
// socket (`embedded:io/socket/tcp/tls`, examples/io/tcp/tlssocket) over TCP,
// configured from the provisioning record's `tls` (docs/decisions/0014):
//   secure.certificate         the deployment CA (DER): the only trust anchor.
//                              The build carries no public CA store, so a broker
//                              certificate from any other CA is refused.
//   secure.clientCertificates  [the gate's certificate] (DER), sent when the
//                              broker asks (Mosquitto: require_certificate)
//   secure.clientKey           its RSA key, PKCS#8 DER (ssl/cert: PKCS8.parse)
//   secure.serverName          SNI, and the name the broker's subjectAltName
//                              must hold (ssl/cert verify(): dNSName or IPv4)
//   secure.verify              true (the default, stated)
//
// Why the wrappers: the TLS socket runs its handshake inside the TCP socket's
// callbacks, and ssl throws there (TLSError "certificate: auth err" for an
// untrusted broker, "alert: 2, 42" when the broker refuses the gate's
// certificate, "date validation failed" with a clock before the CA's
// validity). An exception out of a native socket callback aborts the machine
// (xsEndHost -> fxAbort(xsUnhandledExceptionExit)): the gate would reboot in
// a loop. GuardedTcp catches it, closes the TCP socket, names the cause
// (onFailure) and reports an error upwards, so the MQTT client fails the
// attempt and the sync engine retries with backoff. The same holds for the
// TLS socket's constructor (the CA is registered there and date-checked).

import type { ProvisioningRecord } from '../../protocol/provisioning.js';

/** Why a TLS connection attempt failed (the key byte of AlarmCode.link_failed records). */
export const LinkFailure = {
  /** mqtts:// but the provisioning record has no `tls` (cert, key, CA). */
  no_certificate: 1,
  /** The record's certificate, key or CA is not DER (a corrupt record). */
  bad_certificate: 2,
  /** The broker's certificate does not chain to the deployment CA or does not name the broker host. */
  server_untrusted: 3,
  /** The broker sent a TLS alert: it refused the gate's certificate (revoked, other CA, expired). */
  refused_by_broker: 4,
  /** A certificate is outside its validity at the gate's clock (an unset clock reads 1970). */
  certificate_dates: 5,
  /** Any other failure during the handshake (the connection closed, a protocol error). */
  handshake_failed: 6,
} as const;
export type LinkFailureName = keyof typeof LinkFailure;

export interface LinkFailureReport {
  readonly code: LinkFailureName;
  /** The library's own words (the exception message), for the console. */
  readonly detail: string;
}

/** Maps an exception from ssl (or the TLS socket) to a failure code. */
export function classifyTlsError(e: unknown): LinkFailureReport {
  const detail = e instanceof Error ? e.message : String(e);
  if (detail.startsWith('certificate: auth err')) return { code: 'server_untrusted', detail };
  // ssl/alert: "alert: <level>, <description>" for every alert but close_notify.
  if (detail.startsWith('alert:')) return { code: 'refused_by_broker', detail };
  if (detail.includes('date validation')) return { code: 'certificate_dates', detail };
  // ssl/cert looks in the build's CA store ("ca.ski") for a chain that does not
  // end at the registered CA; the gate's build has no store, so this is an untrusted broker.
  if (detail.startsWith('Resource not found: ca')) return { code: 'server_untrusted', detail };
  return { code: 'handshake_failed', detail };
}

type Callback = (...args: unknown[]) => unknown;
interface SocketLike {
  format?: unknown;
  read(...args: unknown[]): unknown;
  write(...args: unknown[]): unknown;
  close(): void;
}
/** One connection attempt: a failure is named once, by whoever sees it first. */
interface Attempt {
  reported: boolean;
}
type SocketClass = new (options: Record<string, unknown>) => SocketLike;

export interface TlsSocketOptions {
  /** The SDK's TLS socket class (Modules.importNow('embedded:io/socket/tcp/tls')). */
  readonly TLSSocket: unknown;
  /** The TCP socket class (embedded:io/socket/tcp). */
  readonly TCP: unknown;
  readonly tls: ProvisioningRecord['tls'];
  /** The broker's host as provisioned: SNI and the name its certificate must carry. */
  readonly serverName: string;
  /** The cause of a failed attempt, before the client sees the error. */
  readonly onFailure?: (failure: LinkFailureReport) => void;
  /** Called once per connection when the TLS handshake has completed, with its duration. */
  readonly onHandshake?: (ms: number) => void;
  /** Monotonic milliseconds (Time.ticks on the device). */
  readonly now: () => number;
}

export type TlsSocketConfig = { readonly ok: true; readonly socket: { readonly io: unknown } & Readonly<Record<string, unknown>> } | { readonly ok: false; readonly failure: LinkFailureReport };

/** DER: a SEQUENCE with a definite length that covers the bytes exactly. */
export function isDerSequence(b: Uint8Array): boolean {
  if (b.length < 2 || b[0] !== 0x30) return false;
  const first = b[1] as number;
  if (first < 0x80) return 2 + first === b.length;
  const n = first & 0x7f;
  if (n === 0 || n > 3 || b.length < 2 + n) return false;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (b[2 + i] as number);
  return 2 + n + len === b.length;
}

function copy(b: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(b.length);
  new Uint8Array(out).set(b);
  return out;
}

/**
 * The `socket` option of the MQTT client for an mqtts:// broker, or why there
 * is none. Nothing is opened here.
 */
export function tlsSocketConfig(o: TlsSocketOptions): TlsSocketConfig {
  const tls = o.tls;
  if (tls === undefined) return { ok: false, failure: { code: 'no_certificate', detail: 'the provisioning record has no tls certificate, key and CA' } };
  for (const [name, der] of [['cert', tls.cert], ['key', tls.key], ['ca', tls.ca]] as const) {
    if (!isDerSequence(der)) return { ok: false, failure: { code: 'bad_certificate', detail: `the provisioning record's tls.${name} is not DER` } };
  }
  const secure = {
    certificate: copy(tls.ca),
    clientCertificates: [copy(tls.cert)],
    clientKey: copy(tls.key),
    serverName: o.serverName,
    verify: true,
  };
  const TLS = o.TLSSocket as SocketClass;
  const Tcp = o.TCP as SocketClass;
  const report = (e: unknown): void => o.onFailure?.(classifyTlsError(e));

  /** The TCP socket under the TLS socket, with the TLS socket's callbacks guarded. */
  class GuardedTcp {
    // The TLS socket keeps its own counts here (tlssocket.js sets and reads them).
    readable = 0;
    writable = 0;
    #tcp: SocketLike | undefined;
    #failed = false;
    readonly #onError: Callback | undefined;

    readonly #attempt: Attempt;

    constructor(options: Record<string, unknown>) {
      this.#attempt = options.attempt as Attempt;
      const onReadable = options.onReadable as Callback | undefined;
      const onWritable = options.onWritable as Callback | undefined;
      this.#onError = options.onError as Callback | undefined;
      this.#tcp = new Tcp({
        ...options,
        onReadable: (n: number) => this.#run(() => onReadable?.(n)),
        onWritable: (n: number) => this.#run(() => onWritable?.(n)),
        onError: () => this.#run(() => this.#onError?.()),
      });
    }
    read(...args: unknown[]): unknown {
      return this.#tcp?.read(...args);
    }
    write(...args: unknown[]): unknown {
      if (this.#tcp === undefined) throw new Error('closed');
      return this.#tcp.write(...args);
    }
    close(): void {
      const t = this.#tcp;
      this.#tcp = undefined;
      t?.close();
    }
    #run(f: () => void): void {
      if (this.#failed) return;
      try {
        f();
      } catch (e) {
        this.#failed = true;
        this.#attempt.reported = true;
        report(e);
        try {
          this.close();
        } catch {
          // already closed
        }
        try {
          this.#onError?.();
        } catch {
          // the client closes itself on error; nothing may escape into the native callback
        }
      }
    }
  }

  /** The TLS socket, timing its handshake and naming a failure that arrives as a plain error. */
  class GateTlsSocket {
    readonly #tls: SocketLike;
    #handshaken = false;
    readonly #attempt: Attempt = { reported: false };

    constructor(options: Record<string, unknown>) {
      const started = o.now();
      const onWritable = options.onWritable as Callback | undefined;
      const onError = options.onError as Callback | undefined;
      try {
        this.#tls = new TLS({
          ...options,
          TCP: { io: GuardedTcp },
          attempt: this.#attempt, // passed on to GuardedTcp (the TLS socket spreads its options into the TCP's)
          secure,
          onWritable: (n: number) => {
            // The TLS socket reports writable upwards only once its handshake is done.
            if (!this.#handshaken) {
              this.#handshaken = true;
              o.onHandshake?.(o.now() - started);
            }
            return onWritable?.(n);
          },
          onError: () => {
            // A close during the handshake with no exception: the broker hung up on us.
            if (!this.#handshaken && !this.#attempt.reported) {
              this.#attempt.reported = true;
              o.onFailure?.({ code: 'handshake_failed', detail: 'the connection closed during the TLS handshake' });
            }
            return onError?.();
          },
        });
      } catch (e) {
        this.#attempt.reported = true;
        report(e);
        throw e;
      }
    }
    read(...args: unknown[]): unknown {
      return this.#tls.read(...args);
    }
    write(...args: unknown[]): unknown {
      return this.#tls.write(...args);
    }
    close(): void {
      this.#tls.close();
    }
    // The MQTT client switches between "number" (packet headers) and "buffer" (payloads).
    get format(): unknown {
      return this.#tls.format;
    }
    set format(f: unknown) {
      this.#tls.format = f;
    }
  }

  return { ok: true, socket: { io: GateTlsSocket } };
}

/**
 * The socket for an mqtts:// broker that cannot be configured (no or corrupt
 * certificate in the record): every connection attempt names the failure and
 * fails, so the gate keeps deciding offline, alarms, and retries with backoff
 * (a reprovisioned record needs a reboot anyway; retrying costs nothing).
 */
export function failingSocket(failure: LinkFailureReport, onFailure?: (failure: LinkFailureReport) => void): { readonly io: unknown } {
  class NoTlsSocket {
    constructor() {
      onFailure?.(failure);
      throw new Error(failure.detail);
    }
  }
  return { io: NoTlsSocket };
}

/**
 * Journals a link failure as AlarmCode.link_failed at most once per code per
 * `intervalMs` (default 10 minutes of the monotonic clock): a broker that
 * refuses the gate is retried every 30 s and must not fill the journal.
 */
export class LinkFailureAlarms {
  readonly #last = new Map<number, number>();
  readonly #now: () => number;
  readonly #raise: (key: Uint8Array) => void;
  readonly #intervalMs: number;

  constructor(o: { readonly now: () => number; readonly raise: (key: Uint8Array) => void; readonly intervalMs?: number }) {
    this.#now = o.now;
    this.#raise = o.raise;
    this.#intervalMs = o.intervalMs ?? 600_000;
  }

  /** True when an alarm was raised for this failure. */
  report(failure: LinkFailureReport): boolean {
    const code = LinkFailure[failure.code];
    const now = this.#now();
    const last = this.#last.get(code);
    if (last !== undefined && now - last < this.#intervalMs) return false;
    this.#last.set(code, now);
    const key = new Uint8Array(8);
    key[0] = code;
    this.#raise(key);
    return true;
  }
}
