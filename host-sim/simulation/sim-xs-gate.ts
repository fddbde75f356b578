// One gate of the deterministic simulation on the real XS engine: the
// firmware that is flashed, firmware/moddable/main.ts, on the simulated
// ECMA-419 provider in an xsnap worker (host-sim/xs-gate/), driven in lockstep
// with virtual time. Its network is the seeded broker (sim-mqtt-bridge.ts)
// through the command channel; no socket is opened.
//
// Lockstep: the worker's clock moves only when the world advances it, by the
// virtual time elapsed since the last advance, so its clock is the world's.
// A wake is scheduled in the world's timers at the device's next timer due
// (every reply says when; at most every QUANTUM_MS) or at once when
// something arrives for it (a broker packet, a tap, a pin). Each advance is one IPC round trip handed to
// the driver's drain (`later`), so nothing else happens while it runs.
//
// What the device did comes back in order: a probed tap's decision inputs,
// the records journaled (read back from flash in the worker), the pin writes
// with the journal's last seq at each (so a relay switched on is ordered
// after the records before it). A power cut armed in the worker's flash
// model ends the worker; the next boot starts a new worker from the flash
// image the cut left.

import { createRecord, decodeRecord, RECORD_BYTES } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { partitionBytes } from '../../firmware/core/partition.js';
import { XsGate, type AdvanceResult } from '../xs-gate/xs-gate.js';
import { JournalWatch } from './journal-watch.js';
import type { SimBroker } from './sim-broker.js';
import { SIM_LAYOUT } from './sim-gate.js';
import { SimMqttBridge } from './sim-mqtt-bridge.js';
import type { TimerHandle } from '../../firmware/ports.js';
import type { SimScheduler, TimerGroup } from './sim-scheduler.js';
import type { GateReadout, SimulatedGate, SimulatedGateHooks } from './simulated-gate.js';

export interface SimXsGateOptions {
  readonly scheduler: SimScheduler;
  /** Its broker field must be an mqtt:// URL (the firmware parses it); any host resolves to the simulated broker. */
  readonly provisioning: ProvisioningRecord;
  readonly broker: SimBroker;
  readonly hooks: SimulatedGateHooks;
  readonly seed: number;
  /** A script evaluated in the worker after each boot (tests: a bug patched into the running firmware). */
  readonly afterBoot?: string;
  /** Network time now (UTC seconds): what SNTP tells the device when it boots. */
  readonly wallSeconds: () => number;
  /**
   * Hands async work (commands to the worker) to the driver, which runs the
   * work of every XS gate one after another in the order it was handed over,
   * and waits for it before the next step: replies from several workers never
   * race.
   */
  readonly later: (work: () => Promise<unknown>) => void;
}

const RELAY_OUTPUTS = new Set(['relay', 'barrier']);
/**
 * With nothing arriving, the worker runs at most this much virtual time per
 * advance (its own timers run inside at their times); what it sends then
 * leaves at the end of the advance, up to this late. Anything arriving (a
 * packet, a tap, a pin) advances it at once, so inputs are never late. One
 * IPC round trip per device tick (50 ms) would cost ~20 ms of wall time per
 * virtual second; this way ~4 (bench/simulate.ts).
 */
const QUANTUM_MS = 250;

export class SimXsGate implements SimulatedGate {
  readonly id: string;
  readonly engine = 'xs';
  readonly provisioning: ProvisioningRecord;
  readonly clock = null;
  readonly watch = new JournalWatch();
  boots = 0;
  readonly #o: SimXsGateOptions;
  readonly #xs: XsGate;
  /** A worker is running this boot's firmware (start() done, no power cut since). */
  #running = false;
  /** Bumped at each boot and each death: what an older boot's work finds changed. */
  #generation = 0;
  #timers: TimerGroup | null = null;
  #wake: { readonly atMs: number; readonly handle: TimerHandle } | null = null;
  /** World ms of the last advance (the worker's clock is there). */
  #lastMs = 0;
  /** Faults the worker reported so far this boot. */
  #faults = 0;
  #relay = false;

