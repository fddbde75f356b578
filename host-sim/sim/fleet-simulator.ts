// The fleet simulator behind `npm start` / `subline sim`: a broker (embedded
// aedes unless a URL is given), the reference central with the demo
// population, and a fleet of gates running the real firmware core, fed with
// taps at a steady rate and a few scripted moments (an institution suspended,
// a broker restart) so the view shows sync and recovery. With `xs`, that many
// of the gates run the device entry itself (firmware/moddable/main.ts) on the
// real XS engine instead (host-sim/xs-gate/), against the same broker and
// central, with simulated readers, pins and flash.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { DEFAULT_TIMING } from '../../firmware/core/gate-controller.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { toHex } from '../../protocol/hex.js';
import { REASON_NAMES } from '../../protocol/reasons.js';
import { randomBytes } from 'node:crypto';
import { derivePassword, startEmbeddedBroker, type BrokerHandle, type EmbeddedBrokerSecurity } from '../broker.js';
import { BrokerAcl } from '../broker-acl.js';
import { CENTRAL_IDENTITY } from '../pki/deployment-pki.js';
import type { CentralKeys } from '../central/keys.js';
import type { BrokerAuth } from '../broker-auth.js';
import { Central } from '../central/central.js';
import { generateKeys } from '../central/keys.js';
import { mulberry32 } from '../flash/nor-flash.js';
import { NodeGate } from '../node-gate.js';
import { nodeCrypto } from '../node-crypto.js';
import { XsGate } from '../xs-gate/xs-gate.js';
import { deriveGateKey } from '../central/gate-keys.js';
import { SimState, SimStateError } from './sim-state.js';
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
  /** The topic root of the run (default 'subline'): the central's and every gate's. */
  readonly topicRoot?: string;
  /**
   * Keep the simulator's central database, demo population and Node gates'
   * flash here and continue from them on the next run (sim-state.ts; needs
   * the same keys each run: `deployment` or `keys`). Default: a temporary
   * directory, removed at the end.
   */
  readonly dataDir?: string;
  readonly population?: PopulationSize;
  /** Seconds after start for the scripted moments (null: none). */
  readonly revokeAt?: number | null;
  readonly suspendAt?: number | null;
  readonly brokerRestartAt?: number | null;
  /** Run this many of the gates (the first ones) on the real XS engine: main.ts on a simulated provider. */
  readonly xs?: number;
  /** Console lines of the XS gates. */
  readonly onXsLog?: (gate: string, line: string) => void;
  /**
   * A deployment's identities for a secured external broker (`subline sim
   * --data DIR`): DIR's keys, the central's broker identity, and each gate's
   * TLS identity from DIR's PKI (by gate id).
   */
  /** The central's keys (default: the deployment's, else new ones for the run). */
  readonly keys?: CentralKeys;
  readonly deployment?: {
    readonly keys: CentralKeys;
    readonly centralAuth?: BrokerAuth;
    readonly gateTls: ReadonlyMap<string, NonNullable<ProvisioningRecord['tls']>>;
  };
}

export interface GateView {
  id: string;
  /** Where the gate runs: the firmware core on Node, or main.ts on the XS engine. */
  engine: 'node' | 'xs';
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
  /** Messages to this gate it refused (from its last verified status), and messages in its name the central refused. */
  refusedAtGate: number;
  refusedAtCentral: number;
}

export interface SimReport {
  seed: number;
  gates: number;
  durationSeconds: number;
  broker: string;
  topicRoot: string;
  taps: number;
  granted: number;
  deniedByReason: Record<string, number>;
  eventsJournaled: number;
  eventsStoredAtCentral: number;
  exactlyOnce: boolean;
  moments: string[];
  /** Taps per second asked for (--rate), made (reads at the readers over tapSeconds), and whether the process fell short of it. */
  rateAsked: number;
  rateSustained: number;
  tapSeconds: number;
  rateShort: boolean;
  /** journaled: the gate's last journal seq (in its journal epoch `epoch`); stored: the central's events of that epoch. */
  perGate: { id: string; engine: 'node' | 'xs'; epoch: number; journaled: number; stored: number; version: number; online: boolean }[];
  centralVersion: number;
}

