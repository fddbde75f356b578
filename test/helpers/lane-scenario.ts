// Lane scenarios for the gate controller, as plain data so Node and XS run
// exactly the same thing: a gate on simulated flash with virtual time, fake
// outputs and inputs, a script of reads, input changes and waits. Returns the
// journaled events, the output changes, and both in one ordered trace (each
// journal append as it returns, each output change as it is driven), so a test
// can check what happened before what. No Node APIs.

import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { Gate } from '../../firmware/core/gate.js';
import { EventType } from '../../protocol/event-record.js';
import type { InputName, Inputs, OutputName, Outputs } from '../../firmware/ports.js';
import { NullNet } from '../../host-sim/adapters/null-net.js';
import { credentialKey } from '../../protocol/credential-key.js';
import type { Crypto } from '../../protocol/crypto.js';
import { partitionBytes } from '../../firmware/core/partition.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { buildImage, type GrantSpec } from '../../host-sim/central/image-builder.js';
import { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../../host-sim/adapters/virtual-time.js';
import { installImage } from './whitelist-scenario.js';
import { ReaderPoller } from '../../firmware/drivers/reader-poll.js';
import { UhfFrameDecoder } from '../../firmware/drivers/uhf-frame.js';
import { SimUhfReader } from '../../host-sim/sim-uhf-reader.js';

export type Step =
  | { read: string; kind?: 'card' | 'uhf' } // raw id as text
  | { input: InputName; value: boolean }
  | { wait: number } // ms
  | { fault: OutputName } // this output fails from now on
  | { fillJournal: true };

export interface LaneScenario {
  name: string;
  line: 'first' | 'second';
  lane: 'person' | 'vehicle' | 'goods';
  steps: Step[];
  /** The fire release input is already active when the gate boots. */
  fireAtBoot?: boolean;
  /** The gate's anti-passback window (default 60 s). */
  passbackSeconds?: number;
  /**
   * How reads reach the gate. 'polled' (default on vehicle and goods lanes): a
   * tag enters the field of a simulated M100 reader (host-sim/sim-uhf-reader.ts)
   * for `dwellMs`, the firmware's ReaderPoller writes inventory commands, the reader
   * answers only those, the UHF frame decoder reads the answers. 'direct' (default
   * on person lanes): the read goes to the controller as a decoded card read.
   */
  reader?: 'polled' | 'direct';
  /** Polled reader: the poll interval (default: the UHF kind's, READER_POLL). */
  pollIntervalMs?: number;
  /** Polled reader: how long a tag stays in the field (default 1000 ms). */
  dwellMs?: number;
}

export interface LaneResult {
  events: string[];
  outputs: string[];
  /**
   * Journal appends and output changes in the order they happened:
   * `append <type>:<reason> #<seq>` (or `... full`) when Journal.append returns,
   * `out <output>=<0|1>` when an output is driven.
   */
  trace: string[];
  /** Polled reader: every write to its UART, `<virtual ms> <hex>`. */
  readerWrites: string[];
  /** Polled reader: what it saw (SimUhfReader stats). */
  reader: { polls: number; reports: number; empty: number; ignored: number } | null;
}

const T0 = 1_795_000_000;
const te = new TextEncoder();
const DK = new Uint8Array(32).fill(7);
const EVENT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EventType).map(([k, v]) => [v, k]));
const everywhere: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] };

/**
 * Enrolled ids: "alice", "bob" (first line only), "dave" (individual grants), "carol" (passback
 * group 1), "truck-1".."truck-3", "crate-1".."crate-3"; anything else is unknown.
 */
/** A UHF tag's EPC for a scenario id: the text, padded with a zero byte to whole 16-bit words. */
export function epcOf(id: string): Uint8Array {
  const b = te.encode(id);
  if (b.length % 2 === 0) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}
const isTag = (id: string): boolean => id.startsWith('truck') || id.startsWith('crate');

