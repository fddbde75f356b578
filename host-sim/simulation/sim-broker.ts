// A seeded MQTT 3.1.1 broker in the simulation's own process and virtual
// time: the gates' Net port, the central's CentralTransport and raw clients
// (an adversary, tests) all meet here. Clean sessions only, QoS 0 and 1,
// retained messages, wills, the deployment's ACL (broker-acl.ts, applied as
// broker.ts applies it), and the network between each identity and the
// broker: delay, jitter, loss, duplicates, partitions, restarts.
//
// Deterministic: every timer is the scheduler's (one TimerGroup), every
// random draw the seeded `random` given, every Map and Set iterated in
// insertion order. Bounded: at most MAX_INFLIGHT packets in flight per
// connection and direction (beyond, the client is kicked, as a broker kicks
// a client whose queue overflows), MAX_RETAINED retained topics, MAX_WAITING
// callbacks waiting for an acknowledgement per client.
//
// Transport model: a link per identity, two lanes (client to broker, broker
// to client). A message takes delayMs + jitter; per lane and topic it never
// overtakes an earlier one; control packets (CONNECT, SUBSCRIBE, CONNACK,
// SUBACK, DISCONNECT, a connection closing) never overtake anything sent
// before them and nothing overtakes them, as on one TCP stream. Only
// messages (PUBLISH, PUBACK, deliveries) are lost: a lost control packet has
// no recovery in MQTT over TCP, a lost message is what QoS 1 resends cover.

import type { Net, NetConnectOptions, TimerHandle } from '../../firmware/ports.js';
import type { BrokerAcl } from '../broker-acl.js';
import type { CentralLink, CentralLinkEvents, CentralTransport } from '../central/central-transport.js';
import type { SimScheduler, TimerGroup } from './sim-scheduler.js';

export interface LinkFaults {
  /** Milliseconds every packet takes. */
  readonly delayMs: number;
  /** Up to this many milliseconds more, uniformly (per packet, seeded). */
  readonly jitterMs: number;
  /** Probability a message (not a control packet) is lost. */
  readonly loss: number;
  /** Probability a QoS 1 delivery arrives a second time, a little later (DUP). */
  readonly duplicate: number;
}

export interface SimBrokerOptions {
  readonly scheduler: SimScheduler;
  /** Seeded PRNG in [0, 1): every fault draws from it. */
  readonly random: () => number;
  /** null or undefined: an anonymous broker, everything allowed. */
  readonly acl?: BrokerAcl | null;
  /** Every link's faults until setLink (default delay 5, jitter 0, loss 0, duplicate 0). */
  readonly link?: Partial<LinkFaults>;
  /** A connect attempt without CONNACK fails after this (default 5000). */
  readonly connectTimeoutMs?: number;
  /** One deterministic line per connect, delivery, drop, disconnect, will. */
  readonly onTrace?: (line: string) => void;
}

export interface SimWill {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: 0 | 1;
  readonly retain: boolean;
}

export interface SimBrokerStats {
  /** Connections accepted. */
  connects: number;
  refusedConnects: number;
  /** Messages handed to clients, duplicates included. */
  delivered: number;
  /** Of those, DUP copies. */
  duplicates: number;
  wills: number;
  /**
   * Packets that went nowhere, by why: loss, partition, down (the broker
   * was), closed (their connection was gone), overflow (a kick), acl
   * (publish or will refused), unreadable (canRead refused a delivery),
   * subscribe (a filter refused), invalid (a publish to a bad topic: a kick),
   * retained (the retained store is full).
   */
  readonly dropped: Record<string, number>;
}

/** Why a client was told its connection is down. */
export type SimDownReason = 'timeout' | 'refused' | 'keepalive' | 'takeover' | 'restart' | 'overflow' | 'protocol' | 'disconnect';

const DEFAULT_FAULTS: LinkFaults = { delayMs: 5, jitterMs: 0, loss: 0, duplicate: 0 };
const MAX_INFLIGHT = 10_000;
const MAX_RETAINED = 10_000;
const MAX_WAITING = 10_000;
const MAX_PACKET_ID = 0x7ffffffe;
/** MqttTransport's: the central's keepalive and reconnect period. */
const CENTRAL_KEEPALIVE_S = 30;
const CENTRAL_RECONNECT_MS = 1000;
/** Keepalive 0 (none): a dead peer still shows, late, through TCP's own timeout. */
const NO_KEEPALIVE_DETECT_MS = 60_000;

type Lane = 0 | 1; // 0: client to broker, 1: broker to client

/** One direction of a link: per-topic FIFO and control-packet barriers. */
class LaneClock {
  readonly #last = new Map<string, number>();
  #max = 0;
  #barrier = 0;
  #pruneAbove = 256;