  constructor(o: SimXsGateOptions) {
    this.#o = o;
    this.id = o.provisioning.gate;
    this.provisioning = o.provisioning;
    this.#xs = new XsGate({
      provisioning: o.provisioning,
      seed: o.seed,
      name: o.provisioning.gate,
      // The population's cards are EM4100 (5-byte ids), as the Node gates read them.
      config: { subline: { reader: { kind: 'em4100' }, layout: { credentials: SIM_LAYOUT.credentials, journalSectors: SIM_LAYOUT.journalSectors ?? 8 } } },
      partitionBytes: { data: partitionBytes(SIM_LAYOUT) },
      ntpSeconds: () => o.wallSeconds(),
      keepLines: 200,
      watchJournal: true,
      inputsAtEnd: true,
      network: (onEvent) => new SimMqttBridge({ broker: o.broker, identity: o.provisioning.gate, onEvent, onActivity: () => this.#wakeIn(0) }),
      // A checker's exception is the checker's, not a crash of the device: handed to the driver as a failure of its own.
      onAdvance: (r) => {
        try {
          this.#absorb(r);
        } catch (e) {
          o.later(() => Promise.reject(e instanceof Error ? e : new Error(String(e))));
        }
      },
    });
  }

  get alive(): boolean {
    return this.#running;
  }

