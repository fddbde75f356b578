// Guest shim for `embedded:network/mqtt/client`: the ECMA-419 MQTT 3.1.1
// client with the shape of the SDK's implementation
// (examples/io/tcp/mqttclient/mqttclient.js, read at commit 48ee02d), as
// firmware/moddable/mqtt-net.ts uses it. The packets themselves are not
// encoded here: each operation is handed to the Node side (an MQTT.js
// connection per client, ../mqtt-bridge.ts), and what the broker sends comes
// back as events. Like the SDK client it does nothing on its own: no
// reconnect, no resubscribe, no resend; a lost connection is reported once
// through onError and the client is closed.
//
// Kept from the SDK client:
//   - the constructor resolves `host` through `new options.dns.io(options.dns)`
//     (the firmware's NetResolver), then "opens the socket"; it needs an IP
//     address (Wi-Fi up) like the device; 30 s without CONNACK -> onError;
//   - onControl(msg) with ONE argument {operation, ...}: CONNACK (then
//     onWritable), PUBACK {id}, SUBACK {id, payload: [codes]}; a refused
//     CONNACK is an onError;
//   - onReadable(count, {topic, QoS, byteLength, more}) per fragment (here at
//     most 1460 bytes, one TCP segment), topic and byteLength on the first
//     only; read(count) returns an ArrayBuffer; the next fragment comes only
//     once this one was read;
//   - write(data, {topic, QoS, retain, id, byteLength}) publishes, returns the
//     writable space minus 8; "overflow" when the packet does not fit the
//     socket's free space (5744 bytes, lwIP's default send buffer, freed on
//     the next turn as if acknowledged); byteLength > data.byteLength starts
//     a fragmented publish continued by write(data) WITHOUT options;
//     write(_, {operation: SUBSCRIBE, items}) subscribes; any write while not
//     connected throws;
//   - close() sends nothing (no DISCONNECT): the broker publishes the will.

import { blob, clock, emit, later, net, type VTimer } from './runtime.js';
import { hasIP } from './wifi.js';
import type { InEvent } from '../protocol.js';

const OVERHEAD = 8;
const SOCKET_BUFFER = 5744;
const FRAGMENT = 1460;
const CONNECT_TIMEOUT_MS = 30_000;

type State = 'resolving' | 'connecting' | 'connected' | 'publishing' | 'closed';

interface ReadInfo {
  more: boolean;
  topic?: string;
  QoS?: number;
  byteLength?: number;
}

interface Options {
  readonly host: string;
  readonly port?: number;
  readonly id?: string;
  readonly clean?: boolean;
  readonly keepAlive?: number;
  readonly user?: string;
  readonly password?: string | ArrayBuffer;
  readonly will?: { readonly topic?: string; readonly message?: string | ArrayBuffer; readonly QoS?: number; readonly retain?: boolean };
  readonly dns: { readonly io: new (o: unknown) => { resolve(r: { host: string; onResolved: (host: string, address: string) => void; onError: (host: string) => void }): void } };
  readonly socket: Readonly<Record<string, unknown>>;
  readonly onReadable?: (count: number, info: ReadInfo) => void;
  readonly onWritable?: (count: number) => void;
  readonly onControl?: (msg: unknown) => void;
  readonly onError?: (error?: unknown) => void;
  readonly onClose?: () => void;
}

interface WriteOptions {
  readonly operation?: number;
  readonly id?: number;
  readonly topic?: string;
  readonly QoS?: number;
  readonly retain?: boolean;
  readonly byteLength?: number;
  readonly items?: readonly { readonly topic: string; readonly QoS?: number }[];
}

interface Inbound {
  readonly topic: string;
  readonly qos: number;
  readonly data: Uint8Array;
  at: number;
}

const te = new TextEncoder();

function bytesOf(v: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof v === 'string') return te.encode(v);
  if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
}

