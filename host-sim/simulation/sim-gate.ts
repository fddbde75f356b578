// One gate of the deterministic simulation: the real firmware core (NodeGate)
// on the simulation's virtual clock and timers, its network the seeded
// broker's, its flash a simulated NOR flash that a power cut can tear. Every
// way into the gate's code (timers, messages, taps) goes through guard(): a
// PowerCutError there is the power going off (the node is dead until it
// reboots); any other exception is a crash of the gate, a violation.
//
// It also watches what the gate makes durable: every journal record, read
// back from flash after the gate wrote it, is kept by (epoch, seq) so the
// checker can compare the central's store with it.

import type { Net, NetConnectOptions, OutputName } from '../../firmware/ports.js';
import { createRecord, decodeRecord, RECORD_BYTES } from '../../protocol/event-record.js';
import { fromHex as fromHexBytes, toHex } from '../../protocol/hex.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { NorFlash, PowerCutError } from '../flash/nor-flash.js';
import { createHash } from 'node:crypto';
import type { Crypto } from '../../protocol/crypto.js';
import { nodeCrypto } from '../node-crypto.js';
import { NodeGate } from '../node-gate.js';
import { partitionBytes, type LayoutOptions } from '../../firmware/core/partition.js';
import type { SyncConfig } from '../../firmware/core/sync-engine.js';
import type { NodeClock, SimScheduler, TimerGroup } from './sim-scheduler.js';
import type { TimerHandle, Timers } from '../../firmware/ports.js';
import { JournalWatch } from './journal-watch.js';
import type { GateReadout, SimulatedGate, SimulatedGateHooks } from './simulated-gate.js';

/**
 * The gates' Crypto with Ed25519 verification remembered: every gate checks
 * the same signed heads and deltas, and verification (pure JS, strict RFC
 * 8032, as on the device) is a pure function of (signature, message, key),
 * so one result serves them all. Bounded (oldest forgotten first).
 */
const VERIFIED_KEPT = 4096;
const verified = new Map<string, boolean>();
export const simGateCrypto: Crypto = {
  sha256: (d) => nodeCrypto.sha256(d),
  hmacSha256: (k, d) => nodeCrypto.hmacSha256(k, d),
  verifyEd25519(signature, message, publicKey) {
    const h = createHash('sha256').update(signature).update(publicKey).update(message).digest('hex');
    const known = verified.get(h);
    if (known !== undefined) return known;
    const ok = nodeCrypto.verifyEd25519(signature, message, publicKey);
    if (verified.size >= VERIFIED_KEPT) verified.delete(verified.keys().next().value!);
    verified.set(h, ok);
    return ok;
  },
};

export const SIM_LAYOUT: LayoutOptions = { credentials: 2048, journalSectors: 8 };
/** Quicker than the field defaults, so an hour of virtual time sees many reconnects and pulls. */
export const SIM_SYNC: Partial<SyncConfig> = { reconnectMinMs: 500, reconnectMaxMs: 8000, keepAliveSeconds: 10, statusIntervalMs: 30_000 };

export interface SimGateOptions {
  readonly scheduler: SimScheduler;
  readonly clock: NodeClock;
  readonly provisioning: ProvisioningRecord;
  readonly network: { net(identity: string): Net };
  readonly hooks: SimulatedGateHooks;
  readonly seed: number;
}

export class SimGate implements SimulatedGate {
  readonly id: string;
  readonly engine = 'node';
  readonly provisioning: ProvisioningRecord;
  readonly clock: NodeClock;
  flash: NorFlash;
  readonly provisioningFlash: NorFlash;
  node: NodeGate | null = null;
  boots = 0;
  /** Every record seen durable on flash. */
  readonly watch = new JournalWatch();
  readonly #o: SimGateOptions;
  #timers: TimerGroup | null = null;
  #seen = { epoch: -1, seq: 0 };
  #generation = 0;
  #relay = false;

