// The Net port on the ECMA-419 MQTT 3.1.1 client, `embedded:network/mqtt/client`
// (the SDK's implementation: examples/io/tcp/mqttclient/mqttclient.js). That
// client supports QoS 1 both ways: it sends PUBACK for incoming QoS 1
// messages itself and reports the broker's PUBACK for ours through onControl.
// (The classic `mqtt` module, modules/network/mqtt, publishes at QoS 0 only,
// which is why it is not used.)
//
// Like the host adapter (host-sim/adapters/mqtt-net.ts), this one does
// nothing on its own: no reconnect, no resubscribe, no resend. One client per
// connect() with a clean session; when it fails or drops, onConnectionChange
// (false) is reported once and the core (firmware/core/sync-engine.ts)
// decides when to try again.
//
// What the client does, read from its source:
//   - constructor: resolves `host` with `new dns.io(dns).resolve(...)`, then
//     opens `new socket.io({...socket, address, host, port, onReadable,
//     onWritable, onError})`; gives up after 30 s connecting.
//   - onControl(msg) is called with ONE argument {operation, id, ...}
//     (#parsed: `onControl.call(this, msg)`); the typings declare
//     (opcode, message), so the handler accepts both shapes.
//   - onReadable(count, {topic, QoS, byteLength, more}): topic and
//     byteLength (the whole payload) only on a message's first fragment;
//     read(count) returns an ArrayBuffer.
//   - write(data, {topic, QoS, retain, id, byteLength}) publishes; it throws
//     "overflow" when the packet does not fit the socket's free space. With
//     byteLength > data.byteLength the rest follows in later write(data)
//     calls *without* options, as onWritable(count) allows.
//   - write(_, {operation: SUBSCRIBE, items: [{topic, QoS}]}) subscribes.
//   - will.message and password go through makeStringBuffer: an ArrayBuffer
//     is sent as bytes, anything else is turned into a string first, so
//     binary values are passed as ArrayBuffers.
//   - onError() on DNS failure, connect timeout, refused CONNACK, keepalive
//     timeout or a socket error; the client closes itself afterwards.
//     (onClose is accepted but never called by the current source.)

import MQTTClient from 'embedded:network/mqtt/client';
import Timer from 'timer';
import type { Net, NetConnectOptions } from '../ports.js';

export interface MqttNetOptions {
  readonly host: string;
  readonly port: number;
  /** Used when connect() gives none (the sync engine does not pass credentials). */
  readonly username?: string;
  readonly password?: Uint8Array;
  /** The client's DNS "io" and its options, e.g. { io: NetResolver }. */
  readonly dns: { readonly io: unknown } & Readonly<Record<string, unknown>>;
  /** The socket "io" and its options: { io: TCP } or { io: TLSSocket, TCP: { io: TCP }, secure: {...} }. */
  readonly socket: { readonly io: unknown } & Readonly<Record<string, unknown>>;
  /** Incoming messages larger than this are read and dropped (default 70 KiB: the largest manifest). */
  readonly maxMessageBytes?: number;
  /** No CONNACK within this after connect() counts as a failed attempt (default 20 s). */
  readonly connectTimeoutMs?: number;
  /** QoS of every subscription (default 1). */
  readonly subscribeQoS?: 0 | 1;
  /** Diagnostics (e.g. trace). */
  readonly log?: (message: string) => void;
}

export interface MqttNetStats {
  connects: number;
  drops: number;
  published: number;
  fragmented: number;
  busy: number;
  received: number;
  oversize: number;
  subscribeRefused: number;
  callbackErrors: number;
}

interface Inbound {
  readonly topic: string;
  readonly buf: Uint8Array | null; // null: too large, being skipped
  at: number;
}

interface ControlMessage {
  readonly operation: number;
  readonly id?: number;
  readonly payload?: ArrayLike<number>;
}

type Client = MQTTClient;

/** Packet header room for a PUBLISH: type, up to 4 length bytes, topic length, packet id. */
const PUBLISH_OVERHEAD = 1 + 4 + 2 + 2;
const EMPTY = new Uint8Array(0);

export class MqttNet implements Net {
  readonly stats: MqttNetStats = { connects: 0, drops: 0, published: 0, fragmented: 0, busy: 0, received: 0, oversize: 0, subscribeRefused: 0, callbackErrors: 0 };
  readonly #o: MqttNetOptions;
  readonly #max: number;
  #client: Client | null = null;
  #up = false;
  #connectTimer: Timer | null = null;
  /** Socket space the client last reported (0 until the first onWritable after CONNACK). */
  #writable = 0;
  #nextId = 1;
  #inbound: Inbound | null = null;
  /** The rest of a publish that did not fit in one write. */
  #tail: { readonly data: Uint8Array; at: number } | null = null;
  /** Subscriptions waiting for socket space. */
  #subscribeQueue: string[] = [];
  #onMessage: (topic: string, payload: Uint8Array) => void = () => {};
  #onPublished: (id: number) => void = () => {};
  #onConnection: (up: boolean) => void = () => {};

