// What the simulation driver (simulation.ts) sees of a gate, whichever engine
// runs its firmware: SimGate (the firmware core on Node, synchronous) or
// SimXsGate (firmware/moddable/main.ts on XS in an xsnap worker, advanced in
// lockstep). Both report through the same hooks, in the order things happened
// on the device: a probed tap's inputs, then the records it journaled, a
// relay switched on after the records before it.

import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import type { TapProbe } from '../xs-gate/protocol.js';
import type { JournalWatch } from './journal-watch.js';
import type { NodeClock } from './sim-scheduler.js';

/** What can be read from a running gate at once. */
export interface GateReadout {
  readonly version: number;
  readonly listEpoch: number;
  readonly connected: boolean;
  readonly mode: string;
  readonly journal: { readonly epoch: number; readonly lastSeq: number; readonly acked: number; readonly backlog: number; readonly capacity: number };
  /** Timers the gate has waiting. */
  readonly timers: number;
}

/** The reference model's inputs, read as the lane controller reads them when a credential arrives (what an XS gate's probe reports, less its time). */
export type TapInputs = Omit<TapProbe, 'atMs'>;

/** A record the lane controller journaled ('full': refused for a full journal, nothing written). */
export interface JournalEvent {
  readonly type: number;
  readonly reason: number;
  readonly seq: number | 'full';
  /** It reads back from flash as a valid record of this type. */
  readonly durable: boolean;
  /** The record's time (UTC seconds; 0 when not durable). */
  readonly time: number;
}

export interface SimulatedGateHooks {
  /** The gate's code threw something other than a power cut. */
  crashed(gate: SimulatedGate, e: unknown): void;
  /** The relay (or barrier) was switched on; `mode`: the lane controller's at that moment (when the engine reports it). */
  relayOn(gate: SimulatedGate, mode?: string): void;
  /** A credential reached the lane controller with these inputs. */
  probe(gate: SimulatedGate, inputs: TapInputs): void;
  event(gate: SimulatedGate, e: JournalEvent): void;
  /** Power lost at a flash operation (an armed cut fired). */
  powerLost(gate: SimulatedGate): void;
  trace(gate: SimulatedGate, line: string): void;
}

export interface SimulatedGate {
  readonly id: string;
  readonly engine: 'node' | 'xs';
  readonly provisioning: ProvisioningRecord;
  /** The gate's clock, for skew and trust faults (null: the engine keeps its own, SNTP-set clock). */
  readonly clock: NodeClock | null;
  readonly alive: boolean;
  readonly boots: number;
  readonly watch: JournalWatch;
  /** Null while down. */
  readout(): GateReadout | null;
  /** Where the gate stands, one line for a violation's reader. */
  describe(): string;
  boot(): void;
  powerOff(): void;
  /** Down for good (the end of a run): its worker, if any, stopped. */
  close(): Promise<void>;
  /** The data partition erased (the provisioning partition kept); the gate is down until boot(). */
  wipe(seed: number): void;
  /** A power cut at the n-th next flash write or erase (a torn write where it lands). */
  armPowerCut(n: number): void;
  /** A card at the reader: probe(), then the decision's event(). */
  tap(card: Uint8Array): void;
  /** One turn of the turnstile. */
  rotate(): void;
}