const ENROLLED = ['alice', 'bob', 'truck-1', 'crate-1', 'crate-2', 'crate-3', 'carol', 'dave', 'truck-2', 'truck-3'];
const grantOf = (id: string): GrantSpec => (id === 'bob' ? { ...everywhere, lines: ['first'] } : id === 'carol' ? { ...everywhere, passbackGroup: 1 } : everywhere);


export function runLaneScenario(s: LaneScenario, crypto: Crypto): LaneResult {
  const vt = new VirtualTime({ wallSeconds: T0, trusted: true });
  const layout = { credentials: 64, sideTableBytes: 4096, overlayBlocks: 10, passbackBlocks: 4, journalSectors: 4 };
  const flash = new NorFlash({ size: partitionBytes(layout, 4096), blockSize: 4096 });
  const outputsLog: string[] = [];
  const events: string[] = [];
  const trace: string[] = [];
  const faults = new Set<OutputName>();
  const outputs: Outputs = {
    set: (o, on) => {
      outputsLog.push(`${o}=${on ? 1 : 0}`);
      trace.push(`out ${o}=${on ? 1 : 0}`);
      return !faults.has(o);
    },
  };
  const inputValues: Record<InputName, boolean> = { rotation: false, door: false, presence: false, fire: s.fireAtBoot === true };
  let inputCb: (i: InputName, v: boolean, at: number) => void = () => {};
  const inputs: Inputs = { read: (i) => inputValues[i], onChange: (cb) => (inputCb = cb) };
  const provisioning: ProvisioningRecord = {
    gate: 'g1', site: 'futian', line: s.line, direction: 'in', lane: s.lane, list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
    trustedKeys: [new Uint8Array(32).fill(1)], deploymentKey: DK, gateKey: new Uint8Array(32).fill(0x5a), gateKeyId: 1, journalEpoch: 1, policy: DEFAULT_POLICY[s.line], passbackSeconds: s.passbackSeconds ?? 60,
  };
  const gate = new Gate({
    provisioning, flash, layout, clock: vt, timers: vt, net: new NullNet(), crypto, outputs, inputs, random: () => 0.5,
    onEvent: (type, reason, seq) => {
      if (type !== EventType.boot) events.push(`${EVENT_NAMES[type] ?? type}:${reason}${seq === 'full' ? ':unjournaled' : ''}`);
    },
  });
  // The trace sees each append when it returns (the record is then durable: the
  // journal reads it back before returning a seq).
  const journal = gate.journal;
  const append = journal.append.bind(journal);
  journal.append = (r) => {
    const seq = append(r);
    trace.push(`append ${EVENT_NAMES[r.type] ?? r.type}:${r.reason} ${seq === 'full' ? 'full' : `#${seq}`}`);
    return seq;
  };
  gate.open();
  const key = (id: string) => (isTag(id) ? credentialKey(crypto, DK, 2, epcOf(id)) : credentialKey(crypto, DK, 1, te.encode(id)));
  const image = buildImage({
    epoch: 1, version: 1, industries: [], institutions: [],
    credentials: ENROLLED.map((id) => ({ key: key(id), grant: grantOf(id) })),
    schedules: [],
  });
  const e = installImage(gate.store, image, crypto, 512);
  if (e !== null) throw new Error(`install: ${e}`);
  if (gate.store.acceptHead({ epoch: 1, version: 1, issuedAt: T0, expires: T0 + 86400 }, T0, true) !== null) throw new Error('head');
  // The reader: polled UHF through the firmware's poller and decoder, or reads handed over directly.
  const polled = (s.reader ?? (s.lane === 'person' ? 'direct' : 'polled')) === 'polled';
  const readerWrites: string[] = [];
  const decoder = new UhfFrameDecoder({ onRead: (r) => gate.onRead(r) });
  const sim = new SimUhfReader((bytes) => decoder.push(bytes, vt.monotonicMs()));
  const poller = new ReaderPoller({
    kind: 'uhf',
    ...(s.pollIntervalMs !== undefined ? { intervalMs: s.pollIntervalMs } : {}),
    timers: vt,
    write: (bytes) => {
      readerWrites.push(`${vt.monotonicMs()} ${Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('')}`);
      sim.write(bytes, vt.monotonicMs());
      return true;
    },
    busy: () => gate.controller.outstandingGrants > 0,
  });
  if (polled) poller.start();
  for (const st of s.steps) {
    if ('read' in st) {
      const kind = st.kind ?? (s.lane === 'person' ? 'card' : 'uhf');
      if (polled && kind === 'uhf') sim.present(epcOf(st.read), vt.monotonicMs(), s.dwellMs ?? 1000);
      else gate.onRead({ kind, id: kind === 'uhf' ? epcOf(st.read) : te.encode(st.read), atMs: vt.monotonicMs() });
    }
    else if ('input' in st) {
      trace.push(`in ${st.input}=${st.value ? 1 : 0}`);
      inputValues[st.input] = st.value;
      inputCb(st.input, st.value, vt.monotonicMs());
    } else if ('wait' in st) vt.advance(st.wait);
    else if ('fault' in st) faults.add(st.fault);
    else {
      // Fill the journal to the brim: records nobody acknowledges.
      const rec = { time: T0, key: new Uint8Array(8), type: EventType.alarm, level: 0, clockUntrusted: false, reason: 1 };
      for (let i = 0; i < 100000 && append(rec) !== 'full'; i++);
    }
  }
  poller.stop();
  gate.close();
  return { events, outputs: outputsLog, trace, readerWrites, reader: polled ? { ...sim.stats } : null };
}

const G = 'granted';
export const LANE_SCENARIOS: LaneScenario[] = [
  { name: 'person: grant then one rotation', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { wait: 1000 }, { input: 'rotation', value: true }, { input: 'rotation', value: false }] },
  { name: 'person: grant not taken', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { wait: 9000 }] },
  { name: 'person: tailgating', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { input: 'rotation', value: true }, { input: 'rotation', value: false }, { read: 'bob' }, { input: 'rotation', value: true }, { input: 'rotation', value: false }, { input: 'rotation', value: true }] },
  { name: 'person: forced passage', line: 'first', lane: 'person', steps: [{ input: 'rotation', value: true }] },
  { name: 'person: rotation long after a passage is forced', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { input: 'rotation', value: true }, { input: 'rotation', value: false }, { wait: 3000 }, { input: 'rotation', value: true }, { input: 'rotation', value: false }] },
  { name: 'person: stuck rotation sensor raises an alarm; the second line then fails closed', line: 'second', lane: 'person', steps: [{ input: 'rotation', value: true }, { wait: 6000 }, { read: 'alice' }] },
  { name: 'person: unknown and wrong line denied', line: 'second', lane: 'person', steps: [{ read: 'mallory' }, { read: 'bob' }, { input: 'rotation', value: true }] },
  { name: 'person: door held open', line: 'first', lane: 'person', steps: [{ input: 'door', value: true }, { wait: 25000 }, { input: 'door', value: false }] },
  { name: 'person: journal full refuses', line: 'first', lane: 'person', steps: [{ fillJournal: true }, { read: 'alice' }, { input: 'rotation', value: true }] },
  { name: 'person: fire release overrides a full journal', line: 'second', lane: 'person', steps: [{ fillJournal: true }, { input: 'fire', value: true }, { read: 'mallory' }, { input: 'rotation', value: true }] },
  { name: 'person: relay fault on the second line fails closed', line: 'second', lane: 'person', steps: [{ fault: 'relay' }, { read: 'alice' }, { wait: 9000 }, { read: 'alice' }] },
  { name: 'person: fire release active at boot opens the lane', line: 'second', lane: 'person', fireAtBoot: true, steps: [{ input: 'rotation', value: true }] },
  { name: 'vehicle: tag, barrier up, loop clears', line: 'first', lane: 'vehicle', steps: [{ input: 'presence', value: true }, { read: 'truck-1' }, { wait: 2000 }, { input: 'presence', value: false }] },
  { name: 'vehicle: on the loop without a credential', line: 'first', lane: 'vehicle', steps: [{ input: 'presence', value: true }, { wait: 16000 }, { input: 'presence', value: false }] },
  { name: 'goods: whole lot granted', line: 'first', lane: 'goods', steps: [{ read: 'crate-1' }, { read: 'crate-2' }, { read: 'crate-2' }, { read: 'crate-3' }, { wait: 2000 }, { input: 'rotation', value: true }] },
  { name: 'goods: one unknown tag denies the lot', line: 'first', lane: 'goods', steps: [{ read: 'crate-1' }, { read: 'crate-9' }, { read: 'crate-3' }, { wait: 2000 }] },
];

