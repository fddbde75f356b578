// Lane scenarios for the gate controller, as plain data so Node and XS run
// exactly the same thing: a gate on simulated flash with virtual time, fake
// outputs and inputs, a script of reads, input changes and waits. Returns the
// journaled events and the output changes, in order. No Node APIs.

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
}

export interface LaneResult {
  events: string[];
  outputs: string[];
}

const T0 = 1_795_000_000;
const te = new TextEncoder();
const DK = new Uint8Array(32).fill(7);
const EVENT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EventType).map(([k, v]) => [v, k]));
const everywhere: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] };

/** Enrolled ids: "alice", "bob" (individual grants), "truck-1", "crate-1".."crate-3"; anything else is unknown. */
const ENROLLED = ['alice', 'bob', 'truck-1', 'crate-1', 'crate-2', 'crate-3'];


export function runLaneScenario(s: LaneScenario, crypto: Crypto): LaneResult {
  const vt = new VirtualTime({ wallSeconds: T0, trusted: true });
  const layout = { credentials: 64, sideTableBytes: 4096, overlayBlocks: 10, passbackBlocks: 4, journalSectors: 4 };
  const flash = new NorFlash({ size: partitionBytes(layout, 4096), blockSize: 4096 });
  const outputsLog: string[] = [];
  const events: string[] = [];
  const faults = new Set<OutputName>();
  const outputs: Outputs = {
    set: (o, on) => {
      outputsLog.push(`${o}=${on ? 1 : 0}`);
      return !faults.has(o);
    },
  };
  const inputValues: Record<InputName, boolean> = { rotation: false, door: false, presence: false, fire: s.fireAtBoot === true };
  let inputCb: (i: InputName, v: boolean, at: number) => void = () => {};
  const inputs: Inputs = { read: (i) => inputValues[i], onChange: (cb) => (inputCb = cb) };
  const provisioning: ProvisioningRecord = {
    gate: 'g1', site: 'futian', line: s.line, direction: 'in', lane: s.lane, list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
    trustedKeys: [new Uint8Array(32).fill(1)], deploymentKey: DK, journalEpoch: 1, policy: DEFAULT_POLICY[s.line], passbackSeconds: 60,
  };
  const gate = new Gate({
    provisioning, flash, layout, clock: vt, timers: vt, net: new NullNet(), crypto, outputs, inputs, random: () => 0.5,
    onEvent: (type, reason, seq) => {
      if (type !== EventType.boot) events.push(`${EVENT_NAMES[type] ?? type}:${reason}${seq === 'full' ? ':unjournaled' : ''}`);
    },
  });
  gate.open();
  const key = (id: string) => credentialKey(crypto, DK, id.startsWith('truck') || id.startsWith('crate') ? 2 : 1, te.encode(id));
  const image = buildImage({
    epoch: 1, version: 1, industries: [], institutions: [],
    credentials: ENROLLED.map((id) => ({ key: key(id), grant: id === 'bob' ? { ...everywhere, lines: ['first'] } : everywhere })),
    schedules: [],
  });
  const e = installImage(gate.store, image, crypto, 512);
  if (e !== null) throw new Error(`install: ${e}`);
  if (gate.store.acceptHead({ epoch: 1, version: 1, issuedAt: T0, expires: T0 + 86400 }, T0, true) !== null) throw new Error('head');
  for (const st of s.steps) {
    if ('read' in st) gate.onRead({ kind: st.kind ?? (s.lane === 'person' ? 'card' : 'uhf'), id: te.encode(st.read), atMs: vt.monotonicMs() });
    else if ('input' in st) {
      inputValues[st.input] = st.value;
      inputCb(st.input, st.value, vt.monotonicMs());
    } else if ('wait' in st) vt.advance(st.wait);
    else if ('fault' in st) faults.add(st.fault);
    else {
      // Fill the journal to the brim: records nobody acknowledges.
      const rec = { time: T0, key: new Uint8Array(8), type: EventType.alarm, level: 0, clockUntrusted: false, reason: 1 };
      for (let i = 0; i < 100000 && gate.journal.append(rec) !== 'full'; i++);
    }
  }
  gate.close();
  return { events, outputs: outputsLog };
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
