// The fleet simulator behind `npm start` / `subline sim`: a broker (embedded
// aedes unless a URL is given), the reference central with the demo
// population, and a fleet of gates running the real firmware core, fed with
// taps at a steady rate and a few scripted moments (an institution suspended,
// a broker restart) so the view shows sync and recovery.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { REASON_NAMES } from '../../protocol/reasons.js';
import { startEmbeddedBroker, type BrokerHandle } from '../broker.js';
import { Central } from '../central/central.js';
import { generateKeys } from '../central/keys.js';
import { mulberry32 } from '../flash/nor-flash.js';
import { NodeGate } from '../node-gate.js';
import { nodeCrypto } from '../node-crypto.js';
import { DEMO_SIZE, seedPopulation, type Population, type PopulationSize } from './demo-population.js';

export interface GateSpec {
  readonly id: string;
  readonly site: string;
  readonly line: 'first' | 'second';
  readonly direction: 'in' | 'out';
  readonly lane: 'person' | 'vehicle' | 'goods';
}

/** The default eight: both lines, both directions, turnstiles, a vehicle gate and a goods portal per line, three sites. */
const BASE_GATES: readonly Omit<GateSpec, 'id'>[] = [
  { site: 'huanggang', line: 'first', direction: 'in', lane: 'person' },
  { site: 'huanggang', line: 'first', direction: 'out', lane: 'person' },
  { site: 'huanggang', line: 'first', direction: 'in', lane: 'vehicle' },
  { site: 'futian-port', line: 'first', direction: 'in', lane: 'goods' },
  { site: 'park-east', line: 'second', direction: 'in', lane: 'person' },
  { site: 'park-east', line: 'second', direction: 'out', lane: 'person' },
  { site: 'park-east', line: 'second', direction: 'out', lane: 'vehicle' },
  { site: 'futian-port', line: 'second', direction: 'out', lane: 'goods' },
];

export function fleetSpecs(n: number): GateSpec[] {
  const out: GateSpec[] = [];
  for (let i = 0; i < n; i++) {
    const b = BASE_GATES[i % BASE_GATES.length]!;
    const k = Math.floor(i / BASE_GATES.length) + 1;
    out.push({ ...b, id: `l${b.line === 'first' ? 1 : 2}-${b.site}-${b.direction}-${b.lane[0]}${k}` });
  }
  return out;
}

export interface SimOptions {
  readonly gates: number;
  /** Taps per second across the fleet. */
  readonly rate: number;
  readonly seed: number;
  /** Use this broker instead of the embedded one. */
  readonly brokerUrl?: string;
  readonly dataDir?: string;
  readonly population?: PopulationSize;
  /** Seconds after start for the scripted moments (null: none). */
  readonly revokeAt?: number | null;
  readonly suspendAt?: number | null;
  readonly brokerRestartAt?: number | null;
}

export interface GateView {
  id: string;
  line: string;
  direction: string;
  lane: string;
  online: boolean;
  version: number;
  tapsPerSecond: number;
  granted: number;
  denied: number;
  backlog: number;
  journaled: number;
}

export interface SimReport {
  seed: number;
  gates: number;
  durationSeconds: number;
  broker: string;
  taps: number;
  granted: number;
  deniedByReason: Record<string, number>;
  eventsJournaled: number;
  eventsStoredAtCentral: number;
  exactlyOnce: boolean;
  moments: string[];
  perGate: { id: string; journaled: number; stored: number; version: number; online: boolean }[];
  centralVersion: number;
}

const te = new TextEncoder();

export class FleetSimulator {
  readonly gates: NodeGate[] = [];
  readonly specs: GateSpec[];
  readonly moments: string[] = [];
  central!: Central;
  broker: BrokerHandle | null = null;
  brokerUrl = '';
  population!: Population;
  readonly #o: SimOptions;
  readonly #rnd: () => number;
  readonly #dir: string;
  readonly #ownDir: boolean;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #tapTimer: ReturnType<typeof setInterval> | null = null;
  #started = 0;
  #tapsWindow: number[][] = [];

  constructor(o: SimOptions) {
    this.#o = o;
    this.#rnd = mulberry32(o.seed);
    this.specs = fleetSpecs(o.gates);
    this.#ownDir = o.dataDir === undefined;
    this.#dir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'subline-sim-'));
  }

