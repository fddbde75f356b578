// The Node end of an XS gate's network: one MQTT.js connection per simulated
// MQTT client inside the worker (guest/mqtt-client.ts), to the real broker.
// It carries out what the guest asked (connect, publish, subscribe, close,
// DNS lookups) and queues what the broker did (CONNACK, messages, PUBACKs,
// SUBACKs, a lost connection) for the next `advance` command.
//
// Configured to add nothing: no reconnect (reconnectPeriod 0), no
// resubscribe, no offline queue, clean session, and close() without a
// DISCONNECT packet (end(true) destroys the socket), so the broker publishes
// the will exactly as when a device drops off. A broker loss ends the
// connection and is reported once as `lost`; the firmware's sync engine
// decides what happens next.

import { mqttAuthOptions, type BrokerAuth } from '../broker-auth.js';
import { lookup } from 'node:dns/promises';
import mqtt, { type MqttClient } from 'mqtt';
import type { NetEvent, OutOp } from './protocol.js';

/** An event for the guest, with its payload (sent as a blob). */
export type Pending = { readonly event: Exclude<NetEvent, { ev: 'message' }> | { readonly ev: 'resolved'; readonly req: number; readonly address: string | null } } | { readonly event: { readonly ev: 'message'; readonly conn: number; readonly topic: string; readonly qos: number }; readonly payload: Uint8Array };

export interface MqttBridgeOptions {
  /** Connect here instead of the host:port the device asked for (e.g. a broker the record does not name). */
  readonly brokerUrl?: string;
  /**
   * The gate's identity at the broker on the Node side of the bridge (its TLS
   * certificate from the provisioning record). Until the device adapter opens
   * TLS itself (issue 14), the bridge does the TLS for it.
   */
  readonly brokerAuth?: BrokerAuth;
  readonly onEvent: (p: Pending) => void;
  /** Diagnostics. */
  readonly log?: (line: string) => void;
}

export interface MqttBridgeStats {
  connects: number;
  lost: number;
  publishes: number;
  messages: number;
}

/** What an XS gate's network does with the guest's operations (MqttBridge, or the simulation's broker). */
export interface XsGateNetwork {
  handle(op: OutOp, blobs: readonly Uint8Array[]): void;
  /** Drops every connection at once, without DISCONNECT (power cut or shutdown); reports nothing. */
  closeAll(): void;
  /** Connections open now. */
  readonly open: number;
  readonly stats: MqttBridgeStats;
}

export class MqttBridge implements XsGateNetwork {
  readonly stats: MqttBridgeStats = { connects: 0, lost: 0, publishes: 0, messages: 0 };
  readonly #o: MqttBridgeOptions;
  readonly #conns = new Map<number, MqttClient>();
  #closed = false;

  constructor(options: MqttBridgeOptions) {
    this.#o = options;
  }

  /** Connections open now. */
  get open(): number {
    return this.#conns.size;
  }

  handle(op: OutOp, blobs: readonly Uint8Array[]): void {
    if (this.#closed) return;
    switch (op.op) {
      case 'connect':
        return this.#connect(op, blobs);
      case 'publish': {
        const c = this.#conns.get(op.conn);
        const data = blobs[op.blob];
        if (c === undefined || data === undefined) return;
        this.stats.publishes++;
        c.publish(op.topic, Buffer.from(data), { qos: op.qos === 1 ? 1 : 0, retain: op.retain }, (err) => {
          if (op.qos === 1 && (err === undefined || err === null) && this.#conns.get(op.conn) === c) this.#o.onEvent({ event: { ev: 'puback', conn: op.conn, id: op.id } });
        });
        return;
      }
      case 'subscribe': {
        const c = this.#conns.get(op.conn);
        if (c === undefined) return;
        const map: Record<string, { qos: 0 | 1 | 2 }> = {};
        for (const it of op.items) map[it.topic] = { qos: it.qos === 2 ? 2 : it.qos === 1 ? 1 : 0 };
        c.subscribe(map, (err, granted) => {
          if (err !== null && err !== undefined) return;
          if (this.#conns.get(op.conn) !== c) return;
          this.#o.onEvent({ event: { ev: 'suback', conn: op.conn, id: op.id, codes: (granted ?? []).map((g) => g.qos) } });
        });
        return;
      }
      case 'close': {
        const c = this.#conns.get(op.conn);
        this.#conns.delete(op.conn);
        c?.end(true);
        return;
      }
      case 'resolve':
        lookup(op.host, { family: 4 }).then(
          (r) => this.#o.onEvent({ event: { ev: 'resolved', req: op.req, address: r.address } }),
          () => this.#o.onEvent({ event: { ev: 'resolved', req: op.req, address: null } }),
        );
        return;
    }
  }

  /** Drops every connection at once, without DISCONNECT (power cut or shutdown); reports nothing. */
  closeAll(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.end(true);
    this.#conns.clear();
  }

  #connect(op: Extract<OutOp, { op: 'connect' }>, blobs: readonly Uint8Array[]): void {
    const url = this.#o.brokerUrl ?? `mqtt://${op.host}:${op.port}`;
    const password = op.password !== undefined ? blobs[op.password] : undefined;
    const willMessage = op.will !== undefined ? blobs[op.will.message] : undefined;
    const client = mqtt.connect(url, {
      clientId: op.clientId,
      keepalive: Math.ceil(op.keepAliveMs / 1000),
      clean: op.clean,
      protocolVersion: 4,
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      connectTimeout: 30_000,
      ...mqttAuthOptions(this.#o.brokerAuth, url),
      ...(op.user !== undefined ? { username: op.user } : {}),
      ...(password !== undefined ? { password: Buffer.from(password) } : {}),
      ...(op.will !== undefined && willMessage !== undefined ? { will: { topic: op.will.topic, payload: Buffer.from(willMessage), qos: op.will.qos === 1 ? 1 : 0, retain: op.will.retain } } : {}),
    });
    this.#conns.set(op.conn, client);
    this.stats.connects++;
    let why = 'connection closed';
    client.on('connect', () => {
      if (this.#conns.get(op.conn) === client) this.#o.onEvent({ event: { ev: 'connack', conn: op.conn, ok: true } });
    });
    client.on('message', (topic, payload, packet) => {
      if (this.#conns.get(op.conn) !== client) return;
      this.stats.messages++;
      this.#o.onEvent({ event: { ev: 'message', conn: op.conn, topic, qos: packet.qos }, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength).slice() });
    });
    client.on('error', (e) => {
      why = e.message;
    });
    client.on('close', () => {
      if (this.#conns.get(op.conn) !== client) return;
      this.#conns.delete(op.conn);
      this.stats.lost++;
      client.end(true);
      this.#o.log?.(`mqtt bridge: connection ${op.conn} lost (${why})`);
      this.#o.onEvent({ event: { ev: 'lost', conn: op.conn, why } });
    });
  }
}
