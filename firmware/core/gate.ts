// One gate, assembled from its provisioning record, its data partition and
// the ports: whitelist store, journal, passback, gate state, time, the lane
// controller, the sync engine and remote commands. Used unchanged by the
// device entry (firmware/moddable/main.ts) and by the simulator.

import { KeyRing, openSigned } from '../../protocol/envelope.js';
import { Command, decodeConfigParams } from '../../protocol/messages.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { Topics } from '../../protocol/topics.js';
import type { Crypto } from '../../protocol/crypto.js';
import type { BlockStore, Clock, CredentialRead, Inputs, Net, Outputs, TimerHandle, Timers } from '../ports.js';
import type { GateConfig } from './decision.js';
import { GateController, type LaneTiming } from './gate-controller.js';
import { GateState } from './gate-state.js';
import { GateTime } from './gate-time.js';
import type { FormatCounter } from './format-log.js';
import { Journal } from './journal.js';
import { AlarmCode, CommandCode, EventType } from '../../protocol/event-record.js';
import { MaintenanceScheduler } from './maintenance.js';
import { layoutPartition, type LayoutOptions, type Partition } from './partition.js';
import { PassbackStore, PassbackTable } from './passback.js';
import { RecordLog } from './record-log.js';
import { RefusalLog } from './refusal-log.js';
import { SyncEngine, type EventSource, type SyncConfig } from './sync-engine.js';
import { WhitelistStore, type RecoveryReport } from './whitelist-store.js';

export const FIRMWARE_VERSION = 'subline-gate 0.1.0';

const te = new TextEncoder();

export interface GateOptions {
  readonly provisioning: ProvisioningRecord;
  readonly flash: BlockStore;
  readonly layout: LayoutOptions;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly net: Net;
  readonly crypto: Crypto;
  readonly outputs: Outputs;
  readonly inputs: Inputs;
  readonly random: () => number;
  readonly writeOnce?: boolean;
  /**
   * The format counter, kept outside the data partition (the provisioning
   * partition's FormatLog). The journal epoch is journalEpoch + formats - 1,
   * and a boot that finds no journal of its epoch counts one more format
   * first: a wiped data partition never reuses an (epoch, seq). Without it the
   * epoch is journalEpoch (tests and benches that never wipe).
   */
  readonly formats?: FormatCounter;
  readonly sync?: Partial<SyncConfig>;
  readonly timing?: Partial<LaneTiming>;
  readonly maintenanceMs?: number;
  /** Flash work per maintenance tick, in blocks (the erase budget; default 1). */
  readonly maintenanceBlocksPerTick?: number;
  /** Every journaled event (for displays and tests). */
  readonly onEvent?: (type: number, reason: number, seq: number | 'full') => void;
  /** The whitelist version or the connection changed (for displays and benchmarks). */
  readonly onSyncChange?: () => void;
}

export interface BootReport {
  readonly boot: number;
  readonly store: RecoveryReport;
  readonly journalLastSeq: number;
  readonly journalAcked: number;
  /** The journal epoch of this boot. */
  readonly journalEpoch: number;
  /** This boot found no journal of its epoch and counted a format (a new epoch, or the first boot). */
  readonly formatted: boolean;
}

/** The journal epoch after `formats` formats (0 and 1 both give the provisioned epoch). */
export function epochFor(journalEpoch: number, formats: number): number {
  const e = journalEpoch + Math.max(0, formats - 1);
  if (e > 0xffffffff) throw new RangeError(`journal epoch ${journalEpoch} + ${formats - 1} formats is past the u32 range: provision the gate again`);
  return e;
}

export class Gate {
  readonly id: string;
  /** Mutable: a config command changes the passback window and the staleness threshold. */
  config: GateConfig;
  readonly partition: Partition;
  readonly store: WhitelistStore;
  readonly journal: Journal;
  readonly passback: PassbackStore;
  readonly state: GateState;
  readonly time: GateTime;
  readonly controller: GateController;
  readonly sync: SyncEngine;
  readonly topics: Topics;
  /** Every refused message by cause (sync and commands): the status `refused`, throttled alarms. */
  readonly refusals: RefusalLog;
  /** Every erase while the gate runs: journal spares, then the logs' compactions (docs/decisions/0010). */
  readonly maintenance: MaintenanceScheduler;
  readonly #o: GateOptions;
  #maintenance: TimerHandle | null = null;
  commandsRefused: Record<string, number> = {};

