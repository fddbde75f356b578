// The deterministic whole-system simulation (docs/SIMULATION.md): one
// process, virtual time, the real gate core (NodeGate) and the real central
// (registry, event store, image builder; SQLite on a temp file, so a central
// restart is real), connected by a seeded simulated broker. Faults, taps and
// an adversary are drawn from the seed; invariants are checked while it runs.
// A violation stops the run with the seed, the time, the invariant, the last
// trace lines of the nodes involved and the command that replays it.
//
// The driver steps the scheduler one timer at a time and lets the promise
// work each step started (the central's store) finish before the next, so
// the order of everything is a function of the seed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { EventType } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { REASON_NAMES, Reason } from '../../protocol/reasons.js';
import { BrokerAcl } from '../broker-acl.js';
import { Central } from '../central/central.js';
import type { CentralTransport } from '../central/central-transport.js';
import type { SqliteDb } from '../central/store/sqlite-db.js';
import { isDiskFull } from '../central/store/sql-db.js';
import { mulberry32 } from '../flash/nor-flash.js';
import { Ed25519Signer, nodeCrypto } from '../node-crypto.js';
import { credentialKey } from '../../protocol/credential-key.js';
import { CENTRAL_IDENTITY } from '../pki/deployment-pki.js';
import { fleetSpecs, type GateSpec } from '../sim/fleet-simulator.js';
import { DeterminismGuard, realSetImmediate } from './determinism-guard.js';
import { Adversary } from './adversary.js';
import { SimBroker } from './sim-broker.js';
import { SimGate } from './sim-gate.js';
import { SimXsGate } from './sim-xs-gate.js';
import type { GateMode } from '../../firmware/core/decision.js';
import type { JournalEvent, SimulatedGate, SimulatedGateHooks, TapInputs } from './simulated-gate.js';
import { bundleXsGate } from '../xs-gate/bundle.js';
import { SimPopulation, seededKey, unknownCard, type SimPerson } from './sim-population.js';
import { SimScheduler, type NodeClock, type TimerGroup } from './sim-scheduler.js';
import { Trace } from './trace.js';
import { ReferencePassback } from './whitelist-reference.js';
import type { TapJson } from './whitelist-model.js';