const te = new TextEncoder();
/** How often the tap generator runs (it makes the taps due since the last tick). */
const TAP_TICK_MS = 20;

/**
 * Reader-format twins of the demo credentials, for the XS gates: their
 * simulated readers carry what real ones do (a 5-byte EM4100 id, an EPC in
 * whole 16-bit words), and the demo population's ids are text. Each person,
 * vehicle and consignment gets a second credential on the same subject.
 */
export function xsCardId(person: number): Uint8Array {
  return Uint8Array.of(0xe0, (person >> 24) & 0xff, (person >> 16) & 0xff, (person >> 8) & 0xff, person & 0xff);
}
export function xsEpc(kind: 'vehicle' | 'goods' | 'unknown', index: number): Uint8Array {
  return Uint8Array.of(0xe2, 0x80, 0x68, kind === 'vehicle' ? 0x10 : kind === 'goods' ? 0x20 : 0x30, 0, 0, 0, 0, (index >>> 24) & 0xff, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff);
}

type Slot = { readonly engine: 'node'; readonly g: NodeGate } | { readonly engine: 'xs'; readonly g: XsGate };

export class FleetSimulator {
  /** The gates running the firmware core on Node. */
  readonly gates: NodeGate[] = [];
  /** The gates running main.ts on the XS engine. */
  readonly xsGates: XsGate[] = [];
  readonly specs: GateSpec[];
  readonly moments: string[] = [];
  central!: Central;
  broker: BrokerHandle | null = null;
  #security: EmbeddedBrokerSecurity | null = null;
  brokerUrl = '';
  readonly topicRoot: string;
  population!: Population;
  readonly #o: SimOptions;
  readonly #rnd: () => number;
  readonly #dir: string;
  readonly #ownDir: boolean;
  /** What is kept between runs (dataDir: see sim-state.ts). */
  readonly #state: SimState | null;
  readonly #saved = new Map<NodeGate, { journalEpoch: number; gateKeyId: number }>();
  readonly #slots: Slot[] = [];
  /** The simulator's central database (`subline central ... --db` works on it while it runs). */
  dbPath = '';
  #personIndex = new Map<string, number>();
  #timers: ReturnType<typeof setTimeout>[] = [];
  #tapTimer: ReturnType<typeof setInterval> | null = null;
  #started = 0;
  #tapsWindow: number[][] = [];
  /** Reads made at the simulated readers (what the gates count as taps), reads given up because the process fell behind, and when tapping stopped. */
  #tapsMade = 0;
  #tapsDropped = 0;
  #tapsStopped: number | null = null;
  /** Per gate: until when a goods portal's lot is open (no new consignment before). */
  readonly #lotUntil: number[] = [];
  readonly #plan: { at: number; what: string; done: boolean }[] = [];
  #closing = false;
  /** The store's counts as last read (refreshCounts, every second while running). */
  #counts = { stored: 0, version: 0 };
  #countsTimer: ReturnType<typeof setInterval> | null = null;
  /** Whether the reader-format twins of the demo credentials are enrolled (for the XS gates). */
  #twins = false;
  /** A broker restart under way (the scripted moment): close() waits for it. */
  #restarting: Promise<void> | null = null;

  constructor(o: SimOptions) {
    this.#o = o;
    this.#rnd = mulberry32(o.seed);
    this.specs = fleetSpecs(o.gates);
    this.topicRoot = o.topicRoot ?? 'subline';
    this.#ownDir = o.dataDir === undefined;
    this.#dir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'subline-sim-'));
    this.#state = o.dataDir !== undefined ? new SimState(o.dataDir) : null;
  }