  readout(): GateReadout | null {
    if (!this.#running) return null;
    const s = this.#xs.status();
    return {
      version: s.version,
      listEpoch: s.listEpoch,
      connected: s.online,
      mode: s.mode,
      journal: { epoch: s.journal.epoch, lastSeq: s.journal.lastSeq, acked: s.journal.acked, backlog: s.journal.backlog, capacity: s.journalCapacity },
      timers: s.timers,
    };
  }

  describe(): string {
    if (!this.#running) return `${this.id} (xs): down`;
    const s = this.#xs.status();
    return `${this.id} (xs): ${s.online ? 'connected' : 'not connected'}, list v${s.version}, journal epoch ${s.journal.epoch} acked ${s.journal.acked} of ${s.journal.lastSeq}, sync requests ${s.syncRequests}, refused ${JSON.stringify(s.syncRejected)}`;
  }

  boot(): void {
    if (this.#running || this.#timers !== null) return;
    this.boots++;
    const generation = ++this.#generation;
    this.#timers = this.#o.scheduler.group(`xs:${this.id}:${this.boots}`);
    this.#faults = 0;
    this.#relay = false;
    this.#o.later(async () => {
        if (generation !== this.#generation) return;
        this.#lastMs = this.#o.scheduler.nowMs;
        this.#running = true; // before start(): its advance(0) reports through #absorb
        const s = await this.#xs.start();
        if (generation !== this.#generation) return;
        this.#o.hooks.trace(this, `boot ${this.boots} (xs) epoch ${s.journal.epoch} last ${s.journal.lastSeq} acked ${s.journal.acked}${s.running ? '' : ` not running: ${s.refused ?? 'unknown'}`}`);
        if (!s.running) this.#o.hooks.crashed(this, new Error(`main() refused: ${s.refused ?? 'unknown'}`));
        if (this.#o.afterBoot !== undefined) await this.#xs.evaluate(this.#o.afterBoot);
    });
  }

  powerOff(): void {
    this.#die('power off');
  }

  /** Stops the worker (at the end of a run). */
  /** At the end of a run (the driver's queue of XS work done): the worker stopped. */
  async close(): Promise<void> {
    if (this.#running || this.#timers !== null) {
      this.#o.hooks.trace(this, 'down: closed');
      this.#generation++;
      this.#running = false;
      this.#timers?.cancel();
      this.#timers = null;
    }
    await this.#xs.kill();
  }

  wipe(seed: number): void {
    void seed; // the worker's flash model is seeded from the gate's seed and its boots
    this.#die('wiped');
    this.watch.wiped();
    this.#o.later(() => Promise.resolve(this.#xs.wipeData())); // after the kill #die handed over
  }

  armPowerCut(n: number): void {
    if (!this.#running) return;
    const generation = this.#generation;
    this.#o.later(async () => {
      if (generation === this.#generation) await this.#xs.armPowerCut(n, 'any');
    });
  }

  tap(card: Uint8Array): void {
    if (!this.#running) return;
    this.#xs.tap(card, 'card', 0, { probe: true });
    this.#wakeIn(0);
  }

  rotate(): void {
    if (!this.#running) return;
    this.#xs.pulse('rotation');
    this.#wakeIn(0);
  }

  // ---------------------------------------------------------------- lockstep

  #wakeIn(ms: number): void {
    const timers = this.#timers;
    if (timers === null || !this.#running) return;
    const s = this.#o.scheduler;
    const at = s.nowMs + Math.max(0, ms);
    if (this.#wake !== null && this.#wake.atMs <= at) return;
    if (this.#wake !== null) timers.clear(this.#wake.handle);
    const generation = this.#generation;
    const handle = timers.set(() => {
      this.#wake = null;
      if (generation === this.#generation) this.#advance();
    }, at - s.nowMs);
    this.#wake = { atMs: at, handle };
  }

  #advance(): void {
    if (!this.#running) return;
    const now = this.#o.scheduler.nowMs;
    const ms = now - this.#lastMs;
    this.#lastMs = now;
    const generation = this.#generation;
    this.#o.later(() =>
      generation !== this.#generation
        ? Promise.resolve()
        : this.#xs.advance(ms).catch((e: unknown) => {
            // The worker died under us (a bug of the simulated provider or the engine): a crash of the device.
            if (generation === this.#generation) {
              this.#die('worker failed');
              this.#o.hooks.crashed(this, e);
            }
          }),
    );
  }

  /** What one advance did, in the device's order; then the next wake. */
  #absorb(r: AdvanceResult): void {
    if (!this.#running) return;
    const s = r.status;
    const hooks = this.#o.hooks;
    if (s.faults.length > this.#faults) {
      const fresh = s.faults.slice(this.#faults);
      this.#faults = s.faults.length;
      // After a power cut every flash operation fails: what the firmware then throws is the power going.
      if (!s.poweredOff) hooks.crashed(this, new Error(fresh.join('; ')));
    }
    for (const p of r.probes) hooks.probe(this, p);
    this.watch.observe(s.journal.epoch, s.journal.acked, s.boot);
    // The records of this advance in seq order (ranges read after each timer callback), given out
    // up to each relay switch-on's seq first: what the device journaled before it.
    const recs = r.journaled.flatMap((j) => Array.from({ length: j.count }, (_, i) => ({ epoch: j.epoch, seq: j.first + i, bytes: j.records.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES) })));
    let next = 0;
    const emitUpTo = (seq: number): void => {
      for (; next < recs.length && recs[next]!.seq <= seq; next++) this.#record(recs[next]!.epoch, recs[next]!.seq, recs[next]!.bytes);
    };
    for (const w of r.pins) {
      const out = this.#outputAt(w.pin);
      if (out === null) continue;
      const on = (w.level === 1) !== out.activeLow;
      if (on && !this.#relay) {
        emitUpTo(w.seq);
        hooks.relayOn(this, w.mode);
      }
      this.#relay = on;
    }
    emitUpTo(Number.MAX_SAFE_INTEGER);
    if (s.poweredOff) {
      this.#die('power cut at a flash operation');
      hooks.powerLost(this);
      return;
    }
    if (s.nextDueMs !== null) this.#wakeIn(Math.max(QUANTUM_MS, s.nextDueMs - s.nowMs));
  }

  #record(epoch: number, seq: number, bytes: Uint8Array): void {
    if (!this.watch.add(epoch, seq, toHex(bytes))) return; // seen before a reboot
    const rec = createRecord();
    if (decodeRecord(bytes, 0, seq, epoch, rec) !== 0) return; // a tombstone: no event of the lane controller
    this.#o.hooks.event(this, { type: rec.type, reason: rec.reason, seq, durable: true, time: rec.time });
  }

  #outputAt(pin: number): { readonly activeLow: boolean } | null {
    for (const [name, w] of Object.entries(this.#xs.wiring.outputs)) if (w !== undefined && w.pin === pin && RELAY_OUTPUTS.has(name)) return w;
    return null;
  }

  #die(why: string): void {
    if (!this.#running && this.#timers === null) return;
    this.#o.hooks.trace(this, `down: ${why}`);
    this.#generation++;
    this.#running = false;
    this.#timers?.cancel();
    this.#timers = null;
    this.#wake = null;
    this.#relay = false;
    // kill() keeps the flash as it is now (the torn write included) for the next boot.
    this.#o.later(() => this.#xs.kill());
  }
}
