// The reference central (docs/SYNC.md, the central's side): keeps the
// registry and the event store, publishes signed deltas and heads, serves
// sync requests, stores event batches exactly once and acks them, and tracks
// gate presence. Node only. Behind ports, as the gate is: the broker through a
// CentralTransport (MQTT.js by default: clean session, its own reconnect),
// time through a Clock and Timers, nonces from a Random; the deterministic
// simulation (host-sim/simulation/) gives it virtual ones.
//
// Flow of a change: a registry mutation commits → its signed delta(s) go out
// on lists/<list>/delta at once → the new image is built off the same tick
// (about a second at 250k credentials; adaptive back-off while changes keep
// coming) → the signed head for the new version is published, retained. So a
// revocation reaches the gates before the image work starts.
//
// Messages from one gate are handled one after another, in arrival order
// (a bounded queue per gate: the store is asynchronous); different gates' go
// on concurrently. A gate whose queue is full has the message refused
// ('overloaded', counted): it resends.
//
// Changes committed by another process on the same database (the `subline`
// CLI) are noticed by polling the list version (pollIntervalMs): the central
// publishes the deltas it has not published yet and builds the new image. The
// highest version the broker acknowledged is kept in the database
// (central-state.ts), so a restarted central, or `subline central publish`,
// sends exactly what is missing. Presence is kept there too, for the CLI.

import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle, Timers } from '../../firmware/ports.js';
import { nodeTimers } from '../adapters/node-timers.js';
import { randomBytes } from 'node:crypto';
import { CommandResult, EventAck, EventBatch, GateStatus, Head, LIMITS, SyncRequest, type CommandMessage, encodeChunk, encodeManifest, type CommandResultMessage, type EventBatchMessage, type GateStatusMessage, type HeadMessage, type SyncRequestMessage } from '../../protocol/messages.js';
import { toHex } from '../../protocol/hex.js';
import { Topics } from '../../protocol/topics.js';
import { Ed25519Signer, nodeCrypto } from '../node-crypto.js';
import type { EventStore, IngestResult } from './event-store.js';
import { buildImageFromTables, chunkImage, type ChunkedImage } from './image-builder.js';
import { generateKeys, type CentralKeys } from './keys.js';
import type { CommitInfo, ListInfo, Registry, StoredDelta } from './registry.js';
import type { CentralState, PublishedMark } from './central-state.js';
import { claimedNonce, sealCommand, type CommandOp, type CommandOptions } from './commands.js';
import { GateAuthenticator } from './gate-authenticator.js';
import type { GateIdentity, GateIdentityInput, GateRegistry } from './gate-registry.js';
import { RefusalLog } from './refusal-log.js';
import { SyncBudget, type SyncBudgetOptions } from './sync-budget.js';
import type { BrokerAuth } from '../broker-auth.js';
import type { CentralLink, CentralTransport } from './central-transport.js';
import { MqttTransport } from './mqtt-transport.js';
import { openCentralStore, type CentralStore } from './store/open-store.js';
import { isDiskFull } from './store/sql-db.js';

/** Images kept for gates still pulling an older version (chunks of a superseded image stay valid). */
const RECENT_IMAGES = 4;

export interface CentralOptions {
  /**
   * Where the data is: a SQLite path (or ':memory:') or a postgres:// URL, created or
   * migrated if needed (tests, the simulator); or an open store (the CLI's, checked;
   * then the caller closes it).
   */
  readonly db: string | CentralStore;
  /** Ed25519 secret key (32 bytes) for heads and deltas. */
  readonly signingKey: Uint8Array;
  /** 32 bytes: credential keys (protocol/credential-key.ts). */
  readonly deploymentKey: Uint8Array;
  /** 32 bytes: every gate's MAC key is derived from it (gate-keys.ts); nothing from a gate is accepted without it. */
  readonly gateMasterKey: Uint8Array;
  /** Per-gate sync request budget (default: DEFAULT_SYNC_BUDGET). */
  readonly syncBudget?: SyncBudgetOptions;
  /** mqtt://host:port or mqtts://host:port (with the default transport). */
  readonly brokerUrl?: string;
  /** How it reaches the broker (default: MQTT.js to brokerUrl with brokerAuth). */
  readonly transport?: CentralTransport;
  /** The central's identity at the broker: TLS client certificate and CA, or username and password (host-sim/broker-auth.ts). */
  readonly brokerAuth?: BrokerAuth;
  readonly topicRoot?: string;
  /** The list this central serves (default 'main'). */
  readonly list?: string;
  /** Re-sign the head this often even without changes (default 60). */
  readonly headIntervalSeconds?: number;
  /** Head lifetime: expires = issuedAt + this (default 86400). */
  readonly headLifetimeSeconds?: number;
  /** Image chunk size, a multiple of 16 up to 16384 (default 16384). */
  readonly chunkSize?: number;
  /**
   * Time: a Clock (wall seconds and monotonic ms, as the gate's port), or a
   * function of UTC seconds (monotonic time from the host). Default: the system clock.
   */
  readonly clock?: Clock | (() => number);
  /** Timers (default: Node's). */
  readonly timers?: Timers;
  /** Random bytes, for command nonces (default: node:crypto). */
  readonly random?: (bytes: number) => Uint8Array;
  readonly clientId?: string;
  /** How long start() waits for the first connection (default 10,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Diagnostics (default: none). */
  readonly log?: (line: string) => void;
  /**
   * Check the list version this often (ms) and publish what another process
   * committed to the same database (default 0: off, only this process's commits).
   */
  readonly pollIntervalMs?: number;
  /** Subscribe to the gates' uplink topics (default true; false for a publish-only central). */
  readonly subscribe?: boolean;
}

export interface SentCommand {
  readonly command: CommandMessage;
  readonly envelope: Uint8Array;
  /** The gate's answer (MACed by that gate for this nonce), or null when none came within waitMs. */
  readonly result: CommandResultMessage | null;
  /** Results for this nonce that were refused (not MACed by the gate): forgeries, never taken as the answer. */
  readonly refusedResults: number;
}