  constructor(options: MqttNetOptions) {
    this.#o = options;
    this.#max = options.maxMessageBytes ?? 70 * 1024;
  }

  get connected(): boolean {
    return this.#up;
  }

  onMessage(callback: (topic: string, payload: Uint8Array) => void): void {
    this.#onMessage = callback;
  }
  onPublished(callback: (packetId: number) => void): void {
    this.#onPublished = callback;
  }
  onConnectionChange(callback: (connected: boolean) => void): void {
    this.#onConnection = callback;
  }

  connect(o: NetConnectOptions): void {
    this.#drop();
    const username = o.username ?? this.#o.username;
    const password = o.password ?? this.#o.password;
    let client: Client | null = null;
    const self = (): Client | null => client;
    try {
      client = new MQTTClient({
        host: this.#o.host,
        port: this.#o.port,
        id: o.clientId,
        clean: true,
        keepAlive: o.keepAliveSeconds * 1000, // milliseconds (the client rounds up to seconds)
        ...(username !== undefined ? { user: username } : {}),
        // Typed as string; an ArrayBuffer goes out byte for byte (makeStringBuffer).
        ...(password !== undefined ? { password: copyBuffer(password) as unknown as string } : {}),
        will: { topic: o.will.topic, message: copyBuffer(o.will.payload), QoS: o.will.qos, retain: o.will.retain },
        dns: this.#o.dns,
        socket: this.#o.socket,
        onControl: (first: unknown, second?: unknown) => this.#guard(self(), () => this.#onControl(first, second)),
        onReadable: (count, info) => this.#guard(self(), () => this.#onReadable(count, info)),
        onWritable: (count) => this.#guard(self(), () => this.#onWritable(count)),
        onError: () => this.#down(self()),
        onClose: () => this.#down(self()),
      });
    } catch (e) {
      this.#log(`mqtt: cannot start a connection: ${e instanceof Error ? e.message : String(e)}`);
      // Report the failed attempt on the next turn, never from inside connect().
      const t = Timer.set(() => {
        if (this.#connectTimer === t) this.#connectTimer = null;
        this.#onConnection(false);
      }, 0);
      this.#connectTimer = t;
      return;
    }
    this.#client = client;
    const attempt = client;
    this.#connectTimer = Timer.set(() => {
      this.#connectTimer = null;
      if (this.#client === attempt && !this.#up) {
        this.#log('mqtt: no CONNACK in time');
        this.#down(attempt, true);
      }
    }, this.#o.connectTimeoutMs ?? 20_000);
  }

