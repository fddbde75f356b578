// The central's port to the broker: what it needs of an MQTT 3.1.1 client
// and nothing more (QoS 1 publishes and subscriptions, a clean session,
// reconnects of its own). The service uses MQTT.js (mqtt-transport.ts); the
// deterministic simulation a seeded broker in the same process
// (host-sim/simulation/sim-broker.ts).

export interface CentralLinkEvents {
  /** A connection (the first or a reconnect) is up; subscriptions are gone (clean session). */
  connect(): void;
  /** `retained`: delivered from the broker's retained store, not published just now. */
  message(topic: string, payload: Uint8Array, retained: boolean): void;
  error(e: Error): void;
}

export interface CentralLink {
  readonly connected: boolean;
  /** QoS 1. `done(null)` when the broker acknowledged it, `done(error)` when it will not be. */
  publish(topic: string, payload: Uint8Array, retain: boolean, done: (err: Error | null) => void): void;
  subscribe(filters: readonly string[], done: (err: Error | null) => void): void;
  /** Ends the connection: `force` drops what is queued; `done` once closed. No reconnects after. */
  end(force: boolean, done: () => void): void;
}

export interface CentralTransport {
  /** Where it connects (for messages). */
  readonly url: string;
  /** A client that connects now and reconnects on its own until end(). Its events come later, never from inside open(). */
  open(clientId: string, on: CentralLinkEvents): CentralLink;
}
