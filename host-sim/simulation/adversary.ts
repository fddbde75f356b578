// The adversary on the broker: it holds stolen broker identities (every
// gate's and the central's: what a leaked certificate gives) but none of the
// keys (the signing key, the gates' MAC keys). It listens to what those
// identities may read, and now and then sends something forged, replayed or
// planted on a topic they may publish to. The invariants say what must hold
// anyway: nothing forged is stored, acknowledged or installed.

import { Topics } from '../../protocol/topics.js';
import { CENTRAL_IDENTITY } from '../pki/deployment-pki.js';
import type { SimBroker, SimClient } from './sim-broker.js';

const CAPTURED_PER_TOPIC = 8;

export interface AdversaryOptions {
  readonly broker: SimBroker;
  readonly gates: readonly string[];
  readonly random: () => number;
  readonly trace: (line: string) => void;
  /** Runs fn after ms of virtual time. */
  readonly later: (fn: () => void, ms: number) => void;
  /** A gate identity was used (its real connection is kicked off meanwhile). */
  readonly impersonated: (gate: string) => void;
}

export class Adversary {
  readonly #o: AdversaryOptions;
  readonly #t = new Topics('subline');
  /** The listener (as the central's identity), made again whenever it is found down. */
  #listener: SimClient | null = null;
  #clients = 0;
  /** Genuine messages seen, by topic (bounded): the material for replays and tampering. */
  readonly #captured = new Map<string, Uint8Array[]>();

  constructor(o: AdversaryOptions) {
    this.#o = o;
    this.#listen();
  }