/** The expected journal for each scenario (reason numbers from protocol/reasons.ts). */
export const EXPECTED: Record<string, string[]> = {
  'person: grant then one rotation': [`decision_granted:0`, `passage_completed:0`],
  'person: grant not taken': [`decision_granted:0`, `passage_not_taken:0`],
  'person: tailgating': [`decision_granted:0`, `passage_completed:0`, `decision_granted:0`, `passage_completed:0`, `tailgating:0`],
  'person: forced passage': [`forced_passage:0`],
  'person: rotation long after a passage is forced': [`decision_granted:0`, `passage_completed:0`, `forced_passage:0`],
  'person: stuck rotation sensor raises an alarm; the second line then fails closed': [`forced_passage:0`, `alarm:4`, `decision_denied:20`],
  'person: unknown and wrong line denied': [`decision_denied:1`, `decision_denied:8`, `forced_passage:0`],
  'person: door held open': [`door_held_open:0`],
  'person: journal full refuses': [`decision_denied:15:unjournaled`, `forced_passage:0:unjournaled`],
  'person: fire release overrides a full journal': [`fire_release:1:unjournaled`, `decision_granted:17:unjournaled`, `passage_completed:17:unjournaled`],
  'person: relay fault on the second line fails closed': [`decision_granted:0`, `alarm:3`, `passage_not_taken:0`, `decision_denied:20`],
  'person: fire release active at boot opens the lane': [`fire_release:1`, `passage_completed:17`],
  'vehicle: tag, barrier up, loop clears': [`decision_granted:0`, `passage_completed:0`],
  'vehicle: on the loop without a credential': [`vehicle_without_credential:0`],
  'goods: whole lot granted': [`decision_granted:0`, `decision_granted:0`, `decision_granted:0`, `passage_completed:0`],
  'goods: one unknown tag denies the lot': [`decision_granted:0`, `decision_denied:1`, `decision_granted:0`, `goods_lot_denied:1`],
};
void G;