export interface CentralStats {
  /** Messages received, per topic kind (events, sync, status, cmdres). */
  readonly received: Record<string, number>;
  /** Messages refused, per `<kind>.<reason>` (unknown_gate, decommissioned, bad_mac, decoder error codes, gate_mismatch, ...); per gate in `refusals`. */
  readonly rejected: Record<string, number>;
  /** conflicts: records of refused batches kept because they differ from the records held at their (gate, epoch, seq) (EventStore.conflicts()). */
  readonly ingest: { batches: number; stored: number; duplicates: number; conflicts: number; readonly problems: Record<string, number> };
  readonly published: { heads: number; deltas: number; deltaReplies: number; manifests: number; chunks: number; acks: number; errors: number };
  /** Status messages older than the one held (presence rule). */
  presenceIgnored: number;
  readonly images: { builds: number; failures: number; lastBuildMs: number };
  connects: number;
  connectionErrors: number;
  /** The database's disk was full (SQLITE_FULL): writes refused (nothing acked for them), recoveries (WAL checkpointed and truncated after). */
  readonly storage: { full: number; recoveries: number };
}

export interface PresenceEntry {
  readonly status: GateStatusMessage;
  /** Central clock (UTC seconds) when it was received. */
  readonly receivedAt: number;
}

export interface CentralImage {
  readonly epoch: number;
  readonly version: number;
  readonly bytes: Uint8Array;
  readonly chunked: ChunkedImage;
}

interface ImageState extends CentralImage {
  readonly manifest: Uint8Array;
  readonly chunkMessages: (Uint8Array | undefined)[];
}

const defaultClock = (): number => Math.floor(Date.now() / 1000);
const defaultRandom = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const COMMAND_RESULTS_KEPT = 1000;
/** A central that starts (or notices another process's commits) publishes at most this many missing deltas: a gate further behind pulls an image anyway. */
const MAX_CATCH_UP_DELTAS = 256;
/** A log line of one cause at most this often (seconds). */
const LOG_INTERVAL_SECONDS = 60;

/** Messages of one gate waiting to be handled; beyond this they are refused ('overloaded'). */
const GATE_QUEUE_CAPACITY = 256;
/** Messages of all gates waiting; beyond this they are refused ('overloaded'). */
const QUEUE_CAPACITY = 16_384;
/** Ids found unknown are refused without a lookup (or a queue slot) for this long (ms, monotonic: a test's frozen clock must not make it last): a flood under a made-up id costs one lookup every 2 s. */
const UNKNOWN_ID_MS = 2000;
const UNKNOWN_IDS_KEPT = 4096;

/** lastSeen is written at most this often per gate (seconds). */
const TOUCH_INTERVAL_SECONDS = 5;

export class Central {
  readonly registry: Registry;
  readonly events: EventStore;
  readonly topics: Topics;
  readonly list: string;
  readonly stats: CentralStats = {
    received: {},
    rejected: {},
    ingest: { batches: 0, stored: 0, duplicates: 0, conflicts: 0, problems: {} },
    published: { heads: 0, deltas: 0, deltaReplies: 0, manifests: 0, chunks: 0, acks: 0, errors: 0 },
    presenceIgnored: 0,
    images: { builds: 0, failures: 0, lastBuildMs: 0 },
    connects: 0,
    connectionErrors: 0,
    storage: { full: 0, recoveries: 0 },
  };
  /** The latest command results, by nonce (hex). */
  readonly commandResults = new Map<string, CommandResultMessage>();
  /** The gate identities (id, site, list, lane, state, key id). */
  readonly identities: GateRegistry;
  /** Every refusal, per gate and cause. */
  readonly refusals: RefusalLog;

  readonly #o: CentralOptions;
  readonly #signer: Ed25519Signer;
  readonly #clock: () => number;
  readonly #monotonicMs: () => number;
  readonly #timers: Timers;
  readonly #random: (bytes: number) => Uint8Array;
  readonly #transport: CentralTransport;
  readonly #chunkSize: number;
  readonly #headInterval: number;
  readonly #headLifetime: number;
  readonly #store: CentralStore;
  readonly #ownStore: boolean;
  /** Per gate: the tail of its message queue and how many wait in it. */
  readonly #queues = new Map<string, { tail: Promise<void>; depth: number }>();
  #queued = 0;
  /** Ids whose last lookup found no gate, until when (monotonic ms) they are refused at once. */
  readonly #unknownIds = new Map<string, number>();
  readonly #drained = new Set<() => void>();
  /** Publication work in commit order (catch-up reads are asynchronous). */
  #publishing: Promise<void> = Promise.resolve();
  #polling = false;
  /** Publication work queued in #publishing and not finished. */
  #pendingPublication = 0;
  /** Image builds, one after another. */
  #building: Promise<void> = Promise.resolve();
  readonly #presence = new Map<string, PresenceEntry>();
  readonly #unlisten: () => void;
  readonly #state: CentralState;
  readonly #lastTouch = new Map<string, number>();
  readonly #waiters = new Map<string, { finish: (r: CommandResultMessage | null) => void; refused: number }>();
  readonly #auth: GateAuthenticator;
  readonly #budget: SyncBudget;
  #refusalTimer: TimerHandle | null = null;
  readonly #idle = new Set<() => void>();
  /** The list version whose deltas this central has published (or seen published). */
  #known: { epoch: number; version: number };
  /** The highest delta the broker acknowledged (persisted, debounced). */
  #published: PublishedMark | undefined;
  #publishedDirty = false;
  #flushTimer: TimerHandle | null = null;
  #pollTimer: TimerHandle | null = null;
  #inflight = 0;
  /** publishPending() has run since start(). */
  #caughtUp = false;
  #client: CentralLink | null = null;
  #image: ImageState | null = null;
  /** The latest few images (newest last): a gate that started pulling one finishes it, then catches up with deltas. */
  readonly #recent: ImageState[] = [];
  #head: HeadMessage | null = null;
  #headTimer: TimerHandle | null = null;
  #buildTimer: TimerHandle | null = null;
  #lastBuildEnd = 0;
  #closed = false;
  /** Since the first SQLITE_FULL not yet followed by a successful write: refused writes, and whether the WAL still needs its truncation. */
  #full: { refused: number } | null = null;
  #checkpointDue = false;
  /** Throttled log lines: cause -> when last logged (central clock) and how many were held back since. */
  readonly #logged = new Map<string, { at: number; held: number }>();
  #abortStart: (() => void) | null = null;

