// The central's transport on MQTT.js: a clean session, reconnects every
// second, QoS 1. The one place the central meets a real broker.

import mqtt, { type MqttClient } from 'mqtt';
import { mqttAuthOptions, type BrokerAuth } from '../broker-auth.js';
import type { CentralLink, CentralLinkEvents, CentralTransport } from './central-transport.js';

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class MqttTransport implements CentralTransport {
  readonly url: string;
  readonly #auth: BrokerAuth | undefined;

  constructor(url: string, auth?: BrokerAuth) {
    this.url = url;
    this.#auth = auth;
  }

  open(clientId: string, on: CentralLinkEvents): CentralLink {
    const client: MqttClient = mqtt.connect(this.url, {
      clientId,
      clean: true,
      reconnectPeriod: 1000,
      resubscribe: false,
      connectTimeout: 10_000,
      keepalive: 30,
      ...mqttAuthOptions(this.#auth, this.url),
    });
    client.on('connect', () => on.connect());
    client.on('message', (topic, payload, packet) => on.message(topic, u8(payload), packet.retain));
    client.on('error', (e) => on.error(e));
    return {
      get connected() {
        return client.connected;
      },
      publish(topic, payload, retain, done) {
        client.publish(topic, buf(payload), { qos: 1, retain }, (err) => done(err ?? null));
      },
      subscribe(filters, done) {
        client.subscribe([...filters], { qos: 1 }, (err) => done(err ?? null));
      },
      end(force, done) {
        client.end(force, () => done());
      },
    };
  }
}
