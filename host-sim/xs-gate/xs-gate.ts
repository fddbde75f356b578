// A whole gate on the real XS engine: firmware/moddable/main.ts, unchanged,
// bundled with a simulated ECMA-419 provider (bundle.ts, guest/) and run in
// an xsnap worker (host-sim/xs/xs-worker.ts). This class is the gate's
// outside world on the Node side:
//
//   - the provisioning partition (framed as provisioning-image.ts expects)
//     and the data partition (blank, saved, or a snapshot) go in at boot;
//     snapshot() takes the flash back out, kill() is a power cut (snapshot,
//     then the worker is killed and its MQTT connections dropped without
//     DISCONNECT), powerCycle() boots a new worker from that snapshot;
//   - time: the device's clock is virtual and moves only with advance(ms)
//     (startRealtime() calls it every ~15 ms with the real time elapsed;
//     tests call it as fast as they like);
//   - the network: one MQTT.js connection per MQTT client the firmware opens
//     (mqtt-bridge.ts), Wi-Fi and SNTP simulated in the guest;
//   - the lane: inputs by name (rotation, door, presence, fire) turned into
//     pin levels with the wiring of the config; outputs (relay, barrier,
//     lamps, buzzer) read back from pin writes; a reader on the configured
//     UART fed with EM4100, M100 (UHF) or Wiegand-UART frames.
//
// Bridge: Node -> guest events are batched into the next advance command;
// guest -> Node operations come back in its reply (protocol.ts).

import { gateBrokerAuth } from '../broker-auth.js';
import { performance } from 'node:perf_hooks';
import { encodeProvisioningImage } from '../../firmware/moddable/provisioning-image.js';
import type { InputName, OutputName } from '../../firmware/ports.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { XsWorker, type XsMeter } from '../xs/xs-worker.js';
import { bundleXsGate } from './bundle.js';
import { levelFor, manifestConfig, mergeConfig, partitionTable, settingsOf, wiringOf, type ConfigObject, type Wiring } from './config.js';
import { decodeFrame, encodeFrame } from './frame.js';
import { MqttBridge, type MqttBridgeStats, type Pending, type XsGateNetwork } from './mqtt-bridge.js';
import type { GuestStatus, InEvent, OutOp, PinWrite, Reply, Request, TapProbe, UartWrite } from './protocol.js';
import { em4100Frame, uhfFrame, wiegandFrame } from './reader-frames.js';

export interface XsGateOptions {
  /** The gate's identity: a record (framed and written to the provisioning partition), or the partition's raw bytes (to test bad ones). */
  readonly provisioning: ProvisioningRecord | Uint8Array;
  /** The provisioning partition's bytes as a snapshot left them (record and format counter), instead of a fresh one framed from `provisioning`. */
  readonly provisionPartition?: Uint8Array;
  /** Where the MQTT bridge connects (default: the host:port the firmware asks for, i.e. the record's broker). */
  readonly brokerUrl?: string;
  /** Initial data partition bytes (a saved flash or a snapshot); default erased. */
  readonly data?: Uint8Array;
  /** Seeds Math.random in the guest and the flash's torn-write PRNG (default 1). */
  readonly seed?: number;
  /** Overrides merged into manifest.json's `config` (default adds wifi_ssid "sim-net": the gate is on a network). */
  readonly config?: ConfigObject;
  /** Partition sizes (default: the manifest's partition table: provision 64 KiB, gatedata 8 MiB). */
  readonly partitionBytes?: { readonly provision?: number; readonly data?: number };
  /** Network (SNTP) time at boot, UTC seconds, or a function read at each boot (default: now). */
  readonly ntpSeconds?: number | (() => number);
  /**
   * The gate's network instead of MQTT.js over sockets (MqttBridge): the
   * deterministic simulation's broker (host-sim/simulation/sim-mqtt-bridge.ts).
   * Called at each boot with where the bridge's events go.
   */
  readonly network?: (onEvent: (p: Pending) => void) => XsGateNetwork;
  /** Every advance reports what the journal made durable since the last (AdvanceResult.journaled). */
  readonly watchJournal?: boolean;
  /** What is queued for the device arrives at the end of each advance (after the timers due until then), not at its start (lockstep: it happened now). */
  readonly inputsAtEnd?: boolean;
  /** Every advance's result, start()'s own included, before advance() resolves. */
  readonly onAdvance?: (r: AdvanceResult) => void;
  /** The device's wall clock at boot before SNTP, UTC seconds (default 0: no battery RTC). */
  readonly rtcSeconds?: number;
  /** Wi-Fi reachable at boot (default true). */
  readonly wifi?: boolean;
  /** Inputs active at power-up (e.g. { fire: true }). */
  readonly inputs?: Partial<Record<InputName, boolean>>;
  /** Outputs whose driver fails from power-up. */
  readonly faultyOutputs?: readonly OutputName[];
  readonly name?: string;
  /** Every console line (trace) of the firmware. */
  readonly onLog?: (line: string) => void;
  /** Console lines kept in `lines` (default 2000). */
  readonly keepLines?: number;
  /** A UHF tap keeps the tag in the simulated reader's field this long (default 1000 ms). */
  readonly tagDwellMs?: number;
}

