// The network of an XS gate in the deterministic simulation: the guest's
// MQTT client (host-sim/xs-gate/guest/mqtt-client.ts) speaks, through the
// command channel, to the seeded broker (sim-broker.ts) instead of to a
// socket. One SimClient per connection the guest opens, on the gate's
// identity (what the broker authenticated: the secured brokers' ACL applies).
// What the broker does comes back as the same events MqttBridge queues, for
// the gate's next advance; `onActivity` tells the gate to advance now.

import type { MqttBridgeStats, Pending, XsGateNetwork } from '../xs-gate/mqtt-bridge.js';
import type { OutOp } from '../xs-gate/protocol.js';
import type { SimBroker, SimClient } from './sim-broker.js';

export interface SimMqttBridgeOptions {
  readonly broker: SimBroker;
  /** The identity the broker sees (the gate id of its certificate). */
  readonly identity: string;
  readonly onEvent: (p: Pending) => void;
  /** An event was queued: the gate should run soon. */
  readonly onActivity: () => void;
  /** Address every name resolves to (the simulated network has one broker). */
  readonly address?: string;
}

/** Connections one gate may hold at once (the guest opens one; a bound on what a faulty guest could ask). */
const MAX_CONNECTIONS = 4;

export class SimMqttBridge implements XsGateNetwork {
  readonly stats: MqttBridgeStats = { connects: 0, lost: 0, publishes: 0, messages: 0 };
  readonly #o: SimMqttBridgeOptions;
  readonly #conns = new Map<number, { client: SimClient; acks: Map<number, number> }>();
  #closed = false;

  constructor(o: SimMqttBridgeOptions) {
    this.#o = o;
  }

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
        const qos = op.qos === 1 ? 1 : 0;
        const id = c.client.publish(op.topic, data, qos, op.retain);
        if (qos === 1 && id >= 0) c.acks.set(id, op.id);
        return;
      }
      case 'subscribe': {
        const c = this.#conns.get(op.conn);
        if (c === undefined) return;
        const qos = op.items.some((it) => it.qos >= 1) ? 1 : 0;
        const codes = op.items.map((it) => Math.min(it.qos, 1));
        c.client.subscribe(
          op.items.map((it) => it.topic),
          { qos, done: (err) => void (err === null && this.#conns.get(op.conn) === c && this.#emit({ event: { ev: 'suback', conn: op.conn, id: op.id, codes } })) },
        );
        return;
      }
      case 'close': {
        const c = this.#conns.get(op.conn);
        this.#conns.delete(op.conn);
        c?.client.close();
        return;
      }
      case 'resolve':
        this.#emit({ event: { ev: 'resolved', req: op.req, address: this.#o.address ?? '10.0.0.1' } });
        return;
    }
  }

  closeAll(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.client.powerOff();
    this.#conns.clear();
  }

  #emit(p: Pending): void {
    this.#o.onEvent(p);
    this.#o.onActivity();
  }

  #connect(op: Extract<OutOp, { op: 'connect' }>, blobs: readonly Uint8Array[]): void {
    if (this.#conns.size >= MAX_CONNECTIONS) {
      this.#emit({ event: { ev: 'lost', conn: op.conn, why: 'too many connections' } });
      return;
    }
    const client = this.#o.broker.client(this.#o.identity);
    const entry = { client, acks: new Map<number, number>() };
    this.#conns.set(op.conn, entry);
    this.stats.connects++;
    const current = (): boolean => this.#conns.get(op.conn) === entry;
    client.onConnectionChange((up, reason) => {
      if (!current()) return;
      if (up) return this.#emit({ event: { ev: 'connack', conn: op.conn, ok: true } });
      this.#conns.delete(op.conn);
      this.stats.lost++;
      this.#emit({ event: { ev: 'lost', conn: op.conn, why: reason ?? 'closed' } });
    });
    client.onMessage((topic, payload) => {
      if (!current()) return;
      this.stats.messages++;
      // The broker's QoS of the delivery is not kept by SimClient: the gate subscribes at 1.
      this.#emit({ event: { ev: 'message', conn: op.conn, topic, qos: 1 }, payload });
    });
    client.onPublished((id) => {
      if (!current()) return;
      const guestId = entry.acks.get(id);
      if (guestId === undefined) return;
      entry.acks.delete(id);
      this.#emit({ event: { ev: 'puback', conn: op.conn, id: guestId } });
    });
    const will = op.will;
    const message = will === undefined ? undefined : blobs[will.message];
    client.connect(op.clientId, will !== undefined && message !== undefined ? { topic: will.topic, payload: message, qos: will.qos === 1 ? 1 : 0, retain: will.retain } : null, Math.ceil(op.keepAliveMs / 1000));
  }
}
