// The lane: reader event -> decision -> durable journal record -> outputs ->
// supervision of what really happens. No pass without a record: the relay or
// barrier moves only after the journal returned a seq. The one exception is
// fire release, which opens the lane first and records best-effort.
//
// Lane kinds (docs/LANES.md):
//   person  turnstile: one rotation per grant; passage completed / not taken
//           (timeout); more rotations than grants while open = tailgating;
//           a rotation while closed = forced passage; door held open.
//   vehicle barrier: presence loop + UHF tag; barrier up on grant, down when
//           the loop clears (completed) or on timeout (not taken); a vehicle
//           on the loop with no credential read = vehicle_without_credential.
//   goods   portal: every tag of a consignment read within a window; any tag
//           not granted denies the whole lot.
//
// The lane is a bounded state machine: at most MAX_OUTSTANDING_GRANTS grants
// wait for their passage, in a fixed ring, first granted first used. A tap of a
// credential that already holds an outstanding grant is refused and journaled
// (passback_violation if its grant has a passback group, else already_pending),
// a grant beyond the bound is refused (lane_busy), and only the oldest grant's
// pass timer runs, so taps cannot keep the lane open.

import { credentialKey, type CredentialKindCode } from '../../protocol/credential-key.js';
import type { Crypto } from '../../protocol/crypto.js';
import { Reason, type ReasonCode } from '../../protocol/reasons.js';
import type { Clock, CredentialRead, InputName, Inputs, OutputName, Outputs, TimerHandle, Timers } from '../ports.js';
import { decide, Decision, LEVEL_EMERGENCY, type GateConfig, type GateMode, type TapState } from './decision.js';
import type { GateTime } from './gate-time.js';
import { AlarmCode, createRecord, EventType, type EventRecord } from '../../protocol/event-record.js';
import type { PassbackStore } from './passback.js';
import type { Whitelist } from './whitelist.js';

/** The journal as the controller needs it (firmware/core/journal.ts). */
export interface JournalSink {
  readonly isFull: boolean;
  append(record: EventRecord): number | 'full';
}

export interface LaneTiming {
  /** A grant not used within this closes the lane again (passage not taken). */
  readonly passTimeoutMs: number;
  /** Door contact open longer than this raises door_held_open. */
  readonly doorHeldMs: number;
  /** Vehicle on the loop this long without a credential read. */
  readonly vehicleNoCredentialMs: number;
  /** Goods: tags read within this window after the first form one lot. */
  readonly goodsWindowMs: number;
  /** Goods: most tags in one lot (bounded). */
  readonly goodsMaxTags: number;
  /** A rotation this soon after the lane closed behind a passage is a second person on the same grant (tailgating). */
  readonly tailgateWindowMs: number;
  /** The rotation sensor active this long is stuck: alarm, and the lane counts as faulted. */
  readonly sensorStuckMs: number;
}

/**
 * Grants a lane holds at most before their passages (docs/LANES.md): the subject
 * passing the turnstile / barrier / portal now and the next one at the reader.
 * One lane passes one subject at a time, so a third grant could not be used
 * before the first two, and a lane that collects grants faster than it passes
 * subjects is how one card gets handed back over the barrier.
 */
export const MAX_OUTSTANDING_GRANTS = 2;

export const DEFAULT_TIMING: LaneTiming = { passTimeoutMs: 8000, doorHeldMs: 20000, vehicleNoCredentialMs: 15000, goodsWindowMs: 1500, goodsMaxTags: 64, tailgateWindowMs: 1500, sensorStuckMs: 5000 };

export interface ControllerOptions {
  gate: GateConfig;
  readonly whitelist: Whitelist;
  readonly head: () => { issuedAt: number; expires: number } | null;
  readonly journal: JournalSink;
  readonly passback: PassbackStore | null;
  readonly time: GateTime;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly outputs: Outputs;
  readonly inputs: Inputs;
  readonly crypto: Crypto;
  readonly deploymentKey: Uint8Array;
  readonly timing?: Partial<LaneTiming>;
  /** Every journaled event, after it is durable (or best-effort for fire release). */
  readonly onEvent?: (record: EventRecord, seq: number | 'full') => void;
}

export interface ControllerStats {
  taps: number;
  granted: number;
  denied: number;
  byReason: number[];
  passages: number;
  notTaken: number;
  tailgating: number;
  forced: number;
  alarms: number;
  journalFull: number;
}

