// The simulated ECMA-419 / Moddable provider inside the XS worker: one gate's
// "hardware" (virtual clock and timers, pins, UARTs, flash partitions, the
// network), and the command channel XsGate (../xs-gate.ts) drives it through.
// The module shims next to this file ('timer', 'time', 'flash',
// 'embedded:provider/builtin', 'embedded:network/mqtt/client', ...) are thin
// views of the state kept here. Nothing in it is Node: it runs in XS only.
//
// Time: nothing moves unless Node says so. `advance(ms)` first delivers the
// batched outside events (at the current virtual time, or `delayMs` later),
// then runs every timer due up to now + ms in time order (ties: creation
// order). A callback that throws is recorded as a fault (on a device it would
// reach the debugger or abort) and the loop goes on.

import { BlobList, decodeFrame, encodeFrame, toArrayBuffer } from '../frame.js';
import type { GuestStatus, InEvent, InitRequest, JournalRead, OutOp, PinWrite, Reply, Request, TapProbe, UartWrite } from '../protocol.js';
import { SimUhfReader } from '../../sim-uhf-reader.js';
import { mulberry32, NorFlash } from '../../flash/nor-flash.js';
import { RECORD_BYTES } from '../../../protocol/event-record.js';

declare const globalThis: {
  handleCommand?: (request: ArrayBuffer) => ArrayBuffer;
  /** main.ts's `running` (gate, settings, poller), for scripts Node evaluates in the worker (XsGate.evaluate: tests inject faults). */
  sublineRunning?: { gate?: unknown };
  trace?: (...args: unknown[]) => void;
  gc?: () => void;
  performance?: { now(): number };
};

const perfNow = (): number => globalThis.performance?.now() ?? 0;

// ---------------------------------------------------------------- time

/** One scheduled callback: a Moddable Timer, or an internal delivery. */
export class VTimer {
  at = 0;
  /** 0: once. */
  interval = 0;
  live = false;
  seq = 0;
  constructor(public callback: (t: VTimer) => void, readonly label: string) {}
}

class Clock {
  now = 0;
  /** Wall clock: Date.now() = wallMs + (now - wallAt). */
  wallMs = 0;
  wallAt = 0;
  timeSet: { atMs: number; seconds: number } | null = null;
  #seq = 0;
  readonly #queue: VTimer[] = [];

  schedule(t: VTimer, delayMs: number, interval = 0): VTimer {
    if (!t.live) this.#queue.push(t);
    t.at = this.now + Math.max(0, Number.isFinite(delayMs) ? delayMs : 0);
    t.interval = interval > 0 ? Math.max(1, interval) : 0;
    t.seq = ++this.#seq;
    t.live = true;
    return t;
  }

  cancel(t: VTimer): void {
    if (!t.live) return;
    t.live = false;
    const i = this.#queue.indexOf(t);
    if (i >= 0) this.#queue.splice(i, 1);
  }

