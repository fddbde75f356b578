// The gate's side of sync (docs/SYNC.md), over the thin Net port with MQTT
// 3.1.1 semantics only. The device's ECMA-419 MQTT client neither reconnects,
// resubscribes nor retransmits, so this engine owns all three: reconnection
// with exponential backoff and jitter, subscriptions on every connect, an
// in-flight table of QoS 1 publishes, and resends (event batches are re-read
// from the journal from the last ack; requests are repeated on timeout).
//
// It never blocks a decision: every callback and every tick does bounded
// work (one erase step, a window of requests, one batch).
//
// Every message between the gate and the central is MACed with the gate's own
// key (issue 12, protocol/mac-envelope.ts): everything published up (status,
// the will, event batches, sync requests, command results) is sealed for its
// exact topic, and an ack is believed only if it opens under that key for
// the gate's ack topic. Heads, deltas and commands stay Ed25519-signed.
// Every refusal is counted by cause in a RefusalLog (status `refused`, and a
// throttled journal alarm when the gate owns one).

import { KeyRing, openSigned } from '../../protocol/envelope.js';
import { openMaced, sealMaced } from '../../protocol/mac-envelope.js';
import { CommandResult, Delta, EventAck, EventBatch, GateStatus, Head, SyncRequest, decodeChunk, decodeManifest, LIMITS, type CommandResultMessage, type GateStatusMessage, type HeadMessage } from '../../protocol/messages.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { bytesEqual } from '../../protocol/hex.js';
import { peekType, type MessageOf, type MessageSchema } from '../../protocol/schema.js';
import type { Topics } from '../../protocol/topics.js';
import type { Crypto } from '../../protocol/crypto.js';
import type { Clock, Net, Timers, TimerHandle } from '../ports.js';
import type { GateTime } from './gate-time.js';
import { RefusalLog } from './refusal-log.js';
import type { WhitelistStore } from './whitelist-store.js';

/** What the sync engine needs from the journal. */
export interface EventSource {
  readonly epoch: number;
  /** Highest seq appended (0 = none). */
  readonly lastSeq: number;
  /** Highest seq acknowledged by the central (0 = none) and chain(acked). */
  readonly acked: number;
  readonly ackedChain: Uint8Array;
  /** Copies records fromSeq.. (gap tombstones for unreadable ones) into `out`; returns how many. */
  readBatch(fromSeq: number, maxCount: number, out: Uint8Array): number;
  /** Durably records the central's ack; frees space up to seq. */
  ack(seq: number, chain: Uint8Array): void;
}

export interface SyncConfig {
  readonly keepAliveSeconds: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  /** Chunks asked at once while pulling an image. */
  readonly chunkWindow: number;
  /** The retained status (version, backlog) is refreshed this often. */
  readonly statusIntervalMs: number;
  /** Above this many versions behind, pull an image instead of deltas. */
  readonly deltaLimit: number;
  readonly batchMax: number;
  readonly maxBatchesInFlight: number;
  readonly tickMs: number;
  /** A request not answered within this is repeated; after 3 repeats deltas fall back to an image. */
  readonly requestTimeoutMs: number;
  /**
   * Batches sent but not acknowledged by the central within this are sent
   * again from the last ack (a broker may accept a batch while the central is
   * not subscribed, e.g. right after either restarted).
   */
  readonly ackTimeoutMs: number;
}

/** Sent batches remembered for checking acks (at least maxBatchesInFlight, with room for resends). */
const SENT_RING = 8;

export const DEFAULT_SYNC: SyncConfig = {
  keepAliveSeconds: 30,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  chunkWindow: 4,
  deltaLimit: 256,
  batchMax: 256,
  maxBatchesInFlight: 2,
  tickMs: 50,
  requestTimeoutMs: 3000,
  ackTimeoutMs: 5000,
  statusIntervalMs: 30_000,
};