export const FAULT_KINDS = ['broker-restart', 'partition', 'central-crash', 'power-cut', 'clock', 'wipe', 'disk-full', 'churn', 'adversary', 'lossy-links'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Bounds the invariants use (stated in docs/SIMULATION.md). */
export const BOUNDS = {
  /** A revocation is denied by every gate connected without a fault for this long (ms). */
  revocationMs: 60_000,
  /** After the last fault heals, everything journaled is stored within this (ms). */
  convergeMs: 20 * 60_000,
  /** Timers one gate may have waiting. */
  gateTimers: 64,
} as const;

export interface SimulationOptions {
  readonly seed: number;
  readonly gates?: number;
  readonly hours?: number;
  readonly faults?: readonly FaultKind[];
  /** How many of the gates run firmware/moddable/main.ts on XS (xsnap workers in lockstep); the first ones (default 0). */
  readonly xs?: number;
  /** Tests: a script evaluated in every XS worker after it boots (a bug patched into the running firmware). */
  readonly xsAfterBoot?: string;
}

export interface Violation {
  readonly invariant: string;
  readonly atMs: number;
  readonly gate?: string;
  readonly detail: string;
  readonly lastEvents: readonly string[];
}

export interface SimulationReport {
  readonly seed: number;
  readonly gates: number;
  /** Of which on XS. */
  readonly xs: number;
  readonly hours: number;
  readonly faults: readonly FaultKind[];
  readonly digest: string;
  readonly violations: readonly Violation[];
  /** `checkedXs`: the checked decisions that gates on XS made; `undecided`: taps with no decision journaled (a full journal, a power cut, a gate down). */
  readonly taps: { total: number; granted: number; denied: number; checked: number; checkedXs: number; undecided: number; byReason: Record<string, number> };
  readonly injected: Record<string, number>;
  readonly events: { journaled: number; stored: number; lostToWipe: number };
  readonly versions: { final: number; changes: number };
  /** From the end of the last fault until every record was stored and every gate held the final version (ms of virtual time). */
  readonly convergedMs: number | null;
  readonly virtualMs: number;
  readonly steps: number;
  readonly traceLines: number;
  readonly wallMs: number;
  readonly replay: string;
}

class ViolationStop extends Error {
  constructor(readonly violation: Violation) {
    super(violation.invariant);
  }
}

const T0 = 1_795_000_000; // 2026-11-18, a Wednesday (UTC)
const TAP_GAP_MS = [12_000, 40_000] as const;
const FAULT_GAP_MS = [60_000, 240_000] as const;

export function replayCommand(o: { seed: number; gates: number; hours: number; faults: readonly FaultKind[]; xs?: number }): string {
  const all = o.faults.length === FAULT_KINDS.length && FAULT_KINDS.every((k) => o.faults.includes(k));
  return `subline simulate --seed ${o.seed} --gates ${o.gates} --hours ${o.hours}${(o.xs ?? 0) > 0 ? ` --xs ${o.xs}` : ''}${all ? '' : ` --faults ${o.faults.length === 0 ? 'none' : o.faults.join(',')}`}`;
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  // The XS gates' script is bundled (esbuild, cached) before the guard: a build tool's clock is not the run's.
  if ((options.xs ?? 0) > 0) await bundleXsGate();
  const guard = new DeterminismGuard();
  const realNow = performance.now.bind(performance);
  const wallStart = realNow();
  guard.install();
  let sim: Simulation | null = null;
  try {
    sim = new Simulation(options);
    const report = await sim.run(() => realNow() - wallStart);
    // A refusal some component caught and logged is still a determinism leak.
    if (guard.refused.length === 0) return report;
    const leak: Violation = { invariant: 'determinism: nothing reads the host clock, timers or randomness', atMs: report.virtualMs, detail: `refused: ${[...new Set(guard.refused)].join(', ')}`, lastEvents: [] };
    return { ...report, violations: [...report.violations, leak] };
  } finally {
    await sim?.dispose();
    guard.uninstall();
  }
}

interface Plan {
  readonly person: SimPerson | null;
  readonly card: Uint8Array;
  readonly passes: boolean;
  readonly tailgate: boolean;
}

class Simulation {
  readonly seed: number;
  readonly gateCount: number;
  readonly hours: number;
  readonly faults: readonly FaultKind[];
  readonly #s: SimScheduler;
  readonly #trace: Trace;
  readonly #dir = mkdtempSync(join(tmpdir(), 'subline-simulate-'));
  readonly #world: TimerGroup;
  readonly #rng: (label: string) => () => number;
  readonly #broker: SimBroker;
  readonly #population: SimPopulation;
  readonly #gates: SimulatedGate[] = [];
  readonly xsCount: number;
  readonly #xsAfterBoot: string | undefined;
  /** The XS gates' work, one command at a time in the order handed over (their replies never race). */
  #xsQueue: Promise<unknown> = Promise.resolve();
  readonly #specs: GateSpec[];
  readonly #passback = new Map<string, ReferencePassback>();
  /** Passback uncertain until (virtual ms) at a gate whose power was cut (a torn passage record may be gone). */
  readonly #passbackUncertain = new Map<string, number>();
  readonly #highestVersion = new Map<string, number>();
  readonly #lastDisturbance = new Map<string, number>();
  readonly #grantsUnused = new Map<string, number>();
  readonly #revocations: { card: Uint8Array; version: number; atMs: number }[] = [];
  readonly #injected: Record<string, number> = {};
  readonly #taps = { total: 0, granted: 0, denied: 0, checked: 0, checkedXs: 0, undecided: 0, byReason: {} as Record<string, number> };
  readonly #keys: { signingKey: Uint8Array; deploymentKey: Uint8Array; gateMasterKey: Uint8Array; publicKey: Uint8Array };
  #centralClock: NodeClock;
  #central: Central | null = null;
  #centralTimers: TimerGroup | null = null;
  #centralStarting = false;
  #centralGeneration = 0;
  #adversary: Adversary | null = null;
  /** Per gate: the tap waiting for its decision (its inputs once the gate read the card). */
  readonly #tapping = new Map<string, { readonly plan: Plan; readonly r: () => number; inputs: TapInputs | null; tap: TapJson | null }>();
  /** Per gate: the turn of a granted tap, until its passage record (or not: a turn after the lane closed). */
  readonly #turning = new Map<string, { readonly boots: number; readonly group: number; readonly tap: TapJson; readonly plan: Plan }>();
  #violation: Violation | null = null;
  #faultsUntil = 0;
  #lastFaultEnd = 0;
  #versionChanges = 0;
  #pending: Promise<unknown>[] = [];
  /** The last step called into the central: drain before the next. */
  #busy = true;

  constructor(o: SimulationOptions) {
    this.seed = o.seed >>> 0;
    this.gateCount = o.gates ?? 8;
    this.hours = o.hours ?? 1;
    this.faults = o.faults ?? FAULT_KINDS;
    this.xsCount = o.xs ?? 0;
    this.#xsAfterBoot = o.xsAfterBoot;
    if (!Number.isInteger(this.xsCount) || this.xsCount < 0 || this.xsCount > Math.min(this.gateCount, 64)) throw new RangeError('xs must be an integer in 0..min(gates, 64)');
    if (!Number.isInteger(this.gateCount) || this.gateCount < 1 || this.gateCount > 10_000) throw new RangeError('gates must be an integer in 1..10000');
    if (!(this.hours > 0 && this.hours <= 48)) throw new RangeError('hours must be in (0, 48]');
    this.#s = new SimScheduler({ wallSeconds: T0 });
    this.#trace = new Trace(() => this.#s.nowMs);
    this.#world = this.#s.group('world');
    const base = this.seed;
    this.#rng = (label) => {
      let h = 2166136261 ^ base;
      for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
      return mulberry32(h >>> 0);
    };
    const signingKey = seededKey(this.seed, 'signing');
    this.#keys = { signingKey, deploymentKey: seededKey(this.seed, 'deployment'), gateMasterKey: seededKey(this.seed, 'gate-master'), publicKey: new Ed25519Signer(signingKey).publicKey };
    this.#specs = fleetSpecs(this.gateCount).map((s) => ({ ...s, lane: 'person' as const }));
    this.#broker = new SimBroker({
      scheduler: this.#s,
      random: this.#rng('broker'),
      acl: new BrokerAcl({ gates: this.#specs.map((s) => ({ id: s.id, list: 'main' })), operators: [] }),
      link: { delayMs: 5, jitterMs: 20 },
      onTrace: (line) => this.#trace.add('broker', line),
    });
    this.#population = new SimPopulation(this.#rng('population'));
    this.#centralClock = this.#s.clock();
  }

  async run(wallMs: () => number): Promise<SimulationReport> {
    const endMs = Math.round(this.hours * 3600_000);
    this.#faultsUntil = Math.max(0, endMs - 10 * 60_000);
    try {
      await this.#startCentral(true);
      for (const [i, spec] of this.#specs.entries()) await this.#addGate(spec, i);
      for (const g of this.#gates) this.#scheduleTaps(g);
      if (this.faults.length > 0) this.#scheduleFault();
      if (this.faults.includes('churn')) this.#scheduleChurn();
      this.#world.repeat(() => this.#check(), 1000);
      this.#world.repeat(() => this.#later(this.#checkStore(false)), 60_000);
      await this.#runUntil(endMs);
      // Heal: no new fault, taps stop, every partition and link fault lifted; then converge.
      this.#healAll();
      this.#lastFaultEnd = Math.max(this.#lastFaultEnd, this.#s.nowMs);
      const converged = await this.#converge(this.#s.nowMs + BOUNDS.convergeMs);
      await this.#checkStore(true);
      return await this.#report(wallMs, converged);
    } catch (e) {
      if (e instanceof ViolationStop) return await this.#report(wallMs, null);
      throw e;
    }
  }

  async dispose(): Promise<void> {
    this.#world.cancel();
    // XS work still queued (a boot in flight when the run ended) first: no worker is left behind.
    await this.#xsQueue.catch(() => undefined);
    await Promise.allSettled(this.#pending);
    await this.#xsQueue.catch(() => undefined);
    await Promise.all(this.#gates.map((g) => g.close()));
    const c = this.#central;
    this.#central = null;
    this.#centralTimers?.cancel();
    this.#broker.close();
    if (c !== null) await c.store.db.close().catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------ loop

  async #runUntil(untilMs: number, done?: () => Promise<boolean>): Promise<boolean> {
    let n = 0;
    while (this.#s.step(untilMs)) {
      await this.#drain();
      if (this.#violation !== null) throw new ViolationStop(this.#violation);
      if (done !== undefined && ++n % 500 === 0 && (await done())) return true;
    }
    await this.#drain();
    return done !== undefined ? await done() : true;
  }

  /** A call into the central: promise work may follow, the next drain must wait for it. */
  #busyCall(cb: () => void): void {
    this.#busy = true;
    cb();
  }

  /** The central's transport with every callback into the central marked (only the central starts promise work). */
  #watched(t: CentralTransport): CentralTransport {
    const mark = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A): void => this.#busyCall(() => fn(...a));
    return {
      url: t.url,
      open: (clientId, on) => {
        const link = t.open(clientId, { connect: mark(() => on.connect()), message: mark((topic: string, payload: Uint8Array, retained: boolean) => on.message(topic, payload, retained)), error: mark((e: Error) => on.error(e)) });
        return {
          get connected() {
            return link.connected;
          },
          publish: (topic, payload, retain, done) => link.publish(topic, payload, retain, mark(done)),
          subscribe: (filters, done) => link.subscribe(filters, mark(done)),
          end: (force, done) => link.end(force, mark(done)),
        };
      },
    };
  }

  /**
   * Lets every promise started by the last step settle (the store is
   * synchronous SQLite under its promises). Only steps that called into the
   * central (or started work of the driver's own) can leave any.
   */
  async #drain(): Promise<void> {
    // Until quiet: work started by the driver's own promises may call into the central again.
    for (let round = 0; this.#busy || this.#pending.length > 0; round++) {
      if (round > 1000) throw new Error('simulation: promise work does not settle');
      this.#busy = false;
      await new Promise<void>((r) => realSetImmediate(r));
      if (this.#pending.length > 0) {
        const p = this.#pending;
        this.#pending = [];
        await Promise.all(p);
        this.#busy = true; // one more turn for what finished last
      }
    }
  }

  #later(p: Promise<unknown>): void {
    this.#busy = true;
    this.#pending.push(p.catch((e: unknown) => this.#violate('exception', undefined, e instanceof Error ? (e.stack ?? e.message) : String(e))));
  }

  async #converge(untilMs: number): Promise<number | null> {
    const start = this.#s.nowMs;
    const ok = await this.#runUntil(untilMs, () => this.#synced());
    if (!ok) return null;
    return this.#s.nowMs - Math.min(start, this.#lastFaultEnd);
  }

  /** Every gate up, caught up with the central's version, its journal fully acknowledged. */
  async #synced(): Promise<boolean> {
    const c = this.#central;
    if (c === null || !c.connected) return false;
    const version = (await c.registry.list()).version;
    for (const g of this.#gates) {
      const gate = g.readout();
      if (gate === null) return false;
      if (gate.version !== version) return false;
      if (gate.journal.acked < gate.journal.lastSeq) return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ nodes

  async #startCentral(first: boolean): Promise<void> {
    this.#crashCentral(); // one central at a time: a supervisor's restart replaces what runs
    const generation = ++this.#centralGeneration;
    const timers = this.#s.group('central');
    this.#centralTimers = timers;
    const random = this.#rng(`central-random-${this.#injected['central-crash'] ?? 0}`);
    const central = await Central.open({
      db: join(this.#dir, 'central.db'),
      signingKey: this.#keys.signingKey,
      deploymentKey: this.#keys.deploymentKey,
      gateMasterKey: this.#keys.gateMasterKey,
      transport: this.#watched(this.#broker.transport(CENTRAL_IDENTITY)),
      clientId: 'central',
      clock: this.#centralClock,
      timers: {
        set: (cb, ms) => timers.set(() => this.#busyCall(cb), ms),
        repeat: (cb, ms) => timers.repeat(() => this.#busyCall(cb), ms),
        clear: (h) => timers.clear(h),
      },
      random: (n) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256)),
      headIntervalSeconds: 60,
      headLifetimeSeconds: 3600,
      chunkSize: 1024,
      log: (line) => this.#trace.add('central', `log ${line}`),
    });
    this.#central = central;
    // No fsync: the simulation kills the central's process, never its machine's power (a kill -9
    // keeps every committed page in the OS), and fsync is most of the cost of a large fleet.
    (central.store.db as SqliteDb).raw.pragma('synchronous = OFF');
    if (first) await this.#population.seed(central.registry, T0, { institutions: 8, people: 160 });
    this.#centralStarting = true;
    // Not one of the step's promises: start() settles only once connected, which takes virtual time.
    void (
      central.start().then(
        () => {
          this.#centralStarting = false;
          this.#trace.add('central', 'started');
        },
        (e: unknown) => {
          this.#centralStarting = false;
          this.#trace.add('central', `start failed: ${e instanceof Error ? e.message : String(e)}`);
          // Not connected in time (the broker is down or cut off): try again, as a supervisor would,
          // unless another start (a crash's restart) came meanwhile.
          if (this.#central === central) this.#world.set(() => generation === this.#centralGeneration && this.#later(this.#startCentral(false)), 5000);
        },
      )
    );
  }

  /** kill -9 between transactions: timers and connection gone, the database closed as it stands. */
  #crashCentral(): void {
    const c = this.#central;
    if (c === null) return;
    this.#central = null;
    this.#centralTimers?.cancel();
    this.#centralTimers = null;
    this.#broker.dropClients(CENTRAL_IDENTITY);
    (c.store.db as SqliteDb).raw.close();
    this.#trace.add('central', 'crashed');
  }

  async #addGate(spec: GateSpec, i: number): Promise<void> {
    const c = this.#central!;
    const id = await c.provisionGate({ gate: spec.id, site: spec.site, list: 'main', line: spec.line, direction: spec.direction, lane: spec.lane });
    const xs = i < this.xsCount;
    const p: ProvisioningRecord = {
      // The device firmware parses its broker URL; any host resolves to the simulated broker.
      gate: spec.id, site: spec.site, line: spec.line, direction: spec.direction, lane: spec.lane, list: 'main', topicRoot: 'subline', broker: xs ? 'mqtt://broker.sim:1883' : 'sim://broker',
      trustedKeys: [this.#keys.publicKey], deploymentKey: this.#keys.deploymentKey, gateKey: id.gateKey, gateKeyId: id.gateKeyId,
      journalEpoch: 1000 * (i + 1), policy: DEFAULT_POLICY[spec.line], passbackSeconds: 120,
    };
    const hooks: SimulatedGateHooks = {
      crashed: (gate, e) => this.#violate('gate code never throws', gate.id, e instanceof Error ? (e.stack ?? e.message) : String(e)),
      relayOn: (gate, mode) => this.#onRelay(gate, mode),
      probe: (gate, inputs) => this.#onProbe(gate, inputs),
      event: (gate, e) => this.#onEvent(gate, e),
      powerLost: (gate) => this.#onPowerLost(gate),
      trace: (gate, line) => this.#trace.add(gate.id, line),
    };
    const seed = this.seed * 64 + i;
    const g: SimulatedGate = xs
      ? new SimXsGate({ scheduler: this.#s, provisioning: p, broker: this.#broker, hooks, seed, wallSeconds: () => T0 + this.#s.nowMs / 1000, later: (work) => this.#laterXs(work), ...(this.#xsAfterBoot !== undefined ? { afterBoot: this.#xsAfterBoot } : {}) })
      : new SimGate({ scheduler: this.#s, clock: this.#s.clock(), provisioning: p, network: this.#broker, seed, hooks });
    this.#gates.push(g);
    this.#passback.set(g.id, new ReferencePassback());
    g.boot();
  }

  #laterXs(work: () => Promise<unknown>): void {
    const next = this.#xsQueue.then(work);
    this.#xsQueue = next.catch(() => undefined);
    this.#later(next);
  }

  #onEvent(gate: SimulatedGate, e: JournalEvent): void {
    if (e.type === EventType.decision_granted || e.type === EventType.decision_denied) this.#onDecision(gate, e);
    if (e.type === EventType.passage_completed) this.#onPassage(gate, e);
    // A grant (or an open command) counts for the relay only once its record reads back from flash as such.
    if (e.durable && (e.type === EventType.decision_granted || e.type === EventType.command)) this.#grantsUnused.set(gate.id, (this.#grantsUnused.get(gate.id) ?? 0) + 1);
    this.#trace.add(gate.id, `event type ${e.type} reason ${e.reason} seq ${e.seq}`);
  }

  /** No passage without a durable record before the relay (fire release excepted). */
  #onRelay(gate: SimulatedGate, modeThen?: string): void {
    const mode = modeThen ?? gate.readout()?.mode;
    if (mode === 'emergency') return;
    const unused = this.#grantsUnused.get(gate.id) ?? 0;
    if (unused <= 0) return this.#violate('no passage without a durable record before the relay', gate.id, 'relay switched on with no journaled grant or open command before it');
    this.#grantsUnused.set(gate.id, unused - 1);
  }

  #onPowerLost(gate: SimulatedGate): void {
    this.#count('power-cut.fired');
    if (gate.engine === 'xs') this.#count('power-cut.fired.xs');
    this.#disturb(gate.id);
    this.#grantsUnused.set(gate.id, 0);
    this.#passbackUncertain.set(gate.id, this.#s.nowMs + 10 * 60_000);
    const down = 2000 + Math.floor(this.#rng(`reboot-${gate.id}-${gate.boots}`)() * 20_000);
    this.#disturb(gate.id, this.#s.nowMs + down + 60_000);
    this.#world.set(() => gate.boot(), down);
  }

  // ------------------------------------------------------------------ taps

  #scheduleTaps(g: SimulatedGate): void {
    const r = this.#rng(`taps-${g.id}`);
    const next = (): void => {
      if (this.#s.nowMs >= this.#faultsUntil + 5 * 60_000) return; // the taps end before the final convergence
      this.#world.set(() => {
        this.#tap(g, r);
        next();
      }, TAP_GAP_MS[0] + Math.floor(r() * (TAP_GAP_MS[1] - TAP_GAP_MS[0])));
    };
    next();
  }

  #plan(g: SimulatedGate, r: () => number): Plan {
    const people = this.#population.people;
    const x = r();
    const passes = r() < 0.93;
    if (x < 0.08) return { person: null, card: unknownCard(this.seed, Math.floor(r() * 1e9)), passes, tailgate: false };
    const revoked = people.filter((p) => p.revoked);
    if (x < 0.13 && revoked.length > 0) {
      const p = revoked[Math.floor(r() * revoked.length)]!;
      return { person: p, card: p.card, passes, tailgate: false };
    }
    const last = this.#lastPassage.get(g.id);
    if (x < 0.2 && last !== undefined) return { person: last, card: last.card, passes, tailgate: false }; // passback
    const p = people[Math.floor(r() * people.length)]!;
    return { person: p, card: p.card, passes, tailgate: r() < 0.05 };
  }

  readonly #lastPassage = new Map<string, SimPerson>();

  #tap(g: SimulatedGate, r: () => number): void {
    const plan = this.#plan(g, r);
    if (!g.alive) return;
    // An XS gate's tap the lane controller read but journaled no decision for (a full journal, a cut): counted.
    const before = this.#tapping.get(g.id);
    if (before?.tap !== null && before?.tap !== undefined) this.#undecided(g, before.tap.key);
    this.#tapping.set(g.id, { plan, r, inputs: null, tap: null });
    g.tap(plan.card);
    this.#taps.total++;
    // The Node gate decides inside tap(); an XS gate when its worker next runs (a step later).
    if (g.engine === 'node' && this.#tapping.has(g.id)) {
      this.#undecided(g, toHex(credentialKey(nodeCrypto, this.#keys.deploymentKey, 1, plan.card)));
      this.#tapping.delete(g.id);
    }
  }

  #undecided(g: SimulatedGate, key: string): void {
    this.#taps.undecided++;
    this.#trace.add(g.id, `tap ${key} no decision journaled`);
  }

  /** The card reached the lane controller: the reference's inputs, read the way it reads them. */
  #onProbe(g: SimulatedGate, inputs: TapInputs): void {
    const t = this.#tapping.get(g.id);
    if (t === undefined || t.tap !== null) return;
    const p = g.provisioning;
    t.inputs = inputs;
    t.tap = {
      key: toHex(credentialKey(nodeCrypto, this.#keys.deploymentKey, 1, t.plan.card)),
      line: p.line,
      direction: p.direction,
      lane: p.lane,
      passbackSeconds: p.passbackSeconds,
      now: inputs.now,
      clockTrusted: inputs.trusted,
      headIssuedAt: inputs.headIssuedAt,
      headExpires: inputs.headExpires,
      mode: inputs.mode as GateMode,
      journalFull: inputs.journalFull,
      record: false,
      strict: false,
    };
  }

  #onDecision(g: SimulatedGate, d: JournalEvent): void {
    const t = this.#tapping.get(g.id);
    if (t === undefined || t.tap === null || t.inputs === null) return;
    this.#tapping.delete(g.id);
    const { plan, tap } = t;
    const version = t.inputs.version;
    const granted = d.type === EventType.decision_granted;
    if (granted) this.#taps.granted++;
    else this.#taps.denied++;
    const name = REASON_NAMES[d.reason] ?? String(d.reason);
    this.#taps.byReason[name] = (this.#taps.byReason[name] ?? 0) + 1;
    this.#trace.add(g.id, `tap ${tap.key} v${version} -> ${granted ? 'granted' : 'denied'} ${name}`);
    const want = this.#compare(g, version, tap, granted, d.reason);
    if (!granted || !plan.passes) return;
    const passAt = 800 + Math.floor(t.r() * 2500);
    const boots = g.boots;
    this.#world.set(() => {
      if (g.boots !== boots || !g.alive) return;
      // The gate's passback records a passage its grant let through (passage_completed); a turn
      // after the lane closed (a lockdown came, the grant timed out) is a forced passage of nobody.
      const turn = { boots, group: want?.group ?? 0, tap, plan };
      this.#turning.set(g.id, turn);
      g.rotate();
      if (g.engine === 'node') this.#turning.delete(g.id); // its passage record came inside rotate(), or none will
      else this.#world.set(() => this.#turning.get(g.id) === turn && this.#turning.delete(g.id), 2000);
    }, passAt);
  }

  #onPassage(g: SimulatedGate, e: JournalEvent): void {
    const t = this.#turning.get(g.id);
    if (t === undefined) return;
    this.#turning.delete(g.id);
    this.#passed(g, t.group, { ...t.tap, now: e.time });
    if (t.plan.person !== null) this.#lastPassage.set(g.id, t.plan.person);
    if (t.plan.tailgate) this.#world.set(() => g.boots === t.boots && g.alive && g.rotate(), 400);
  }

  /** The reference records the passage at its own time, as the gate's passback does (the group of the grant that admitted it). */
  #passed(g: SimulatedGate, group: number, tap: TapJson): void {
    this.#passback.get(g.id)!.record(tap.key, group, tap.direction, tap.now);
  }

  /** Every decision equals the reference model's for the version the gate holds, its time and freshness, its passback. */
  #compare(g: SimulatedGate, version: number, tap: TapJson, granted: boolean, reason: number): { group: number } | null {
    const ref = this.#population.reference(version);
    if (ref === undefined) {
      this.#violate('a gate holds only versions the registry published', g.id, `version ${version} was never a version of the list`);
      return null;
    }
    const passback = this.#passback.get(g.id)!;
    const want = ref.decide(tap, passback);
    this.#taps.checked++;
    if (g.engine === 'xs') this.#taps.checkedXs++;
    const result = { group: want.granted ? ref.passbackGroup(tap, want.level) : 0 };
    if (want.granted === granted && sameReason(want.reason, reason)) return result;
    // After a power cut the passage record being written may be torn away: passback may differ for a while.
    const uncertain = (this.#passbackUncertain.get(g.id) ?? 0) > this.#s.nowMs;
    if (uncertain && (want.reason === Reason.passback_violation || reason === Reason.passback_violation)) return result;
    this.#violate('every decision equals the reference model', g.id, `tap ${tap.key} at version ${version}: gate ${granted ? 'granted' : 'denied'} ${REASON_NAMES[reason] ?? reason}, reference ${want.granted ? 'granted' : 'denied'} ${REASON_NAMES[want.reason] ?? want.reason} (time ${tap.now} trusted ${tap.clockTrusted}, head ${tap.headIssuedAt}..${tap.headExpires}, mode ${tap.mode})`);
    return result;
  }

  // ------------------------------------------------------------------ faults

  #scheduleFault(): void {
    const r = this.#rng('faults');
    const next = (): void => {
      const gap = FAULT_GAP_MS[0] + Math.floor(r() * (FAULT_GAP_MS[1] - FAULT_GAP_MS[0]));
      if (this.#s.nowMs + gap >= this.#faultsUntil) return;
      this.#world.set(() => {
        const kinds = this.faults.filter((k) => k !== 'churn'); // churn has its own schedule
        if (kinds.length === 0) return;
        const kind = kinds[Math.floor(r() * kinds.length)]!;
        this.#inject(kind, r);
        next();
      }, gap);
    };
    next();
  }

  /**
   * Registry churn and operators at work, on a schedule of its own (every
   * 1-5 minutes): the changes whose deltas and revocations the invariants
   * follow, and now and then a lane locked down and released again.
   */
  #scheduleChurn(): void {
    const r = this.#rng('churn');
    const next = (): void => {
      const gap = 60_000 + Math.floor(r() * 240_000);
      if (this.#s.nowMs + gap >= this.#faultsUntil) return;
      this.#world.set(() => {
        if (r() < 0.15) this.#lockdown(r);
        else this.#inject('churn', r);
        next();
      }, gap);
    };
    next();
  }

  /** An operator locks a lane down and releases it 1-5 minutes later (signed commands through the central). */
  #lockdown(r: () => number): void {
    const c = this.#central;
    if (c === null || this.#centralStarting || !c.connected) return;
    const g = this.#gates[Math.floor(r() * this.#gates.length)]!;
    this.#count('command.lockdown');
    this.#trace.add('world', `operator lockdown ${g.id}`);
    const send = (central: Central, op: 'lockdown' | 'release'): void => {
      this.#busy = true;
      void central.sendCommand(g.id, op, { waitMs: 30_000 }).then(
        (sent) => this.#trace.add('world', `command ${op} ${g.id}: ${sent.result === null ? 'no answer' : `${sent.result.status} ${sent.result.reason}`}`),
        (e: unknown) => this.#trace.add('world', `command ${op} ${g.id}: ${e instanceof Error ? e.message : String(e)}`),
      );
    };
    send(c, 'lockdown');
    this.#world.set(() => {
      // Released by whichever central runs then; again until the gate says so (a command may be lost with a connection).
      const release = (tries: number): void => {
        const now = this.#central;
        if (now !== null && now.connected && !this.#centralStarting) send(now, 'release');
        // Again while the gate is locked down or down (its lockdown is durable: it is still on when it boots).
        if (tries > 0) this.#world.set(() => (g.readout() === null || g.readout()?.mode === 'lockdown' ? release(tries - 1) : undefined), 60_000);
      };
      release(20);
    }, 60_000 + Math.floor(r() * 240_000));
  }

  #count(what: string): void {
    this.#injected[what] = (this.#injected[what] ?? 0) + 1;
  }

  #disturb(gate: string, untilMs = this.#s.nowMs): void {
    this.#lastDisturbance.set(gate, Math.max(this.#lastDisturbance.get(gate) ?? 0, untilMs));
    this.#lastFaultEnd = Math.max(this.#lastFaultEnd, untilMs);
  }

  #disturbAll(untilMs: number): void {
    for (const g of this.#gates) this.#disturb(g.id, untilMs);
  }

  #inject(kind: FaultKind, r: () => number): void {
    const now = this.#s.nowMs;
    const pickGate = (): SimulatedGate => this.#gates[Math.floor(r() * this.#gates.length)]!;
    const span = (min: number, max: number): number => min + Math.floor(r() * (max - min));
    this.#count(kind);
    switch (kind) {
      case 'broker-restart': {
        const keepRetained = r() < 0.5;
        const downMs = span(1000, 30_000);
        this.#trace.add('world', `fault broker restart (retained ${keepRetained ? 'kept' : 'lost'}, down ${downMs} ms)`);
        this.#broker.restart({ keepRetained, downMs });
        this.#disturbAll(now + downMs + 60_000);
        return;
      }
      case 'partition': {
        const which = r();
        const ms = span(5000, 180_000);
        const ids = which < 0.5 ? [pickGate().id] : which < 0.8 ? this.#siteOf(pickGate()) : [CENTRAL_IDENTITY];
        this.#trace.add('world', `fault partition ${ids.join(',')} for ${ms} ms`);
        for (const id of ids) this.#cut(id);
        this.#world.set(() => {
          for (const id of ids) this.#heal(id);
          this.#trace.add('world', `healed partition ${ids.join(',')}`);
        }, ms);
        if (ids[0] === CENTRAL_IDENTITY) this.#disturbAll(now + ms + 60_000);
        else for (const id of ids) this.#disturb(id, now + ms + 60_000);
        return;
      }
      case 'central-crash': {
        const downMs = span(1000, 60_000);
        this.#trace.add('world', `fault central crash (down ${downMs} ms)`);
        this.#crashCentral();
        this.#disturbAll(now + downMs + 60_000);
        const generation = this.#centralGeneration;
        this.#world.set(() => generation === this.#centralGeneration && this.#later(this.#startCentral(false)), downMs);
        return;
      }
      case 'power-cut': {
        const g = pickGate();
        if (!g.alive) return;
        const n = 1 + Math.floor(r() * 40);
        this.#trace.add('world', `fault power cut at ${g.id}'s flash op +${n}`);
        if (g.engine === 'xs') this.#count('power-cut.xs');
        g.armPowerCut(n);
        this.#disturb(g.id, now + 120_000);
        return;
      }
      case 'clock': {
        // The XS gates keep the clock SNTP set (their worker's): clock faults are the Node gates'.
        const clocked = this.#gates.filter((x) => x.clock !== null);
        if (clocked.length === 0) return;
        const picked = clocked[Math.floor(r() * clocked.length)]!;
        const g = { id: picked.id, clock: picked.clock! };
        const x = r();
        if (x < 0.4) {
          const skew = (r() < 0.5 ? -1 : 1) * span(5, 900);
          g.clock.offsetSeconds += skew;
          this.#trace.add('world', `fault clock skew ${g.id} ${skew} s`);
          this.#disturb(g.id, now + 60_000);
        } else if (x < 0.7) {
          const jump = r() < 0.5 ? 3600 : -3600;
          g.clock.offsetSeconds += jump;
          this.#trace.add('world', `fault clock jump ${g.id} ${jump} s`);
          const back = span(10_000, 300_000);
          this.#world.set(() => (g.clock.offsetSeconds -= jump), back);
          this.#disturb(g.id, now + back + 60_000);
        } else {
          const ms = span(30_000, 600_000);
          g.clock.setTrusted(false);
          this.#trace.add('world', `fault clock trust lost ${g.id} for ${ms} ms`);
          this.#world.set(() => g.clock.setTrusted(true), ms);
          this.#disturb(g.id, now + ms + 60_000);
        }
        return;
      }
      case 'wipe': {
        const g = pickGate();
        this.#trace.add('world', `fault wipe ${g.id}`);
        if (g.engine === 'xs') this.#count('wipe.xs');
        g.wipe(this.seed * 977 + (this.#injected.wipe ?? 0));
        this.#passback.get(g.id)?.clear();
        this.#grantsUnused.set(g.id, 0);
        this.#highestVersion.delete(g.id);
        this.#disturb(g.id, now + 300_000);
        this.#world.set(() => g.boot(), span(5000, 60_000));
        return;
      }
      case 'disk-full': {
        const c = this.#central;
        if (c === null) return;
        const raw = (c.store.db as SqliteDb).raw;
        const pages = raw.pragma('page_count', { simple: true }) as number;
        const ms = span(10_000, 300_000);
        raw.pragma(`max_page_count = ${pages}`);
        this.#trace.add('world', `fault disk full at the central for ${ms} ms`);
        this.#disturbAll(now + ms + 60_000);
        this.#world.set(() => {
          if (this.#central === c) raw.pragma('max_page_count = 1073741823');
          this.#trace.add('world', 'disk has room again');
        }, ms);
        return;
      }
      case 'churn': {
        const c = this.#central;
        if (c === null || this.#centralStarting) return;
        this.#later(
          this.#population.churn(c.registry).then(
            (ch) => {
              this.#versionChanges++;
              this.#trace.add('world', `churn ${ch.op} -> version ${ch.version}`);
              if (ch.denies !== undefined) this.#revocations.push({ card: ch.denies, version: ch.version, atMs: this.#s.nowMs });
            },
            (e: unknown) => {
              // A full disk refuses the operator's change (and says so): not a fault of the system.
              if (!isDiskFull(e)) throw e;
              this.#count('churn.refused-disk-full');
              this.#trace.add('world', 'churn refused: disk full');
            },
          ),
        );
        return;
      }
      case 'adversary': {
        this.#adversary ??= new Adversary({
          broker: this.#broker,
          gates: this.#specs.map((s) => s.id),
          random: this.#rng('adversary'),
          trace: (line) => this.#trace.add('adversary', line),
          later: (fn, ms) => this.#world.set(fn, ms),
          impersonated: (gate) => this.#disturb(gate, this.#s.nowMs + 60_000),
        });
        const what = this.#adversary.attack();
        this.#count(`adversary.${what}`);
        return;
      }
      case 'lossy-links': {
        // A bad link: slow and jittery, QoS 1 deliveries duplicated, and short drop-outs (each one a
        // connection lost: TCP does not lose single packets on a connection that lives on).
        const g = pickGate();
        const ms = span(30_000, 300_000);
        const duplicate = r() * 0.2;
        const flaps = 1 + Math.floor(r() * 4);
        this.#trace.add('world', `fault lossy link ${g.id} dup ${duplicate.toFixed(3)} ${flaps} drop-out(s) in ${ms} ms`);
        this.#broker.setLink(g.id, { duplicate, delayMs: 50, jitterMs: 400 });
        for (let i = 0; i < flaps; i++) {
          const at = Math.floor(r() * ms);
          const len = span(200, 3000);
          this.#world.set(() => this.#cut(g.id), at);
          this.#world.set(() => this.#heal(g.id), at + len);
        }
        this.#world.set(() => this.#broker.setLink(g.id, { duplicate: 0, delayMs: 5, jitterMs: 20 }), ms + 3000);
        this.#disturb(g.id, now + ms + 60_000);
        return;
      }
    }
  }

  /** Cuts overlap (a site and one of its gates, two drop-outs): a link heals when its last cut does. */
  readonly #cuts = new Map<string, number>();
  #cut(id: string): void {
    const n = (this.#cuts.get(id) ?? 0) + 1;
    this.#cuts.set(id, n);
    if (n === 1) this.#broker.partition(id, true);
  }
  #heal(id: string): void {
    const n = (this.#cuts.get(id) ?? 0) - 1;
    if (n < 0) return;
    this.#cuts.set(id, n);
    if (n === 0) this.#broker.partition(id, false);
  }

  #siteOf(g: SimulatedGate): string[] {
    const site = g.provisioning.site;
    return this.#gates.filter((x) => x.provisioning.site === site).map((x) => x.id);
  }

  #healAll(): void {
    this.#cuts.clear();
    for (const g of this.#gates) {
      if (g.readout()?.mode === 'lockdown') this.#trace.add('world', `${g.id} still locked down at the end`);
      if (g.clock !== null) g.clock.offsetSeconds = 0; // the clock set right (network time) with everything else
      this.#broker.partition(g.id, false);
      this.#broker.setLink(g.id, { loss: 0, duplicate: 0, delayMs: 5, jitterMs: 20 });
      g.clock?.setTrusted(true);
      if (!g.alive) g.boot();
    }
    this.#broker.partition(CENTRAL_IDENTITY, false);
    const c = this.#central;
    if (c !== null) (c.store.db as SqliteDb).raw.pragma('max_page_count = 1073741823');
    else this.#later(this.#startCentral(false));
  }

  // ------------------------------------------------------------------ invariants

  #violate(invariant: string, gate: string | undefined, detail: string): void {
    if (this.#violation !== null) return;
    const lastEvents = [...(gate !== undefined ? this.#trace.recent(gate) : []), ...this.#trace.recent('central').slice(-8), ...this.#trace.recent('world').slice(-8)];
    this.#violation = { invariant, atMs: this.#s.nowMs, ...(gate !== undefined ? { gate } : {}), detail, lastEvents };
    this.#trace.add('world', `VIOLATION ${invariant} ${gate ?? ''}: ${detail.split('\n')[0] ?? ''}`); // a stack's paths are the host's: not in the digest
  }

  /** Once a second: what can be read from the gates at once. */
  #check(): void {
    const now = this.#s.nowMs;
    const c = this.#central;
    const tick: string[] = [];
    for (const g of this.#gates) {
      const gate = g.readout();
      tick.push(gate === null ? '-' : `${gate.version}/${gate.journal.acked}`);
      if (gate === null) continue;
      const v = gate.version;
      const high = this.#highestVersion.get(g.id) ?? 0;
      if (v < high) return this.#violate('a gate never installs an older version', g.id, `version ${v} after ${high}`);
      if (v > high) this.#highestVersion.set(g.id, v);
      if (gate.timers > BOUNDS.gateTimers) return this.#violate('bounded memory per gate', g.id, `${gate.timers} timers waiting`);
      // Nothing forged is displayed: the presence the central shows is one this gate sent.
      const shown = c?.presence(g.id)?.status;
      if (shown !== undefined && (!g.watch.journaled.has(shown.journal) || shown.boot > g.watch.highestBoot(shown.journal))) return this.#violate('nothing forged is ever displayed', g.id, `the central shows journal ${shown.journal} boot ${shown.boot}; the gate reached boot ${g.watch.highestBoot(shown.journal)} in that epoch`);
      if (gate.journal.backlog > gate.journal.capacity) return this.#violate('bounded journal per gate', g.id, `backlog ${gate.journal.backlog} > capacity ${gate.journal.capacity}`);
      if (gate.listEpoch !== 0 && gate.listEpoch !== this.#population.epoch) return this.#violate('no other epoch without a signed new epoch', g.id, `epoch ${gate.listEpoch}, the list's is ${this.#population.epoch}`);
      // A revocation is effective on every gate connected without a fault, within the bound.
      for (const rv of this.#revocations) {
        const from = Math.max(rv.atMs, this.#lastDisturbance.get(g.id) ?? 0);
        if (now - from < BOUNDS.revocationMs || v >= rv.version || c === null) continue;
        if (!gate.connected) continue;
        return this.#violate('a revocation is effective on every connected gate within the bound', g.id, `version ${v}, revocation in version ${rv.version} committed at ${rv.atMs} ms, gate undisturbed since ${from} ms`);
      }
    }
    this.#trace.add('world', `tick ${tick.join(' ')}`);
  }

  /**
   * The central's store against what the gates journaled: nothing stored that
   * a gate did not journal (bytes equal); at the end, every journaled record
   * stored (except those a wipe destroyed before they were acknowledged).
   * And no gate has freed a record the central does not hold.
   */
  /** Per `gate epoch`: the highest seq already compared with the gate's records (the check reads only what is new). */
  readonly #verified = new Map<string, number>();

  async #checkStore(final: boolean): Promise<void> {
    const c = this.#central;
    if (c === null || !c.store.db.open) return;
    const db = c.store.db;
    const conflicts = await c.events.conflictCount();
    if (conflicts > 0) return this.#violate('nothing forged is ever stored', undefined, `${conflicts} record(s) in event_conflicts: a batch whose records differ from those held reached the store`);
    const byId = new Map(this.#gates.map((g) => [g.id, g]));
    const held = (await db.rows('SELECT gate, epoch, MAX(seq), COUNT(*) FROM events GROUP BY gate, epoch ORDER BY gate, epoch')) as [string, number, number, number][];
    const counts = new Map<string, number>();
    for (const [gate, epoch, max, count] of held) {
      const g = byId.get(gate);
      if (g === undefined) return this.#violate('nothing forged is ever stored', undefined, `the central holds records of '${gate}', which is no gate of this run`);
      const recs = g.watch.journaled.get(epoch);
      if (recs === undefined) return this.#violate('nothing forged is ever stored', g.id, `the central holds records of epoch ${epoch}, which the gate never had`);
      const key = `${gate} ${epoch}`;
      counts.set(key, count);
      const from = this.#verified.get(key) ?? 0;
      if (max <= from) continue;
      const rows = (await db.rows('SELECT seq, record FROM events WHERE gate = ? AND epoch = ? AND seq > ? ORDER BY seq', [gate, epoch, from])) as [number, Uint8Array][];
      for (const [seq, record] of rows) {
        const mine = recs.get(seq);
        // Every record is read back the moment the gate wrote it, before any could reach the central.
        if (mine === undefined) return this.#violate('nothing forged is ever stored', g.id, `the central holds epoch ${epoch} seq ${seq}, which the gate never journaled`);
        if (mine !== toHex(record)) return this.#violate('nothing forged is ever stored', g.id, `epoch ${epoch} seq ${seq}: stored ${toHex(record)}, journaled ${mine}`);
      }
      this.#verified.set(key, max);
    }
    for (const g of this.#gates) {
      const gate = g.readout();
      if (gate !== null) {
        const epoch = gate.journal.epoch;
        const ack = await c.events.ack(g.id, epoch);
        if (gate.journal.acked > (ack?.seq ?? 0)) return this.#violate('a gate frees only what the central stored', g.id, `epoch ${epoch}: the gate has seqs up to ${gate.journal.acked} acknowledged, the central holds them up to ${ack?.seq ?? 0}`);
      }
      if (!final) continue;
      for (const [epoch, recs] of g.watch.journaled) {
        let expected = 0;
        for (const seq of recs.keys()) if (!g.watch.lostAt(epoch, seq)) expected++;
        const stored = counts.get(`${g.id} ${epoch}`) ?? 0;
        if (stored >= expected) continue; // every stored row is one of recs (checked above)
        const rows = (await db.rows('SELECT seq FROM events WHERE gate = ? AND epoch = ?', [g.id, epoch])) as [number][];
        const have = new Set(rows.map(([seq]) => seq));
        for (const seq of recs.keys()) {
          if (have.has(seq) || g.watch.lostAt(epoch, seq)) continue;
          return this.#violate('every journaled event is stored at the central exactly once after the faults heal', g.id, `epoch ${epoch} seq ${seq} was journaled and is not stored ${BOUNDS.convergeMs / 60_000} min after the last fault healed`);
        }
      }
    }
  }

  async #report(wallMs: () => number, convergedMs: number | null): Promise<SimulationReport> {
    let stored = 0;
    const c = this.#central;
    if (c !== null && c.store.db.open) stored = await c.events.count();
    let journaled = 0;
    let lost = 0;
    for (const g of this.#gates) {
      for (const recs of g.watch.journaled.values()) journaled += recs.size;
      lost += g.watch.lostToWipe;
    }
    const finalVersion = c !== null && c.store.db.open ? (await c.registry.list()).version : 0;
    const violations = this.#violation !== null ? [this.#violation] : [];
    if (violations.length === 0 && convergedMs === null) {
      violations.push({ invariant: 'the system converges after the faults heal', atMs: this.#s.nowMs, detail: `not every gate caught up and acknowledged within ${BOUNDS.convergeMs / 60_000} min`, lastEvents: this.#trace.recent('world').slice(-12) });
    }
    // Where each gate stands, for a violation's reader.
    if (violations.length > 0) {
      const states = this.#gates.map((g) => g.describe());
      const v = violations[0]!;
      violations[0] = { ...v, lastEvents: [...v.lastEvents, ...states, `central: ${c === null ? 'down' : c.connected ? 'connected' : 'not connected'}, rejected ${JSON.stringify(c?.stats.rejected ?? {})}, ingest ${JSON.stringify(c?.stats.ingest ?? {})}`] };
    }
    return {
      seed: this.seed,
      gates: this.gateCount,
      xs: this.xsCount,
      hours: this.hours,
      faults: this.faults,
      digest: this.#trace.digest(),
      violations,
      taps: this.#taps,
      injected: this.#injected,
      events: { journaled, stored, lostToWipe: lost },
      versions: { final: finalVersion, changes: this.#versionChanges },
      convergedMs,
      virtualMs: this.#s.nowMs,
      steps: this.#s.steps,
      traceLines: this.#trace.lines,
      wallMs: Math.round(wallMs()),
      replay: replayCommand({ seed: this.seed, gates: this.gateCount, hours: this.hours, faults: this.faults, xs: this.xsCount }),
    };
  }
}

/**
 * An image cannot say "revoked" or "suspended": those credentials are simply
 * absent (host-sim/central/registry.ts), while a delta says it precisely. So
 * the three denials of a credential the list does not admit are one class.
 */
function sameReason(a: number, b: number): boolean {
  if (a === b) return true;
  const absent: readonly number[] = [Reason.unknown_credential, Reason.revoked, Reason.subject_suspended];
  return absent.includes(a) && absent.includes(b);
}