  /** When a packet sent now with computed arrival `at` arrives; `topic` null: a control packet. */
  arrival(now: number, at: number, topic: string | null): number {
    at = Math.max(at, this.#barrier);
    if (topic === null) {
      at = Math.max(at, this.#max);
      this.#barrier = at;
    } else {
      at = Math.max(at, this.#last.get(topic) ?? 0);
      this.#last.set(topic, at);
      if (this.#last.size > this.#pruneAbove) this.#prune(now);
    }
    this.#max = Math.max(this.#max, at);
    return at;
  }

  // An entry already due constrains nothing (every new arrival is later): forget it, so the map stays as small as what is in flight.
  #prune(now: number): void {
    for (const [t, at] of this.#last) if (at <= now) this.#last.delete(t);
    this.#pruneAbove = Math.max(256, 2 * this.#last.size);
  }
}

class Link {
  faults: LinkFaults;
  cut = false;
  /** Bumped at every cut: a keepalive check of an earlier cut is void. */
  cutEpoch = 0;
  readonly lanes: readonly [LaneClock, LaneClock] = [new LaneClock(), new LaneClock()];
  /** Connections not yet over at both ends. */
  readonly conns = new Set<Conn>();
  /** Clients (and central links) that may still act: what dropClients() kills. */
  readonly owners = new Set<Killable>();
  constructor(
    readonly identity: string,
    faults: LinkFaults,
  ) {
    this.faults = faults;
  }
}

interface Killable {
  kill(silent: boolean): void;
}

/** What the broker calls on a connection's client end when a packet arrives. */
interface Endpoint {
  connack(c: Conn, ok: boolean): void;
  closed(c: Conn, reason: SimDownReason): void;
  puback(c: Conn, id: number): void;
  suback(c: Conn, id: number): void;
  message(c: Conn, topic: string, payload: Uint8Array, retained: boolean, dup: boolean): void;
  keepalive(c: Conn, epoch: number): void;
}

/** One connection (one TCP stream): its client end's state and its broker end's subscriptions. */
class Conn {
  /** The client end. */
  state: 'connecting' | 'open' | 'closed' = 'connecting';
  timer: TimerHandle | null = null;
  readonly subs = new Map<string, 0 | 1>();
  readonly inflight: [number, number] = [0, 0];
  /** SUBACK callbacks by packet id. */
  readonly subAcks = new Map<number, (err: Error | null) => void>();
  /** Subscriptions asked for before CONNACK, sent after it (MQTT.js queues them too). */
  readonly queued: { filters: string[]; qos: 0 | 1; id: number }[] = [];
  constructor(
    readonly client: Endpoint,
    readonly link: Link,
    readonly clientId: string,
    readonly will: SimWill | null,
    readonly keepAliveMs: number,
  ) {}
}

/** The broker's state and the network; SimBroker and the clients are its faces. */
class BrokerCore {
  readonly s: SimScheduler;
  readonly timers: TimerGroup;
  readonly random: () => number;
  readonly acl: BrokerAcl | null;
  readonly defaults: LinkFaults;
  readonly connectTimeoutMs: number;
  readonly #onTrace: ((line: string) => void) | undefined;
  readonly stats: SimBrokerStats = { connects: 0, refusedConnects: 0, delivered: 0, duplicates: 0, wills: 0, dropped: {} };
  up = true;
  closed = false;
  readonly links = new Map<string, Link>();
  /** The broker's connections by client id (insertion order: the order deliveries go out). */
  readonly sessions = new Map<string, Conn>();
  /**
   * Who may want a topic: sessions by exact filter, and the sessions with a
   * wildcard filter (a few: the central, listeners). Without it every publish
   * would test every session's filters (quadratic in the fleet).
   */
  readonly #exact = new Map<string, Set<Conn>>();
  readonly #wild = new Set<Conn>();
  /** Registration order of the sessions: deliveries go out in it (as the Map's iteration order would). */
  readonly #order = new WeakMap<Conn, number>();
  #registrations = 0;
  readonly retained = new Map<string, { readonly payload: Uint8Array; readonly qos: 0 | 1 }>();
  #upTimer: TimerHandle | null = null;

  constructor(o: SimBrokerOptions) {
    this.s = o.scheduler;
    this.timers = o.scheduler.group('broker');
    this.random = o.random;
    this.acl = o.acl ?? null;
    this.defaults = withFaults(DEFAULT_FAULTS, o.link ?? {});
    this.connectTimeoutMs = o.connectTimeoutMs ?? 5000;
    if (!(this.connectTimeoutMs > 0)) throw new RangeError('sim-broker: connectTimeoutMs must be positive');
    this.#onTrace = o.onTrace;
  }

  trace(line: string): void {
    this.#onTrace?.(`t=${this.s.nowMs} ${line}`);
  }

  drop(reason: string, line: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    this.trace(`drop ${reason} ${line}`);
  }

  link(identity: string): Link {
    let l = this.links.get(identity);
    if (l === undefined) {
      l = new Link(identity, this.defaults);
      this.links.set(identity, l);
    }
    return l;
  }

  registered(c: Conn): boolean {
    return this.sessions.get(c.clientId) === c;
  }

  /** The connection is over at both ends: forget it. */
  settle(c: Conn): void {
    if (c.state === 'closed' && !this.registered(c)) c.link.conns.delete(c);
  }

  /**
   * Sends one packet over `c`'s link; `arrive` runs when it gets there (unless
   * the link is cut by then). `topic`: a message (lossy, FIFO per topic);
   * none: a control packet. Returns the arrival time, or null if it is lost.
   */
  send(c: Conn, lane: Lane, what: string, arrive: () => void, o: { topic?: string; close?: boolean; after?: number } = {}): number | null {
    if (this.closed) return null;
    const link = c.link;
    const f = link.faults;
    const line = `${c.clientId} ${what}`;
    if (link.cut) {
      this.drop('partition', line);
      return null;
    }
    const topic = o.topic ?? null;
    if (topic !== null && f.loss > 0 && this.random() < f.loss) {
      this.drop('loss', line);
      return null;
    }
    // A connection closing takes no place in the queue: it never overflows.
    if (o.close !== true && c.inflight[lane] >= MAX_INFLIGHT) {
      this.drop('overflow', line);
      this.kick(c, 'overflow');
      return null;
    }
    const now = this.s.nowMs;
    const jitter = f.jitterMs > 0 ? Math.floor(this.random() * (f.jitterMs + 1)) : 0;
    const at = link.lanes[lane].arrival(now, Math.max(now + Math.floor(f.delayMs) + jitter, o.after ?? 0), topic);
    c.inflight[lane]++;
    this.timers.set(() => {
      c.inflight[lane]--;
      if (link.cut) this.drop('partition', line);
      else arrive();
    }, at - now);
    return at;
  }

  // ------------------------------------------------------------ broker end

  onConnect(c: Conn): void {
    if (!this.up) return this.drop('down', `${c.clientId} connect`);
    const identity = c.link.identity;
    const acl = this.acl;
    if (acl !== null) {
      const role = acl.roleOf(identity);
      // As broker.ts: a gate's client id is its gate id, and no one else may take it.
      const wrongId = role === 'gate' ? c.clientId !== identity : acl.roleOf(c.clientId) === 'gate';
      if (role === null || wrongId) {
        this.stats.refusedConnects++;
        this.trace(`refused ${c.clientId} ${identity}`);
        this.send(c, 1, 'connack refused', () => c.client.connack(c, false));
        return;
      }
    }
    const old = this.sessions.get(c.clientId);
    if (old !== undefined) this.endSession(old, 'takeover', true);
    this.sessions.set(c.clientId, c);
    this.#order.set(c, this.#registrations++);
    c.link.conns.add(c); // again, if its client end gave up meanwhile: a partition must still find it
    this.stats.connects++;
    this.trace(`connect ${c.clientId} ${identity}`);
    this.send(c, 1, 'connack', () => c.client.connack(c, true));
    // Its client end died while the CONNECT was on the way (power lost): the broker finds out by keepalive.
    if (c.state === 'closed') this.watch(c, -1);
  }

  onPublish(c: Conn, topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean, id: number): void {
    const line = `${c.clientId} publish ${topic} ${payload.length}`;
    if (!this.up) return this.drop('down', line);
    if (!this.registered(c)) return this.drop('closed', line);
    if (!validTopic(topic)) {
      // A protocol violation: brokers disconnect the client.
      this.drop('invalid', line);
      this.endSession(c, 'protocol', true);
      return;
    }
    if (this.#mayPublish(c, topic, payload, retain)) {
      this.trace(`publish ${c.clientId} ${topic} ${payload.length} q${qos}${retain ? ' retain' : ''}`);
      this.route(topic, payload, qos, retain);
    } else this.drop('acl', line);
    // Acknowledged even when refused, as Mosquitto does: the sender cannot tell.
    if (qos === 1 && this.registered(c)) this.send(c, 1, `puback ${id}`, () => c.client.puback(c, id), { topic });
  }

  onSubscribe(c: Conn, filters: readonly string[], qos: 0 | 1, id: number): void {
    const line = `${c.clientId} subscribe`;
    if (!this.up) return this.drop('down', line);
    if (!this.registered(c)) return this.drop('closed', line);
    const granted: string[] = [];
    for (const f of filters) {
      if (!validFilter(f) || (this.acl !== null && !this.acl.canSubscribe(c.link.identity, f))) {
        this.drop('subscribe', `${c.clientId} ${f}`);
        continue;
      }
      c.subs.set(f, qos);
      if (f.includes('+') || f.includes('#')) this.#wild.add(c);
      else {
        let set = this.#exact.get(f);
        if (set === undefined) this.#exact.set(f, (set = new Set()));
        set.add(c);
      }
      granted.push(f);
    }
    this.trace(`subscribe ${c.clientId} ${granted.join(',')}`);
    this.send(c, 1, `suback ${id}`, () => c.client.suback(c, id));
    if (granted.length === 0) return;
    // The new subscriptions' retained messages, once per topic, after the SUBACK.
    for (const [topic, r] of this.retained) {
      if (!granted.some((f) => filterMatches(f, topic))) continue;
      if (this.acl !== null && !this.acl.canRead(c.link.identity, topic)) {
        this.drop('unreadable', `${c.clientId} ${topic}`);
        continue;
      }
      this.deliver(c, topic, r.payload, Math.min(qos, r.qos) as 0 | 1, true);
    }
  }

  onClose(c: Conn, graceful: boolean): void {
    if (!this.up || !this.registered(c)) return;
    this.endSession(c, graceful ? 'disconnect' : 'closed', !graceful);
  }

  route(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): void {
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else if (this.retained.has(topic) || this.retained.size < MAX_RETAINED) this.retained.set(topic, { payload, qos });
      else this.drop('retained', topic);
    }
    const exact = this.#exact.get(topic);
    const candidates: Conn[] = exact === undefined ? [] : [...exact];
    for (const c of this.#wild) if (exact === undefined || !exact.has(c)) candidates.push(c);
    if (candidates.length > 1) candidates.sort((a, b) => (this.#order.get(a) ?? 0) - (this.#order.get(b) ?? 0));
    for (const c of candidates) {
      if (!this.registered(c)) continue; // kicked by an earlier delivery
      const q = grantFor(c.subs, topic);
      if (q < 0) continue;
      if (this.acl !== null && !this.acl.canRead(c.link.identity, topic)) {
        this.drop('unreadable', `${c.clientId} ${topic}`);
        continue;
      }
      this.deliver(c, topic, payload, Math.min(qos, q) as 0 | 1, false);
    }
  }

  deliver(c: Conn, topic: string, payload: Uint8Array, qos: 0 | 1, retained: boolean): void {
    if (!this.registered(c)) return;
    const what = `deliver ${topic} ${payload.length}`;
    const at = this.send(c, 1, what, () => c.client.message(c, topic, payload, retained, false), { topic });
    const dup = c.link.faults.duplicate;
    if (at !== null && qos === 1 && dup > 0 && this.random() < dup) this.send(c, 1, `dup ${what}`, () => c.client.message(c, topic, payload, retained, true), { topic, after: at + 1 });
  }

  /** The broker ends a connection: its will if `will`, and its client is told (after the link delay). */
  endSession(c: Conn, reason: SimDownReason | 'closed', will: boolean): void {
    if (!this.registered(c)) return;
    this.sessions.delete(c.clientId);
    this.#wild.delete(c);
    for (const f of c.subs.keys()) {
      const set = this.#exact.get(f);
      set?.delete(c);
      if (set?.size === 0) this.#exact.delete(f);
    }
    this.trace(`end ${c.clientId} ${reason}`);
    if (will && c.will !== null) {
      const w = c.will;
      if (this.#mayPublish(c, w.topic, w.payload, w.retain)) {
        this.stats.wills++;
        this.trace(`will ${c.clientId} ${w.topic} ${w.payload.length}`);
        this.route(w.topic, w.payload, w.qos, w.retain);
      } else this.drop('acl', `${c.clientId} will ${w.topic}`);
    }
    // (A client end that closed already, closing it or gracefully, is told nothing.)
    if (c.state !== 'closed' && reason !== 'closed') this.send(c, 1, `close ${reason}`, () => c.client.closed(c, reason), { close: true });
    this.settle(c);
  }

  kick(c: Conn, reason: SimDownReason): void {
    this.endSession(c, reason, true);
  }

  /** Keepalive: 1.5 keepalive periods from now the broker drops `c` if its peer is gone or the link (still, since `epoch`) cut. */
  watch(c: Conn, epoch: number): void {
    this.timers.set(() => {
      const l = c.link;
      if (this.registered(c) && (c.state === 'closed' || l.cutEpoch === epoch)) this.endSession(c, 'keepalive', true);
    }, detectMs(c));
  }

  #mayPublish(c: Conn, topic: string, payload: Uint8Array, retain: boolean): boolean {
    return this.acl === null || this.acl.canPublish(c.link.identity, topic, { retain, empty: payload.length === 0, bytes: payload.length });
  }

  // ------------------------------------------------------------ the world

  partition(identity: string, cut: boolean): void {
    const link = this.link(identity);
    if (link.cut === cut) return;
    link.cut = cut;
    this.trace(`partition ${identity} ${cut ? 'cut' : 'heal'}`);
    if (!cut) return;
    const epoch = ++link.cutEpoch;
    // Each end notices by its keepalive, and the connection ends then even if the cut healed
    // meanwhile: what was sent during the cut is lost, and MQTT over TCP never loses a packet
    // on a connection that lives on (it would stall the sender's QoS 1 window for good).
    for (const c of link.conns) {
      if (c.state === 'open') {
        const end = c.client;
        this.timers.set(() => end.keepalive(c, epoch), detectMs(c));
      }
      if (this.registered(c)) this.watch(c, epoch);
    }
  }

  restart(keepRetained: boolean, downMs: number): void {
    this.trace(`restart ${keepRetained ? 'keep' : 'clear'} down ${downMs}`);
    // The broker died: no wills (Mosquitto without persistence forgets them).
    for (const c of this.sessions.values()) this.endSession(c, 'restart', false);
    if (!keepRetained) this.retained.clear();
    this.up = false;
    if (this.#upTimer !== null) this.timers.clear(this.#upTimer);
    this.#upTimer = this.timers.set(() => {
      this.#upTimer = null;
      this.up = true;
      this.trace('broker up');
    }, downMs);
  }

  dropClients(identity: string, silent: boolean): void {
    const link = this.links.get(identity);
    if (link === undefined) return;
    for (const o of [...link.owners]) o.kill(silent);
  }

  close(): void {
    this.closed = true;
    this.timers.cancel();
  }
}

/** `base` with the fields `change` sets (an undefined field changes nothing), checked. */
function withFaults(base: LinkFaults, change: Partial<LinkFaults>): LinkFaults {
  const f: LinkFaults = {
    delayMs: change.delayMs ?? base.delayMs,
    jitterMs: change.jitterMs ?? base.jitterMs,
    loss: change.loss ?? base.loss,
    duplicate: change.duplicate ?? base.duplicate,
  };
  const ok = (x: number, max: number) => Number.isFinite(x) && x >= 0 && x <= max;
  if (!ok(f.delayMs, 1e9) || !ok(f.jitterMs, 1e9) || !ok(f.loss, 1) || !ok(f.duplicate, 1)) throw new RangeError(`sim-broker: bad link faults ${JSON.stringify(f)}`);
  return f;
}

function detectMs(c: Conn): number {
  return c.keepAliveMs > 0 ? c.keepAliveMs * 1.5 : NO_KEEPALIVE_DETECT_MS;
}

/** A topic a client may publish to (MQTT 3.1.1 4.7): not empty, no wildcard. */
function validTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= 65535 && !topic.includes('+') && !topic.includes('#');
}

/** A well-formed filter: '#' alone and last, '+' alone in its level. */
function validFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

/** MQTT 3.1.1 4.7: '+' one level, '#' this level and all below (and the parent); '$' topics never match a leading wildcard. */
export function filterMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const l = f[i];
    if (l === '#') return true;
    if (i >= t.length || (l !== '+' && l !== t[i])) return false;
  }
  return f.length === t.length;
}

/** The highest QoS of the subscriptions matching `topic`, or -1: one copy per client however many match. */
function grantFor(subs: ReadonlyMap<string, 0 | 1>, topic: string): number {
  let q = -1;
  for (const [f, qos] of subs) if (qos > q && filterMatches(f, topic)) q = qos;
  return q;
}

// ------------------------------------------------------------ clients

/**
 * A raw MQTT client of one identity: no reconnects, no resends (its owner's
 * logic does those). publish() while not connected returns -1; subscribe()
 * before CONNACK waits for it. Events of a connection stop once it is down.
 */
export class SimClient {
  readonly identity: string;
  readonly #b: BrokerCore;
  #conn: Conn | null = null;
  #nextId = 1;
  #dead = false;
  #onMessage: (topic: string, payload: Uint8Array, retained: boolean) => void = () => {};
  #onPublished: (id: number) => void = () => {};
  #onConnection: (up: boolean, reason: SimDownReason | null) => void = () => {};
  readonly #end: Endpoint;
  readonly #owner: Killable;