  publish(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): number {
    const c = this.#client;
    if (c === null || !this.#up) return -1;
    if (this.#tail !== null) {
      this.stats.busy++;
      return -1; // a fragmented publish is still going out
    }
    const id = qos === 1 ? this.#allocId() : 0;
    const options = { topic, QoS: qos, retain, ...(qos === 1 ? { id } : {}) };
    try {
      this.#writable = c.write(payload, options);
      this.stats.published++;
      return id;
    } catch (e) {
      if (!(e instanceof Error) || e.message !== 'overflow') return this.#failed(c, e);
    }
    // Too big for the socket's free space right now: first fragment now, the rest on onWritable.
    const first = this.#writable - PUBLISH_OVERHEAD - utf8Length(topic);
    if (first <= 0) {
      this.stats.busy++;
      return -1; // nothing fits yet: the core tries again on its next tick
    }
    try {
      this.#writable = c.write(payload.subarray(0, first), { ...options, byteLength: payload.length });
    } catch (e) {
      if (e instanceof Error && e.message === 'overflow') {
        this.stats.busy++;
        return -1;
      }
      return this.#failed(c, e);
    }
    this.stats.published++;
    this.stats.fragmented++;
    this.#tail = { data: payload, at: first };
    this.#sendTail(c);
    return id;
  }

  subscribe(filters: readonly string[]): void {
    if (this.#client === null || !this.#up) return;
    this.#subscribeQueue.push(...filters);
    this.#flushSubscribe(this.#client);
  }

  /**
   * Closes the connection without a DISCONNECT packet, so the broker
   * publishes the will (the "offline" status), and reports it as down.
   */
  disconnect(): void {
    const had = this.#client !== null;
    this.#drop();
    if (had) this.#onConnection(false);
  }

  close(): void {
    this.#drop();
    this.#onMessage = () => {};
    this.#onPublished = () => {};
    this.#onConnection = () => {};
  }

  // ---- client callbacks ----

  #onControl(first: unknown, second: unknown): void {
    const msg = (typeof first === 'number' ? second : first) as ControlMessage | undefined;
    if (msg === undefined || typeof msg !== 'object') return;
    const c = this.#client;
    if (c === null) return;
    switch (msg.operation) {
      case MQTTClient.CONNACK: // only a successful one: a refusal arrives as onError
        this.#clearConnectTimer();
        this.#up = true;
        this.stats.connects++;
        this.#log(`mqtt: connected to ${this.#o.host}:${this.#o.port}`);
        this.#onConnection(true);
        break;
      case MQTTClient.PUBACK:
        if (typeof msg.id === 'number') this.#onPublished(msg.id);
        break;
      case MQTTClient.SUBACK: {
        const codes = msg.payload;
        if (codes !== undefined) {
          for (let i = 0; i < codes.length; i++) {
            if (codes[i] === 0x80) {
              this.stats.subscribeRefused++;
              this.#log('mqtt: the broker refused a subscription');
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }

  #onReadable(count: number, info: { more: boolean; topic?: string; byteLength?: number }): void {
    const c = this.#client;
    if (c === null) return;
    if (info.topic !== undefined) {
      const total = info.byteLength ?? count;
      const fits = total <= this.#max;
      if (!fits) this.stats.oversize++;
      this.#inbound = { topic: info.topic, buf: fits ? new Uint8Array(total) : null, at: 0 };
    }
    const data = c.read(count); // always read: the client's parser waits until the fragment is consumed
    const m = this.#inbound;
    if (m === null) return;
    if (m.buf !== null) {
      const bytes = new Uint8Array(data);
      if (m.at + bytes.length <= m.buf.length) m.buf.set(bytes, m.at);
      m.at += bytes.length;
    }
    if (info.more) return;
    this.#inbound = null;
    if (m.buf === null || m.at !== m.buf.length) return;
    this.stats.received++;
    this.#onMessage(m.topic, m.buf);
  }

  #onWritable(count: number): void {
    const c = this.#client;
    if (c === null) return;
    this.#writable = count;
    if (this.#tail !== null) this.#sendTail(c);
    if (this.#tail === null && this.#subscribeQueue.length > 0) this.#flushSubscribe(c);
  }

  // ---- helpers ----

  #sendTail(c: Client): void {
    // Continuation fragments are written with no options at all (the client
    // throws if options are given while it is "publishing"); the typings
    // require options, hence the narrower signature.
    const writeMore = c.write.bind(c) as unknown as (data: Uint8Array) => number;
    const t = this.#tail;
    while (t !== null && t.at < t.data.length && this.#writable > 0) {
      const n = Math.min(this.#writable, t.data.length - t.at);
      try {
        this.#writable = writeMore(t.data.subarray(t.at, t.at + n));
      } catch (e) {
        this.#failed(c, e);
        return;
      }
      t.at += n;
    }
    if (t !== null && t.at >= t.data.length) this.#tail = null;
  }

  #flushSubscribe(c: Client): void {
    if (this.#tail !== null || this.#subscribeQueue.length === 0) return;
    const items = this.#subscribeQueue.map((topic) => ({ topic, QoS: this.#o.subscribeQoS ?? 1 }));
    try {
      this.#writable = c.write(EMPTY, { operation: MQTTClient.SUBSCRIBE, id: this.#allocId(), items, topic: '' });
      this.#subscribeQueue = [];
    } catch (e) {
      if (!(e instanceof Error) || e.message !== 'overflow') this.#failed(c, e);
      // overflow: kept queued until onWritable
    }
  }

  #allocId(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffff ? 1 : id + 1;
    return id;
  }

  #failed(c: Client, e: unknown): number {
    this.#log(`mqtt: write failed: ${e instanceof Error ? e.message : String(e)}`);
    this.#down(c, true);
    return -1;
  }

  /** Runs a client callback; an exception must not unwind into the client's parser. */
  #guard(from: Client | null, f: () => void): void {
    if (from === null || from !== this.#client) return;
    try {
      f();
    } catch (e) {
      this.stats.callbackErrors++;
      this.#log(`mqtt: callback threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The connection of `from` is gone: report it once. `close`: close the client too (not needed after its onError). */
  #down(from: Client | null, close = false): void {
    if (from === null || from !== this.#client) return;
    const wasUp = this.#up;
    this.#client = null;
    this.#reset();
    this.stats.drops++;
    this.#log(`mqtt: ${wasUp ? 'connection lost' : 'connection attempt failed'}`);
    if (close) {
      try {
        from.close();
      } catch {
        // already closed
      }
    }
    this.#onConnection(false);
  }

  /** Forgets the current client without reporting. */
  #drop(): void {
    const c = this.#client;
    this.#client = null;
    this.#reset();
    if (c !== null) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
  }

  #reset(): void {
    this.#clearConnectTimer();
    this.#up = false;
    this.#writable = 0;
    this.#inbound = null;
    this.#tail = null;
    this.#subscribeQueue = [];
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) Timer.clear(this.#connectTimer);
    this.#connectTimer = null;
  }

  #log(message: string): void {
    this.#o.log?.(message);
  }
}

/** A copy of the bytes in an ArrayBuffer of their own (the client sends ArrayBuffers as bytes). */
function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  new Uint8Array(out).set(bytes);
  return out;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