const rot = (): Step[] => [{ input: 'rotation', value: true }, { input: 'rotation', value: false }];

/**
 * The lane as a bounded state machine (test/lane-controller.test.ts): repeat taps
 * of a pending key, the bound on outstanding grants, passback against pending
 * grants, and a pass timer that later taps cannot extend.
 */
export const CONTROLLER_SCENARIOS: LaneScenario[] = [
  // The bypass the review measured: second line, passback group, 600 s window.
  { name: 'passback card tapped three times while open, then three rotations', line: 'second', lane: 'person', passbackSeconds: 600, steps: [{ read: 'carol' }, { read: 'carol' }, { read: 'carol' }, ...rot(), ...rot(), ...rot()] },
  { name: 'passback card: a tap while its grant is pending, then after the passage', line: 'second', lane: 'person', passbackSeconds: 600, steps: [{ read: 'carol' }, { wait: 500 }, { read: 'carol' }, ...rot(), { wait: 3000 }, { read: 'carol' }, { wait: 9000 }] },
  { name: 'card without passback group tapped twice while open', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { read: 'alice' }, ...rot(), ...rot()] },
  { name: 'outstanding grants are bounded', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { read: 'bob' }, { read: 'dave' }, ...rot(), { wait: 100 }, ...rot(), { wait: 3000 }, { read: 'dave' }, ...rot()] },
  { name: 'a later tap does not extend the pass timer', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { wait: 5000 }, { read: 'bob' }, { wait: 4000 }, ...rot(), { wait: 9000 }] },
  { name: 'outstanding grants time out one by one', line: 'first', lane: 'person', steps: [{ read: 'alice' }, { wait: 1000 }, { read: 'bob' }, { wait: 7500 }, { read: 'dave' }, { wait: 8500 }, { read: 'alice' }, ...rot()] },
  { name: 'vehicle: the same tag again while the barrier is up', line: 'first', lane: 'vehicle', reader: 'direct', steps: [{ input: 'presence', value: true }, { read: 'truck-1' }, { wait: 2500 }, { read: 'truck-1' }, { input: 'presence', value: false }] },
  { name: 'vehicle: two vehicles queued, a third refused', line: 'first', lane: 'vehicle', reader: 'direct', steps: [{ input: 'presence', value: true }, { read: 'truck-1' }, { read: 'truck-2' }, { read: 'truck-3' }, { input: 'presence', value: false }, { input: 'presence', value: true }, { input: 'presence', value: false }] },
  { name: 'fire release: repeat taps are not refused, the lane stays open', line: 'second', lane: 'person', steps: [{ input: 'fire', value: true }, { read: 'carol' }, { read: 'carol' }, ...rot(), { input: 'fire', value: false }, { wait: 100 }, ...rot()] },
];