  constructor(o: GateOptions) {
    this.#o = o;
    const p = o.provisioning;
    this.id = p.gate;
    this.topics = new Topics(p.topicRoot);
    this.config = { line: p.line, direction: p.direction, lane: p.lane, policy: p.policy, passbackSeconds: p.passbackSeconds };
    this.partition = layoutPartition(o.flash, o.layout);
    const writeOnce = o.writeOnce === true;
    this.store = new WhitelistStore({ slotA: this.partition.slotA, slotB: this.partition.slotB, state: this.partition.state, overlay: this.partition.overlay }, o.crypto, { writeOnce });
    this.journal = new Journal(this.partition.journal, { epoch: p.journalEpoch });
    this.passback = new PassbackStore(new RecordLog(this.partition.passback, { kind: 0x41504221, maxPayload: 16, writeOnce }), new PassbackTable(2048));
    this.state = new GateState(this.partition.gateState, { writeOnce });
    this.time = new GateTime(o.clock, () => this.store.timeFloor);
    this.maintenance = new MaintenanceScheduler({
      journal: this.journal,
      tasks: [this.passback, this.store.overlayCompaction, this.store.stateCompaction, this.state],
      ...(o.maintenanceBlocksPerTick !== undefined ? { blocksPerTick: o.maintenanceBlocksPerTick } : {}),
    });
    const keys = new KeyRing(o.crypto, p.trustedKeys);
    this.refusals = new RefusalLog({ clock: o.clock, onAlarm: (cause) => this.#refusalAlarm(cause) });
    this.controller = new GateController({
      gate: this.config,
      whitelist: this.store.whitelist,
      head: () => this.store.head,
      journal: this.journal,
      passback: this.passback,
      time: this.time,
      clock: o.clock,
      timers: o.timers,
      outputs: o.outputs,
      inputs: o.inputs,
      crypto: o.crypto,
      deploymentKey: p.deploymentKey,
      ...(o.timing !== undefined ? { timing: o.timing } : {}),
      ...(o.onEvent !== undefined ? { onEvent: (r, seq) => o.onEvent?.(r.type, r.reason, seq) } : {}),
    });
    const events = this.#eventSource();
    this.sync = new SyncEngine({
      gate: p.gate,
      list: p.list,
      net: o.net,
      timers: o.timers,
      clock: o.clock,
      crypto: o.crypto,
      keys,
      gateKey: p.gateKey,
      gateKeyId: p.gateKeyId,
      refusals: this.refusals,
      topics: this.topics,
      store: this.store,
      time: this.time,
      events,
      random: o.random,
      ...(o.sync !== undefined ? { config: o.sync } : {}),
      status: () => ({ journal: this.journal.epoch, boot: this.state.boot, firmware: FIRMWARE_VERSION, line: p.line, direction: p.direction, lane: p.lane, backlog: this.journal.backlog }),
      onCommand: (payload) => this.#onCommand(payload, keys),
      ...(o.onSyncChange !== undefined ? { onChange: o.onSyncChange } : {}),
    });
  }

  /** Recovers every store from flash; counts the boot; journals it. */
  open(): BootReport {
    const store = this.store.open();
    const formatted = this.#openJournal();
    this.passback.open();
    const boot = this.state.open();
    // The central's last ack may be newer than the journal's persisted one (persisted by maintain()).
    if (this.state.ackEpoch === this.journal.epoch && this.state.ackSeq > this.journal.acked) this.journal.ack(this.state.ackSeq);
    if (this.state.lockdown) this.controller.setMode('lockdown');
    if (this.state.configSet) this.#applyConfig(this.state.passbackSeconds, this.state.staleAfterSeconds);
    this.#journalBoot();
    this.controller.begin();
    return { boot, store, journalLastSeq: this.journal.lastSeq, journalAcked: this.journal.acked, journalEpoch: this.journal.epoch, formatted };
  }

  /**
   * Opens the journal in the epoch of the format counter. No journal of that
   * epoch on flash (an erased or foreign data partition): count a format
   * first, durably, and start the journal in the next epoch. A cut between the
   * two costs an epoch, never reuses one (docs/decisions/0013-format-counter.md).
   */
  #openJournal(): boolean {
    const f = this.#o.formats;
    const base = this.#o.provisioning.journalEpoch;
    if (f === undefined) {
      this.journal.open();
      return false;
    }
    this.journal.setEpoch(epochFor(base, f.read()));
    this.journal.open();
    if (this.journal.formatted) return false;
    this.journal.setEpoch(epochFor(base, f.bump()));
    this.journal.open();
    return true;
  }

  #journalBoot(): void {
    const rec = { time: this.time.read().now >>> 0, key: new Uint8Array(8), type: EventType.boot, level: 0, clockUntrusted: !this.time.trusted, reason: 0 };
    this.journal.append(rec);
  }

  start(): void {
    this.sync.start();
    this.#maintenance = this.#o.timers.repeat(() => this.maintain(), this.#o.maintenanceMs ?? 200);
  }

  /** Background work (the maintenance timer): at most the erase budget of flash work per call. */
  maintain(): void {
    this.maintenance.tick();
  }

  onRead(read: CredentialRead): void {
    this.controller.onRead(read);
  }

