// The Net port on MQTT.js, configured to do nothing on its own: no
// reconnect (reconnectPeriod 0), no resubscribe, no offline queue, a clean
// session and a fresh client for every connect, so nothing is retransmitted
// behind the core's back. The core (firmware/core/sync-engine.ts) owns all of
// that, exactly as on the device whose ECMA-419 client does none of it.

import mqtt, { type MqttClient } from 'mqtt';
import type { Net, NetConnectOptions } from '../../firmware/ports.js';
import { mqttAuthOptions, type BrokerAuth } from '../broker-auth.js';

export class MqttNet implements Net {
  readonly url: string;
  #client: MqttClient | null = null;
  #connected = false;
  #nextId = 1;
  #onMessage: (topic: string, payload: Uint8Array) => void = () => {};
  #onPublished: (id: number) => void = () => {};
  #onConnection: (up: boolean) => void = () => {};

  readonly #auth: BrokerAuth | undefined;

  /** `auth`: TLS client certificate (mqtts://); a username/password in the connect options wins over its own. */
  constructor(url: string, auth?: BrokerAuth) {
    this.url = url;
    this.#auth = auth;
  }

  onMessage(cb: (topic: string, payload: Uint8Array) => void): void {
    this.#onMessage = cb;
  }
  onPublished(cb: (id: number) => void): void {
    this.#onPublished = cb;
  }
  onConnectionChange(cb: (up: boolean) => void): void {
    this.#onConnection = cb;
  }

  connect(o: NetConnectOptions): void {
    this.#drop();
    const client = mqtt.connect(this.url, {
      clientId: o.clientId,
      keepalive: o.keepAliveSeconds,
      clean: true,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      connectTimeout: 5000,
      ...mqttAuthOptions(this.#auth, this.url),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
      will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.will.qos, retain: o.will.retain },
    });
    this.#client = client;
    client.on('connect', () => {
      if (this.#client !== client) return;
      this.#connected = true;
      this.#onConnection(true);
    });
    client.on('message', (topic, payload) => {
      if (this.#client === client) this.#onMessage(topic, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength).slice());
    });
    const down = () => {
      if (this.#client !== client) return;
      this.#client = null;
      this.#connected = false;
      client.end(true);
      // One report per attempt: a failed attempt is "down" too, so the core schedules the next.
      this.#onConnection(false);
    };
    client.on('close', down);
    client.on('error', () => {
      /* 'close' follows and reports */
    });
  }

  publish(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): number {
    const client = this.#client;
    if (client === null || !this.#connected) return -1;
    const id = this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
    client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos, retain }, (err) => {
      if (err === undefined || err === null) {
        if (this.#client === client) this.#onPublished(id);
      }
    });
    return id;
  }

  subscribe(filters: readonly string[]): void {
    this.#client?.subscribe([...filters], { qos: 1 });
  }

  disconnect(): void {
    const client = this.#client;
    if (client === null) return;
    this.#client = null;
    this.#connected = false;
    client.end(true);
    this.#onConnection(false);
  }

  #drop(): void {
    const c = this.#client;
    this.#client = null;
    this.#connected = false;
    c?.end(true);
  }
}
