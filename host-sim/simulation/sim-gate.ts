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
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
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

export interface SimGateHooks {
  /** The gate's code threw something other than a power cut. */
  crashed(gate: SimGate, e: unknown): void;
  /** The relay (or barrier) was switched on. */
  relayOn(gate: SimGate): void;
  /** A record journaled by the lane controller. */
  event(gate: SimGate, type: number, reason: number, seq: number | 'full'): void;
  /** Power lost at a flash operation (armed cut fired). */
  powerLost(gate: SimGate): void;
  trace(gate: SimGate, line: string): void;
}

export interface SimGateOptions {
  readonly scheduler: SimScheduler;
  readonly clock: NodeClock;
  readonly provisioning: ProvisioningRecord;
  readonly network: { net(identity: string): Net };
  readonly hooks: SimGateHooks;
  readonly seed: number;
}

/** The records a gate made durable, by epoch then seq (hex of the 16 bytes). */
export type JournaledRecords = Map<number, Map<number, string>>;

export class SimGate {
  readonly id: string;
  readonly provisioning: ProvisioningRecord;
  readonly clock: NodeClock;
  flash: NorFlash;
  readonly provisioningFlash: NorFlash;
  node: NodeGate | null = null;
  boots = 0;
  /** Every record seen durable on flash. */
  readonly journaled: JournaledRecords = new Map();
  /** Records lost with a wipe (never acknowledged): legitimately gone. */
  lostToWipe = 0;
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

  /** Timers of the running gate (bounded-memory check). */
  get liveTimers(): number {
    return this.#timers?.live ?? 0;
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
      onEvent: (type, reason, seq) => this.#o.hooks.event(this, type, reason, seq),
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

  /** The data partition erased (a technician's wipe or a replaced board); the provisioning partition kept. */
  wipe(seed: number): void {
    this.#die('wiped');
    // What the wipe destroys: the records of the epoch on flash above its last acknowledgement
    // (older epochs were wiped before, or fully acknowledged before a format).
    const epoch = this.#seen.epoch;
    const acked = this.#ackSnapshot.get(epoch) ?? 0;
    if (!this.#wipedAcked.has(epoch)) {
      this.#wipedAcked.set(epoch, acked);
      for (const seq of this.journaled.get(epoch)?.keys() ?? []) if (seq > acked) this.lostToWipe++;
    }
    this.flash = SimGate.blankFlash(seed);
  }

  /** The journal's acknowledged seq per epoch, as last observed. */
  readonly #ackSnapshot = new Map<number, number>();
  /** Per wiped epoch: its acknowledged seq when the wipe came. */
  readonly #wipedAcked = new Map<number, number>();

  /** Records lost to a wipe: the (epoch, seq) keys above the gate's last ack at the wipe. */
  lostAt(epoch: number, seq: number): boolean {
    const a = this.#wipedAcked.get(epoch);
    return a !== undefined && seq > a;
  }

  /** Reads every record journaled since the last look (called after each step that ran gate code). */
  observe(): void {
    const g = this.node?.gate;
    if (g === undefined) return;
    const j = g.journal;
    if (j.epoch !== this.#seen.epoch) this.#seen = { epoch: j.epoch, seq: 0 };
    this.#ackSnapshot.set(j.epoch, j.acked);
    if (g.state.boot > (this.#boots.get(j.epoch) ?? 0)) this.#boots.set(j.epoch, g.state.boot);
    let recs = this.journaled.get(j.epoch);
    if (recs === undefined) {
      recs = new Map();
      this.journaled.set(j.epoch, recs);
    }
    const out = new Uint8Array(RECORD_BYTES);
    for (let seq = Math.max(this.#seen.seq + 1, j.acked + 1); seq <= j.lastSeq; seq++) {
      if (j.readBatch(seq, 1, out).count !== 1) continue;
      if (!recs.has(seq)) recs.set(seq, toHex(out));
    }
    this.#seen.seq = Math.max(this.#seen.seq, j.lastSeq);
  }

  /** The highest boot count seen in a journal epoch (the boot counter lives on the data partition: a wipe starts it again). */
  highestBoot(epoch: number): number {
    return this.#boots.get(epoch) ?? 0;
  }
  readonly #boots = new Map<number, number>();


  tap(id: Uint8Array): void {
    const node = this.node;
    if (node === null) return;
    this.guard(() => node.gate.onRead({ kind: 'card', id, atMs: this.clock.monotonicMs() }));
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