export class GateController {
  readonly stats: ControllerStats = { taps: 0, granted: 0, denied: 0, byReason: [], passages: 0, notTaken: 0, tailgating: 0, forced: 0, alarms: 0, journalFull: 0 };
  readonly #o: ControllerOptions;
  readonly #t: LaneTiming;
  readonly #decision = new Decision();
  readonly #rec: EventRecord = createRecord();
  readonly #key = new Uint8Array(8);
  readonly #keyView = new DataView(this.#key.buffer);
  // Reused for every decision: nothing is allocated per tap.
  readonly #tapState: { -readonly [K in keyof TapState]: TapState[K] } = { now: 0, clockTrusted: false, headIssuedAt: 0, headExpires: 0, mode: 'normal', journalFull: false };
  readonly #scratch = new Uint8Array(128);
  #mode: GateMode = 'normal';
  #fire = false;
  // Outstanding grants: a fixed ring (no allocation per tap), oldest at #gHead.
  readonly #gHi = new Uint32Array(MAX_OUTSTANDING_GRANTS);
  readonly #gLo = new Uint32Array(MAX_OUTSTANDING_GRANTS);
  readonly #gGroup = new Uint8Array(MAX_OUTSTANDING_GRANTS);
  /** 1: a credential's grant (key and group valid); 0: open-once or a goods lot. */
  readonly #gKeyed = new Uint8Array(MAX_OUTSTANDING_GRANTS);
  #gHead = 0;
  #gCount = 0;
  #open = false;
  #passTimer: TimerHandle | null = null;
  #doorTimer: TimerHandle | null = null;
  #presenceTimer: TimerHandle | null = null;
  #presenceCredential = false;
  // goods lot
  #lot: { hi: number; lo: number; key: Uint8Array }[] = [];
  #lotTimer: TimerHandle | null = null;
  #stuckTimer: TimerHandle | null = null;
  #closedAfterPassageMs = -Infinity;
  #faulted = false;

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#t = { ...DEFAULT_TIMING, ...options.timing };
    options.inputs.onChange((input, value, atMs) => this.#onInput(input, value, atMs));
  }