  /** Runs everything due up to now + ms. */
  advance(ms: number): void {
    const end = this.now + Math.max(0, ms);
    for (let guard = 0; ; guard++) {
      if (guard > 2_000_000) {
        fault('timer loop: more than 2,000,000 callbacks in one advance');
        break;
      }
      let next: VTimer | undefined;
      for (const t of this.#queue) if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      if (next.at > this.now) this.now = next.at;
      if (next.interval > 0) {
        next.at += next.interval;
        next.seq = ++this.#seq;
      } else this.cancel(next);
      run(next.label, () => next.callback(next));
      collect();
      // The power went at a flash operation: a dead device runs nothing more.
      if (dataPartition()?.poweredOff === true) break;
    }
    if (end > this.now) this.now = end;
  }

  /** Timers waiting. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Virtual ms of the next timer due, or null. */
  nextDue(): number | null {
    let at: number | null = null;
    for (const t of this.#queue) if (at === null || t.at < at) at = t.at;
    return at;
  }

  wallNow(): number {
    return this.wallMs + (this.now - this.wallAt);
  }

  setWall(seconds: number): void {
    this.wallMs = seconds * 1000;
    this.wallAt = this.now;
    this.timeSet = { atMs: this.now, seconds };
  }

  /** Moddable's Time.ticks: ms since boot as a signed 32-bit integer. */
  get ticks(): number {
    return this.now | 0;
  }
}

export const clock = new Clock();

/** Runs `f` as the event loop would, on the next turn (at the current virtual time + delayMs). */
export function later(label: string, f: () => void, delayMs = 0): VTimer {
  return clock.schedule(new VTimer(() => f(), label), delayMs);
}

// ---------------------------------------------------------------- output collected per command

const out = {
  ops: [] as OutOp[],
  blobs: new BlobList(),
  pins: [] as PinWrite[],
  uartIn: [] as number[],
  uartOut: [] as UartWrite[],
  lines: [] as string[],
  probes: [] as TapProbe[],
};
const faults: string[] = [];
let partialLine = '';
let refused: string | null = null;

export function fault(what: string): void {
  if (faults.length < 64) faults.push(what);
  out.lines.push(`[sim] fault: ${what}`);
}

export function run(label: string, f: () => void): void {
  try {
    f();
  } catch (e) {
    fault(`${label}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

/** Moddable's global trace(): arguments concatenated, lines split on "\n". */
function trace(...args: unknown[]): void {
  partialLine += args.map((a) => String(a)).join('');
  for (;;) {
    const nl = partialLine.indexOf('\n');
    if (nl < 0) break;
    const line = partialLine.slice(0, nl);
    partialLine = partialLine.slice(nl + 1);
    out.lines.push(line);
    const m = /^subline: NOT RUNNING: (.*)$/.exec(line);
    if (m !== null) refused = m[1] ?? '';
  }
}
globalThis.trace = trace;

export function emit(op: OutOp): void {
  out.ops.push(op);
}
export function blob(bytes: Uint8Array): number {
  return out.blobs.add(bytes);
}

// ---------------------------------------------------------------- pins

export interface PinOwner {
  /** The level on the wire changed (inputs only). */
  levelChanged?(from: 0 | 1, to: 0 | 1): void;
}

export interface Pin {
  level: 0 | 1;
  /** Writes throw (a driver fault). */
  fault: boolean;
  owner: PinOwner | null;
  output: boolean;
}

export const pins = new Map<number, Pin>();

export function pin(n: number): Pin {
  let p = pins.get(n);
  if (p === undefined) {
    p = { level: 0, fault: false, owner: null, output: false };
    pins.set(n, p);
  }
  return p;
}

export function recordPinWrite(n: number, level: 0 | 1): void {
  const g = gate();
  out.pins.push({ pin: n, level, atMs: clock.now, perf: perfNow(), seq: g?.journal.lastSeq ?? 0, mode: g?.controller.mode ?? '' });
}

function driveInput(n: number, level: 0 | 1): void {
  const p = pin(n);
  if (p.output) return; // an output drives its own pin
  const from = p.level;
  p.level = level;
  if (from !== level) p.owner?.levelChanged?.(from, level);
}

// ---------------------------------------------------------------- UARTs

export interface UartOwner {
  received(): void;
}

export interface Uart {
  rx: number[];
  owner: UartOwner | null;
  /** The simulated UHF reader on this UART (config reader kind "uhf"): answers the firmware's polls only. */
  reader: SimUhfReader | null;
}

/** The reader's answer reaches the RX FIFO this long after the poll (an M100 single inventory takes some ms). */
const READER_ANSWER_MS = 5;

export const uarts = new Map<number, Uart>();

export function uart(port: number): Uart {
  let u = uarts.get(port);
  if (u === undefined) {
    u = { rx: [], owner: null, reader: null };
    uarts.set(port, u);
  }
  return u;
}

function uhfReader(port: number): SimUhfReader {
  const u = uart(port);
  u.reader ??= new SimUhfReader((bytes) => {
    later('uhf reader answer', () => receive(port, bytes), READER_ANSWER_MS);
  });
  return u.reader;
}

/** Bytes the firmware wrote to a UART (Serial.write): recorded for Node, and heard by the simulated reader. */
export function transmit(port: number, bytes: Uint8Array): void {
  if (out.uartOut.length < 4096) out.uartOut.push({ port, atMs: clock.now, hex: Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('') });
  uart(port).reader?.write(bytes, clock.now);
}

function receive(port: number, bytes: Uint8Array): void {
  const u = uart(port);
  if (u.owner === null) return; // nobody opened the port: the bytes are lost, as on the wire
  for (const b of bytes) u.rx.push(b);
  out.uartIn.push(perfNow());
  u.owner.received();
}

// ---------------------------------------------------------------- flash

export const partitions = new Map<string, NorFlash>();

// ---------------------------------------------------------------- network

export interface NetClient {
  deliver(e: InEvent, blobs: readonly Uint8Array[]): void;
}

export const net = {
  wifiUp: true,
  nextConn: 1,
  nextReq: 1,
  clients: new Map<number, NetClient>(),
  resolves: new Map<number, (address: string | null) => void>(),
  wifiListeners: new Set<(up: boolean) => void>(),
  /** Network time at virtual 0, ms since 1970. */
  ntpMs: 0,
};

// ---------------------------------------------------------------- config (the `mc/config` module's object)

export const config: Record<string, unknown> = {};

// ---------------------------------------------------------------- the running firmware

/** The parts of main.ts's `running` the status reads (structural: no firmware imports here). */
interface RunningGate {
  readonly sync: { readonly connected: boolean; readonly stats: { readonly rejected: Record<string, number>; readonly requests: number } };
  readonly store: { readonly epoch: number; readonly version: number; readonly head: { readonly issuedAt: number; readonly expires: number } | null; readonly whitelist: { readonly overlay: { readonly ramBytes: number } } };
  readonly controller: { readonly mode: string; readonly stats: { taps: number; granted: number; denied: number; byReason: number[]; passages: number; alarms: number } };
  readonly journal: {
    readonly epoch: number;
    readonly lastSeq: number;
    readonly acked: number;
    readonly backlog: number;
    readonly isFull: boolean;
    readonly capacityEvents: number;
    readBatch(fromSeq: number, maxCount: number, out: Uint8Array): { first: number; count: number };
  };
  readonly state: { readonly boot: number };
  readonly passback: { readonly table: { readonly capacity: number } };
  readonly time: { read(): { now: number; trusted: boolean } };
}


/** The records a watched advance has already reported (epoch, highest seq). */
const watched = { epoch: -1, seq: 0 };

/** What the journal holds above the last report (and above its acknowledgement: freed records cannot be read back). */
function readJournaled(): JournalRead | undefined {
  const j = gate()?.journal;
  if (j === undefined) return undefined;
  if (j.epoch !== watched.epoch) {
    watched.epoch = j.epoch;
    watched.seq = 0;
  }
  const first = Math.max(watched.seq + 1, j.acked + 1);
  const count = j.lastSeq - first + 1;
  watched.seq = Math.max(watched.seq, j.lastSeq);
  if (count <= 0) return undefined;
  const bytes = new Uint8Array(count * RECORD_BYTES);
  const r = j.readBatch(first, count, bytes);
  return { epoch: j.epoch, first: r.first, count: r.count, blob: blob(bytes.subarray(0, r.count * RECORD_BYTES)) };
}

/** While a watched advance runs: the ranges read so far (after each timer callback). */
let collecting: JournalRead[] | null = null;

function collect(): void {
  if (collecting === null || dataPartition()?.poweredOff === true) return;
  const r = readJournaled();
  if (r !== undefined) collecting.push(r);
}

function probe(): void {
  const g = gate();
  if (g === null) return;
  const t = g.time.read();
  const head = g.store.head;
  out.probes.push({ atMs: clock.now, now: t.now, trusted: t.trusted, version: g.store.version, headIssuedAt: head?.issuedAt ?? 0, headExpires: head?.expires ?? 0, mode: g.controller.mode, journalFull: g.journal.isFull });
}

let mainFn: (() => void) | null = null;
let running: { gate?: unknown } = {};
let started = false;
let returned = false;

/** Called once by the bundle's entry with main.ts's default export and its `running`. */
export function install(main: () => void, r: { gate?: unknown }): void {
  mainFn = main;
  running = r;
  globalThis.handleCommand = handleCommand;
  globalThis.sublineRunning = r;
}

function gate(): RunningGate | null {
  return (running.gate as RunningGate | undefined) ?? null;
}

function dataPartition(): NorFlash | undefined {
  return partitions.get(String((config['subline'] as { partitions?: { data?: string } } | undefined)?.partitions?.data ?? 'gatedata'));
}

function status(): GuestStatus {
  const g = gate();
  const s = g?.controller.stats;
  const data = dataPartition();
  return {
    started,
    running: returned && g !== null && refused === null,
    refused,
    faults: [...faults],
    online: g?.sync.connected ?? false,
    listEpoch: g?.store.epoch ?? 0,
    version: g?.store.version ?? 0,
    headIssuedAt: g?.store.head?.issuedAt ?? 0,
    syncRejected: { ...(g?.sync.stats.rejected ?? {}) },
    syncRequests: g?.sync.stats.requests ?? 0,
    taps: s?.taps ?? 0,
    granted: s?.granted ?? 0,
    denied: s?.denied ?? 0,
    byReason: s === undefined ? [] : Array.from(s.byReason, (n) => n ?? 0),
    passages: s?.passages ?? 0,
    alarms: s?.alarms ?? 0,
    journal: g === null ? { epoch: 0, lastSeq: 0, acked: 0, backlog: 0 } : { epoch: g.journal.epoch, lastSeq: g.journal.lastSeq, acked: g.journal.acked, backlog: g.journal.backlog },
    boot: g?.state.boot ?? 0,
    clockTrusted: g?.time.read().trusted ?? false,
    timeSet: clock.timeSet,
    nowMs: clock.now,
    poweredOff: data?.poweredOff ?? false,
    mode: g?.controller.mode ?? '',
    journalCapacity: g?.journal.capacityEvents ?? 0,
    journalFull: g?.journal.isFull ?? false,
    timers: clock.waiting,
    nextDueMs: clock.nextDue(),
  };
}

// ---------------------------------------------------------------- commands

function init(r: InitRequest, blobs: readonly Uint8Array[]): void {
  for (const k of Object.keys(config)) delete config[k];
  Object.assign(config, r.config as Record<string, unknown>);
  clock.wallMs = r.rtcMs;
  clock.wallAt = 0;
  net.ntpMs = r.ntpMs;
  net.wifiUp = r.wifi !== false;
  const random = mulberry32(r.seed);
  Math.random = random;
  // The system clock that Time.set sets (Date.now() on the device).
  Date.now = () => clock.wallNow();
  for (const [i, p] of r.partitions.entries()) {
    const b = p.blob === undefined ? undefined : blobs[p.blob];
    partitions.set(p.name, new NorFlash({ size: p.size, blockSize: 4096, seed: (r.seed + i) >>> 0, ...(b !== undefined ? { initial: b } : {}) }));
  }
  // A UHF reader answers only when polled, so it is there (silent) from power-up.
  const reader = (config['subline'] as { reader?: { kind?: unknown; port?: unknown } } | undefined)?.reader;
  if (reader?.kind === 'uhf') uhfReader(typeof reader.port === 'number' ? reader.port : 1);
  for (const p of r.pins) pin(p.pin).level = p.level;
  for (const n of r.faults ?? []) pin(n).fault = true;
}

function deliver(e: InEvent, blobs: readonly Uint8Array[]): void {
  switch (e.ev) {
    case 'pin':
      return driveInput(e.pin, e.level);
    case 'fault':
      pin(e.pin).fault = e.on;
      return;
    case 'uart': {
      const b = blobs[e.blob];
      if (e.probe === true) probe();
      if (b !== undefined) receive(e.port, b);
      return;
    }
    case 'tag': {
      const b = blobs[e.blob];
      if (b !== undefined) uhfReader(e.port).present(b, clock.now, e.dwellMs);
      return;
    }
    case 'wifi':
      if (net.wifiUp === e.up) return;
      net.wifiUp = e.up;
      for (const l of net.wifiListeners) l(e.up);
      return;
    case 'resolved': {
      const cb = net.resolves.get(e.req);
      net.resolves.delete(e.req);
      cb?.(e.address);
      return;
    }
    default: {
      const c = net.clients.get(e.conn);
      c?.deliver(e, blobs);
    }
  }
}

function advance(ms: number, events: readonly InEvent[], blobs: readonly Uint8Array[], inputsAtEnd: boolean): void {
  // Copy payloads now: the request's buffer is not kept after this command.
  const own = blobs.map((b) => b.slice());
  // At the end: the timers due until now run first (the events happened now, not at the last advance).
  if (inputsAtEnd) clock.advance(ms);
  for (const e of events) {
    const delay = 'delayMs' in e ? (e.delayMs ?? 0) : 0;
    later(`${e.ev} delivery`, () => deliver(e, own), delay);
  }
  clock.advance(inputsAtEnd ? 0 : ms);
}

function memory(): unknown {
  const g = gate();
  let flashBytes = 0;
  for (const p of partitions.values()) flashBytes += p.size;
  // PassbackTable: hi, lo, time (u32) + group, dir (u8) per entry.
  return { overlayRamBytes: g?.store.whitelist.overlay.ramBytes ?? 0, passbackTableBytes: (g?.passback.table.capacity ?? 0) * 14, flashBytes };
}

function handle(req: Request, blobs: readonly Uint8Array[]): unknown {
  switch (req.op) {
    case 'init':
      init(req, blobs);
      return null;
    case 'start':
      if (mainFn === null) throw new Error('no main installed');
      if (started) throw new Error('main() already ran');
      started = true;
      run('main()', () => mainFn?.());
      returned = true;
      return null;
    case 'advance':
      collecting = req.watch === true ? [] : null;
      try {
        advance(req.ms, req.events, blobs, req.inputsAtEnd === true);
        collect();
        // After a power cut the flash reads nothing more: what was durable before it was read after each callback.
        if (collecting !== null) journaled = collecting;
      } finally {
        collecting = null;
      }
      return null;
    case 'snapshot': {
      const p = partitions.get(req.partition);
      if (p === undefined) throw new Error(`no partition "${req.partition}"`);
      return { blob: blob(p.snapshot()) };
    }
    case 'cut': {
      const p = partitions.get(req.partition);
      if (p === undefined) throw new Error(`no partition "${req.partition}"`);
      p.cutAfter(req.afterOps, req.mode ?? 'any');
      return null;
    }
    case 'gc':
      globalThis.gc?.();
      return null;
    case 'memory':
      return memory();
  }
}

let journaled: JournalRead[] | undefined;

function handleCommand(request: ArrayBuffer): ArrayBuffer {
  let ok = true;
  let error: string | undefined;
  let value: unknown = null;
  journaled = undefined;
  try {
    const { header, blobs } = decodeFrame<Request>(new Uint8Array(request));
    value = handle(header, blobs);
  } catch (e) {
    ok = false;
    error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  const reply: Reply = { ok, ...(error !== undefined ? { error } : {}), ops: out.ops, pins: out.pins, uartIn: out.uartIn, uartOut: out.uartOut, lines: out.lines, status: status(), value, probes: out.probes, ...(journaled !== undefined ? { journaled } : {}) };
  const bytes = encodeFrame(reply as unknown as Record<string, unknown>, out.blobs.items);
  out.ops = [];
  out.blobs = new BlobList();
  out.pins = [];
  out.uartIn = [];
  out.uartOut = [];
  out.lines = [];
  out.probes = [];
  return toArrayBuffer(bytes);
}