  /**
   * The central on its store: opens (and, for a path or URL, creates or
   * migrates) the database, reads back presence and the published mark.
   * Call start() to connect.
   */
  static async open(options: CentralOptions): Promise<Central> {
    const list = options.list ?? 'main';
    const own = typeof options.db === 'string';
    const store = typeof options.db === 'string'
      ? await openCentralStore(options.db, { create: true, registry: { signingKey: options.signingKey, deploymentKey: options.deploymentKey, clock: wallClock(options.clock), list }, ...eventClock(options.clock) })
      : options.db;
    try {
      store.registry.setKeys({ signingKey: options.signingKey, deploymentKey: options.deploymentKey });
      await store.registry.createList(list);
      const gates = await store.state.gates();
      const published = await store.state.published(list);
      const l = await store.registry.list(list);
      return new Central(options, store, own, { gates, published, known: { epoch: l.epoch, version: l.version } });
    } catch (e) {
      if (own) await store.close();
      throw e;
    }
  }

  private constructor(options: CentralOptions, store: CentralStore, ownStore: boolean, loaded: { gates: readonly { status: GateStatusMessage; receivedAt: number }[]; published: PublishedMark | undefined; known: { epoch: number; version: number } }) {
    this.#o = options;
    this.#store = store;
    this.#ownStore = ownStore;
    this.#signer = new Ed25519Signer(options.signingKey);
    const clock = options.clock ?? defaultClock;
    if (typeof clock === 'function') {
      this.#clock = clock;
      this.#monotonicMs = () => performance.now();
    } else {
      this.#clock = () => clock.wallSeconds();
      this.#monotonicMs = () => clock.monotonicMs();
    }
    this.#timers = options.timers ?? nodeTimers;
    this.#random = options.random ?? defaultRandom;
    if (options.transport === undefined && options.brokerUrl === undefined) throw new Error('central: brokerUrl or transport is required');
    this.#transport = options.transport ?? new MqttTransport(options.brokerUrl ?? '', options.brokerAuth);
    this.list = options.list ?? 'main';
    this.topics = new Topics(options.topicRoot ?? 'subline');
    this.#chunkSize = options.chunkSize ?? LIMITS.chunkBytes;
    if (!Number.isInteger(this.#chunkSize) || this.#chunkSize < 16 || this.#chunkSize > LIMITS.chunkBytes || this.#chunkSize % 16 !== 0) throw new Error(`central: chunkSize must be a multiple of 16 in 16..${LIMITS.chunkBytes}`);
    this.#headInterval = options.headIntervalSeconds ?? 60;
    this.#headLifetime = options.headLifetimeSeconds ?? 86400;
    if (!(this.#headInterval > 0)) throw new Error('central: headIntervalSeconds must be > 0');
    if (!Number.isInteger(this.#headLifetime) || this.#headLifetime <= this.#headInterval) throw new Error('central: headLifetimeSeconds must be an integer > headIntervalSeconds');
    this.registry = store.registry;
    this.events = store.events;
    // Presence is read back: a retained status older than what the central last knew
    // (the will of a connection whose birth it saw) must not replace those values.
    this.#state = store.state;
    for (const g of loaded.gates) this.#presence.set(g.status.gate, { status: g.status, receivedAt: g.receivedAt });
    this.identities = store.identities;
    this.#auth = new GateAuthenticator({ gates: this.identities, masterKey: options.gateMasterKey, crypto: nodeCrypto });
    this.#budget = new SyncBudget(options.syncBudget);
    this.refusals = new RefusalLog({ db: store.db, clock: this.#clock, ...(options.log !== undefined ? { log: options.log } : {}) });
    this.#published = loaded.published;
    this.#known = loaded.known;
    this.#unlisten = this.registry.onCommit((c) => this.#onCommit(c));
  }

  /** Presence and publication state in the database (read by the CLI). */
  get state(): CentralState {
    return this.#state;
  }

  /** Every store of this central (one database). */
  get store(): CentralStore {
    return this.#store;
  }

  /** The highest delta version the broker has acknowledged for this list (persisted). */
  get publishedMark(): PublishedMark | undefined {
    return this.#published;
  }

  /**
   * Registers a gate (or re-provisions it with a new key id) and returns the
   * key its provisioning record must carry. `subline provision` does this.
   */
  async provisionGate(gate: GateIdentityInput): Promise<{ readonly identity: GateIdentity; readonly gateKey: Uint8Array; readonly gateKeyId: number }> {
    const identity = await this.identities.register(gate, this.#clock());
    this.#unknownIds.delete(gate.gate);
    return { identity, gateKey: this.#auth.keyFor(gate.gate, identity.keyId), gateKeyId: identity.keyId };
  }

  static generateKeys(): CentralKeys {
    return generateKeys();
  }

  get publicKey(): Uint8Array {
    return this.#signer.publicKey;
  }

  /** The latest head published (null before start). */
  get head(): HeadMessage | null {
    return this.#head;
  }

  /** The image the latest head names. */
  get image(): CentralImage | null {
    return this.#image;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  presence(gate: string): PresenceEntry | undefined {
    return this.#presence.get(gate);
  }

  gates(): PresenceEntry[] {
    return [...this.#presence.values()];
  }

  /** Builds the image, connects, subscribes, publishes the head; resolves once connected. */
  async start(): Promise<void> {
    if (this.#client !== null) throw new Error('central: already started');
    this.#closed = false;
    this.#caughtUp = false;
    // The first build joins #building, so a close() meanwhile waits for it before it closes the store;
    // a central closed while starting does not connect.
    const built = this.#rebuild();
    this.#building = this.#building.then(() => built).then(() => undefined);
    await built;
    if (this.#closed) throw new Error('central: closed while starting');
    const t = this.#timers;
    let firstConnect: (() => void) | null = null;
    const clientId = this.#o.clientId ?? `subline-central-${toHex(nodeCrypto.sha256(this.#signer.publicKey)).slice(0, 8)}-${process.pid}`;
    const client: CentralLink = this.#transport.open(clientId, {
      connect: () => {
        this.#onConnect(client);
        firstConnect?.();
      },
      message: (topic, payload, retained) => this.#onMessage(topic, payload, retained),
      error: (e) => {
        this.stats.connectionErrors++;
        this.#log(`mqtt: ${e.message}`);
      },
    });
    this.#client = client;
    await new Promise<void>((resolve, reject) => {
      const timeout = this.#o.connectTimeoutMs ?? 10_000;
      const giveUp = (why: string) => {
        t.clear(timer);
        firstConnect = null;
        this.#abortStart = null;
        if (this.#client === client) this.#client = null;
        client.end(true, () => undefined);
        reject(new Error(why));
      };
      const timer = t.set(() => giveUp(`central: no connection to ${this.#transport.url} within ${timeout} ms`), timeout);
      firstConnect = () => {
        t.clear(timer);
        firstConnect = null;
        this.#abortStart = null;
        resolve();
      };
      this.#abortStart = () => giveUp('central: closed while starting');
    });
    // The deltas the first connection publishes (publishPending, read from the store) are out before start() returns: idle() then covers them.
    await this.#publishing;
    this.#headTimer = t.repeat(() => this.#publishHead(), this.#headInterval * 1000);
    this.#refusalTimer = t.repeat(() => void this.#flushRefusals(), 1000);
    (this.#refusalTimer as { unref?: () => void }).unref?.();
    const poll = this.#o.pollIntervalMs ?? 0;
    if (poll > 0) {
      this.#pollTimer = t.repeat(() => {
        if (this.#polling) return; // one poll at a time
        this.#polling = true;
        this.checkForChanges().finally(() => (this.#polling = false)).catch(() => undefined);
      }, poll);
    }
  }

  /**
   * Publishes the deltas after the last one the broker acknowledged, up to the
   * current version (at most the latest 256). Returns how many were sent.
   * start() does this on the first connection.
   */
  async publishPending(): Promise<number> {
    return this.#inOrder(async () => {
      const l = await this.registry.list(this.list);
      const mark = this.#published;
      let from = mark !== undefined && mark.epoch === l.epoch ? mark.version + 1 : 1;
      from = Math.max(from, l.version - MAX_CATCH_UP_DELTAS + 1, 1);
      const deltas = from <= l.version ? await this.registry.deltas(this.list, l.epoch, from, l.version - from + 1) : [];
      for (const d of deltas) this.#publishDelta(d);
      if (l.epoch !== this.#known.epoch || l.version > this.#known.version) this.#known = { epoch: l.epoch, version: l.version };
      return deltas.length;
    });
  }

  /**
   * Notices a change another process committed to the database: publishes
   * the missing deltas and schedules the new image and head. Returns the
   * number of deltas published. Runs every pollIntervalMs when set.
   */
  async checkForChanges(): Promise<number> {
    if (this.#closed) return 0;
    return this.#inOrder(async () => {
      let l: ListInfo;
      try {
        l = await this.registry.list(this.list);
      } catch (e) {
        this.#log(`poll: ${e instanceof Error ? e.message : String(e)}`);
        return 0;
      }
      const k = this.#known;
      if (l.epoch === k.epoch && l.version === k.version) return 0;
      let n = 0;
      if (l.epoch === k.epoch && l.version > k.version) n = await this.#catchUp(l.epoch, k.version + 1, l.version);
      this.#known = { epoch: l.epoch, version: l.version };
      this.#log(`list ${this.list} changed elsewhere: epoch ${l.epoch} version ${l.version} (${n} delta(s) published)`);
      this.#scheduleBuild();
      return n;
    });
  }

  /** Runs publication work after the work before it (deltas go out in version order). */
  #inOrder<T>(fn: () => Promise<T>): Promise<T> {
    this.#pendingPublication++;
    const r = this.#publishing.then(fn).finally(() => this.#pendingPublication--);
    this.#publishing = r.then(
      () => undefined,
      () => undefined,
    );
    return r;
  }

  /** Resolves when every message published so far has been acknowledged by the broker (or failed). */
  idle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  /**
   * Signs and publishes a command to a gate and waits (waitMs, default
   * 10,000) for its answer. Needs start() with subscriptions on.
   */
  async sendCommand(gate: string, op: CommandOp, options: CommandOptions & { readonly waitMs?: number } = {}): Promise<SentCommand> {
    if (this.#client === null || this.#closed) throw new Error('central: not started');
    const sealed = sealCommand(this.#o.signingKey, gate, op, { ...options, nonce: options.nonce ?? this.#random(LIMITS.nonceBytes), issuedAt: options.issuedAt ?? this.#clock() });
    const key = toHex(sealed.command.nonce);
    const waiter = { finish: (_r: CommandResultMessage | null): void => undefined, refused: 0 };
    const result = new Promise<CommandResultMessage | null>((resolve) => {
      const timer = this.#timers.set(() => waiter.finish(null), options.waitMs ?? 10_000);
      waiter.finish = (r) => {
        this.#timers.clear(timer);
        this.#waiters.delete(key);
        resolve(r);
      };
      this.#waiters.set(key, waiter);
    });
    this.#publish(this.topics.gate(gate, 'cmd'), sealed.envelope);
    const r = await result;
    return { ...sealed, result: r, refusedResults: waiter.refused };
  }

  /** Stops the timers and the MQTT client, finishes the messages taken in; closes the store it opened. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abortStart?.();
    this.#unlisten();
    for (const w of [...this.#waiters.values()]) w.finish(null);
    const t = this.#timers;
    if (this.#refusalTimer !== null) t.clear(this.#refusalTimer);
    this.#refusalTimer = null;
    if (this.#pollTimer !== null) t.clear(this.#pollTimer);
    this.#pollTimer = null;
    if (this.#headTimer !== null) t.clear(this.#headTimer);
    if (this.#buildTimer !== null) t.clear(this.#buildTimer);
    this.#headTimer = null;
    this.#buildTimer = null;
    // Messages already taken in are finished (their writes and acks) and the publication work done,
    // while the client is still there to send what they publish; then the client ends (flushing it).
    if (this.#queued > 0) await new Promise<void>((resolve) => this.#drained.add(resolve));
    await this.#publishing;
    await this.#building;
    const client = this.#client;
    this.#client = null;
    if (client !== null) {
      await new Promise<void>((resolve) => {
        const force = t.set(() => client.end(true, () => resolve()), 2000);
        client.end(false, () => {
          t.clear(force);
          resolve();
        });
      });
    }
    if (this.#flushTimer !== null) t.clear(this.#flushTimer);
    this.#flushTimer = null;
    await this.#flushPublished();
    await this.#flushRefusals();
    if (this.#ownStore) await this.#store.close();
  }

  /** Re-signs and publishes the head now (the heartbeat does this every headIntervalSeconds). */
  publishHead(): HeadMessage | null {
    return this.#publishHead();
  }

  // ---------------------------------------------------------------- outgoing

  #log(line: string): void {
    this.#o.log?.(line);
  }

  /** Logs at most once per cause per minute; the next line says how many were held back. */
  #logThrottled(cause: string, line: string): void {
    const now = this.#clock();
    const e = this.#logged.get(cause);
    if (e !== undefined && now - e.at < LOG_INTERVAL_SECONDS) {
      e.held++;
      return;
    }
    if (this.#logged.size > 1000) this.#logged.clear(); // causes include exception messages: bounded
    this.#logged.set(cause, { at: now, held: 0 });
    this.#log(e !== undefined && e.held > 0 ? `${line} (${e.held} more like it in the last minute)` : line);
  }

  /** A write failed because the disk is full: counted, logged once a minute; nothing is acked for it. */
  #storageFull(what: string): void {
    this.stats.storage.full++;
    this.#full ??= { refused: 0 };
    this.#full.refused++;
    this.#checkpointDue = true;
    this.#logThrottled(
      `storage_full.${what}`,
      `storage full writing ${what}: refused and not acknowledged (gates keep their records and resend); ${this.#full.refused} refused since the disk filled; logged at most once a minute`,
    );
  }

  /**
   * A write succeeded. After a full disk: checkpoint the WAL into the
   * database and truncate it, so the space the WAL took while the disk was
   * full is given back (the WAL file otherwise keeps its largest size).
   */
  async #storageOk(): Promise<void> {
    if (!this.#checkpointDue) return;
    const refused = this.#full?.refused ?? 0;
    try {
      if (!(await this.#store.db.reclaim())) return; // a reader holds the WAL: try again after the next write
    } catch (e) {
      if (isDiskFull(e)) return; // the checkpoint needs room in the database file: after the next write
      this.#logThrottled('storage_checkpoint', `storage: WAL checkpoint failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    this.#checkpointDue = false;
    this.#full = null;
    this.stats.storage.recoveries++;
    this.#log(`storage recovered: writes succeed again after ${refused} refused${this.#store.db.engine === 'sqlite' ? '; WAL checkpointed and truncated' : ''}`);
  }

  #count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  #publish(topic: string, payload: Uint8Array, retain = false, onAcked?: () => void): boolean {
    const client = this.#client;
    if (client === null) return false;
    this.#inflight++;
    client.publish(topic, payload, retain, (err) => {
      if (err !== null) {
        this.stats.published.errors++;
        this.#log(`publish ${topic}: ${err.message}`);
      } else onAcked?.();
      if (--this.#inflight === 0) {
        const waiting = [...this.#idle];
        this.#idle.clear();
        for (const w of waiting) w();
      }
    });
    return true;
  }

  #publishDelta(d: StoredDelta): void {
    if (this.#publish(this.topics.list(this.list, 'delta'), d.envelope, false, () => this.#markPublished(d.epoch, d.version))) this.stats.published.deltas++;
  }

  /** Publishes the stored deltas from..to of an epoch (at most the latest 256). */
  async #catchUp(epoch: number, from: number, to: number): Promise<number> {
    const first = Math.max(from, to - MAX_CATCH_UP_DELTAS + 1);
    if (first > to) return 0;
    const deltas = await this.registry.deltas(this.list, epoch, first, to - first + 1);
    for (const d of deltas) this.#publishDelta(d);
    return deltas.length;
  }

  #markPublished(epoch: number, version: number): void {
    const m = this.#published;
    if (m !== undefined && (epoch < m.epoch || (epoch === m.epoch && version <= m.version))) return;
    this.#published = { epoch, version };
    this.#publishedDirty = true;
    // One write per burst, not per delta (the database syncs every commit).
    this.#flushTimer ??= this.#timers.set(() => {
      this.#flushTimer = null;
      void this.#flushPublished();
    }, 250);
  }

  async #flushRefusals(): Promise<void> {
    try {
      await this.refusals.flush();
    } catch (e) {
      if (isDiskFull(e)) return this.#storageFull('refusal counts');
      this.#logThrottled('refusal_counts', `refusal counts: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async #flushPublished(): Promise<void> {
    if (!this.#publishedDirty || this.#published === undefined || !this.#store.db.open) return;
    this.#publishedDirty = false;
    try {
      await this.#state.setPublished(this.list, this.#published, this.#clock());
    } catch (e) {
      this.#publishedDirty = true;
      if (isDiskFull(e)) return this.#storageFull('the published mark');
      this.#logThrottled('published_mark', `published mark: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  #onConnect(client: CentralLink): void {
    if (client !== this.#client) return;
    this.stats.connects++;
    const t = this.topics;
    if (this.#o.subscribe !== false) {
      client.subscribe([t.allGates('sync'), t.allGates('events'), t.allGates('status'), t.allGates('cmdres')], (err) => {
        if (err !== null) this.#log(`subscribe: ${err.message}`);
      });
    }
    // Deltas committed while no central was running (or by another process) go out once.
    if (!this.#caughtUp) {
      this.#caughtUp = true;
      this.publishPending().catch((e: unknown) => this.#log(`publish pending deltas: ${e instanceof Error ? e.message : String(e)}`));
    }
    // Retained state may be gone (a broker without persistence restarted): publish the head again.
    this.#publishHead();
  }

  #onCommit(c: CommitInfo): void {
    if (this.#closed || c.list !== this.list) return;
    const k = this.#known;
    const first = c.deltas[0]?.version ?? c.version + 1;
    const gap = !c.newEpoch && c.epoch === k.epoch && first > k.version + 1;
    if (!gap && this.#idlePublishing()) {
      // The common case, at once (a revocation goes out in the tick it commits).
      this.#publishCommit(c);
      return;
    }
    // Versions committed by another process and not polled yet go out first, in order.
    this.#inOrder(async () => {
      const kk = this.#known;
      if (!c.newEpoch && c.epoch === kk.epoch && first > kk.version + 1) await this.#catchUp(c.epoch, kk.version + 1, first - 1);
      this.#publishCommit(c);
    }).catch((e: unknown) => this.#log(`publish commit: ${e instanceof Error ? e.message : String(e)}`));
  }

  #idlePublishing(): boolean {
    return this.#pendingPublication === 0;
  }

  #publishCommit(c: CommitInfo): void {
    const k = this.#known;
    for (const d of c.deltas) this.#publishDelta(d);
    if (c.epoch !== k.epoch || c.version > k.version) this.#known = { epoch: c.epoch, version: c.version };
    this.#scheduleBuild();
  }

  /**
   * The image (and head) after changes: after the deltas have been written
   * (mqtt-packet uncorks on the next tick, before any timer), and no sooner
   * than the last build took after it ended, so builds use at most half the time.
   */
  #scheduleBuild(): void {
    if (this.#buildTimer !== null || this.#closed) return;
    const wait = Math.max(0, this.#lastBuildEnd + Math.min(this.stats.images.lastBuildMs, 5000) - this.#monotonicMs());
    this.#buildTimer = this.#timers.set(() => {
      this.#buildTimer = null;
      if (this.#closed) return;
      this.#building = this.#building.then(async () => {
        if (!this.#closed && (await this.#rebuild())) this.#publishHead();
      });
    }, wait);
  }

  /** Builds the current version's image; false (old image kept) if it cannot be built. */
  async #rebuild(): Promise<boolean> {
    const started = this.#monotonicMs();
    try {
      const tables = await this.registry.tables(this.list);
      if (this.#image !== null && this.#image.epoch === tables.epoch && this.#image.version >= tables.version) return true;
      const bytes = buildImageFromTables(tables);
      const chunked = chunkImage(bytes, this.#chunkSize, nodeCrypto);
      if (chunked.chunks.length > LIMITS.maxChunks) throw new Error(`image of ${bytes.length} bytes needs ${chunked.chunks.length} chunks (at most ${LIMITS.maxChunks})`);
      const manifest = encodeManifest({ list: this.list, epoch: tables.epoch, version: tables.version, imageSize: bytes.length, chunkSize: this.#chunkSize, hashes: chunked.hashes });
      this.#image = { epoch: tables.epoch, version: tables.version, bytes, chunked, manifest, chunkMessages: new Array<Uint8Array | undefined>(chunked.chunks.length) };
      this.#recent.push(this.#image);
      if (this.#recent.length > RECENT_IMAGES) this.#recent.shift();
      this.stats.images.builds++;
      return true;
    } catch (e) {
      this.stats.images.failures++;
      this.#log(`image build failed: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    } finally {
      this.#lastBuildEnd = this.#monotonicMs();
      this.stats.images.lastBuildMs = this.#lastBuildEnd - started;
    }
  }

  #publishHead(): HeadMessage | null {
    const img = this.#image;
    if (img === null || this.#closed) return null;
    const issuedAt = this.#clock();
    const head: HeadMessage = {
      list: this.list,
      epoch: img.epoch,
      version: img.version,
      issuedAt,
      expires: issuedAt + this.#headLifetime,
      imageSize: img.bytes.length,
      chunkSize: this.#chunkSize,
      imageRoot: img.chunked.root,
    };
    this.#head = head;
    if (this.#publish(this.topics.list(this.list, 'head'), this.#signer.seal(Head, head), true)) this.stats.published.heads++;
    return head;
  }

  // ---------------------------------------------------------------- incoming

  /** Counts a refusal of a message from `gate` (stats by kind, log and table per gate). */
  #refuse(gate: string, kind: string, cause: string): void {
    if (cause === 'unknown_gate' && !this.#unknownIds.has(gate)) {
      if (this.#unknownIds.size >= UNKNOWN_IDS_KEPT) this.#unknownIds.clear();
      this.#unknownIds.set(gate, this.#monotonicMs() + UNKNOWN_ID_MS);
    }
    this.#count(this.stats.rejected, `${kind}.${cause}`);
    this.refusals.count(gate, `${kind}.${cause}`);
  }

  /** `retained`: delivered from the broker's store (an old message), not sent by the gate just now. */
  #onMessage(topic: string, payload: Uint8Array, retained = false): void {
    const parsed = this.topics.parse(topic);
    if (!parsed.ok) return this.#count(this.stats.rejected, `topic.${parsed.error.code}`);
    const p = parsed.value;
    if (p.scope !== 'gate') return this.#count(this.stats.rejected, 'topic.unexpected');
    this.#count(this.stats.received, p.kind);
    const gate = p.gate;
    const bytes = payload;
    if (this.#knownUnknown(gate)) {
      if (p.kind === 'cmdres') this.#refusedResult(bytes);
      return this.#refuse(gate, p.kind, 'unknown_gate');
    }
    // One gate's messages in arrival order (presence, event chains), bounded per gate and in all.
    let q = this.#queues.get(gate);
    if (this.#closed) return; // not taken in: the gate resends to the next central
    if ((q?.depth ?? 0) >= GATE_QUEUE_CAPACITY || this.#queued >= QUEUE_CAPACITY) return this.#refuse(gate, p.kind, 'overloaded');
    if (q === undefined) {
      q = { tail: Promise.resolve(), depth: 0 };
      this.#queues.set(gate, q);
    }
    const queue = q;
    queue.depth++;
    this.#queued++;
    queue.tail = queue.tail
      .then(() => this.#handle(p.kind, gate, topic, bytes, retained))
      .catch((e: unknown) => {
        // Nothing a gate sends may stop the central.
        if (isDiskFull(e)) return this.#storageFull('a message');
        this.#count(this.stats.rejected, 'internal.exception');
        const m = e instanceof Error ? e.message : String(e);
        this.#logThrottled(`exception.${m}`, `message on ${topic}: ${m}`);
      })
      .finally(() => {
        queue.depth--;
        if (queue.depth === 0 && this.#queues.get(gate) === queue) this.#queues.delete(gate);
        if (--this.#queued === 0) {
          const waiting = [...this.#drained];
          this.#drained.clear();
          for (const w of waiting) w();
        }
      });
  }

  /** Handles one message from `gate` (its turn in the gate's queue). */
  async #handle(kind: string, gate: string, topic: string, bytes: Uint8Array, retained: boolean): Promise<void> {
    if (this.#knownUnknown(gate)) {
      // Found unknown while this message waited in the queue.
      if (kind === 'cmdres') this.#refusedResult(bytes);
      return this.#refuse(gate, kind, 'unknown_gate');
    }
    await this.#dispatch(kind, gate, topic, bytes, retained);
  }

  /** The id was found to be no gate's within the last UNKNOWN_ID_MS. */
  #knownUnknown(gate: string): boolean {
    const until = this.#unknownIds.get(gate);
    if (until === undefined) return false;
    if (this.#monotonicMs() < until) return true;
    this.#unknownIds.delete(gate);
    return false;
  }

  async #dispatch(kind: string, gate: string, topic: string, bytes: Uint8Array, retained: boolean): Promise<void> {
    // Nothing is stored, answered or shown before the sender is verified as this gate.
    switch (kind) {
      case 'sync': {
        const r = await this.#auth.open(gate, topic, SyncRequest, bytes);
        if (!r.ok) return this.#refuse(gate, 'sync', r.cause);
        await this.#touch(gate);
        return this.#onSync(gate, r.value);
      }
      case 'events': {
        const r = await this.#auth.open(gate, topic, EventBatch, bytes);
        if (!r.ok) return this.#refuse(gate, 'events', r.cause);
        await this.#touch(gate);
        return this.#onEvents(gate, r.value);
      }
      case 'status': {
        if (bytes.length === 0) return this.#refuse(gate, 'status', 'empty'); // a cleared retained status
        const r = await this.#auth.open(gate, topic, GateStatus, bytes);
        if (!r.ok) return this.#refuse(gate, 'status', r.cause);
        return this.#onStatus(gate, r.value, retained);
      }
      case 'cmdres': {
        const r = await this.#auth.open(gate, topic, CommandResult, bytes);
        if (!r.ok) {
          this.#refusedResult(bytes);
          return this.#refuse(gate, 'cmdres', r.cause);
        }
        await this.#touch(gate);
        return this.#onCommandResult(gate, r.value);
      }
      default:
        return this.#count(this.stats.rejected, `${kind}.unexpected`);
    }
  }

  /** A refused command result still names its nonce (untrusted): the waiting command learns it drew a forgery. */
  #refusedResult(bytes: Uint8Array): void {
    if (this.#waiters.size === 0) return;
    const nonce = claimedNonce(bytes);
    if (nonce === null) return;
    const w = this.#waiters.get(toHex(nonce));
    if (w !== undefined) w.refused++;
  }

  async #onSync(gate: string, q: SyncRequestMessage): Promise<void> {
    if (q.gate !== gate) return this.#refuse(gate, 'sync', 'gate_mismatch');
    if (q.list !== this.list) return this.#refuse(gate, 'sync', 'unknown_list');
    if (!this.#budget.take(gate, this.#clock())) return this.#refuse(gate, 'sync', 'over_budget');
    const data = this.topics.gate(gate, 'data');
    const send = (m: Uint8Array): boolean => this.#budget.charge(gate, m.length) && this.#publish(data, m);
    if (q.want === 'deltas') {
      const l = await this.registry.list(this.list);
      if (q.epoch !== l.epoch) return this.#refuse(gate, 'sync', 'wrong_epoch');
      const from = Math.max(1, q.from);
      const count = q.count - (from - q.from);
      if (count <= 0) return;
      for (const d of await this.registry.deltas(this.list, l.epoch, from, count)) if (send(d.envelope)) this.stats.published.deltaReplies++;
      return;
    }
    const latest = this.#image;
    if (latest === null) return this.#refuse(gate, 'sync', 'no_image');
    const asked = this.#recent.find((i) => i.epoch === q.epoch && i.version === q.version);
    if (q.want === 'manifest') {
      // The version asked for while it is recent, else the latest (the gate then follows the newer head).
      if (send((asked ?? latest).manifest)) this.stats.published.manifests++;
      return;
    }
    if (asked === undefined) return this.#refuse(gate, 'sync', 'not_recent');
    const img = asked;
    const end = Math.min(img.chunked.chunks.length, q.from + q.count);
    for (let i = q.from; i < end; i++) {
      let m = img.chunkMessages[i];
      if (m === undefined) {
        m = encodeChunk({ list: this.list, epoch: img.epoch, version: img.version, index: i, data: img.chunked.chunks[i] as Uint8Array });
        img.chunkMessages[i] = m;
      }
      if (send(m)) this.stats.published.chunks++;
    }
    if (q.from >= img.chunked.chunks.length) this.#refuse(gate, 'sync', 'chunk_range');
  }

  async #onEvents(gate: string, b: EventBatchMessage): Promise<void> {
    if (b.gate !== gate) return this.#refuse(gate, 'events', 'gate_mismatch');
    let res: IngestResult;
    try {
      res = await this.events.ingest(b);
    } catch (e) {
      if (isDiskFull(e)) return this.#storageFull('events');
      throw e;
    }
    await this.#storageOk();
    const s = this.stats.ingest;
    s.batches++;
    s.stored += res.stored;
    s.duplicates += res.duplicates;
    if (res.problem !== undefined) {
      this.#count(s.problems, res.problem);
      this.refusals.count(gate, `events.${res.problem}`);
    }
    if (res.conflicts !== undefined && res.conflicts > 0) {
      // Two different records for one key: both kept (events and event_conflicts), counted and logged per gate.
      s.conflicts += res.conflicts;
      this.refusals.count(gate, 'events.conflict', `${res.conflicts} record(s) at epoch ${b.epoch} seq ${b.first}..${b.first + b.count - 1} differ from those held; kept in event_conflicts`);
    }
    if (res.ack === null) return;
    const topic = this.topics.gate(gate, 'ack');
    const ack = await this.#auth.seal(gate, topic, EventAck, { gate, epoch: res.ack.epoch, seq: res.ack.seq, chain: res.ack.chain });
    if (ack !== null && this.#publish(topic, ack)) this.stats.published.acks++;
  }

  async #onStatus(gate: string, s: GateStatusMessage, retained: boolean): Promise<void> {
    if (s.gate !== gate) return this.#refuse(gate, 'status', 'gate_mismatch');
    const cur = this.#presence.get(gate)?.status;
    if (cur !== undefined && !supersedes(s, cur)) {
      this.stats.presenceIgnored++;
      return;
    }
    // The will is fixed at CONNECT: for the connection whose later statuses the central
    // holds, it says only "offline"; the whitelist, backlog and refusals stay the last known.
    const sameConnection = cur !== undefined && cur.journal === s.journal && cur.boot === s.boot && cur.conn === s.conn;
    const kept = s.state === 'offline' && sameConnection && cur.state === 'online' ? { ...cur, state: 'offline' as const } : s;
    const receivedAt = this.#clock();
    this.#presence.set(gate, { status: kept, receivedAt });
    // Heard from the gate now only when it sent this itself, live: a will comes from the broker,
    // a retained status from its store. Otherwise the last seen time stays (or is the status's own).
    const heard = !retained && s.state === 'online';
    if (heard) this.#lastTouch.set(gate, receivedAt);
    await this.#state.putStatus(kept, receivedAt, heard ? receivedAt : s.at);
  }

  /** Records (throttled) that a known gate was heard from. */
  async #touch(gate: string): Promise<void> {
    if (!this.#presence.has(gate)) return;
    const now = this.#clock();
    if (now - (this.#lastTouch.get(gate) ?? 0) < TOUCH_INTERVAL_SECONDS) return;
    this.#lastTouch.set(gate, now);
    await this.#state.touch(gate, now);
  }

  #onCommandResult(gate: string, res: CommandResultMessage): void {
    if (res.gate !== gate) return this.#refuse(gate, 'cmdres', 'gate_mismatch');
    const k = toHex(res.nonce);
    this.#waiters.get(k)?.finish(res);
    this.commandResults.delete(k);
    this.commandResults.set(k, res);
    if (this.commandResults.size > COMMAND_RESULTS_KEPT) {
      const oldest = this.commandResults.keys().next().value;
      if (oldest !== undefined) this.commandResults.delete(oldest);
    }
  }
}

/** The registry's clock (UTC seconds) from the central's. */
function wallClock(clock: CentralOptions['clock']): (() => number) | undefined {
  if (clock === undefined || typeof clock === 'function') return clock;
  return () => clock.wallSeconds();
}

/** The event store's clock (ms, received_at) from a Clock given to the central. */
function eventClock(clock: CentralOptions['clock']): { eventClock?: () => number } {
  if (clock === undefined || typeof clock === 'function') return {};
  return { eventClock: () => clock.wallSeconds() * 1000 };
}

/**
 * The presence rule (docs/SYNC.md): a status replaces the one held when its
 * (journal epoch, boot, conn) is higher; for the same connection, the will
 * (offline) replaces the birth (online) and never the other way round, and
 * refreshes of the birth replace it in order of `at`. The will is fixed at
 * CONNECT and may be replayed, but a replay never beats a newer connection.
 */
export function supersedes(s: GateStatusMessage, cur: GateStatusMessage): boolean {
  if (s.journal !== cur.journal) return s.journal > cur.journal;
  if (s.boot !== cur.boot) return s.boot > cur.boot;
  if (s.conn !== cur.conn) return s.conn > cur.conn;
  if (cur.state === 'offline') return false;
  if (s.state === 'offline') return true;
  return s.at >= cur.at;
}