function remainingLengthBytes(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

export default class MQTTClient {
  static readonly CONNECT = 1;
  static readonly CONNACK = 2;
  static readonly PUBLISH = 3;
  static readonly PUBACK = 4;
  static readonly PUBREC = 5;
  static readonly PUBREL = 6;
  static readonly PUBCOMP = 7;
  static readonly SUBSCRIBE = 8;
  static readonly SUBACK = 9;
  static readonly UNSUBSCRIBE = 10;
  static readonly UNSUBACK = 11;
  static readonly PINGREQ = 12;
  static readonly PINGRESP = 13;
  static readonly DISCONNECT = 14;

  readonly #conn: number;
  readonly #o: Options;
  #state: State = 'resolving';
  #sentConnect = false;
  #writable = 0;
  #id = 1;
  #connecting: VTimer | null = null;
  #drain: VTimer | null = null;
  #pump: VTimer | null = null;
  /** The fragmented publish being written. */
  #publishing: { topic: string; qos: number; retain: boolean; id: number; data: Uint8Array; at: number } | null = null;
  readonly #inbox: Inbound[] = [];
  /** Unread bytes of the fragment last offered through onReadable. */
  #payload: Uint8Array | null = null;

  constructor(options: Options) {
    if (typeof options?.host !== 'string' || options.host === '') throw new Error('host required');
    this.#o = options;
    this.#conn = net.nextConn++;
    net.clients.set(this.#conn, { deliver: (e, blobs) => this.#deliver(e, blobs) });
    const dns = new options.dns.io(options.dns);
    dns.resolve({
      host: options.host,
      onResolved: (_host, address) => this.#open(address),
      onError: () => this.#error('DNS lookup failed'),
    });
  }

  get format(): string {
    return 'buffer';
  }
  set format(v: string) {
    if (v !== 'buffer') throw new RangeError('invalid format');
  }

  write(data: ArrayBuffer | ArrayBufferView | null, options?: WriteOptions): number {
    const bytes = data === null ? new Uint8Array(0) : data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (this.#state === 'publishing') {
      const p = this.#publishing;
      if (p === null || options !== undefined || bytes.length > p.data.length - p.at) throw new Error();
      p.data.set(bytes, p.at);
      p.at += bytes.length;
      this.#use(bytes.length);
      if (p.at === p.data.length) {
        this.#publishing = null;
        this.#state = 'connected';
        this.#emitPublish(p.topic, p.data, p.qos, p.retain, p.id);
      }
      return this.#space();
    }
    if (this.#state !== 'connected' || options === undefined) throw new Error();
    const id = options.id ?? ++this.#id;
    const operation = options.operation ?? MQTTClient.PUBLISH;
    switch (operation) {
      case MQTTClient.PUBLISH: {
        const qos = options.QoS ?? 0;
        const byteLength = options.byteLength ?? bytes.length;
        if (bytes.length > byteLength) throw new Error('invalid');
        const topic = te.encode(options.topic ?? '');
        const payload = topic.length + 2 + byteLength + (qos !== 0 ? 2 : 0);
        const length = 1 + remainingLengthBytes(payload) + topic.length + 2 + bytes.length + (qos !== 0 ? 2 : 0);
        if (length > this.#writable) throw new Error('overflow');
        this.#use(length);
        if (bytes.length < byteLength) {
          const whole = new Uint8Array(byteLength);
          whole.set(bytes);
          this.#publishing = { topic: options.topic ?? '', qos, retain: options.retain === true, id, data: whole, at: bytes.length };
          this.#state = 'publishing';
        } else this.#emitPublish(options.topic ?? '', bytes.slice(), qos, options.retain === true, id);
        return this.#space();
      }
      case MQTTClient.SUBSCRIBE: {
        const items = options.items ?? [];
        let payload = 2 + items.length;
        for (const it of items) payload += te.encode(it.topic).length + 2;
        const length = 1 + remainingLengthBytes(payload) + payload;
        if (length > this.#writable) throw new Error('overflow');
        this.#use(length);
        emit({ op: 'subscribe', conn: this.#conn, id, items: items.map((it) => ({ topic: it.topic, qos: (it.QoS ?? 0) & 3 })) });
        return this.#space();
      }
      case MQTTClient.PINGREQ:
        // The Node side's MQTT.js connection keeps the session alive itself.
        return this.#space();
      default:
        throw new Error(`operation ${operation} is not simulated`);
    }
  }

  read(count?: number): ArrayBuffer | undefined {
    const p = this.#payload;
    if (p === null || p.length === 0) return undefined;
    const n = Math.min(count ?? p.length, p.length);
    const out = p.slice(0, n);
    this.#payload = n === p.length ? null : p.subarray(n);
    if (this.#payload === null) this.#schedulePump();
    return out.buffer;
  }

  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const t of [this.#connecting, this.#drain, this.#pump]) if (t !== null) clock.cancel(t);
    this.#connecting = this.#drain = this.#pump = null;
    this.#payload = null;
    this.#inbox.length = 0;
    this.#publishing = null;
    net.clients.delete(this.#conn);
    if (this.#sentConnect) emit({ op: 'close', conn: this.#conn });
  }

  // ---- connection ----

  #open(address: string): void {
    if (this.#state !== 'resolving') return;
    if (!hasIP()) {
      // The TCP connect fails without a network (lwIP: no route).
      later('mqtt socket error', () => this.#error('no IP address'));
      return;
    }
    this.#state = 'connecting';
    const o = this.#o;
    const will = o.will;
    const hasWill = will !== undefined && typeof will.topic === 'string' && will.topic !== '' && will.message !== undefined;
    emit({
      op: 'connect',
      conn: this.#conn,
      host: address,
      port: o.port ?? 1883,
      clientId: o.id ?? '',
      clean: o.clean ?? true,
      keepAliveMs: o.keepAlive ?? 0,
      ...(o.user !== undefined && o.user !== '' ? { user: o.user } : {}),
      ...(o.password !== undefined ? { password: blob(bytesOf(o.password)) } : {}),
      ...(hasWill ? { will: { topic: will.topic, message: blob(bytesOf(will.message)), qos: (will.QoS ?? 0) & 3, retain: will.retain === true } } : {}),
    });
    this.#sentConnect = true;
    this.#connecting = later('mqtt connect timeout', () => {
      this.#connecting = null;
      this.#error('connect timed out');
    }, CONNECT_TIMEOUT_MS);
  }

  #deliver(e: InEvent, blobs: readonly Uint8Array[]): void {
    if (this.#state === 'closed') return;
    switch (e.ev) {
      case 'connack':
        if (this.#state !== 'connecting') return;
        if (this.#connecting !== null) clock.cancel(this.#connecting);
        this.#connecting = null;
        if (!e.ok) return this.#error('connection rejected');
        this.#state = 'connected';
        this.#writable = SOCKET_BUFFER;
        this.#o.onControl?.call(this, { operation: MQTTClient.CONNACK, returnCode: 0 });
        if (this.#state === 'connected') this.#o.onWritable?.call(this, this.#space());
        return;
      case 'puback':
        this.#o.onControl?.call(this, { operation: MQTTClient.PUBACK, id: e.id });
        return;
      case 'suback':
        this.#o.onControl?.call(this, { operation: MQTTClient.SUBACK, id: e.id, payload: e.codes.slice() });
        return;
      case 'message': {
        const data = blobs[e.blob];
        if (data === undefined) return;
        this.#inbox.push({ topic: e.topic, qos: e.qos, data, at: 0 });
        this.#schedulePump();
        return;
      }
      case 'lost':
        this.#error(e.why);
        return;
      default:
        return;
    }
  }

  #error(why: string): void {
    if (this.#state === 'closed') return;
    trace(`mqttClient error: ${why}\n`);
    this.#o.onError?.call(this);
    this.close();
  }

  // ---- reading ----

  #schedulePump(): void {
    if (this.#pump !== null || this.#state === 'closed') return;
    this.#pump = later('mqtt onReadable', () => {
      this.#pump = null;
      this.#offer();
    });
  }

  /** Offers the next fragment, if the previous one was read. */
  #offer(): void {
    if (this.#state === 'closed' || this.#payload !== null) return;
    const m = this.#inbox[0];
    if (m === undefined) return;
    const first = m.at === 0;
    const n = Math.min(FRAGMENT, m.data.length - m.at);
    const fragment = m.data.subarray(m.at, m.at + n);
    m.at += n;
    const more = m.at < m.data.length;
    if (!more) this.#inbox.shift();
    this.#payload = fragment.length > 0 ? fragment : null;
    const info: ReadInfo = first ? { topic: m.topic, byteLength: m.data.length, QoS: m.qos, more } : { more };
    this.#o.onReadable?.call(this, n, info);
    if (this.#payload === null && this.#inbox.length > 0) this.#schedulePump();
  }

  // ---- writing ----

  #emitPublish(topic: string, data: Uint8Array, qos: number, retain: boolean, id: number): void {
    emit({ op: 'publish', conn: this.#conn, topic, blob: blob(data), qos: qos & 3, retain, id });
  }

  #space(): number {
    return this.#writable > OVERHEAD ? this.#writable - OVERHEAD : 0;
  }

  /** The bytes are in the socket's send buffer; the broker "acknowledges" them on the next turn. */
  #use(bytes: number): void {
    this.#writable = Math.max(0, this.#writable - bytes);
    if (this.#drain !== null) return;
    this.#drain = later('mqtt onWritable', () => {
      this.#drain = null;
      if (this.#state !== 'connected' && this.#state !== 'publishing') return;
      this.#writable = SOCKET_BUFFER;
      this.#o.onWritable?.call(this, this.#space());
    });
  }
}

declare function trace(...args: unknown[]): void;