export type XsTapKind = 'card' | 'uhf';

export interface XsGateStatus extends GuestStatus {
  readonly id: string;
  readonly kind: 'xs';
  /** The worker is alive (not killed, not crashed). */
  readonly alive: boolean;
  readonly outputs: Readonly<Record<OutputName, boolean>>;
}

export interface AdvanceResult {
  readonly status: XsGateStatus;
  readonly pins: readonly PinWrite[];
  readonly uartIn: readonly number[];
  readonly meter: XsMeter;
  /** Decision inputs read as probed credentials arrived (tap(..., { probe: true })). */
  readonly probes: readonly TapProbe[];
  /** With watchJournal: the records journaled since the last advance, read back from flash (ranges in seq order, 16 bytes a record from seq `first`). */
  readonly journaled: readonly { readonly epoch: number; readonly first: number; readonly count: number; readonly records: Uint8Array }[];
}

const OUTPUT_NAMES: readonly OutputName[] = ['relay', 'barrier', 'lampGreen', 'lampRed', 'buzzer'];
const EMPTY_STATUS: GuestStatus = {
  started: false, running: false, refused: null, faults: [], online: false, listEpoch: 0, version: 0, headIssuedAt: 0, syncRejected: {}, syncRequests: 0, taps: 0, granted: 0, denied: 0, byReason: [], passages: 0, alarms: 0,
  journal: { epoch: 0, lastSeq: 0, acked: 0, backlog: 0 }, boot: 0, clockTrusted: false, timeSet: null, nowMs: 0, poweredOff: false,
  mode: '', journalCapacity: 0, journalFull: false, timers: 0, nextDueMs: null,
};

/** An event for the guest; `payload` goes as a blob and the event gets its index as `blob`. */
type QueuedEvent = { readonly event: { readonly ev: string } & Readonly<Record<string, unknown>>; readonly payload?: Uint8Array };

export class XsGate {
  readonly id: string;
  readonly config: ConfigObject;
  readonly wiring: Wiring;
  /** Console lines of the firmware (the last keepLines). */
  readonly lines: string[] = [];
  /** What the firmware wrote to its UARTs (the last 4096 writes), e.g. the UHF reader's inventory polls. */
  readonly uartWrites: UartWrite[] = [];
  readonly outputs: Record<OutputName, boolean> = { relay: false, barrier: false, lampGreen: false, lampRed: false, buzzer: false };
  /** Logical input values as last driven. */
  readonly inputs: Record<InputName, boolean> = { rotation: false, door: false, presence: false, fire: false };
  /** Boots of this object (1 after start(), +1 per powerCycle()). */
  boots = 0;
  lastMeter: XsMeter | null = null;
  readonly #o: XsGateOptions;
  readonly #sizes: { provision: number; data: number };
  readonly #partNames: { provision: string; data: string };
  readonly #pinToOutput = new Map<number, OutputName>();
  #worker: XsWorker | null = null;
  #bridge: XsGateNetwork | null = null;
  #queue: QueuedEvent[] = [];
  #status: GuestStatus = EMPTY_STATUS;
  #data: Uint8Array | undefined;
  #provision: Uint8Array | undefined;
  #faulty = new Set<OutputName>();
  #realtime: { stop: boolean; done: Promise<void> } | null = null;
  #bridgeStats: MqttBridgeStats = { connects: 0, lost: 0, publishes: 0, messages: 0 };
  #advancesStarted = 0;
  #advancesDone = 0;
  #waiters: { readonly target: number; readonly resolve: () => void }[] = [];