  async start(): Promise<void> {
    // The embedded broker is locked down as production is (decisions/0012): no anonymous client,
    // the ACL of host-sim/broker-acl.ts, each client with its own password (derived from a
    // per-run secret: TLS handshakes for a whole simulated fleet cost ~7 ms of CPU each).
    const secret = randomBytes(32);
    const passwordOf = (identity: string): string => derivePassword(secret, identity);
    if (this.#o.brokerUrl === undefined) {
      const acl = new BrokerAcl({ topicRoot: this.topicRoot, gates: this.specs.map((s) => ({ id: s.id, list: 'main' })) });
      this.#security = { acl, passwords: new Map([CENTRAL_IDENTITY, ...this.specs.map((s) => s.id)].map((id) => [id, passwordOf(id)])) };
      this.broker = await startEmbeddedBroker({ port: 0, security: this.#security });
      this.brokerUrl = this.broker.url;
    } else this.brokerUrl = this.#o.brokerUrl;
    const embedded = this.#security !== null;
    const keys = this.#o.deployment?.keys ?? this.#o.keys ?? generateKeys();
    const centralAuth = this.#o.deployment?.centralAuth;
    const state = this.#state;
    if (state !== null && this.#o.deployment?.keys === undefined && this.#o.keys === undefined) throw new Error('fleet simulator: a data directory needs the keys it was made with (deployment or keys)');
    const saved = state?.population() ?? null;
    const size = this.#o.population ?? DEMO_SIZE;
    if (saved !== null && (saved.seed !== this.#o.seed || JSON.stringify(saved.size) !== JSON.stringify(size))) {
      throw new SimStateError(`${state!.dir} holds the demo population of seed ${saved.seed} (${saved.size.people} people): run with --seed ${saved.seed}, or remove ${state!.dir} for a new one`);
    }
    this.dbPath = state?.db ?? join(this.#dir, 'central.db');
    // pollIntervalMs: what `subline central revoke --db ...` (or any other process) commits is published, as `central serve` does.
    this.central = await Central.open({ db: this.dbPath, pollIntervalMs: 1000, signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: this.brokerUrl, topicRoot: this.topicRoot, headIntervalSeconds: 10, chunkSize: 16384,
      ...(embedded ? { brokerAuth: { username: CENTRAL_IDENTITY, password: passwordOf(CENTRAL_IDENTITY) } } : centralAuth !== undefined ? { brokerAuth: centralAuth } : {}),
    });
    await this.central.start();
    const xsCount = Math.min(this.#o.xs ?? 0, this.specs.length);
    if (saved === null) {
      this.population = await seedPopulation(this.central.registry, this.#o.seed, size);
      if (xsCount > 0) await this.#enrollXsTwins(size);
    } else {
      // The demo continues: the population is the one an earlier run seeded. What its script
      // did (cards revoked, an institution suspended) is undone, so that this run's script shows it again.
      this.population = saved.population;
      this.#personIndex = new Map(this.population.people.map((p, i) => [toHex(p.id), i]));
      if (xsCount > 0 && !saved.xsTwins) await this.#enrollXsTwins(size);
      const twins = saved.xsTwins || xsCount > 0;
      this.#twins = twins;
      await this.central.registry.bulk(async (r) => {
        for (const [k, card] of saved.population.revoked.entries()) {
          const subject = saved.revokedSubjects[k]!;
          if ((await r.credential({ kind: 'card', rawId: card }))?.revoked === true) await r.addCredential({ subject, kind: 'card', rawId: card });
          const twin = this.#personIndex.get(toHex(card));
          if (twins && twin !== undefined && (await r.credential({ kind: 'card', rawId: xsCardId(twin) }))?.revoked === true) await r.addCredential({ subject, kind: 'card', rawId: xsCardId(twin) });
        }
        await r.resume('institution', saved.population.suspendLater);
      });
    }
    if (state !== null) {
      const people = this.population.people;
      state.savePopulation({
        seed: this.#o.seed, size, population: this.population, xsTwins: (saved?.xsTwins ?? false) || xsCount > 0,
        revokedSubjects: this.population.revoked.map((card) => `p-${people.findIndex((p) => p.id === card || toHex(p.id) === toHex(card))}`),
      });
    }
    this.central.publishHead();
    const credentials = size.people + size.vehicles + size.consignments;
    const xsStarts: Promise<unknown>[] = [];
    for (const [i, s] of this.specs.entries()) {
      // Registered like `subline provision` does: the gate's key is derived from the central's master key.
      // A Node gate an earlier run saved keeps its identity, flash and journal epoch: its journal continues.
      const known = i < xsCount ? null : (state?.gate(s.id, this.#o.seed * 1000 + i) ?? null);
      const identity = known !== null ? await this.central.identities.get(s.id) : undefined;
      const reuse = known !== null && identity !== undefined && identity.state === 'active' && identity.keyId === known.gateKeyId ? known : null;
      const id = reuse !== null ? { gateKey: deriveGateKey(keys.gateMasterKey, s.id, reuse.gateKeyId), gateKeyId: reuse.gateKeyId } : await this.central.provisionGate({ gate: s.id, site: s.site, list: 'main', line: s.line, direction: s.direction, lane: s.lane });
      const p: ProvisioningRecord = {
        gate: s.id, site: s.site, line: s.line, direction: s.direction, lane: s.lane, list: 'main', topicRoot: this.topicRoot, broker: this.brokerUrl,
        ...(embedded ? { username: s.id, password: new TextEncoder().encode(passwordOf(s.id)) } : {}),
        ...(this.#o.deployment?.gateTls.get(s.id) !== undefined ? { tls: this.#o.deployment.gateTls.get(s.id) } : {}),
        trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, gateKey: id.gateKey, gateKeyId: id.gateKeyId, journalEpoch: reuse?.journalEpoch ?? Math.floor(Date.now() / 1000), policy: DEFAULT_POLICY[s.line], passbackSeconds: 120,
      };
      if (i < xsCount) {
        // The device's own config (manifest.json), with the reader this lane has.
        const onLog = this.#o.onXsLog;
        const g = new XsGate({
          provisioning: p, seed: this.#o.seed * 1000 + i, config: { subline: { reader: s.lane === 'person' ? { kind: 'em4100' } : { kind: 'uhf' } } },
          ...(onLog !== undefined ? { onLog: (line: string) => onLog(s.id, line) } : {}),
        });
        this.xsGates.push(g);
        this.#slots.push({ engine: 'xs', g });
        xsStarts.push(g.start().then(() => g.startRealtime(15)));
      } else {
        const g = new NodeGate({
          provisioning: p, crypto: nodeCrypto, layout: { credentials: Math.max(4096, credentials * 2), journalSectors: 64 }, seed: this.#o.seed * 1000 + i, sync: { tickMs: 50, ackTimeoutMs: 3000, requestTimeoutMs: 2000 },
          ...(reuse !== null ? { flash: reuse.flash, provisioningFlash: reuse.provisioningFlash } : {}),
        });
        this.#saved.set(g, { journalEpoch: p.journalEpoch, gateKeyId: p.gateKeyId });
        g.start();
        this.gates.push(g);
        this.#slots.push({ engine: 'node', g });
      }
      this.#tapsWindow.push([]);
    }
    await Promise.all(xsStarts);
    this.#started = Date.now();
    this.#schedule();
    // Taps follow the wall clock, not a timer per tap: every tick makes the reads that are due
    // (a timer per tap drifts with timer granularity and cannot go past ~1000/s). A process that
    // falls behind by more than a quarter of a second of taps gives them up (counted), so the
    // rate it sustained is reported instead of a burst to catch up.
    this.#tapTimer = setInterval(() => this.#tick(), TAP_TICK_MS);
    await this.refreshCounts();
    this.#countsTimer = setInterval(() => void this.refreshCounts().catch(() => undefined), 1000);
  }

  #tick(): void {
    const rate = this.#o.rate;
    const due = (rate * (Date.now() - this.#started)) / 1000 - this.#tapsMade - this.#tapsDropped;
    const cap = rate * 0.25 + 1;
    if (due > cap) this.#tapsDropped += due - cap;
    const budgetEnd = performance.now() + TAP_TICK_MS * 2;
    let owed = Math.min(due, cap);
    while (owed >= 1) {
      const n = this.#tap();
      this.#tapsMade += n;
      owed -= n;
      // No tick holds the event loop for long: what is left is due at the next one.
      if (performance.now() > budgetEnd) break;
    }
  }

  /**
   * Taps per second asked for and sustained so far: the taps the gates
   * counted (`taps`, from view()) over the time taps were made, never more
   * than the reads the generator made (a goods lot is counted when its
   * window closes, so the figure trails during a run).
   */
  rate(taps: number): { asked: number; sustained: number; seconds: number; short: boolean; dropped: number } {
    const end = this.#tapsStopped ?? Date.now();
    const seconds = this.#started === 0 ? 0 : Math.max(0, (end - this.#started) / 1000);
    const sustained = seconds > 0 ? Math.min(this.#tapsMade, taps) / seconds : 0;
    // Short: the generator gave up more than a tenth of the taps that were due (the process fell behind).
    const short = seconds >= 2 && this.#tapsDropped > 0.1 * (this.#tapsMade + this.#tapsDropped);
    return { asked: this.#o.rate, sustained, seconds, short, dropped: Math.round(this.#tapsDropped) };
  }

  get elapsedSeconds(): number {
    return (Date.now() - this.#started) / 1000;
  }

  /** A reader-format twin credential for every demo credential (see xsCardId). */
  async #enrollXsTwins(size: PopulationSize): Promise<void> {
    this.#twins = true;
    this.#personIndex = new Map(this.population.people.map((p, i) => [toHex(p.id), i]));
    await this.central.registry.bulk(async (r) => {
      for (let i = 0; i < size.people; i++) await r.addCredential({ subject: `p-${i}`, kind: 'card', rawId: xsCardId(i) });
      for (let i = 0; i < size.vehicles; i++) await r.addCredential({ subject: `v-${i}`, kind: 'uhf', rawId: xsEpc('vehicle', i) });
      for (let i = 0; i < size.consignments; i++) await r.addCredential({ subject: `g-${i}`, kind: 'uhf', rawId: xsEpc('goods', i) });
    });
  }

  /** The scripted moments still to come, soonest first (seconds after the start). */
  upcoming(): { at: number; what: string }[] {
    const t = this.elapsedSeconds;
    return this.#plan.filter((m) => !m.done && m.at >= Math.floor(t)).sort((a, b) => a.at - b.at).map(({ at, what }) => ({ at, what }));
  }

  #schedule(): void {
    const at = (s: number | null | undefined, label: string, what: () => Promise<void> | void) => {
      if (s === null || s === undefined) return;
      const m = { at: s, what: label, done: false };
      this.#plan.push(m);
      this.#timers.push(
        setTimeout(() => {
          m.done = true;
          void what();
        }, s * 1000),
      );
    };
    at(this.#o.revokeAt, `revoke ${this.population.revoked.length} cards`, async () => {
      await this.central.registry.bulk(async (r) => {
        for (const card of this.population.revoked) {
          await r.revokeCredential({ kind: 'card', rawId: card });
          const twin = this.#twins ? this.#personIndex.get(toHex(card)) : undefined;
          if (twin !== undefined) await r.revokeCredential({ kind: 'card', rawId: xsCardId(twin) });
        }
      });
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s ${this.population.revoked.length} cards revoked`);
    });
    at(this.#o.suspendAt, `suspend institution ${this.population.suspendLater}`, async () => {
      await this.central.registry.suspend('institution', this.population.suspendLater);
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s institution ${this.population.suspendLater} suspended`);
    });
    at(this.#o.brokerRestartAt === undefined || this.broker === null ? null : this.#o.brokerRestartAt, 'restart the broker', async () => {
      if (this.broker === null) return;
      const port = this.broker.port;
      this.moments.push(`${this.elapsedSeconds.toFixed(0)}s broker stopped`);
      const restart = (async () => {
        await this.broker?.close();
        await new Promise((r) => setTimeout(r, 2000));
        // Closed meanwhile (the run ended during the restart): no broker is started again.
        if (this.#closing) return;
        this.broker = this.#security !== null ? await startEmbeddedBroker({ port, security: this.#security }) : await startEmbeddedBroker({ port });
        this.moments.push(`${this.elapsedSeconds.toFixed(0)}s broker back`);
      })();
      this.#restarting = restart;
      await restart;
      this.#restarting = null;
    });
  }

  /**
   * One passage at a random gate: mostly valid credentials, plus the deny
   * cases the view should show. Returns the reads made (what the gate counts
   * as taps): a goods lot is 1-3 tags, a card now and then read twice.
   */
  #tap(): number {
    const r = this.#rnd;
    let i = Math.floor(r() * this.#slots.length);
    // A goods portal takes one lot per window (more tags in the window join the open lot):
    // at a high rate the passage goes to the next gate that is free.
    const now0 = Date.now();
    for (let k = 0; k < this.#slots.length && (this.#lotUntil[i] ?? 0) > now0; k++) i = (i + 1) % this.#slots.length;
    if (this.specs[i]!.lane === 'goods') this.#lotUntil[i] = now0 + DEFAULT_TIMING.goodsWindowMs + 100;
    const slot = this.#slots[i]!;
    const spec = this.specs[i]!;
    const n = slot.engine === 'xs' ? this.#tapXs(slot.g, spec) : this.#tapNode(slot.g, spec);
    const now = Date.now();
    for (let k = 0; k < n; k++) this.#tapsWindow[i]!.push(now);
    return n;
  }

  /** One card at one Node gate now (a test's or an operator's tap); false if that gate is not a Node gate of this fleet. */
  tapCard(gate: string, card: Uint8Array): boolean {
    const i = this.specs.findIndex((s) => s.id === gate);
    const slot = this.#slots[i];
    if (slot === undefined || slot.engine !== 'node') return false;
    slot.g.gate.onRead({ kind: 'card', id: card, atMs: performance.now() });
    return true;
  }

  #tapNode(g: NodeGate, spec: GateSpec): number {
    const r = this.#rnd;
    const now = performance.now();
    const pop = this.population;
    if (spec.lane === 'vehicle') {
      g.inputs.set('presence', true);
      const tag = r() < 0.9 ? pop.vehicles[Math.floor(r() * pop.vehicles.length)]! : te.encode(`epc-unknown-${Math.floor(r() * 1e6)}`);
      g.gate.onRead({ kind: 'uhf', id: tag, atMs: now });
      g.inputs.set('presence', false);
      return 1;
    }
    if (spec.lane === 'goods') {
      // Distinct tags: the portal decides each tag of a lot once.
      const tags = new Map<string, Uint8Array>();
      const n = 1 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        const tag = r() < 0.95 ? pop.consignments[Math.floor(r() * pop.consignments.length)]! : te.encode(`epc-unknown-${Math.floor(r() * 1e6)}`);
        tags.set(toHex(tag), tag);
      }
      for (const tag of tags.values()) g.gate.onRead({ kind: 'uhf', id: tag, atMs: now });
      this.#timers.push(setTimeout(() => g.inputs.pulse('rotation'), 2000));
      return tags.size;
    }
    const card = this.#pickCard();
    g.gate.onRead({ kind: 'card', id: card.id, atMs: now });
    if (g.outputs.state.relay && r() < 0.95) g.inputs.pulse('rotation');
    // Now and then the same card again at once: anti-passback.
    if (card.enrolled && r() < 0.05) {
      g.gate.onRead({ kind: 'card', id: card.id, atMs: now });
      return 2;
    }
    return 1;
  }

  /** A card for a person lane: 80% enrolled, 8% unknown, 7% revoked (after the moment), 5% out of schedule. */
  #pickCard(): { id: Uint8Array; enrolled: boolean; unknown: number } {
    const r = this.#rnd;
    const pop = this.population;
    const x = r();
    if (x < 0.8) return { id: pop.people[Math.floor(r() * pop.people.length)]!.id, enrolled: true, unknown: -1 };
    if (x < 0.88) {
      const n = Math.floor(r() * 1e6);
      return { id: te.encode(`card-unknown-${n}`), enrolled: false, unknown: n };
    }
    if (x < 0.95) return { id: pop.revoked[Math.floor(r() * pop.revoked.length)]!, enrolled: false, unknown: -1 };
    return { id: pop.people.filter((p) => p.scheduled)[Math.floor(r() * 10)]?.id ?? pop.people[0]!.id, enrolled: false, unknown: -1 };
  }

  /** The same kinds of taps on an XS gate, through its simulated reader and pins (in virtual time: see XsGate). */
  #tapXs(g: XsGate, spec: GateSpec): number {
    const r = this.#rnd;
    const pop = this.population;
    if (spec.lane === 'vehicle') {
      const tag = r() < 0.9 ? xsEpc('vehicle', Math.floor(r() * pop.vehicles.length)) : xsEpc('unknown', Math.floor(r() * 1e6));
      // The loop is occupied, the tag read, the loop clears (each held past the loop's debounce).
      g.setInput('presence', true);
      g.tap(tag, 'uhf', 100);
      g.setInput('presence', false, 600);
      return 1;
    }
    if (spec.lane === 'goods') {
      const tags = new Map<string, Uint8Array>();
      const n = 1 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        const tag = r() < 0.95 ? xsEpc('goods', Math.floor(r() * pop.consignments.length)) : xsEpc('unknown', Math.floor(r() * 1e6));
        tags.set(toHex(tag), tag);
      }
      let k = 0;
      for (const tag of tags.values()) g.tap(tag, 'uhf', 20 * k++);
      g.pulse('rotation', undefined, 2000);
      return tags.size;
    }
    const card = this.#pickCard();
    const id = card.unknown >= 0 ? Uint8Array.of(0xe1, (card.unknown >> 16) & 0xff, (card.unknown >> 8) & 0xff, card.unknown & 0xff, 0x5a) : xsCardId(this.#personIndex.get(toHex(card.id)) ?? 0);
    const pass = r() < 0.95;
    const again = card.enrolled && r() < 0.05;
    g.tap(id);
    if (again) g.tap(id, 'card', 1);
    // The decision is known once the device has run: the person walks through if the lane opened.
    void g.settled().then(() => {
      if (g.outputs.relay && pass) g.pulse('rotation');
    });
    return again ? 2 : 1;
  }

  view(): { gates: GateView[]; totals: { taps: number; granted: number; denied: Record<string, number>; stored: number; version: number; brokerUp: boolean; refusedAtCentral: Record<string, number> } } {
    const cutoff = Date.now() - 5000;
    const denied: Record<string, number> = {};
    let taps = 0;
    let granted = 0;
    const count = (byReason: readonly (number | undefined)[]) =>
      byReason.forEach((n, code) => {
        if (code !== 0 && n !== undefined && n > 0) denied[REASON_NAMES[code] ?? String(code)] = (denied[REASON_NAMES[code] ?? String(code)] ?? 0) + n;
      });
    const gates = this.#slots.map((slot, i): GateView => {
      const w = this.#tapsWindow[i]!;
      while (w.length > 0 && w[0]! < cutoff) w.shift();
      const spec = this.specs[i]!;
      const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
      const common = {
        line: spec.line, direction: spec.direction, lane: spec.lane, tapsPerSecond: w.length / 5,
        refusedAtGate: sum((this.central.presence(spec.id)?.status.refused ?? []).map((r) => r.count)),
        refusedAtCentral: sum(Object.values(this.central.refusals.forGate(spec.id))),
      };
      if (slot.engine === 'xs') {
        const s = slot.g.status();
        taps += s.taps;
        granted += s.granted;
        count(s.byReason);
        return { id: slot.g.id, engine: 'xs', ...common, online: s.online, version: s.version, granted: s.granted, denied: s.denied, backlog: s.journal.backlog, journaled: s.journal.lastSeq };
      }
      const g = slot.g;
      const s = g.gate.controller.stats;
      taps += s.taps;
      granted += s.granted;
      count(s.byReason);
      return { id: g.gate.id, engine: 'node', ...common, online: g.gate.sync.connected, version: g.gate.store.version, granted: s.granted, denied: s.denied, backlog: g.gate.journal.backlog, journaled: g.gate.journal.lastSeq };
    });
    const refusedAtCentral: Record<string, number> = {};
    for (const r of this.central.refusals.all()) refusedAtCentral[r.cause] = (refusedAtCentral[r.cause] ?? 0) + r.count;
    return { gates, totals: { taps, granted, denied, stored: this.#counts.stored, version: this.#counts.version, brokerUp: this.broker !== null, refusedAtCentral } };
  }

  /** Events stored and the list version, read from the store (the view shows the last read: it is synchronous). */
  async refreshCounts(): Promise<void> {
    if (this.#closing) return;
    this.#counts = { stored: await this.central.events.count(), version: await this.central.registry.version() };
  }

  /** Journal position of a gate: epoch, last seq, acked. */
  #journal(slot: Slot): { epoch: number; lastSeq: number; acked: number } {
    if (slot.engine === 'xs') return slot.g.status().journal;
    const j = slot.g.gate.journal;
    return { epoch: j.epoch, lastSeq: j.lastSeq, acked: j.acked };
  }

  /** Stops taps and waits (bounded) until every journaled event is acknowledged. */
  async drain(timeoutMs = 30000): Promise<boolean> {
    if (this.#tapTimer !== null) clearInterval(this.#tapTimer);
    this.#tapTimer = null;
    this.#tapsStopped ??= Date.now();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    // Settle lanes so no record is still to come: a goods portal's open lot is decided when its window closes.
    await new Promise((r) => setTimeout(r, DEFAULT_TIMING.goodsWindowMs + 100));
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.#slots.every((s) => this.#journal(s).acked === this.#journal(s).lastSeq)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  async report(): Promise<SimReport> {
    await this.refreshCounts();
    const v = this.view();
    const rate = this.rate(v.totals.taps);
    const perGate = this.#slots.map((slot, i) => {
      const g = v.gates[i]!;
      const j = this.#journal(slot);
      return { id: g.id, engine: slot.engine, epoch: j.epoch, journaled: j.lastSeq, version: g.version, online: g.online };
    });
    const stored = await Promise.all(perGate.map((p) => this.central.events.count(p.id, p.epoch)));
    const withStored = perGate.map((p, i) => ({ ...p, stored: stored[i] ?? 0 }));
    const eventsJournaled = perGate.reduce((a, b) => a + b.journaled, 0);
    const eventsStoredAtCentral = withStored.reduce((a, b) => a + b.stored, 0);
    return {
      seed: this.#o.seed, gates: this.#slots.length, durationSeconds: Math.round(rate.seconds), broker: this.broker !== null ? 'embedded' : this.brokerUrl, topicRoot: this.topicRoot,
      taps: v.totals.taps, granted: v.totals.granted, deniedByReason: v.totals.denied, eventsJournaled, eventsStoredAtCentral,
      exactlyOnce: eventsJournaled === eventsStoredAtCentral && withStored.every((p) => p.journaled === p.stored), moments: this.moments,
      rateAsked: rate.asked, rateSustained: Math.round(rate.sustained * 10) / 10, tapSeconds: Math.round(rate.seconds * 100) / 100, rateShort: rate.short, perGate: withStored, centralVersion: v.totals.version,
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#countsTimer !== null) clearInterval(this.#countsTimer);
    this.#countsTimer = null;
    if (this.#tapTimer !== null) clearInterval(this.#tapTimer);
    for (const t of this.#timers) clearTimeout(t);
    for (const g of this.gates) g.stop();
    // With a data directory each Node gate's flash is kept for the next run (after the gate stopped: nothing half-written).
    const state = this.#state;
    if (state !== null) for (const g of this.gates) state.saveGate(g.gate.id, { ...this.#saved.get(g)!, flash: g.flash, provisioningFlash: g.provisioningFlash });
    await Promise.all(this.xsGates.map((g) => g.close()));
    await this.central?.close();
    await this.#restarting;
    await this.broker?.close();
    if (this.#ownDir) rmSync(this.#dir, { recursive: true, force: true });
  }
}