  async start(): Promise<void> {
    if (this.#o.brokerUrl === undefined) {
      this.broker = await startEmbeddedBroker({ port: 0 });
      this.brokerUrl = this.broker.url;
    } else this.brokerUrl = this.#o.brokerUrl;
    const keys = generateKeys();
    this.central = new Central({ db: join(this.#dir, 'central.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, brokerUrl: this.brokerUrl, headIntervalSeconds: 10, chunkSize: 16384 });
    await this.central.start();
    this.population = seedPopulation(this.central.registry, this.#o.seed, this.#o.population ?? DEMO_SIZE);
    this.central.publishHead();
    const credentials = (this.#o.population ?? DEMO_SIZE).people + (this.#o.population ?? DEMO_SIZE).vehicles + (this.#o.population ?? DEMO_SIZE).consignments;
    for (const [i, s] of this.specs.entries()) {
      const p: ProvisioningRecord = {
        gate: s.id, site: s.site, line: s.line, direction: s.direction, lane: s.lane, list: 'main', topicRoot: 'subline', broker: this.brokerUrl,
        trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, journalEpoch: Math.floor(Date.now() / 1000), policy: DEFAULT_POLICY[s.line], passbackSeconds: 120,
      };
      const g = new NodeGate({ provisioning: p, crypto: nodeCrypto, layout: { credentials: Math.max(4096, credentials * 2), journalSectors: 64 }, seed: this.#o.seed * 1000 + i, sync: { tickMs: 50, ackTimeoutMs: 3000, requestTimeoutMs: 2000 } });
      g.start();
      this.gates.push(g);
      this.#tapsWindow.push([]);
    }
    this.#started = Date.now();
    this.#schedule();
    const perTapMs = Math.max(1, Math.round(1000 / Math.max(0.1, this.#o.rate)));
    this.#tapTimer = setInterval(() => this.#tap(), perTapMs);
  }

  get elapsedSeconds(): number {
    return (Date.now() - this.#started) / 1000;
  }

  #schedule(): void {
    const at = (s: number | null | undefined, what: () => Promise<void> | void) => {
      if (s === null || s === undefined) return;
      this.#timers.push(setTimeout(() => void what(), s * 1000));
    };
    at(this.#o.revokeAt, () => {
      this.central.registry.bulk((r) => {
        for (const card of this.population.revoked) r.revokeCredential({ kind: 'card', rawId: card });
      });
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s ${this.population.revoked.length} cards revoked`);
    });
    at(this.#o.suspendAt, () => {
      this.central.registry.suspend('institution', this.population.suspendLater);
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s institution ${this.population.suspendLater} suspended`);
    });
    at(this.#o.brokerRestartAt, async () => {
      if (this.broker === null) return;
      const port = this.broker.port;
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s broker stopped`);
      await this.broker.close();
      await new Promise((r) => setTimeout(r, 2000));
      this.broker = await startEmbeddedBroker({ port });
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s broker back`);
    });
  }

  /** One tap at a random gate: mostly valid credentials, plus the deny cases the view should show. */
  #tap(): void {
    const r = this.#rnd;
    const i = Math.floor(r() * this.gates.length);
    const g = this.gates[i]!;
    const spec = this.specs[i]!;
    const now = performance.now();
    const pop = this.population;
    this.#tapsWindow[i]!.push(Date.now());
    if (spec.lane === 'vehicle') {
      g.inputs.set('presence', true);
      const tag = r() < 0.9 ? pop.vehicles[Math.floor(r() * pop.vehicles.length)]! : te.encode(`epc-unknown-${Math.floor(r() * 1e6)}`);
      g.gate.onRead({ kind: 'uhf', id: tag, atMs: now });
      g.inputs.set('presence', false);
      return;
    }
    if (spec.lane === 'goods') {
      const n = 1 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        const tag = r() < 0.95 ? pop.consignments[Math.floor(r() * pop.consignments.length)]! : te.encode(`epc-unknown-${Math.floor(r() * 1e6)}`);
        g.gate.onRead({ kind: 'uhf', id: tag, atMs: now });
      }
      this.#timers.push(setTimeout(() => g.inputs.pulse('rotation'), 2000));
      return;
    }
    const x = r();
    let card: Uint8Array;
    if (x < 0.8) card = pop.people[Math.floor(r() * pop.people.length)]!.id;
    else if (x < 0.88) card = te.encode(`card-unknown-${Math.floor(r() * 1e6)}`);
    else if (x < 0.95) card = pop.revoked[Math.floor(r() * pop.revoked.length)]!;
    else card = pop.people.filter((p) => p.scheduled)[Math.floor(r() * 10)]?.id ?? pop.people[0]!.id;
    g.gate.onRead({ kind: 'card', id: card, atMs: now });
    if (g.outputs.state.relay && r() < 0.95) g.inputs.pulse('rotation');
    // Now and then the same card again at once: anti-passback.
    if (x < 0.8 && r() < 0.05) g.gate.onRead({ kind: 'card', id: card, atMs: now });
  }

  view(): { gates: GateView[]; totals: { taps: number; granted: number; denied: Record<string, number>; stored: number; version: number; brokerUp: boolean } } {
    const cutoff = Date.now() - 5000;
    const gates = this.gates.map((g, i) => {
      const w = this.#tapsWindow[i]!;
      while (w.length > 0 && w[0]! < cutoff) w.shift();
      const s = g.gate.controller.stats;
      return {
        id: g.gate.id, line: this.specs[i]!.line, direction: this.specs[i]!.direction, lane: this.specs[i]!.lane,
        online: g.gate.sync.connected, version: g.gate.store.version, tapsPerSecond: w.length / 5, granted: s.granted, denied: s.denied,
        backlog: g.gate.journal.backlog, journaled: g.gate.journal.lastSeq,
      };
    });
    const denied: Record<string, number> = {};
    let taps = 0;
    let granted = 0;
    for (const g of this.gates) {
      const s = g.gate.controller.stats;
      taps += s.taps;
      granted += s.granted;
      s.byReason.forEach((n, code) => {
        if (code !== 0 && n > 0) denied[REASON_NAMES[code] ?? String(code)] = (denied[REASON_NAMES[code] ?? String(code)] ?? 0) + n;
      });
    }
    return { gates, totals: { taps, granted, denied, stored: this.central.events.count(), version: this.central.registry.version(), brokerUp: this.broker !== null } };
  }

  /** Stops taps and waits (bounded) until every journaled event is acknowledged. */
  async drain(timeoutMs = 30000): Promise<boolean> {
    if (this.#tapTimer !== null) clearInterval(this.#tapTimer);
    this.#tapTimer = null;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    // Settle lanes (open grants time out) so no record is still to come.
    await new Promise((r) => setTimeout(r, 200));
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.gates.every((g) => g.gate.journal.acked === g.gate.journal.lastSeq)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  report(): SimReport {
    const v = this.view();
    const perGate = this.gates.map((g) => {
      const stored = this.central.events.export(g.gate.id, g.gate.journal.epoch).length;
      return { id: g.gate.id, journaled: g.gate.journal.lastSeq, stored, version: g.gate.store.version, online: g.gate.sync.connected };
    });
    const eventsJournaled = perGate.reduce((a, b) => a + b.journaled, 0);
    const eventsStoredAtCentral = perGate.reduce((a, b) => a + b.stored, 0);
    return {
      seed: this.#o.seed, gates: this.gates.length, durationSeconds: Math.round(this.elapsedSeconds), broker: this.broker !== null ? 'embedded' : this.brokerUrl,
      taps: v.totals.taps, granted: v.totals.granted, deniedByReason: v.totals.denied, eventsJournaled, eventsStoredAtCentral,
      exactlyOnce: eventsJournaled === eventsStoredAtCentral && perGate.every((p) => p.journaled === p.stored), moments: this.moments, perGate, centralVersion: v.totals.version,
    };
  }

  async close(): Promise<void> {
    if (this.#tapTimer !== null) clearInterval(this.#tapTimer);
    for (const t of this.#timers) clearTimeout(t);
    for (const g of this.gates) g.stop();
    await this.central?.close();
    await this.broker?.close();
    if (this.#ownDir) rmSync(this.#dir, { recursive: true, force: true });
  }
}