export interface SyncOptions {
  readonly gate: string;
  readonly list: string;
  readonly net: Net;
  readonly timers: Timers;
  readonly clock: Clock;
  readonly crypto: Crypto;
  readonly keys: KeyRing;
  /** The gate's own MAC key (provisioning gateKey): seals everything up, opens acks. */
  readonly gateKey: Uint8Array;
  /** Its generation (provisioning gateKeyId): the kid of sealed messages, the only kid an ack may carry. */
  readonly gateKeyId: number;
  /** Where refusals are counted (the gate shares one with its command handler); default: a log of its own that journals nothing. */
  readonly refusals?: RefusalLog;
  readonly topics: Topics;
  readonly store: WhitelistStore;
  readonly time: GateTime;
  readonly events: EventSource | null;
  /** Fields of the birth/death status that only the gate knows. */
  readonly status: () => Omit<GateStatusMessage, 'gate' | 'state' | 'lists' | 'at' | 'conn' | 'refused'>;
  readonly config?: Partial<SyncConfig>;
  /** Jitter source in [0, 1): seeded in simulation. */
  readonly random: () => number;
  /** Remote commands, already routed (the command handler verifies them). */
  readonly onCommand?: (payload: Uint8Array) => void;
  /** Called whenever the whitelist version or connection changes (for status displays). */
  readonly onChange?: () => void;
}

export interface SyncStats {
  connects: number;
  disconnects: number;
  rejected: Record<string, number>;
  deltasApplied: number;
  imagesInstalled: number;
  chunksWritten: number;
  batchesSent: number;
  batchesAcked: number;
  requests: number;
  /** Times unacknowledged batches were sent again after ackTimeoutMs. */
  resends: number;
}

type Pull = {
  epoch: number;
  version: number;
  head: HeadMessage;
  phase: 'manifest' | 'erasing' | 'chunks';
  requestedAt: number;
  /** Monotonic ms of the last progress (start, manifest, a chunk written). */
  progressAt: number;
  asked: Map<number, number>; // chunk index -> ms asked
};

export class SyncEngine {
  readonly stats: SyncStats = { connects: 0, disconnects: 0, rejected: {}, deltasApplied: 0, imagesInstalled: 0, chunksWritten: 0, batchesSent: 0, batchesAcked: 0, requests: 0, resends: 0 };
  readonly #o: SyncOptions;
  readonly #c: SyncConfig;
  readonly refusals: RefusalLog;
  readonly #keyFor: (kid: number) => Uint8Array | null;
  readonly #topic: { status: string; events: string; sync: string; cmdres: string; ack: string };
  #connected = false;
  #connecting = false;
  #attempts = 0;
  #reconnectTimer: TimerHandle | null = null;
  #tick: TimerHandle | null = null;
  #closed = false;
  #head: HeadMessage | null = null;
  #pull: Pull | null = null;
  #headRetry: HeadMessage | null = null; // verified, refused only for lack of room: offered again each tick
  #deltaAsk: { from: number; at: number; tries: number } | null = null;
  // uploads
  readonly #inflight = new Map<number, { kind: 'batch'; last: number } | { kind: 'other' }>();
  #nextSeq = 1;
  #prevChain: Uint8Array = new Uint8Array(32);
  #ackWaitSince = -1; // monotonic ms since when sent batches wait for an ack (-1: none outstanding)
  readonly #batchBuf: Uint8Array;
  readonly #chainBuf = new Uint8Array(32 + RECORD_BYTES);
  // The last SENT_RING batches sent (first, last, chain before and after): an ack
  // at a batch end is checked against its chain, one inside a batch recomputed
  // from the batch's prev. Fixed capacity, reused entries.
  readonly #sent: { first: number; last: number; prev: Uint8Array; chain: Uint8Array }[] = [];
  #sentNext = 0;