  /** Listens to what the central's identity may read (a broker restart, a cut or a takeover ends it: listen again). */
  #listen(): void {
    if (this.#listener?.connected === true) return;
    this.#listener?.disconnect();
    const c = this.#o.broker.client(CENTRAL_IDENTITY);
    c.onMessage((topic, payload) => this.#capture(topic, payload));
    c.connect(`adversary-listener-${this.#clients++}`);
    c.subscribe([this.#t.allGates('events'), this.#t.allGates('status'), this.#t.allGates('sync'), this.#t.list('main', 'head'), this.#t.list('main', 'delta')]);
    this.#listener = c;
  }

  /** A hit-and-run as the central's identity (a client of its own, so nothing of an earlier attack is needed). */
  #asCentral(send: (c: SimClient) => void): void {
    const c = this.#o.broker.client(CENTRAL_IDENTITY);
    let sent = false;
    c.onConnectionChange((up) => {
      if (!up || sent) return;
      sent = true;
      send(c);
      this.#o.later(() => c.disconnect(), 1000);
    });
    c.connect(`adversary-${this.#clients++}`);
  }

  /**
   * A hit-and-run as the gate: the broker lets a gate's identity connect only
   * under its own client id, so the real gate is kicked off (and reconnects).
   * While connected, it listens to the gate's downlinks (material for later
   * replays), sends, and leaves after a second.
   */
  #asGate(gate: string, send: (c: SimClient) => void): void {
    const c = this.#o.broker.client(gate);
    let sent = false;
    c.onMessage((topic, payload) => this.#capture(topic, payload));
    c.onConnectionChange((up) => {
      if (!up || sent) return;
      sent = true;
      c.subscribe([this.#t.gate(gate, 'ack'), this.#t.gate(gate, 'cmd'), this.#t.gate(gate, 'data')]);
      send(c);
      this.#o.later(() => c.disconnect(), 1000);
    });
    c.connect(gate);
  }

  /** One attack, chosen by the seed; returns its name. */
  attack(): string {
    const r = this.#o.random;
    const gate = this.#o.gates[Math.floor(r() * this.#o.gates.length)]!;
    const kinds = ['forged-events', 'replayed-events', 'replayed-status', 'forged-status', 'forged-ack', 'replayed-ack', 'replayed-head', 'forged-head', 'forged-delta', 'replayed-delta', 'forged-cmd', 'replayed-cmd', 'planted-data', 'garbage'] as const;
    const kind = kinds[Math.floor(r() * kinds.length)]!;
    this.#listen();
    const send = (as: 'gate' | 'central', topic: string, payload: Uint8Array | undefined, retain = false): string => {
      if (payload === undefined) return `${kind}.nothing-captured`;
      this.#o.trace(`${kind} on ${topic} (${payload.length} bytes)`);
      const publish = (c: SimClient): void => {
        if (c.publish(topic, payload, 1, retain) < 0) this.#o.trace(`${kind} not sent: not connected`);
      };
      if (as === 'gate') {
        this.#o.impersonated(gate);
        this.#asGate(gate, publish);
      } else this.#asCentral(publish);
      return kind;
    };
    const asGate = 'gate' as const;
    const asCentral = 'central' as const;
    const t = this.#t;
    switch (kind) {
      case 'forged-events':
        return send(asGate, t.gate(gate, 'events'), this.#tampered(t.gate(gate, 'events')));
      case 'replayed-events':
        return send(asGate, t.gate(gate, 'events'), this.#old(t.gate(gate, 'events')));
      case 'replayed-status':
        return send(asGate, t.gate(gate, 'status'), this.#old(t.gate(gate, 'status')), true);
      case 'forged-status':
        return send(asGate, t.gate(gate, 'status'), this.#tampered(t.gate(gate, 'status')), true);
      case 'forged-ack':
        return send(asCentral, t.gate(gate, 'ack'), this.#tampered(t.gate(gate, 'ack')) ?? this.#noise(120));
      case 'replayed-ack':
        return send(asCentral, t.gate(gate, 'ack'), this.#old(t.gate(gate, 'ack')));
      case 'replayed-head':
        return send(asCentral, t.list('main', 'head'), this.#old(t.list('main', 'head')), true);
      case 'forged-head':
        return send(asCentral, t.list('main', 'head'), this.#tampered(t.list('main', 'head')), true);
      case 'forged-delta':
        return send(asCentral, t.list('main', 'delta'), this.#tampered(t.list('main', 'delta')));
      case 'replayed-delta':
        return send(asCentral, t.list('main', 'delta'), this.#old(t.list('main', 'delta')));
      case 'forged-cmd':
        return send(asCentral, t.gate(gate, 'cmd'), this.#tampered(t.gate(gate, 'cmd')) ?? this.#noise(200));
      case 'replayed-cmd':
        return send(asCentral, t.gate(gate, 'cmd'), this.#old(t.gate(gate, 'cmd')));
      case 'planted-data':
        return send(asCentral, t.gate(gate, 'data'), this.#tampered(t.gate(gate, 'data')) ?? this.#noise(1200));
      case 'garbage': {
        const topics = [t.gate(gate, 'events'), t.gate(gate, 'sync'), t.gate(gate, 'status'), t.gate(gate, 'cmdres')];
        return send(asGate, topics[Math.floor(r() * topics.length)]!, this.#noise(1 + Math.floor(r() * 600)));
      }
    }
  }

  close(): void {
    this.#listener?.disconnect();
  }

  #capture(topic: string, payload: Uint8Array): void {
    if (payload.length === 0) return;
    let l = this.#captured.get(topic);
    if (l === undefined) {
      l = [];
      this.#captured.set(topic, l);
    }
    l.push(payload.slice());
    if (l.length > CAPTURED_PER_TOPIC) l.shift();
  }

  /** The oldest genuine message kept for the topic (a replay). */
  #old(topic: string): Uint8Array | undefined {
    return this.#captured.get(topic)?.[0];
  }

  /** A genuine message with bytes changed (a forgery that keeps the shape). */
  #tampered(topic: string): Uint8Array | undefined {
    const l = this.#captured.get(topic);
    const m = l?.[l.length - 1];
    if (m === undefined) return undefined;
    const r = this.#o.random;
    const out = m.slice();
    const flips = 1 + Math.floor(r() * 3);
    for (let i = 0; i < flips; i++) out[Math.floor(r() * out.length)]! ^= 1 + Math.floor(r() * 255);
    return out;
  }

  #noise(n: number): Uint8Array {
    const r = this.#o.random;
    return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  }
}