export const CONTROLLER_EXPECTED: Record<string, string[]> = {
  'passback card tapped three times while open, then three rotations': ['decision_granted:0', 'decision_denied:11', 'decision_denied:11', 'passage_completed:0', 'tailgating:0', 'tailgating:0'],
  'passback card: a tap while its grant is pending, then after the passage': ['decision_granted:0', 'decision_denied:11', 'passage_completed:0', 'decision_denied:11'],
  'card without passback group tapped twice while open': ['decision_granted:0', 'decision_denied:21', 'passage_completed:0', 'tailgating:0'],
  'outstanding grants are bounded': ['decision_granted:0', 'decision_granted:0', 'decision_denied:22', 'passage_completed:0', 'passage_completed:0', 'decision_granted:0', 'passage_completed:0'],
  'a later tap does not extend the pass timer': ['decision_granted:0', 'decision_granted:0', 'passage_not_taken:0', 'passage_completed:0'],
  'outstanding grants time out one by one': ['decision_granted:0', 'decision_granted:0', 'passage_not_taken:0', 'decision_granted:0', 'passage_not_taken:0', 'decision_granted:0', 'passage_completed:0'],
  'vehicle: the same tag again while the barrier is up': ['decision_granted:0', 'decision_denied:21', 'passage_completed:0'],
  'vehicle: two vehicles queued, a third refused': ['decision_granted:0', 'decision_granted:0', 'decision_denied:22', 'passage_completed:0', 'passage_completed:0'],
  'fire release: repeat taps are not refused, the lane stays open': ['fire_release:1', 'decision_granted:17', 'decision_granted:17', 'passage_completed:17', 'fire_release:0', 'forced_passage:0'],
};

/**
 * "No pass without a record" as an order, on a scenario's trace: every time the
 * relay or barrier is driven open, a durable grant (a `decision_granted` or an
 * open-once `command` append that returned a seq) came before it and has not
 * been used by an earlier opening; every durable grant is followed by its
 * opening (a denied goods lot drops its tags' grants). While the fire input is
 * active the lane may open first and record best-effort, as documented.
 * Returns what broke the rule (empty: none).
 */