  close(): void {
    if (this.#maintenance !== null) this.#o.timers.clear(this.#maintenance);
    this.#maintenance = null;
    this.sync.close();
    this.controller.close();
  }

  #eventSource(): EventSource {
    const j = this.journal;
    const s = (): GateState => this.state;
    return {
      get epoch() {
        return j.epoch;
      },
      get lastSeq() {
        return j.lastSeq;
      },
      get acked() {
        return j.acked;
      },
      get ackedChain() {
        const st = s();
        return st.ackEpoch === j.epoch && st.ackSeq === j.acked ? st.ackChain : new Uint8Array(32);
      },
      readBatch: (from, max, out) => j.readBatch(from, max, out).count,
      ack: (seq, chain) => {
        // The chain first: it must be known for whatever the journal persists. No room yet: the ack
        // is not taken (acked stays), the central acks again after the resend.
        if (s().setAck(j.epoch, seq, chain)) j.ack(seq);
      },
    };
  }

  #applyConfig(passbackSeconds: number, staleAfterSeconds: number): void {
    this.config = { ...this.config, passbackSeconds, policy: { ...this.config.policy, staleAfterSeconds } };
    this.controller.setConfig(this.config);
  }

  /**
   * One alarm for a refusal cause (the refusal log calls this at most once per
   * cause per 10 minutes). Skipped while the journal is half full: refusals
   * must never take the room that decisions need; the status still counts them.
   */
  #refusalAlarm(cause: string): void {
    if (this.journal.backlog * 2 >= this.journal.capacityEvents) return;
    this.controller.raiseAlarm(AlarmCode.message_refused, this.#o.crypto.sha256(te.encode(cause)));
  }

  #countCommandRefusal(reason: string): void {
    this.commandsRefused[reason] = (this.commandsRefused[reason] ?? 0) + 1;
    this.refusals.refuse(`cmd_${reason}`);
  }

  #refuse(reason: string, gate: string, nonce: Uint8Array): void {
    this.#countCommandRefusal(reason);
    this.#result(gate, nonce, 'refused', reason);
  }

  #result(_gate: string, nonce: Uint8Array, status: 'done' | 'refused' | 'failed', reason: string): void {
    if (nonce.length !== 16) return;
    this.sync.publishResult({ gate: this.id, nonce, status, reason, at: this.time.read().now });
  }

  #onCommand(payload: Uint8Array, keys: KeyRing): void {
    const r = openSigned(Command, payload, keys);
    if (!r.ok) {
      this.#countCommandRefusal(r.error.code);
      return; // unsigned or forged: no answer to a stranger
    }
    const c = r.value;
    if (c.gate !== this.id) return this.#refuse('not_for_this_gate', c.gate, c.nonce);
    const t = this.time.read();
    if (t.trusted && c.expires <= t.now) return this.#refuse('expired', c.gate, c.nonce);
    if (t.trusted && c.issuedAt > t.now + 300) return this.#refuse('not_yet_valid', c.gate, c.nonce);
    if (!t.trusted && c.expires <= this.store.timeFloor) return this.#refuse('expired', c.gate, c.nonce);
    if (this.state.seen(c.nonce, t.now)) return this.#refuse('replayed', c.gate, c.nonce);
    // The nonce and the command's own record must both fit; if not, refuse without acting (send again later).
    if (!this.state.roomFor(2)) return this.#refuse('busy', c.gate, c.nonce);
    // Remember the nonce durably before acting: a cut after this never runs it twice.
    if (!this.state.markSeen(c.nonce, c.expires, t.now)) return this.#refuse('busy', c.gate, c.nonce);
    const code = c.op === 'open' ? CommandCode.open_once : c.op === 'lockdown' ? CommandCode.lockdown : c.op === 'release' ? CommandCode.release : CommandCode.config;
    switch (c.op) {
      case 'open': {
        const seq = this.controller.openOnce(code);
        if (seq === 'full' || seq === 'busy') return this.#result(c.gate, c.nonce, 'failed', seq === 'full' ? 'journal_full' : 'lane_busy');
        return this.#result(c.gate, c.nonce, 'done', 'opened');
      }
      case 'lockdown':
      case 'release': {
        const on = c.op === 'lockdown';
        this.state.setLockdown(on);
        this.controller.setMode(on ? 'lockdown' : 'normal');
        const seq = this.journal.append({ time: t.now >>> 0, key: new Uint8Array(8), type: EventType.command, level: 0, clockUntrusted: !t.trusted, reason: code });
        return this.#result(c.gate, c.nonce, 'done', seq === 'full' ? 'done_unjournaled' : on ? 'locked_down' : 'released');
      }
      case 'config': {
        const params = c.params === undefined ? null : decodeConfigParams(c.params);
        if (params === null || !params.ok) return this.#result(c.gate, c.nonce, 'refused', 'bad_params');
        const passback = params.value.passbackSeconds ?? this.config.passbackSeconds;
        const stale = params.value.staleAfterSeconds ?? this.config.policy.staleAfterSeconds;
        this.state.setConfig(passback, stale);
        this.#applyConfig(passback, stale);
        const seq = this.journal.append({ time: t.now >>> 0, key: new Uint8Array(8), type: EventType.command, level: 0, clockUntrusted: !t.trusted, reason: code });
        return this.#result(c.gate, c.nonce, 'done', seq === 'full' ? 'done_unjournaled' : 'configured');
      }
    }
  }
}