  /** Reads the inputs' state once the journal is open (boot): a fire release already active opens the lane. */
  begin(): void {
    this.#fire = this.#o.inputs.read('fire');
    if (this.#fire) this.#enterEmergency();
  }

  get mode(): GateMode {
    return this.#fire ? 'emergency' : this.#mode;
  }
  get isOpen(): boolean {
    return this.#open;
  }
  /** Grants waiting for their passage (0..MAX_OUTSTANDING_GRANTS). */
  get outstandingGrants(): number {
    return this.#gCount;
  }

  /** A config command changed the gate's settings. */
  setConfig(gate: GateConfig): void {
    this.#o.gate = gate;
  }

  /** Remote lockdown/release (the command handler journals the command itself). */
  setMode(mode: 'normal' | 'lockdown'): void {
    this.#mode = mode;
    if (mode === 'lockdown' && !this.#fire) this.#close();
  }

  /**
   * Remote open-once: one passage without a credential, journaled. Returns the
   * seq, 'full' (no record, no passage) or 'busy' (the lane holds its maximum of
   * outstanding grants: not executed, not journaled).
   */
  openOnce(reason: number): number | 'full' | 'busy' {
    if (!this.#fire && this.#gCount >= MAX_OUTSTANDING_GRANTS) return 'busy';
    const seq = this.#journal(EventType.command, reason, 0, null);
    if (this.#fire) return seq; // the lane is open already
    if (seq === 'full') return 'full';
    this.#pushGrant(0, 0, 0, 0);
    this.#openLane();
    return seq;
  }

  close(): void {
    for (const h of [this.#passTimer, this.#doorTimer, this.#presenceTimer, this.#lotTimer, this.#stuckTimer]) if (h !== null) this.#o.timers.clear(h);
    this.#passTimer = this.#doorTimer = this.#presenceTimer = this.#lotTimer = this.#stuckTimer = null;
  }

  // ---- credential reads ----

  onRead(read: CredentialRead): void {
    const kind: CredentialKindCode = read.kind === 'card' ? 1 : 2;
    credentialKey(this.#o.crypto, this.#o.deploymentKey, kind, read.id, this.#key, this.#scratch);
    const hi = this.#keyView.getUint32(0, false);
    const lo = this.#keyView.getUint32(4, false);
    if (this.#o.gate.lane === 'goods') return this.#addToLot(hi, lo);
    if (this.#o.gate.lane === 'vehicle') this.#presenceCredential = true;
    this.#tap(hi, lo, this.#key);
  }

  #decide(hi: number, lo: number): Decision {
    const t = this.#o.time.read();
    const head = this.#o.head();
    const s = this.#tapState;
    s.now = t.now;
    s.clockTrusted = t.trusted;
    s.headIssuedAt = head?.issuedAt ?? 0;
    s.headExpires = head?.expires ?? 0;
    s.mode = this.mode;
    s.journalFull = this.#o.journal.isFull;
    return decide(hi, lo, this.#o.gate, s, this.#o.whitelist, this.#o.passback?.table ?? null, this.#decision);
  }

  #count(granted: boolean, reason: number): void {
    this.stats.taps++;
    if (granted) this.stats.granted++;
    else this.stats.denied++;
    this.stats.byReason[reason] = (this.stats.byReason[reason] ?? 0) + 1;
  }

  #tap(hi: number, lo: number, key: Uint8Array): void {
    const d = this.#decide(hi, lo);
    let granted = d.granted;
    let reason: ReasonCode = d.reason;
    // Refused because of the lane's own outstanding grants: the lamps keep showing them.
    let laneRefusal = false;
    if (granted && !this.#fire) {
      if (this.#faulted && this.#o.gate.line === 'second') {
        granted = false; // a faulted lane on the second line fails closed
        reason = Reason.lane_fault;
      } else if (this.#pendingIndex(hi, lo) >= 0) {
        // A repeat tap of a credential whose grant is not used yet: refused, never merged,
        // so the journal shows every tap and one grant gives one passage. With a passback
        // group this is a passage in the same direction not yet completed: passback.
        granted = false;
        reason = d.passbackGroup !== 0 ? Reason.passback_violation : Reason.already_pending;
        laneRefusal = true;
      } else if (this.#gCount >= MAX_OUTSTANDING_GRANTS) {
        granted = false;
        reason = Reason.lane_busy;
        laneRefusal = true;
      }
    }
    const seq = this.#journal(granted ? EventType.decision_granted : EventType.decision_denied, reason, d.level === LEVEL_EMERGENCY ? 0 : d.level, key);
    if (seq === 'full' && !this.#fire) {
      // No durable record: no passage. Journaling the refusal is impossible; count and signal.
      this.#count(false, Reason.journal_full);
      this.#signal(false);
      return;
    }
    this.#count(granted, reason);
    if (!granted) {
      if (!laneRefusal) this.#signal(false);
      return;
    }
    // Fire release: the lane is open and passages are not matched to grants.
    if (this.#fire) return this.#signal(true);
    this.#pushGrant(hi, lo, d.passbackGroup, 1);
    this.#openLane();
  }

  // ---- outstanding grants (fixed ring) ----

  #pendingIndex(hi: number, lo: number): number {
    for (let n = 0; n < this.#gCount; n++) {
      const i = (this.#gHead + n) % MAX_OUTSTANDING_GRANTS;
      if (this.#gKeyed[i] === 1 && this.#gHi[i] === hi && this.#gLo[i] === lo) return i;
    }
    return -1;
  }

  #pushGrant(hi: number, lo: number, group: number, keyed: number): void {
    invariant(this.#gCount < MAX_OUTSTANDING_GRANTS, 'a grant pushed beyond MAX_OUTSTANDING_GRANTS');
    const i = (this.#gHead + this.#gCount) % MAX_OUTSTANDING_GRANTS;
    this.#gHi[i] = hi >>> 0;
    this.#gLo[i] = lo >>> 0;
    this.#gGroup[i] = group;
    this.#gKeyed[i] = keyed;
    this.#gCount++;
  }

  /** Removes the oldest grant; returns its slot (valid until the next push). */
  #shiftGrant(): number {
    invariant(this.#gCount > 0, 'no outstanding grant to use');
    const i = this.#gHead;
    this.#gHead = (i + 1) % MAX_OUTSTANDING_GRANTS;
    this.#gCount--;
    return i;
  }

  // ---- goods lots ----

  #addToLot(hi: number, lo: number): void {
    if (this.#lot.length >= this.#t.goodsMaxTags) return;
    for (const t of this.#lot) if (t.hi === hi && t.lo === lo) return;
    this.#lot.push({ hi, lo, key: this.#key.slice() });
    if (this.#lotTimer === null) this.#lotTimer = this.#o.timers.set(() => this.#closeLot(), this.#t.goodsWindowMs);
  }

  #closeLot(): void {
    this.#lotTimer = null;
    const lot = this.#lot;
    this.#lot = [];
    let denyReason: ReasonCode | null = null;
    const decisions: { granted: boolean; reason: ReasonCode; level: number }[] = [];
    for (const t of lot) {
      const d = this.#decide(t.hi, t.lo);
      decisions.push({ granted: d.granted, reason: d.reason, level: d.level === LEVEL_EMERGENCY ? 0 : d.level });
      if (!d.granted && denyReason === null) denyReason = d.reason;
    }
    // Every tag's decision is journaled; then the lot's verdict.
    for (let i = 0; i < lot.length; i++) {
      const d = decisions[i] as { granted: boolean; reason: ReasonCode; level: number };
      const seq = this.#journal(d.granted ? EventType.decision_granted : EventType.decision_denied, d.reason, d.level, (lot[i] as { key: Uint8Array }).key);
      if (seq === 'full' && !this.#fire) {
        denyReason = Reason.journal_full;
        break;
      }
      this.#count(d.granted, d.reason);
    }
    if (denyReason === null && !this.#fire && this.#gCount >= MAX_OUTSTANDING_GRANTS) denyReason = Reason.lane_busy;
    if (denyReason !== null) {
      this.#journal(EventType.goods_lot_denied, denyReason, 0, null);
      return this.#signal(false);
    }
    if (this.#fire) return this.#signal(true);
    this.#pushGrant(0, 0, 0, 0);
    this.#openLane();
  }

  // ---- outputs ----

  #set(output: OutputName, on: boolean): void {
    if (!this.#o.outputs.set(output, on)) this.#fault(AlarmCode.relay_fault);
  }

  #signal(granted: boolean): void {
    this.#set(granted ? 'lampGreen' : 'lampRed', true);
    this.#set(granted ? 'lampRed' : 'lampGreen', false);
    if (!granted) this.#set('buzzer', true);
  }

  #openLane(): void {
    invariant(this.#gCount > 0, 'the lane opens only for an outstanding grant');
    this.#signal(true);
    this.#set(this.#o.gate.lane === 'vehicle' ? 'barrier' : 'relay', true);
    this.#open = true;
    // Only the oldest grant's timer runs: a later grant does not extend it.
    if (this.#passTimer === null) this.#armPassTimer();
  }

  /** Closes the lane; grants still outstanding (lockdown, end of fire release) were not taken. */
  #close(): void {
    if (this.#fire) return;
    while (this.#gCount > 0) this.#notTaken();
    this.#set(this.#o.gate.lane === 'vehicle' ? 'barrier' : 'relay', false);
    this.#set('lampGreen', false);
    this.#open = false;
    if (this.#passTimer !== null) this.#o.timers.clear(this.#passTimer);
    this.#passTimer = null;
  }

  #armPassTimer(): void {
    if (this.#passTimer !== null) this.#o.timers.clear(this.#passTimer);
    this.#passTimer = this.#o.timers.set(() => this.#passTimeout(), this.#t.passTimeoutMs);
  }

  /** The oldest grant's time ran out: it was not taken; the next one (if any) gets its full time. */
  #passTimeout(): void {
    this.#passTimer = null;
    if (this.#gCount > 0) this.#notTaken();
    if (this.#gCount > 0) this.#armPassTimer();
    else this.#close();
  }

  #notTaken(): void {
    this.#shiftGrant();
    this.stats.notTaken++;
    this.#journal(EventType.passage_not_taken, Reason.granted, 0, null);
  }

  // ---- inputs (supervision) ----

  #onInput(input: InputName, value: boolean, _atMs: number): void {
    switch (input) {
      case 'fire':
        if (value === this.#fire) return;
        this.#fire = value;
        if (value) this.#enterEmergency();
        else {
          this.#journal(EventType.fire_release, 0, 0, null);
          this.#close();
        }
        return;
      case 'rotation':
        if (value) {
          this.#passage();
          // Supervision: a sensor that never releases is stuck, not a stream of passages.
          if (this.#stuckTimer === null) {
            this.#stuckTimer = this.#o.timers.set(() => {
              this.#stuckTimer = null;
              if (this.#o.inputs.read('rotation')) this.#fault(AlarmCode.rotation_sensor_fault);
            }, this.#t.sensorStuckMs);
          }
        } else if (this.#stuckTimer !== null) {
          this.#o.timers.clear(this.#stuckTimer);
          this.#stuckTimer = null;
        }
        return;
      case 'presence':
        if (this.#o.gate.lane !== 'vehicle') return;
        if (value) {
          this.#presenceCredential = false;
          if (this.#presenceTimer !== null) this.#o.timers.clear(this.#presenceTimer);
          this.#presenceTimer = this.#o.timers.set(() => {
            this.#presenceTimer = null;
            if (!this.#presenceCredential && this.#o.inputs.read('presence')) this.#journal(EventType.vehicle_without_credential, 0, 0, null);
          }, this.#t.vehicleNoCredentialMs);
        } else {
          if (this.#presenceTimer !== null) this.#o.timers.clear(this.#presenceTimer);
          this.#presenceTimer = null;
          // The loop cleared: a vehicle went through if the barrier was up.
          if (this.#open) this.#passage();
        }
        return;
      case 'door':
        if (value) {
          if (this.#doorTimer === null) this.#doorTimer = this.#o.timers.set(() => {
            this.#doorTimer = null;
            if (this.#o.inputs.read('door')) this.#journal(EventType.door_held_open, 0, 0, null);
          }, this.#t.doorHeldMs);
        } else if (this.#doorTimer !== null) {
          this.#o.timers.clear(this.#doorTimer);
          this.#doorTimer = null;
        }
        return;
    }
  }

  #passage(): void {
    if (this.#fire) {
      this.stats.passages++;
      this.#journal(EventType.passage_completed, Reason.emergency_release, 0, null);
      return;
    }
    if (this.#gCount > 0) {
      const i = this.#shiftGrant();
      this.stats.passages++;
      this.#journal(EventType.passage_completed, Reason.granted, 0, null);
      // Anti-passback records passages, not grants (a pending grant is checked in #tap).
      const group = this.#gGroup[i] as number;
      if (this.#gKeyed[i] === 1 && group !== 0) this.#o.passback?.record(this.#gHi[i] as number, this.#gLo[i] as number, group, this.#o.gate.direction, this.#o.time.read().now);
      if (this.#gCount === 0) {
        this.#close();
        this.#closedAfterPassageMs = this.#o.clock.monotonicMs();
      } else this.#armPassTimer();
      return;
    }
    // More rotations than grants: while open, or just after the lane closed behind a passage
    // (the mechanism is still releasing), it is a second person on one grant.
    if (this.#open || this.#o.clock.monotonicMs() - this.#closedAfterPassageMs < this.#t.tailgateWindowMs) {
      this.stats.tailgating++;
      this.#journal(EventType.tailgating, 0, 0, null);
    } else {
      this.stats.forced++;
      this.#journal(EventType.forced_passage, 0, 0, null);
    }
  }

  #enterEmergency(): void {
    // Life safety first: open, then record best-effort.
    this.#o.outputs.set(this.#o.gate.lane === 'vehicle' ? 'barrier' : 'relay', true);
    this.#open = true;
    this.#journal(EventType.fire_release, 1, 0, null);
  }

  /** A lane fault: alarm once; on the second line the lane then fails closed (decisions become lane_fault). */
  #fault(code: number): void {
    if (this.#faulted) return;
    this.#faulted = true;
    this.#alarm(code);
  }

  /** Journals an alarm raised outside the lane (e.g. a refused message, key: its cause tag). */
  raiseAlarm(code: number, key: Uint8Array | null): number | 'full' {
    this.stats.alarms++;
    return this.#journal(EventType.alarm, code, 0, key);
  }

  #alarm(code: number): void {
    this.stats.alarms++;
    this.#journal(EventType.alarm, code, 0, null);
  }

  #journal(type: number, reason: number, level: number, key: Uint8Array | null): number | 'full' {
    const r = this.#rec;
    const t = this.#o.time.read();
    r.time = t.now >>> 0;
    r.clockUntrusted = !t.trusted;
    r.type = type;
    r.reason = reason;
    r.level = level;
    for (let i = 0; i < 8; i++) r.key[i] = key === null ? 0 : (key[i] as number);
    const seq = this.#o.journal.append(r);
    if (seq === 'full') this.stats.journalFull++; // every record that could not be journaled
    this.#o.onEvent?.(r, seq);
    return seq;
  }
}

/** An invariant of the lane state machine; breaking it is a bug, never an input. */
function invariant(ok: boolean, what: string): void {
  if (!ok) throw new Error(`gate-controller: invariant broken: ${what}`);
}