export function recordBeforeRelay(s: LaneScenario, r: LaneResult): string[] {
  const problems: string[] = [];
  let fire = s.fireAtBoot === true;
  let credits = 0;
  for (const [i, e] of r.trace.entries()) {
    if (e === 'in fire=1') fire = true;
    else if (e === 'in fire=0') fire = false;
    else if (/^append (decision_granted:(?!17 )\d+|command:1) #\d+$/.test(e)) credits++;
    else if (e.startsWith('append goods_lot_denied')) credits = 0;
    else if (e === 'out relay=1' || e === 'out barrier=1') {
      if (fire) continue;
      if (credits === 0) problems.push(`${s.name}: step ${i} "${e}" without a durable grant before it (trace: ${r.trace.slice(Math.max(0, i - 4), i + 1).join(' | ')})`);
      else credits = s.lane === 'goods' ? 0 : credits - 1;
    }
  }
  if (credits !== 0) problems.push(`${s.name}: ${credits} durable grant(s) never opened the lane`);
  return problems;
}

/** Polled UHF readers (test/lane-readers.test.ts): the bytes the poller writes and when, and reads only in answer. */
export const READER_SCENARIOS: LaneScenario[] = [
  { name: 'vehicle: M100 single inventory every 100 ms, quiet while the barrier is up', line: 'first', lane: 'vehicle', steps: [{ input: 'presence', value: true }, { read: 'truck-1' }, { wait: 2000 }, { input: 'presence', value: false }, { wait: 450 }] },
  { name: 'goods: a configured interval of 250 ms', line: 'first', lane: 'goods', pollIntervalMs: 250, steps: [{ read: 'crate-1' }, { read: 'crate-2' }, { wait: 2000 }, { input: 'rotation', value: true }, { input: 'rotation', value: false }, { wait: 600 }] },
  { name: 'polling off: a tag in the field is never read', line: 'first', lane: 'vehicle', pollIntervalMs: 0, steps: [{ input: 'presence', value: true }, { read: 'truck-1' }, { wait: 16000 }] },
  { name: 'a tag that leaves the field before the next poll is never read', line: 'first', lane: 'vehicle', pollIntervalMs: 500, dwellMs: 300, steps: [{ wait: 550 }, { read: 'truck-1' }, { wait: 1000 }] },
];

const POLL = 'bb00220000227e';
export const READER_EXPECTED: Record<string, Pick<LaneResult, 'events' | 'readerWrites' | 'reader'>> = {
  'vehicle: M100 single inventory every 100 ms, quiet while the barrier is up': {
    events: ['decision_granted:0', 'passage_completed:0'],
    // The first poll reads the tag and the barrier goes up: no poll until the loop clears at 2000.
    readerWrites: [100, 2100, 2200, 2300, 2400].map((t) => `${t} ${POLL}`),
    reader: { polls: 5, reports: 1, empty: 4, ignored: 0 },
  },
  'goods: a configured interval of 250 ms': {
    events: ['decision_granted:0', 'decision_granted:0', 'passage_completed:0'],
    // Tags reported at 250-750 (the decoder drops the repeats); the lot closes at 1750, the portal is busy until the passage at 2000.
    readerWrites: [250, 500, 750, 1000, 1250, 1500, 1750, 2250, 2500].map((t) => `${t} ${POLL}`),
    reader: { polls: 9, reports: 6, empty: 6, ignored: 0 },
  },
  'polling off: a tag in the field is never read': { events: ['vehicle_without_credential:0'], readerWrites: [], reader: { polls: 0, reports: 0, empty: 0, ignored: 0 } },
  'a tag that leaves the field before the next poll is never read': {
    events: [],
    readerWrites: [500, 1000, 1500].map((t) => `${t} ${POLL}`),
    reader: { polls: 3, reports: 0, empty: 3, ignored: 0 },
  },
};