  /** @internal use SimBroker.client(). */
  constructor(core: BrokerCore, identity: string) {
    this.#b = core;
    this.identity = identity;
    this.#end = {
      connack: (c, ok) => this.#connack(c, ok),
      closed: (c, reason) => this.#down(c, reason, false),
      puback: (c, id) => {
        if (this.#current(c)) this.#onPublished(id);
        else core.drop('closed', `${c.clientId} puback ${id}`);
      },
      suback: (c, id) => {
        if (!this.#current(c)) return;
        const done = c.subAcks.get(id);
        c.subAcks.delete(id);
        done?.(null);
      },
      message: (c, topic, payload, retained, dup) => this.#message(c, topic, payload, retained, dup),
      keepalive: (c, epoch) => {
        const l = c.link;
        if (this.#current(c) && (l.cutEpoch === epoch || !core.registered(c))) this.#down(c, 'keepalive', true);
      },
    };
    this.#owner = { kill: (silent) => this.#kill(silent) };
  }

  get connected(): boolean {
    return this.#conn?.state === 'open';
  }

  onMessage(cb: (topic: string, payload: Uint8Array, retained: boolean) => void): void {
    this.#onMessage = cb;
  }
  /** QoS 1 PUBACKs of the current connection. */
  onPublished(cb: (packetId: number) => void): void {
    this.#onPublished = cb;
  }
  /** `reason` when down: why (null for the attempt's success). */
  onConnectionChange(cb: (up: boolean, reason: SimDownReason | null) => void): void {
    this.#onConnection = cb;
  }

  /** One attempt with a clean session; a connection still there is dropped first without a word to its owner (the broker sees it break). */
  connect(clientId: string, will?: SimWill | null, keepAliveSeconds = 30): void {
    if (this.#dead) return;
    this.#abandon();
    const b = this.#b;
    const w = will === undefined || will === null ? null : { topic: will.topic, payload: will.payload.slice(), qos: will.qos, retain: will.retain };
    const c = new Conn(this.#end, b.link(this.identity), clientId, w, Math.max(0, keepAliveSeconds) * 1000);
    this.#conn = c;
    c.link.conns.add(c);
    c.link.owners.add(this.#owner);
    c.timer = b.timers.set(() => this.#down(c, 'timeout', true), b.connectTimeoutMs);
    b.send(c, 0, 'connect', () => b.onConnect(c));
  }

  /** Returns the packet id, or -1 when not connected. The payload is copied now. */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): number {
    const c = this.#conn;
    if (c === null || c.state !== 'open') return -1;
    const id = this.#packetId();
    const bytes = payload.slice();
    const b = this.#b;
    b.send(c, 0, `publish ${topic} ${bytes.length}`, () => b.onPublish(c, topic, bytes, qos, retain, id), { topic });
    return id;
  }

  /** `done(null)` at SUBACK, `done(error)` if the connection ends first or there is none. */
  subscribe(filters: readonly string[], o: { qos?: 0 | 1; done?: (err: Error | null) => void } = {}): void {
    const c = this.#conn;
    if (c === null) {
      o.done?.(new Error('not connected'));
      return;
    }
    const id = this.#packetId();
    if (o.done !== undefined) {
      if (c.subAcks.size >= MAX_WAITING) this.#failOldest(c.subAcks);
      c.subAcks.set(id, o.done);
    }
    const req = { filters: [...filters], qos: o.qos ?? 1, id };
    if (c.state === 'open') this.#sendSubscribe(c, req);
    else if (c.queued.length < MAX_WAITING) c.queued.push(req);
  }

  /** Graceful (DISCONNECT: no will); reports the connection down at once, as MqttNet does. */
  disconnect(): void {
    const c = this.#conn;
    if (c === null) return;
    const graceful = c.state === 'open';
    this.#finish(c, 'disconnect');
    const b = this.#b;
    // Before CONNACK there is no DISCONNECT to send: the socket just closes.
    b.send(c, 0, graceful ? 'disconnect' : 'close', () => b.onClose(c, graceful), { close: true });
    this.#onConnection(false, 'disconnect');
  }

  /** The socket closes without DISCONNECT (the broker publishes the will); nothing more is reported of that connection. */
  close(): void {
    this.#abandon();
  }

  /** The device lost power: as dropClients({ silent: true }) for this client alone. */
  powerOff(): void {
    this.#kill(true);
  }

  #packetId(): number {
    const id = this.#nextId;
    this.#nextId = id >= MAX_PACKET_ID ? 1 : id + 1;
    return id;
  }

  #current(c: Conn): boolean {
    return this.#conn === c && c.state === 'open';
  }

  #sendSubscribe(c: Conn, req: { filters: string[]; qos: 0 | 1; id: number }): void {
    const b = this.#b;
    b.send(c, 0, `subscribe ${req.filters.join(',')}`, () => b.onSubscribe(c, req.filters, req.qos, req.id));
  }

  #connack(c: Conn, ok: boolean): void {
    if (this.#conn !== c || c.state !== 'connecting') return; // abandoned: its closing tells the broker
    if (!ok) return this.#down(c, 'refused', false);
    if (c.timer !== null) this.#b.timers.clear(c.timer);
    c.timer = null;
    c.state = 'open';
    this.#b.trace(`up ${c.clientId}`);
    for (const req of c.queued.splice(0)) this.#sendSubscribe(c, req);
    this.#onConnection(true, null);
  }

  #message(c: Conn, topic: string, payload: Uint8Array, retained: boolean, dup: boolean): void {
    const b = this.#b;
    if (!this.#current(c)) return b.drop('closed', `${c.clientId} deliver ${topic} ${payload.length}`);
    b.stats.delivered++;
    if (dup) b.stats.duplicates++;
    b.trace(`deliver ${c.clientId} ${topic} ${payload.length}${retained ? ' retained' : ''}${dup ? ' dup' : ''}`);
    this.#onMessage(topic, payload.slice(), retained);
  }

  /** Down for `reason`, reported to the owner; `tellBroker`: the socket is closed (the broker publishes the will). */
  #down(c: Conn, reason: SimDownReason, tellBroker: boolean): void {
    if (this.#conn !== c || c.state === 'closed') return;
    this.#finish(c, reason);
    if (tellBroker) {
      const b = this.#b;
      b.send(c, 0, 'close', () => b.onClose(c, false), { close: true });
    }
    this.#onConnection(false, reason);
  }

  /** The client end of `c` is over: nothing of it is reported after this. */
  #finish(c: Conn, reason: string): void {
    const b = this.#b;
    if (this.#conn === c) this.#conn = null;
    c.state = 'closed';
    if (c.timer !== null) b.timers.clear(c.timer);
    c.timer = null;
    c.queued.length = 0;
    b.trace(`down ${c.clientId} ${reason}`);
    const waiting = [...c.subAcks.values()];
    c.subAcks.clear();
    for (const done of waiting) done(new Error(`connection down (${reason})`));
    c.link.owners.delete(this.#owner);
    b.settle(c);
  }

  #failOldest(m: Map<number, (err: Error | null) => void>): void {
    for (const [id, done] of m) {
      m.delete(id);
      done(new Error('too many waiting for an acknowledgement'));
      return;
    }
  }

  #abandon(): void {
    const c = this.#conn;
    if (c === null) return;
    this.#finish(c, 'dropped');
    const b = this.#b;
    b.send(c, 0, 'close', () => b.onClose(c, false), { close: true });
  }

  /** The process died (`silent`: the power went: not even the OS closes the socket). Nothing is reported, ever again. */
  #kill(silent: boolean): void {
    this.#dead = true;
    const c = this.#conn;
    if (c === null) return;
    this.#finish(c, silent ? 'power' : 'killed');
    const b = this.#b;
    if (!silent) b.send(c, 0, 'close', () => b.onClose(c, false), { close: true });
    else if (b.registered(c)) b.watch(c, -1);
  }
}

/** The firmware's Net port on a SimClient (username and password are ignored: the identity is fixed). */
export class SimNet implements Net {
  readonly client: SimClient;
  constructor(client: SimClient) {
    this.client = client;
  }
  connect(o: NetConnectOptions): void {
    this.client.connect(o.clientId, o.will, o.keepAliveSeconds);
  }
  publish(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): number {
    return this.client.publish(topic, payload, qos, retain);
  }
  subscribe(filters: readonly string[]): void {
    this.client.subscribe(filters);
  }
  disconnect(): void {
    this.client.disconnect();
  }
  onMessage(cb: (topic: string, payload: Uint8Array) => void): void {
    this.client.onMessage((topic, payload) => cb(topic, payload));
  }
  onPublished(cb: (packetId: number) => void): void {
    this.client.onPublished(cb);
  }
  onConnectionChange(cb: (connected: boolean) => void): void {
    this.client.onConnectionChange((up) => cb(up));
  }
}

/** The central's transport: MqttTransport's behaviour (clean session, QoS 1, keepalive 30 s, a reconnect every second until end()). */
class SimTransport implements CentralTransport {
  readonly url = 'sim://broker';
  readonly #b: BrokerCore;
  readonly #identity: string;
  constructor(core: BrokerCore, identity: string) {
    this.#b = core;
    this.#identity = identity;
  }
  open(clientId: string, on: CentralLinkEvents): CentralLink {
    return new SimCentralLink(this.#b, new SimClient(this.#b, this.#identity), clientId, on);
  }
}

/**
 * One central connection that reconnects on its own. A publish not
 * acknowledged when its connection ends fails (done(error)) rather than
 * waiting for the next connection, and one made while disconnected fails at
 * once: "done(error) when it will not be" acknowledged.
 */
class SimCentralLink implements CentralLink {
  readonly #b: BrokerCore;
  readonly #client: SimClient;
  readonly #clientId: string;
  readonly #pending = new Map<number, (err: Error | null) => void>();
  #retry: TimerHandle | null = null;
  #ended = false;
  #finished = false;
  #dead = false;
  #ending: (() => void)[] = [];
  readonly #owner: Killable;
  readonly #link: Link;