  constructor(options: SyncOptions) {
    this.#o = options;
    this.#c = { ...DEFAULT_SYNC, ...options.config };
    this.#batchBuf = new Uint8Array(this.#c.batchMax * RECORD_BYTES);
    this.refusals = options.refusals ?? new RefusalLog({ clock: options.clock });
    const key = options.gateKey;
    const kid = options.gateKeyId;
    this.#keyFor = (k) => (k === kid ? key : null);
    const t = options.topics;
    const g = options.gate;
    this.#topic = { status: t.gate(g, 'status'), events: t.gate(g, 'events'), sync: t.gate(g, 'sync'), cmdres: t.gate(g, 'cmdres'), ack: t.gate(g, 'ack') };
    options.net.onMessage((topic, payload) => this.#onMessage(topic, payload));
    options.net.onPublished((id) => this.#onPublished(id));
    options.net.onConnectionChange((up) => this.#onConnection(up));
  }

  get connected(): boolean {
    return this.#connected;
  }
  get head(): HeadMessage | null {
    return this.#head;
  }
  get pulling(): boolean {
    return this.#pull !== null;
  }
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Seals and publishes a command result (QoS 1); false when offline (the command is then reported by its journal record). */
  publishResult(result: CommandResultMessage): boolean {
    if (!this.#connected) return false;
    return this.#publish(this.#topic.cmdres, this.#seal(CommandResult, result, this.#topic.cmdres), false, { kind: 'other' });
  }

  start(): void {
    this.#closed = false;
    this.#tick = this.#o.timers.repeat(() => this.#onTick(), this.#c.tickMs);
    this.#connect();
  }

  close(): void {
    this.#closed = true;
    if (this.#tick !== null) this.#o.timers.clear(this.#tick);
    if (this.#reconnectTimer !== null) this.#o.timers.clear(this.#reconnectTimer);
    this.#tick = null;
    this.#reconnectTimer = null;
    if (this.#connected || this.#connecting) this.#o.net.disconnect();
    this.#connected = false;
    this.#connecting = false;
  }

  /** A refused message: counted here and in the refusal log (status `refused`, throttled alarm). */
  #reject(code: string): void {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    this.refusals.refuse(code);
  }

  /** A good message put off for lack of room (compaction running): counted here only, it is not a forgery. */
  #defer(code: string): void {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
  }

  #seal<M extends MessageSchema>(schema: M, value: MessageOf<M>, topic: string): Uint8Array {
    return sealMaced(schema, value, topic, this.#o.gateKey, this.#o.gateKeyId, this.#o.crypto);
  }

  // ---- connection ----

  // The will and the birth of one connection carry the same `at`: with equal
  // boot counters the central orders them by arrival, so the death that
  // follows a birth always wins, and a stale one never does (docs/SYNC.md).
  #connectAt = 0;
  // Connections within this boot (RAM): the will set at CONNECT and the birth
  // that follows carry the same value, so the central orders statuses by
  // (journal, boot, conn) and a replayed older one loses; no flash per message.
  #conn = 0;
  // Status is re-published (retained) when the whitelist version changes, at most once a
  // second, and every statusIntervalMs for the backlog.
  #statusDirty = false;
  #statusAt = 0;

  #status(state: 'online' | 'offline'): Uint8Array {
    const s = this.#o.status();
    const lists = this.#o.store.activeSlot < 0 ? [] : [{ list: this.#o.list, epoch: this.#o.store.epoch, version: this.#o.store.version }];
    const value: GateStatusMessage = { ...s, gate: this.#o.gate, state, lists, at: this.#connectAt, conn: this.#conn, refused: this.refusals.top(LIMITS.maxRefusalCauses) };
    return this.#seal(GateStatus, value, this.#topic.status);
  }

  #connect(): void {
    if (this.#closed || this.#connected || this.#connecting) return;
    this.#connecting = true;
    this.#connectAt = this.#o.time.read().now;
    this.#conn++;
    this.#o.net.connect({
      clientId: this.#o.gate,
      keepAliveSeconds: this.#c.keepAliveSeconds,
      will: { topic: this.#topic.status, payload: this.#status('offline'), qos: 1, retain: true },
    });
  }

  #onConnection(up: boolean): void {
    this.#connecting = false;
    if (up) {
      this.#connected = true;
      this.#attempts = 0;
      this.stats.connects++;
      const t = this.#o.topics;
      this.#o.net.subscribe([t.list(this.#o.list, 'head'), t.list(this.#o.list, 'delta'), t.gate(this.#o.gate, 'data'), t.gate(this.#o.gate, 'ack'), t.gate(this.#o.gate, 'cmd')]);
      this.#publish(this.#topic.status, this.#status('online'), true, { kind: 'other' });
      this.#statusAt = this.#o.clock.monotonicMs();
      this.#statusDirty = false;
      // Everything unacknowledged is sent again from the last ack.
      this.#restartUpload();
      this.#deltaAsk = null;
      if (this.#pull !== null) {
        this.#pull.asked.clear();
        this.#pull.requestedAt = 0;
      }
      this.#plan();
      this.#upload();
    } else {
      const was = this.#connected;
      this.#connected = false;
      this.#inflight.clear();
      if (was) this.stats.disconnects++;
      this.#scheduleReconnect();
    }
    this.#o.onChange?.();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== null) return;
    const base = Math.min(this.#c.reconnectMaxMs, this.#c.reconnectMinMs * 2 ** Math.min(this.#attempts, 16));
    const delay = Math.round(base * (0.5 + this.#o.random() * 0.5));
    this.#attempts++;
    this.#reconnectTimer = this.#o.timers.set(() => {
      this.#reconnectTimer = null;
      this.#connect();
    }, delay);
  }

  #publish(topic: string, payload: Uint8Array, retain: boolean, what: { kind: 'batch'; last: number } | { kind: 'other' }): boolean {
    if (!this.#connected) return false;
    const id = this.#o.net.publish(topic, payload, 1, retain);
    if (id < 0) return false;
    this.#inflight.set(id, what);
    return true;
  }

  #onPublished(id: number): void {
    this.#inflight.delete(id);
    this.#upload();
  }

  // ---- incoming ----

  #onMessage(topic: string, payload: Uint8Array): void {
    const parsed = this.#o.topics.parse(topic);
    if (!parsed.ok) return this.#reject('bad_topic');
    const p = parsed.value;
    if (p.scope === 'list') {
      if (p.list !== this.#o.list) return;
      if (p.kind === 'head') return this.#onHead(payload);
      return this.#onDelta(payload);
    }
    if (p.gate !== this.#o.gate) return this.#reject('not_for_me');
    if (p.kind === 'ack') return this.#onAck(payload);
    if (p.kind === 'cmd') {
      this.#o.onCommand?.(payload);
      return;
    }
    if (p.kind === 'data') {
      const t = peekType(payload);
      if (t === 'signed') return this.#onDelta(payload);
      if (t === 'manifest') return this.#onManifest(payload);
      if (t === 'chunk') return this.#onChunk(payload);
      return this.#reject('unexpected_message');
    }
  }

  #onHead(payload: Uint8Array): void {
    const r = openSigned(Head, payload, this.#o.keys);
    if (!r.ok) return this.#reject(`head_${r.error.code}`);
    const h = r.value;
    if (h.list !== this.#o.list) return this.#reject('head_other_list');
    this.#acceptHead(h);
  }

  #acceptHead(h: HeadMessage): void {
    const time = this.#o.time.read();
    const e = this.#o.store.acceptHead(h, time.now, time.trusted);
    this.#headRetry = e === 'compacting' ? h : null;
    if (e === 'compacting') return this.#defer('head_compacting');
    if (e !== null && e !== 'not_newer') return this.#reject(`head_${e}`);
    if (e === null) this.#o.time.learnSignedTime(h.issuedAt);
    if (this.#head === null || e === null) this.#head = h;
    this.#plan();
    this.#o.onChange?.();
  }

  #onDelta(payload: Uint8Array): void {
    const r = openSigned(Delta, payload, this.#o.keys);
    if (!r.ok) return this.#reject(`delta_${r.error.code}`);
    const d = r.value;
    if (d.list !== this.#o.list) return this.#reject('delta_other_list');
    const e = this.#o.store.applyDelta(d.epoch, d.version, d.records);
    if (e === null) {
      this.stats.deltasApplied++;
      this.#statusDirty = true;
      if (this.#deltaAsk !== null && d.version >= this.#deltaAsk.from) this.#deltaAsk = { ...this.#deltaAsk, from: d.version + 1, at: this.#o.clock.monotonicMs() };
      this.#o.onChange?.();
      this.#plan();
      return;
    }
    if (e === 'old_version') return; // duplicate delivery
    if (e === 'version_gap' || e === 'no_base' || e === 'wrong_epoch') {
      this.#plan();
      return;
    }
    if (e === 'compacting') {
      // The overlay log makes room in the background; #plan asks for this range again once it has.
      this.#defer('delta_compacting');
      this.#deltaAsk = null;
      return;
    }
    if (e === 'overlay_full') {
      this.#defer('delta_overlay_full');
      this.#startPull(true);
      return;
    }
    this.#reject(`delta_${e}`);
  }

  #onManifest(payload: Uint8Array): void {
    const r = decodeManifest(payload);
    if (!r.ok) return this.#reject(`manifest_${r.error.code}`);
    const m = r.value;
    const pull = this.#pull;
    if (pull === null || pull.phase !== 'manifest' || m.version !== pull.version || m.epoch !== pull.epoch || m.list !== this.#o.list) return this.#reject('manifest_unexpected');
    if (m.imageSize !== pull.head.imageSize || m.chunkSize !== pull.head.chunkSize || !bytesEqual(this.#o.crypto.sha256(m.hashes), pull.head.imageRoot)) return this.#reject('manifest_mismatch');
    const e = this.#o.store.beginInstall({ epoch: m.epoch, version: m.version, imageSize: m.imageSize, chunkSize: m.chunkSize }, m.hashes);
    if (e !== null) {
      this.#reject(`manifest_${e}`);
      this.#pull = null;
      return;
    }
    pull.phase = 'erasing';
    pull.progressAt = this.#o.clock.monotonicMs();
  }

  #onChunk(payload: Uint8Array): void {
    const r = decodeChunk(payload);
    if (!r.ok) return this.#reject(`chunk_${r.error.code}`);
    const c = r.value;
    const pull = this.#pull;
    if (pull === null || pull.phase !== 'chunks' || c.version !== pull.version || c.epoch !== pull.epoch) return this.#reject('chunk_unexpected');
    const e = this.#o.store.writeChunk(c.index, c.data);
    pull.asked.delete(c.index);
    if (e !== null) return this.#reject(`chunk_${e}`);
    this.stats.chunksWritten++;
    pull.progressAt = this.#o.clock.monotonicMs();
    if (this.#o.store.missingChunks(1).length === 0) return this.#commit();
    this.#askChunks();
  }

  #commit(): void {
    const done = this.#o.store.commitInstall();
    if (done === 'compacting') return this.#defer('image_compacting'); // the pull stays: the tick commits again
    this.#pull = null;
    if (done !== null) return this.#reject(`image_${done}`);
    this.stats.imagesInstalled++;
    this.#statusDirty = true;
    this.#o.onChange?.();
    this.#plan();
  }

  #onAck(payload: Uint8Array): void {
    // MACed by the central for this gate's ack topic under the gate's kid, or
    // nothing: a plain ack, a forged MAC, another kid or another topic's MAC
    // (ack_wrong_message_type / ack_bad_mac / ack_unknown_key). Nothing is freed.
    const r = openMaced(EventAck, payload, this.#topic.ack, this.#keyFor, this.#o.crypto);
    if (!r.ok) return this.#reject(`ack_${r.error.code}`);
    const a = r.value;
    const ev = this.#o.events;
    if (ev === null || a.gate !== this.#o.gate || a.epoch !== ev.epoch) return this.#reject('ack_other_epoch');
    if (a.seq > ev.lastSeq) return this.#reject('ack_beyond_journal');
    if (a.seq <= ev.acked) return; // old or duplicate
    // An ack frees journal space: believe it only if its chain is our own chain(seq).
    const expected = this.#chainAt(a.seq);
    if (expected === null) return this.#reject('ack_unverifiable'); // too far past what we can recompute: the resend brings a checkable one
    if (!bytesEqual(expected, a.chain)) return this.#reject('ack_bad_chain');
    ev.ack(a.seq, a.chain);
    if (ev.acked < a.seq) return this.#defer('ack_compacting'); // not durable yet: the resend brings it again
    this.stats.batchesAcked++;
    this.#ackWaitSince = this.#nextSeq - 1 > a.seq ? this.#o.clock.monotonicMs() : -1;
    if (this.#nextSeq <= a.seq) {
      this.#nextSeq = a.seq + 1;
      this.#prevChain = a.chain.slice();
    }
    this.#upload();
  }

  // ---- whitelist sync ----

  /** Decides what to ask for, from the head and what the store holds. */
  #plan(): void {
    const h = this.#head;
    if (h === null || !this.#connected) return;
    const store = this.#o.store;
    if (this.#pull !== null) {
      const pull = this.#pull;
      // A head that moved on by a few versions does not restart the pull (under steady
      // change it would never finish): finish this image, then catch up with deltas.
      // Only a stalled pull, another epoch or a head too far ahead start over.
      const stalled = this.#o.clock.monotonicMs() - pull.progressAt > 3 * this.#c.requestTimeoutMs;
      if (h.epoch === pull.epoch && h.version - pull.version <= this.#c.deltaLimit && !stalled) return;
      if (h.epoch === pull.epoch && h.version === pull.version) {
        pull.progressAt = this.#o.clock.monotonicMs(); // stalled on the latest version: keep asking
        return;
      }
      this.#pull = null;
      store.abortInstall();
    }
    const behind = h.version - store.version;
    if (store.activeSlot < 0 || h.epoch !== store.epoch || behind > this.#c.deltaLimit) return this.#startPull(false);
    if (behind <= 0) {
      this.#deltaAsk = null;
      return;
    }
    if (store.overlayBlocked) return; // deltas would be refused until the overlay log has room
    const from = store.version + 1;
    const now = this.#o.clock.monotonicMs();
    const ask = this.#deltaAsk;
    if (ask !== null && ask.from === from && now - ask.at < this.#c.requestTimeoutMs) return;
    const tries = ask !== null && ask.from === from ? ask.tries + 1 : 0;
    if (tries > 3) return this.#startPull(true);
    this.#deltaAsk = { from, at: now, tries };
    this.#request('deltas', store.version, from, Math.min(LIMITS.syncWindow, behind));
  }

  #startPull(force: boolean): void {
    const h = this.#head;
    if (h === null) return;
    if (!force && this.#pull !== null && this.#pull.version === h.version) return;
    this.#deltaAsk = null;
    const now = this.#o.clock.monotonicMs();
    this.#pull = { epoch: h.epoch, version: h.version, head: h, phase: 'manifest', requestedAt: now, progressAt: now, asked: new Map() };
    this.#request('manifest', h.version, 0, 1);
  }

  #askChunks(): void {
    const pull = this.#pull;
    if (pull === null || pull.phase !== 'chunks' || !this.#connected) return;
    const now = this.#o.clock.monotonicMs();
    for (const [i, at] of pull.asked) if (now - at > this.#c.requestTimeoutMs) pull.asked.delete(i);
    if (pull.asked.size >= this.#c.chunkWindow) return;
    const missing = this.#o.store.missingChunks(this.#c.chunkWindow * 4).filter((i) => !pull.asked.has(i));
    // Ask for a contiguous run starting at the first missing chunk not in flight.
    const first = missing[0];
    if (first === undefined) return;
    let count = 1;
    while (count < this.#c.chunkWindow - pull.asked.size && missing[count] === first + count) count++;
    for (let i = 0; i < count; i++) pull.asked.set(first + i, now);
    this.#request('chunks', pull.version, first, count);
  }

  #request(want: 'deltas' | 'manifest' | 'chunks', version: number, from: number, count: number): void {
    const h = this.#head;
    if (h === null) return;
    this.stats.requests++;
    if (!this.#connected) return; // not sealed for nothing
    this.#publish(this.#topic.sync, this.#seal(SyncRequest, { gate: this.#o.gate, list: this.#o.list, epoch: h.epoch, want, version, from, count }, this.#topic.sync), false, { kind: 'other' });
  }

  #onTick(): void {
    if (this.#headRetry !== null) this.#acceptHead(this.#headRetry);
    const pull = this.#pull;
    if (pull !== null) {
      const now = this.#o.clock.monotonicMs();
      if (pull.phase === 'erasing') {
        // One erase per tick: tens of ms at most, never on the tap path.
        pull.progressAt = now;
        if (this.#o.store.eraseStep()) {
          pull.phase = 'chunks';
          this.#askChunks();
        }
      } else if (pull.phase === 'manifest' && this.#connected && now - pull.requestedAt > this.#c.requestTimeoutMs) {
        pull.requestedAt = now;
        this.#request('manifest', pull.version, 0, 1);
      } else if (pull.phase === 'chunks') {
        if (this.#o.store.missingChunks(1).length === 0) this.#commit();
        else this.#askChunks();
      }
    } else this.#plan();
    const now = this.#o.clock.monotonicMs();
    if (this.#connected && ((this.#statusDirty && now - this.#statusAt >= 1000) || now - this.#statusAt >= this.#c.statusIntervalMs)) {
      if (this.#publish(this.#topic.status, this.#status('online'), true, { kind: 'other' })) {
        this.#statusAt = now;
        this.#statusDirty = false;
      }
    }
    const ev = this.#o.events;
    if (ev !== null && this.#connected && this.#ackWaitSince >= 0 && this.#o.clock.monotonicMs() - this.#ackWaitSince > this.#c.ackTimeoutMs) {
      this.stats.resends++;
      this.#restartUpload();
    }
    this.#upload();
  }

  // ---- event upload ----

  #restartUpload(): void {
    const ev = this.#o.events;
    if (ev === null) return;
    this.#nextSeq = ev.acked + 1;
    this.#prevChain = ev.ackedChain.slice();
    this.#ackWaitSince = -1;
  }

  #upload(): void {
    const ev = this.#o.events;
    if (ev === null || !this.#connected) return;
    let transport = 0;
    for (const f of this.#inflight.values()) if (f.kind === 'batch') transport++;
    // Bounded: at most maxBatchesInFlight batches beyond the central's ack.
    const window = this.#c.maxBatchesInFlight * this.#c.batchMax;
    while (transport < this.#c.maxBatchesInFlight && this.#nextSeq <= ev.lastSeq && this.#nextSeq - 1 - ev.acked < window) {
      const count = ev.readBatch(this.#nextSeq, Math.min(this.#c.batchMax, window - (this.#nextSeq - 1 - ev.acked)), this.#batchBuf);
      if (count <= 0) return;
      const records = this.#batchBuf.slice(0, count * RECORD_BYTES);
      const prev = this.#prevChain;
      const chain = this.#chainOver(prev, records);
      const first = this.#nextSeq;
      const ok = this.#publish(this.#topic.events, this.#seal(EventBatch, { gate: this.#o.gate, epoch: ev.epoch, first, count, records, prev, chain }, this.#topic.events), false, { kind: 'batch', last: first + count - 1 });
      if (!ok) return;
      this.stats.batchesSent++;
      this.#remember(first, first + count - 1, prev, chain);
      this.#nextSeq = first + count;
      this.#prevChain = chain;
      if (this.#ackWaitSince < 0) this.#ackWaitSince = this.#o.clock.monotonicMs();
      transport++;
    }
  }

  #remember(first: number, last: number, prev: Uint8Array, chain: Uint8Array): void {
    let e = this.#sent[this.#sentNext];
    if (e === undefined) {
      e = { first: 0, last: 0, prev: new Uint8Array(32), chain: new Uint8Array(32) };
      this.#sent[this.#sentNext] = e;
    }
    e.first = first;
    e.last = last;
    e.prev.set(prev);
    e.chain.set(chain);
    this.#sentNext = (this.#sentNext + 1) % SENT_RING;
  }

  /**
   * chain(seq) of our own journal, for acked < seq <= lastSeq: from a sent
   * batch that holds seq (its end, or recomputed from its prev), else from the
   * durable ack's chain. At most one upload window of records is rehashed;
   * null when seq lies further than that from any known chain value.
   */
  #chainAt(seq: number): Uint8Array | null {
    const ev = this.#o.events;
    if (ev === null) return null;
    let baseSeq = ev.acked;
    let base = ev.ackedChain;
    for (const e of this.#sent) {
      if (e.first > seq || e.last < seq || e.first - 1 < baseSeq) continue;
      if (e.last === seq) return e.chain;
      baseSeq = e.first - 1;
      base = e.prev;
    }
    if (seq - baseSeq > this.#c.maxBatchesInFlight * this.#c.batchMax) return null;
    let chain = base;
    for (let from = baseSeq + 1; from <= seq; ) {
      const n = ev.readBatch(from, Math.min(this.#c.batchMax, seq - from + 1), this.#batchBuf);
      if (n <= 0) return null;
      chain = this.#chainOver(chain, this.#batchBuf.subarray(0, n * RECORD_BYTES));
      from += n;
    }
    return chain;
  }

  /** chain(i) = SHA-256(chain(i-1) ‖ record i), over a batch. Sealing happens here, off the tap path. */
  #chainOver(prev: Uint8Array, records: Uint8Array): Uint8Array {
    let chain: Uint8Array = prev;
    const buf = this.#chainBuf;
    for (let at = 0; at < records.length; at += RECORD_BYTES) {
      buf.set(chain, 0);
      buf.set(records.subarray(at, at + RECORD_BYTES), 32);
      chain = this.#o.crypto.sha256(buf);
    }
    return chain.slice();
  }
}