  constructor(options: XsGateOptions) {
    this.#o = options;
    this.config = mergeConfig(manifestConfig(), { wifi_ssid: 'sim-net', ...options.config });
    const settings = settingsOf(this.config);
    this.wiring = wiringOf(settings);
    for (const [name, w] of Object.entries(this.wiring.outputs)) if (w !== undefined) this.#pinToOutput.set(w.pin, name as OutputName);
    const table = partitionTable();
    this.#partNames = { provision: settings.partitions.provisioning, data: settings.partitions.data };
    this.#sizes = {
      provision: options.partitionBytes?.provision ?? table.get(settings.partitions.provisioning) ?? 0x10000,
      data: options.partitionBytes?.data ?? table.get(settings.partitions.data) ?? 0x800000,
    };
    this.id = options.name ?? (options.provisioning instanceof Uint8Array ? 'xs-gate' : options.provisioning.gate);
    this.#data = options.data;
    this.#provision = options.provisionPartition;
    for (const o of options.faultyOutputs ?? []) this.#faulty.add(o);
    for (const [k, v] of Object.entries(options.inputs ?? {})) this.inputs[k as InputName] = v === true;
  }

  // ---------------------------------------------------------------- life cycle

  /** Boots the device: a worker, the bundle, the partitions, main(). Resolves once main() returned and due timers ran. */
  async start(): Promise<XsGateStatus> {
    if (this.#worker !== null) throw new Error(`${this.id}: already started`);
    const script = await bundleXsGate();
    const worker = await XsWorker.start({ name: `xs-gate-${this.id}`, onPrint: (l) => this.#line(`[print] ${l}`) });
    this.#worker = worker;
    this.boots++;
    this.#queue = [];
    this.#status = EMPTY_STATUS;
    for (const k of OUTPUT_NAMES) this.outputs[k] = false;
    const rec = this.#o.provisioning;
    const auth = rec instanceof Uint8Array ? undefined : gateBrokerAuth(rec); // raw record bytes (tests of bad records): no identity
    const onEvent = (p: Pending): void => void this.#queue.push(p);
    this.#bridge = this.#o.network !== undefined ? this.#o.network(onEvent) : new MqttBridge({ ...(this.#o.brokerUrl !== undefined ? { brokerUrl: this.#o.brokerUrl } : {}), ...(auth !== undefined ? { brokerAuth: auth } : {}), onEvent });
    await worker.evaluate(script);
    const partitions: { name: string; size: number; blob?: number }[] = [];
    const blobs: Uint8Array[] = [];
    const provision = this.#provisionBytes();
    blobs.push(provision);
    partitions.push({ name: this.#partNames.provision, size: this.#sizes.provision, blob: 0 });
    if (this.#data !== undefined) {
      if (this.#data.length !== this.#sizes.data) throw new Error(`${this.id}: data partition bytes are ${this.#data.length}, the partition is ${this.#sizes.data}`);
      blobs.push(this.#data);
      partitions.push({ name: this.#partNames.data, size: this.#sizes.data, blob: 1 });
    } else partitions.push({ name: this.#partNames.data, size: this.#sizes.data });
    const pins: { pin: number; level: 0 | 1 }[] = [];
    for (const [name, w] of Object.entries(this.wiring.inputs)) if (w !== undefined) pins.push({ pin: w.pin, level: levelFor(w.activeLow, this.inputs[name as InputName]) });
    const faults = [...this.#faulty].flatMap((o) => {
      const w = this.wiring.outputs[o];
      return w === undefined ? [] : [w.pin];
    });
    await this.#command(
      {
        op: 'init', config: this.config, partitions, rtcMs: (this.#o.rtcSeconds ?? 0) * 1000, ntpMs: (typeof this.#o.ntpSeconds === 'function' ? this.#o.ntpSeconds() : (this.#o.ntpSeconds ?? Date.now() / 1000)) * 1000,
        seed: ((this.#o.seed ?? 1) * 7919 + this.boots) >>> 0, pins, faults, wifi: this.#o.wifi !== false,
      },
      blobs,
    );
    await this.#command({ op: 'start' });
    await this.advance(0);
    return this.status();
  }

  /** A power cut: the flash as it is now, the worker killed, its connections dropped (the broker sends the will). Returns the data partition. */
  async kill(): Promise<Uint8Array | undefined> {
    await this.stopRealtime();
    const w = this.#worker;
    if (w === null) return this.#data;
    try {
      this.#data = await this.snapshot();
      // The format counter lives there: it survives power cycles (and data wipes) as on the device.
      this.#provision = await this.snapshot('provision');
    } catch {
      // the worker died: keep the last snapshot we had
    }
    this.#bridgeStats = this.#bridge?.stats ?? this.#bridgeStats;
    this.#bridge?.closeAll();
    this.#bridge = null;
    this.#worker = null;
    this.#wake(true);
    await w.close();
    return this.#data;
  }

  /** While stopped: the next start() finds the data partition erased; the provisioning partition (record, format counter) is kept. */
  wipeData(): void {
    if (this.#worker !== null) throw new Error(`${this.id}: stop the gate before wiping its data partition`);
    this.#data = undefined;
  }

  /** Power cut, then boot again from the flash as the cut left it. */
  async powerCycle(): Promise<XsGateStatus> {
    await this.kill();
    return this.start();
  }

  /** Stops the device (as kill(), without keeping anything more than kill() does). */
  async close(): Promise<void> {
    await this.kill();
  }

  // ---------------------------------------------------------------- time

  /** Delivers what is queued, then runs the device's timers for `ms` of virtual time. */
  async advance(ms: number): Promise<AdvanceResult> {
    const events: InEvent[] = [];
    const blobs: Uint8Array[] = [];
    for (const q of this.#queue) {
      if (q.payload !== undefined) {
        blobs.push(q.payload);
        events.push({ ...q.event, blob: blobs.length - 1 } as InEvent);
      } else events.push(q.event as InEvent);
    }
    this.#queue = [];
    this.#advancesStarted++;
    try {
      const r = await this.#command({ op: 'advance', ms, events, ...(this.#o.watchJournal === true ? { watch: true } : {}), ...(this.#o.inputsAtEnd === true ? { inputsAtEnd: true } : {}) }, blobs);
      const journaled = (r.reply.journaled ?? []).flatMap((j) => {
        const records = r.blobs[j.blob];
        return records === undefined ? [] : [{ epoch: j.epoch, first: j.first, count: j.count, records }];
      });
      const result: AdvanceResult = { status: this.status(), pins: r.reply.pins, uartIn: r.reply.uartIn, meter: r.meter, probes: r.reply.probes, journaled };
      this.#o.onAdvance?.(result);
      return result;
    } finally {
      this.#advancesDone++;
      this.#wake(false);
    }
  }

  /** Resolves once an advance that starts after this call has run (what was queued before it has then reached the device). */
  settled(): Promise<void> {
    if (this.#worker === null) return Promise.resolve();
    const target = this.#advancesStarted + 1;
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }

  #wake(all: boolean): void {
    const keep: { readonly target: number; readonly resolve: () => void }[] = [];
    for (const w of this.#waiters) if (all || w.target <= this.#advancesDone) w.resolve();
    else keep.push(w);
    this.#waiters = keep;
  }

  /** Advances in steps of `stepMs`, yielding to Node's event loop between steps (network I/O), until `cond` or the timeout (real ms). */
  async runUntil(what: string, cond: (s: XsGateStatus) => boolean, o: { timeoutMs?: number; stepMs?: number; realMsPerStep?: number } = {}): Promise<XsGateStatus> {
    const end = Date.now() + (o.timeoutMs ?? 15000);
    for (;;) {
      const s = this.status();
      if (cond(s)) return s;
      if (Date.now() > end) throw new Error(`${this.id}: timed out waiting for ${what} (${JSON.stringify({ online: s.online, version: s.version, journal: s.journal, refused: s.refused, faults: s.faults })})`);
      await this.advance(o.stepMs ?? 20);
      await new Promise((r) => setTimeout(r, o.realMsPerStep ?? 2));
    }
  }

  /** Advances with real time, every periodMs (default 15), until stopRealtime(). */
  startRealtime(periodMs = 15, maxStepMs = 250): void {
    if (this.#realtime !== null) return;
    const state = { stop: false, done: Promise.resolve() };
    state.done = (async () => {
      let last = performance.now();
      let carry = 0;
      while (!state.stop && this.#worker !== null) {
        const now = performance.now();
        carry += now - last;
        last = now;
        const ms = Math.min(maxStepMs, Math.floor(carry));
        carry = Math.min(carry - ms, maxStepMs);
        try {
          await this.advance(ms);
        } catch (e) {
          this.#line(`[sim] advance failed: ${e instanceof Error ? e.message : String(e)}`);
          break;
        }
        await new Promise((r) => setTimeout(r, periodMs));
      }
    })();
    this.#realtime = state;
  }

  async stopRealtime(): Promise<void> {
    const r = this.#realtime;
    if (r === null) return;
    r.stop = true;
    this.#realtime = null;
    await r.done;
  }

  // ---------------------------------------------------------------- the lane

  /**
   * A credential presented to the reader (delivered with the next advance). A
   * card reader sends its frame at once; a UHF tag enters the simulated M100's
   * field for tagDwellMs and is reported only in answer to the firmware's polls.
   */
  tap(rawId: Uint8Array, kind: XsTapKind = 'card', delayMs = 0, o: { readonly probe?: boolean } = {}): void {
    if (kind === 'uhf') {
      this.frameFor(rawId, kind); // checks the reader kind and that the EPC fits a frame
      this.#queue.push({ event: { ev: 'tag', port: this.wiring.reader.port, dwellMs: this.#o.tagDwellMs ?? 1000, ...(delayMs > 0 ? { delayMs } : {}) }, payload: rawId });
      return;
    }
    if (o.probe === true) this.#queue.push({ event: { ev: 'uart', port: this.wiring.reader.port, probe: true, ...(delayMs > 0 ? { delayMs } : {}) }, payload: this.frameFor(rawId, kind) });
    else this.feedReader(this.frameFor(rawId, kind), delayMs);
  }

  /** The bytes the configured reader sends for a credential. */
  frameFor(rawId: Uint8Array, kind: XsTapKind = 'card'): Uint8Array {
    const r = this.wiring.reader.kind;
    if (kind === 'uhf') {
      if (r !== 'uhf') throw new Error(`${this.id}: a UHF tag needs subline.reader.kind "uhf" (this gate has "${r}")`);
      return uhfFrame(rawId);
    }
    if (r === 'em4100') return em4100Frame(rawId);
    if (r === 'wiegand') return wiegandFrame(rawId);
    throw new Error(`${this.id}: a card needs an em4100 or wiegand reader (this gate has "${r}")`);
  }

  /** Raw bytes on the reader's RX line (noise, partial frames, anything). */
  feedReader(bytes: Uint8Array, delayMs = 0): void {
    this.#queue.push({ event: { ev: 'uart', port: this.wiring.reader.port, ...(delayMs > 0 ? { delayMs } : {}) }, payload: bytes });
  }

  /** Drives an input (by name, with the config's wiring), `delayMs` into the next advance. */
  setInput(input: InputName, value: boolean, delayMs = 0): void {
    const w = this.wiring.inputs[input];
    if (w === undefined) throw new Error(`${this.id}: input ${input} is not wired (subline.inputs.${input})`);
    this.inputs[input] = value;
    this.#queue.push({ event: { ev: 'pin', pin: w.pin, level: levelFor(w.activeLow, value), ...(delayMs > 0 ? { delayMs } : {}) } });
  }

  /** The input active for holdMs, then idle again (default: long enough for the debounce to see it). */
  pulse(input: InputName, holdMs?: number, delayMs = 0): void {
    const w = this.wiring.inputs[input];
    if (w === undefined) throw new Error(`${this.id}: input ${input} is not wired (subline.inputs.${input})`);
    const hold = holdMs ?? w.debounceMs * 2 + 10;
    this.setInput(input, true, delayMs);
    this.setInput(input, false, delayMs + hold);
  }

  /** Makes an output's driver fail (writes throw) or work again. */
  setOutputFault(output: OutputName, on: boolean): void {
    const w = this.wiring.outputs[output];
    if (w === undefined) throw new Error(`${this.id}: output ${output} is not wired`);
    if (on) this.#faulty.add(output);
    else this.#faulty.delete(output);
    this.#queue.push({ event: { ev: 'fault', pin: w.pin, on } });
  }

  /** Wi-Fi reachable or not (the station loses its IP; the firmware's MQTT client then fails to connect). */
  setWifi(up: boolean): void {
    this.#queue.push({ event: { ev: 'wifi', up } });
  }

  // ---------------------------------------------------------------- state

  status(): XsGateStatus {
    return { ...this.#status, id: this.id, kind: 'xs', alive: this.#worker !== null, outputs: { ...this.outputs } };
  }

  /** MQTT connections the bridge holds for this gate now. */
  get openConnections(): number {
    return this.#bridge?.open ?? 0;
  }

  get bridgeStats(): MqttBridgeStats {
    return this.#bridge?.stats ?? this.#bridgeStats;
  }

  /** A copy of a partition as it is now ('data' = the data partition, 'provision' = the provisioning one). */
  async snapshot(which: 'data' | 'provision' = 'data'): Promise<Uint8Array> {
    const r = await this.#command({ op: 'snapshot', partition: which === 'data' ? this.#partNames.data : this.#partNames.provision });
    const v = r.reply.value as { blob: number };
    const b = r.blobs[v.blob];
    if (b === undefined) throw new Error(`${this.id}: snapshot without bytes`);
    return b.slice();
  }

  /** Arms a power cut inside the flash model: the n-th next write/erase of the data (or provisioning) partition is torn and everything after fails. */
  async armPowerCut(afterOps: number, mode: 'write' | 'erase' | 'any' = 'any', which: 'data' | 'provision' = 'data'): Promise<void> {
    await this.#command({ op: 'cut', partition: which === 'data' ? this.#partNames.data : this.#partNames.provision, afterOps, mode });
  }

  /**
   * Evaluates a script in the running worker (a classic script: main.ts's
   * `running` is globalThis.sublineRunning). For tests that patch a bug into
   * the running firmware; nothing else crosses this way.
   */
  async evaluate(script: string): Promise<void> {
    const w = this.#worker;
    if (w === null) throw new Error(`${this.id}: the XS gate is not running`);
    await w.evaluate(script);
  }

  /** Collects garbage in the worker; the meter's currentHeapCount is then the live slots. */
  async gc(): Promise<XsMeter> {
    return (await this.#command({ op: 'gc' })).meter;
  }

  /** What the guest can attribute of chunk memory (see bench/xs-gate.ts). */
  async memory(): Promise<{ overlayRamBytes: number; passbackTableBytes: number; flashBytes: number; meter: XsMeter }> {
    const r = await this.#command({ op: 'memory' });
    return { ...(r.reply.value as { overlayRamBytes: number; passbackTableBytes: number; flashBytes: number }), meter: r.meter };
  }

  // ---------------------------------------------------------------- internals

  #provisionBytes(): Uint8Array {
    if (this.#provision !== undefined) {
      if (this.#provision.length !== this.#sizes.provision) throw new Error(`${this.id}: provisioning partition bytes are ${this.#provision.length}, the partition is ${this.#sizes.provision}`);
      return this.#provision;
    }
    const p = this.#o.provisioning;
    const part = new Uint8Array(this.#sizes.provision).fill(0xff);
    const image = p instanceof Uint8Array ? p : encodeProvisioningImage(p);
    if (image.length > part.length) throw new Error(`${this.id}: provisioning image of ${image.length} bytes is larger than the partition`);
    part.set(image);
    return part;
  }

  async #command(req: Request, blobs: readonly Uint8Array[] = []): Promise<{ reply: Reply; blobs: Uint8Array[]; meter: XsMeter }> {
    const w = this.#worker;
    if (w === null) throw new Error(`${this.id}: the XS gate is not running`);
    const r = await w.command(encodeFrame(req as unknown as Record<string, unknown>, blobs));
    const { header, blobs: out } = decodeFrame<Reply>(r.reply);
    this.lastMeter = r.meter;
    this.#absorb(header, out);
    if (!header.ok) throw new Error(`${this.id}: guest refused ${req.op}: ${header.error ?? 'unknown error'}`);
    return { reply: header, blobs: out, meter: r.meter };
  }

  #absorb(reply: Reply, blobs: readonly Uint8Array[]): void {
    this.#status = reply.status;
    for (const line of reply.lines) this.#line(line);
    for (const w of reply.uartOut) this.uartWrites.push(w);
    if (this.uartWrites.length > 4096) this.uartWrites.splice(0, this.uartWrites.length - 4096);
    for (const p of reply.pins) {
      const name = this.#pinToOutput.get(p.pin);
      const w = name === undefined ? undefined : this.wiring.outputs[name];
      if (name !== undefined && w !== undefined) this.outputs[name] = (p.level === 1) !== w.activeLow;
    }
    const bridge = this.#bridge;
    if (bridge !== null) for (const op of reply.ops as OutOp[]) bridge.handle(op, blobs);
  }

  #line(line: string): void {
    this.lines.push(line);
    const keep = this.#o.keepLines ?? 2000;
    if (this.lines.length > keep) this.lines.splice(0, this.lines.length - keep);
    this.#o.onLog?.(line);
  }
}