  constructor(o: SimGateOptions) {
    this.#o = o;
    this.id = o.provisioning.gate;
    this.provisioning = o.provisioning;
    this.clock = o.clock;
    this.flash = SimGate.blankFlash(o.seed);
    this.provisioningFlash = NodeGate.provisioningPartition(o.provisioning, o.seed);
  }

  static blankFlash(seed: number): NorFlash {
    return new NorFlash({ size: partitionBytes(SIM_LAYOUT), blockSize: 4096, seed });
  }

  get alive(): boolean {
    return this.node !== null;
  }

  boot(): void {
    if (this.node !== null) return;
    this.boots++;
    const generation = ++this.#generation;
    this.flash.cancelCut();
    this.flash.restore();
    this.clock.reboot();
    const group = this.#o.scheduler.group(`gate:${this.id}:${this.boots}`);
    this.#timers = group;
    const live = () => this.#generation === generation;
    const timers: Timers = {
      set: (cb, ms): TimerHandle => group.set(() => live() && this.guard(cb), ms),
      repeat: (cb, ms): TimerHandle => group.repeat(() => live() && this.guard(cb), ms),
      clear: (h) => group.clear(h),
    };
    const net = guardedNet(this.#o.network.net(this.id), live, (fn) => this.guard(fn));
    const node = new NodeGate({
      provisioning: this.provisioning,
      crypto: simGateCrypto,
      layout: SIM_LAYOUT,
      flash: this.flash,
      provisioningFlash: this.provisioningFlash,
      clock: this.clock,
      timers,
      net,
      seed: this.#o.seed + this.boots,
      sync: SIM_SYNC,
      onEvent: (type, reason, seq) => this.#event(type, reason, seq),
    });
    const set = node.outputs.set.bind(node.outputs);
    node.outputs.set = (output: OutputName, on: boolean): boolean => {
      if ((output === 'relay' || output === 'barrier') && on && !this.#relay) this.#o.hooks.relayOn(this);
      if (output === 'relay' || output === 'barrier') this.#relay = on;
      return set(output, on);
    };
    this.node = node;
    this.#relay = false;
    this.guard(() => {
      const r = node.start();
      this.#o.hooks.trace(this, `boot ${this.boots} epoch ${r.journalEpoch} last ${r.journalLastSeq} acked ${r.journalAcked}${r.formatted ? ' formatted' : ''}`);
    });
  }

  /** Runs gate code; a power cut kills the node, any other exception is reported. False if the node died. */
  guard(fn: () => void): boolean {
    if (this.node === null) return false;
    try {
      fn();
      this.observe();
      return true;
    } catch (e) {
      if (e instanceof PowerCutError) {
        this.#die('power cut at a flash operation');
        this.#o.hooks.powerLost(this);
      } else {
        this.#die(`crashed: ${e instanceof Error ? e.message : String(e)}`);
        this.#o.hooks.crashed(this, e);
      }
      return false;
    }
  }

  /** Arms a power cut at the n-th next flash write or erase (a torn write where it lands). */
  armPowerCut(n: number): void {
    this.flash.cutAfter(n);
  }

  /** Power gone now, between operations. */
  powerOff(): void {
    this.#die('power off');
  }

  close(): Promise<void> {
    this.#die('closed');
    return Promise.resolve();
  }

  /** The data partition erased (a technician's wipe or a replaced board); the provisioning partition kept. */
  wipe(seed: number): void {
    this.#die('wiped');
    this.watch.wiped();
    this.flash = SimGate.blankFlash(seed);
  }

  /** Reads every record journaled since the last look (called after each step that ran gate code). */
  observe(): void {
    const g = this.node?.gate;
    if (g === undefined) return;
    const j = g.journal;
    if (j.epoch !== this.#seen.epoch) this.#seen = { epoch: j.epoch, seq: 0 };
    this.watch.observe(j.epoch, j.acked, g.state.boot);
    const out = new Uint8Array(RECORD_BYTES);
    for (let seq = Math.max(this.#seen.seq + 1, j.acked + 1); seq <= j.lastSeq; seq++) {
      if (j.readBatch(seq, 1, out).count !== 1) continue;
      this.watch.add(j.epoch, seq, toHex(out));
    }
    this.#seen.seq = Math.max(this.#seen.seq, j.lastSeq);
  }

  readout(): GateReadout | null {
    const g = this.node?.gate;
    if (g === undefined) return null;
    const j = g.journal;
    return {
      version: g.store.version,
      listEpoch: g.store.epoch,
      connected: g.sync.connected,
      mode: g.controller.mode,
      journal: { epoch: j.epoch, lastSeq: j.lastSeq, acked: j.acked, backlog: j.backlog, capacity: j.capacityEvents },
      timers: this.#timers?.live ?? 0,
    };
  }

  describe(): string {
    const gate = this.node?.gate;
    if (gate === undefined) return `${this.id}: down`;
    const st = gate.sync.stats;
    return `${this.id}: ${gate.sync.connected ? 'connected' : 'not connected'}, list v${gate.store.version}, journal epoch ${gate.journal.epoch} acked ${gate.journal.acked} of ${gate.journal.lastSeq}, batches sent ${st.batchesSent} acked ${st.batchesAcked} resends ${st.resends}, refused ${JSON.stringify(st.rejected)}`;
  }

  /** A record the lane controller journaled: read back from flash before anything else happens. */
  #event(type: number, reason: number, seq: number | 'full'): void {
    let durable = false;
    let time = 0;
    const j = this.node?.gate.journal;
    if (seq !== 'full' && j !== undefined) {
      this.observe();
      const hex = this.watch.record(j.epoch, seq);
      const r = createRecord();
      if (hex !== undefined && decodeRecord(fromHexBytes(hex), 0, seq, j.epoch, r) === 0 && r.type === type) {
        durable = true;
        time = r.time;
      }
    }
    this.#o.hooks.event(this, { type, reason, seq, durable, time });
  }

  tap(id: Uint8Array): void {
    const node = this.node;
    if (node === null) return;
    const gate = node.gate;
    // The reference's inputs, read the way the lane controller reads them.
    const t = gate.time.read();
    const head = gate.store.head;
    this.#o.hooks.probe(this, { now: t.now, trusted: t.trusted, version: gate.store.version, headIssuedAt: head?.issuedAt ?? 0, headExpires: head?.expires ?? 0, mode: gate.controller.mode, journalFull: gate.journal.isFull });
    this.guard(() => gate.onRead({ kind: 'card', id, atMs: this.clock.monotonicMs() }));
  }

  rotate(): void {
    const node = this.node;
    if (node === null) return;
    this.guard(() => node.inputs.pulse('rotation'));
  }

  #die(why: string): void {
    if (this.node === null) return;
    this.#o.hooks.trace(this, `down: ${why}`);
    this.#generation++;
    this.#timers?.cancel();
    this.#timers = null;
    this.node = null;
    this.#relay = false;
  }
}

/** The gate's Net with every callback into the gate guarded and dropped once that boot is over. */
function guardedNet(inner: Net, live: () => boolean, guard: (fn: () => void) => boolean): Net {
  return {
    connect: (o: NetConnectOptions) => {
      if (live()) inner.connect(o);
    },
    publish: (topic, payload, qos, retain) => (live() ? inner.publish(topic, payload, qos, retain) : -1),
    subscribe: (filters) => {
      if (live()) inner.subscribe(filters);
    },
    disconnect: () => {
      if (live()) inner.disconnect();
    },
    onMessage: (cb) => inner.onMessage((t, p) => void (live() && guard(() => cb(t, p)))),
    onPublished: (cb) => inner.onPublished((id) => void (live() && guard(() => cb(id)))),
    onConnectionChange: (cb) => inner.onConnectionChange((up) => void (live() && guard(() => cb(up)))),
  };
}

