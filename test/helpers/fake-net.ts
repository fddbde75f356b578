// A scripted MQTT connection for gates in one process (virtual time): the
// test delivers messages through the callbacks the gate registered, and reads
// what the gate published.

import type { Net, NetConnectOptions } from '../../firmware/ports.js';
import { SyncRequest, type SyncRequestMessage } from '../../protocol/messages.js';
import { openUp } from './gate-key.js';
import type { VirtualTime } from '../../host-sim/adapters/virtual-time.js';

export class FakeNet implements Net {
  up = false;
  refuse = 0; // connection attempts to refuse
  attempts: number[] = [];
  published: { topic: string; payload: Uint8Array }[] = [];
  will: NetConnectOptions['will'] | null = null;
  #id = 1;
  msg: (t: string, p: Uint8Array) => void = () => {};
  pub: (id: number) => void = () => {};
  conn: (up: boolean) => void = () => {};
  constructor(private readonly vt: VirtualTime) {}
  connect(o: NetConnectOptions): void {
    this.attempts.push(this.vt.monotonicMs());
    this.will = o.will;
    this.vt.set(() => {
      if (this.refuse > 0) {
        this.refuse--;
        this.conn(false);
      } else {
        this.up = true;
        this.conn(true);
      }
    }, 5);
  }
  publish(topic: string, payload: Uint8Array): number {
    if (!this.up) return -1;
    this.published.push({ topic, payload: payload.slice() });
    const id = this.#id++;
    this.vt.set(() => this.pub(id), 1);
    return id;
  }
  subscribe(): void {}
  disconnect(): void {
    this.up = false;
  }
  onMessage(cb: (t: string, p: Uint8Array) => void): void {
    this.msg = cb;
  }
  onPublished(cb: (id: number) => void): void {
    this.pub = cb;
  }
  onConnectionChange(cb: (up: boolean) => void): void {
    this.conn = cb;
  }
  /** The broker drops the connection. */
  drop(): void {
    this.up = false;
    this.conn(false);
  }
  requests(): SyncRequestMessage[] {
    return this.published.filter((p) => p.topic.endsWith('/sync')).map((p) => openUp(SyncRequest, p.topic, p.payload)).filter((r) => r.ok).map((r) => r.value);
  }
}