  constructor(core: BrokerCore, client: SimClient, clientId: string, on: CentralLinkEvents) {
    this.#b = core;
    this.#client = client;
    this.#clientId = clientId;
    this.#link = core.link(client.identity);
    this.#owner = { kill: () => this.#kill() };
    this.#link.owners.add(this.#owner);
    client.onMessage((topic, payload, retained) => on.message(topic, payload, retained));
    client.onPublished((id) => {
      const done = this.#pending.get(id);
      if (done === undefined) return;
      this.#pending.delete(id);
      done(null);
      if (this.#ended && this.#pending.size === 0) this.#finish();
    });
    client.onConnectionChange((up, reason) => {
      if (up) return on.connect();
      if (reason === 'refused') on.error(new Error('Connection refused: Not authorized'));
      this.#fail(`connection down (${reason ?? 'unknown'})`);
      if (this.#ended) this.#finish();
      else this.#schedule();
    });
    this.#connect();
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  publish(topic: string, payload: Uint8Array, retain: boolean, done: (err: Error | null) => void): void {
    if (this.#ended || !this.#client.connected) {
      done(new Error('not connected'));
      return;
    }
    const id = this.#client.publish(topic, payload, 1, retain);
    if (this.#pending.size >= MAX_WAITING) this.#failOne();
    this.#pending.set(id, done);
  }

  subscribe(filters: readonly string[], done: (err: Error | null) => void): void {
    if (this.#ended || !this.#client.connected) {
      done(new Error('not connected'));
      return;
    }
    this.#client.subscribe(filters, { qos: 1, done });
  }

  /** `force` fails what waits for a PUBACK; otherwise that is waited for (or the connection's end). */
  end(force: boolean, done: () => void): void {
    if (this.#finished) return done();
    this.#ended = true;
    this.#ending.push(done);
    if (this.#retry !== null) this.#b.timers.clear(this.#retry);
    this.#retry = null;
    if (force || this.#pending.size === 0 || !this.#client.connected) this.#finish();
  }

  #connect(): void {
    this.#retry = null;
    if (this.#ended || this.#dead) return;
    this.#client.connect(this.#clientId, null, CENTRAL_KEEPALIVE_S);
  }

  #schedule(): void {
    if (this.#retry === null && !this.#dead) this.#retry = this.#b.timers.set(() => this.#connect(), CENTRAL_RECONNECT_MS);
  }

  #fail(why: string): void {
    const waiting = [...this.#pending.values()];
    this.#pending.clear();
    for (const done of waiting) done(new Error(why));
  }

  #failOne(): void {
    for (const [id, done] of this.#pending) {
      this.#pending.delete(id);
      done(new Error('too many waiting for an acknowledgement'));
      return;
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#link.owners.delete(this.#owner);
    this.#fail('ended');
    this.#client.disconnect();
    const ending = this.#ending;
    this.#ending = [];
    for (const done of ending) done();
  }

  // The process is gone: no reconnects, no callbacks (its client is killed with it).
  #kill(): void {
    this.#dead = true;
    this.#finished = true;
    if (this.#retry !== null) this.#b.timers.clear(this.#retry);
    this.#retry = null;
    this.#pending.clear();
    this.#ending = [];
    this.#link.owners.delete(this.#owner);
  }
}

/** The broker, the network to it, and the clients it hands out. */
export class SimBroker {
  readonly #b: BrokerCore;

  constructor(o: SimBrokerOptions) {
    this.#b = new BrokerCore(o);
  }

  /** False while restarting (connects fail). */
  get up(): boolean {
    return this.#b.up;
  }

  get stats(): SimBrokerStats {
    return this.#b.stats;
  }

  /** The firmware Net port for one gate; `identity`: what the broker authenticated (its gate id). */
  net(identity: string): SimNet {
    return new SimNet(new SimClient(this.#b, identity));
  }

  /** For the central: each open() connects and reconnects every 1000 ms until end(). */
  transport(identity: string): CentralTransport {
    return new SimTransport(this.#b, identity);
  }

  /** A raw client (an adversary, tests). */
  client(identity: string): SimClient {
    return new SimClient(this.#b, identity);
  }

  /** Changes some of one identity's link faults (for packets sent from now on). */
  setLink(identity: string, faults: Partial<LinkFaults>): void {
    const link = this.#b.link(identity);
    link.faults = withFaults(link.faults, faults);
  }

  /** Cuts (or heals) the network between that identity's clients and the broker. */
  partition(identity: string, cut: boolean): void {
    this.#b.partition(identity, cut);
  }

  /** Every connection drops (no wills), retained messages kept or not; down for downMs. */
  restart(o: { readonly keepRetained: boolean; readonly downMs: number }): void {
    this.#b.restart(o.keepRetained, o.downMs);
  }

  /**
   * Kills every client (and central transport link) of `identity`: they never
   * report, publish or reconnect again. The broker sees their connections
   * close after the link delay (the process died, the OS closed its sockets)
   * and publishes their wills; `silent` (the power went): only after 1.5
   * keepalive periods.
   */
  dropClients(identity: string, o: { readonly silent?: boolean } = {}): void {
    this.#b.dropClients(identity, o.silent === true);
  }

  retainedTopics(): string[] {
    return [...this.#b.retained.keys()];
  }

  /** Cancels every timer of the broker, its links and its clients. */
  close(): void {
    this.#b.close();
  }
}
