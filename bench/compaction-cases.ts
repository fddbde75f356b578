// The "compactions due" workload (Node and XS run this same code): a whole
// gate at N credentials whose four logs (passback, overlay, store state, gate
// state) all need compaction at boot, taking taps and message handlers
// (signed deltas, signed heads, acks) while the maintenance scheduler works
// through the compactions one block per tick. Measures the longest single tap
// (frame pushed -> reader.push returns: decision, durable journal append,
// relay) and the longest single message handler, as compute time (the
// simulated flash costs no time), and beside them the modelled flash time of
// each operation (NorFlash timing: erase 45 ms, program 0.7 ms per page) and
// the erases issued inside taps and handlers (must be 0).

import { Gate } from '../firmware/core/gate.js';
import { Em4100AsciiDecoder } from '../firmware/drivers/em4100-ascii.js';
import type { BlockStore, InputName, Inputs, Net } from '../firmware/ports.js';
import { Delta, EventAck, Head } from '../protocol/messages.js';
import { sealMaced } from '../protocol/mac-envelope.js';
import { sealSigned } from '../protocol/envelope.js';
import { publicKeyOf } from '../protocol/index.js';
import { Topics } from '../protocol/topics.js';
import type { Crypto } from '../protocol/crypto.js';
import { buildImage, chunkImage, encodeDeltaRecords } from '../host-sim/central/image-builder.js';
import { mulberry32, NorFlash } from '../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { em4100Frame } from '../host-sim/xs-gate/reader-frames.js';
import { credentialKey } from '../protocol/credential-key.js';
import { BENCH_GATE_KEY, BENCH_GATE_KEY_ID, provisioning, T0, tapLayout } from './tap-cases.js';

const SK = new Uint8Array(32).fill(5);
const DK = provisioning().deploymentKey;
const topics = new Topics('subline');
const grant = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;

/**
 * What an honest central would ack: chain(seq) of the gate's journal, from
 * its durable ack (the gate frees nothing for an ack with another chain).
 * Computed by the bench before the handler is timed.
 */
function journalChain(gate: Gate, seq: number, crypto: Crypto): Uint8Array {
  const j = gate.journal;
  const st = gate.state;
  let chain: Uint8Array = st.ackEpoch === j.epoch && st.ackSeq === j.acked ? st.ackChain : new Uint8Array(32);
  const buf = new Uint8Array(256 * 16);
  const cat = new Uint8Array(48);
  for (let from = j.acked + 1; from <= seq; ) {
    const { count } = j.readBatch(from, Math.min(256, seq - from + 1), buf);
    if (count <= 0) break;
    for (let k = 0; k < count; k++) {
      cat.set(chain, 0);
      cat.set(buf.subarray(k * 16, k * 16 + 16), 32);
      chain = crypto.sha256(cat);
    }
    from += count;
  }
  return chain;
}

/** A Net that never connects and hands the gate's message callback to the bench. */
class CaptureNet implements Net {
  message: (topic: string, payload: Uint8Array) => void = () => {};
  connect(): void {}
  publish(): number {
    return -1;
  }
  subscribe(): void {}
  disconnect(): void {}
  onMessage(cb: (topic: string, payload: Uint8Array) => void): void {
    this.message = cb;
  }
  onPublished(): void {}
  onConnectionChange(): void {}
}

/** Counts erases, and those issued while `inside` is set. */
class CountingStore implements BlockStore {
  readonly size: number;
  readonly blockSize: number;
  inside = false;
  erasesInside = 0;
  erases = 0;
  constructor(readonly inner: NorFlash) {
    this.size = inner.size;
    this.blockSize = inner.blockSize;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    return this.inner.read(offset, length, into);
  }
  write(offset: number, data: Uint8Array): void {
    this.inner.write(offset, data);
  }
  eraseBlock(block: number): void {
    this.erases++;
    if (this.inside) this.erasesInside++;
    this.inner.eraseBlock(block);
  }
  map(): Uint8Array | undefined {
    return this.inner.map();
  }
}

function makeGate(flash: BlockStore, n: number, crypto: Crypto, vt: VirtualTime, net: Net, relay: () => void): Gate {
  const inputs: Inputs = { read: (_i: InputName) => false, onChange: () => {} };
  return new Gate({
    provisioning: { ...provisioning(), trustedKeys: [publicKeyOf(SK)] }, flash, layout: tapLayout(n), clock: vt, timers: vt, net, crypto,
    outputs: { set: (o, on) => { if (o === 'relay' && on) relay(); return true; } }, inputs, random: () => 0.5,
  });
}

const image = (n: number, ids: Uint8Array, version: number, crypto: Crypto) => {
  const credentials = [];
  for (let i = 0; i < n; i++) credentials.push({ key: credentialKey(crypto, DK, 1, ids.subarray(i * 5, i * 5 + 5)), grant });
  return buildImage({ epoch: 1, version, industries: [], institutions: [], credentials, schedules: [] });
};

/**
 * Node side: from the tap bench's provisioned flash (image v1), leaves every
 * log needing compaction: deltas v2.. fill 85% of the overlay and then a new
 * image makes them stale; passback records of 200 cards, over and over; 100
 * superseded heads; 50 superseded acks. Returns the flash and the version.
 */
export function provisionCompactionFlash(tapFlash: Uint8Array, n: number, ids: Uint8Array, crypto: Crypto): { flash: Uint8Array; version: number } {
  const flash = NorFlash.fromSnapshot(tapFlash, { blockSize: 4096 });
  const vt = new VirtualTime({ wallSeconds: T0 });
  const gate = makeGate(flash, n, crypto, vt, new CaptureNet(), () => {});
  gate.open();
  const s = gate.store;
  let v = s.version;
  const rnd = mulberry32(17);
  while (s.overlayFill < 0.85) {
    const records = encodeDeltaRecords(Array.from({ length: 64 }, () => ({ op: 'revoke' as const, key: Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256)) })));
    if (s.applyDelta(1, ++v, records) !== null) throw new Error('provision delta');
  }
  const img = image(n, ids, ++v, crypto);
  const ci = chunkImage(img, 16384, crypto);
  if (s.beginInstall({ epoch: 1, version: v, imageSize: img.length, chunkSize: 16384 }, ci.hashes) !== null) throw new Error('begin');
  while (!s.eraseStep());
  ci.chunks.forEach((c, i) => {
    if (s.writeChunk(i, c) !== null) throw new Error('chunk');
  });
  if (s.commitInstall() !== null) throw new Error('commit');
  for (let i = 0; i < 1600; i++) gate.passback.record(i % 200, 7, 1, 'in', T0 + i);
  for (let i = 0; i < 100; i++) if (s.acceptHead({ epoch: 1, version: v, issuedAt: T0 + i, expires: T0 + 86400 * 30 }, T0, true) !== null) throw new Error('head');
  for (let i = 0; i < 50; i++) if (!gate.state.setAck(1, 0, new Uint8Array(32).fill(i))) throw new Error('ack');
  const due = [gate.passback.compactionDue, s.overlayCompaction.compactionDue, s.stateCompaction.compactionDue, gate.state.compactionDue];
  if (due.some((d) => !d)) throw new Error(`not every log is due: ${due.join(',')}`);
  return { flash: flash.snapshot(), version: v };
}

/** Node side: `count` signed messages in order (delta, head, ack placeholder, ...), packed [u32 length][bytes]... */
export function compactionMessages(version: number, count: number, crypto: Crypto): Uint8Array {
  const parts: Uint8Array[] = [];
  const rnd = mulberry32(23);
  let v = version;
  for (let i = 0; i < count; i++) {
    if (i % 3 === 0) {
      v++;
      const records = encodeDeltaRecords(Array.from({ length: 8 }, () => ({ op: 'revoke' as const, key: Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256)) })));
      parts.push(sealSigned(Delta, { list: 'main', epoch: 1, version: v, issuedAt: T0 + 1000 + i, records }, SK, crypto));
    } else if (i % 3 === 1) {
      parts.push(sealSigned(Head, { list: 'main', epoch: 1, version: v, issuedAt: T0 + 1000 + i, expires: T0 + 86400 * 30, imageSize: 64, chunkSize: 64, imageRoot: new Uint8Array(32) }, SK, crypto));
    } else parts.push(new Uint8Array(0)); // an ack, made in the run (it names the journal's seq)
  }
  const total = parts.reduce((a, p) => a + 4 + p.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    dv.setUint32(at, p.length, true);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

export interface CompactionRun {
  taps: number;
  handlers: number;
  /** Per round: the tap's time (us) and the handler's time (ms), for the max across repeated runs. */
  tapUs: number[];
  handlerMs: number[];
  tapUsMax: number;
  handlerMsMax: number;
  tapFlashMsModelMax: number;
  handlerFlashMsModelMax: number;
  erasesInTaps: number;
  erasesInHandlers: number;
  /** Erases by the maintenance scheduler during the run, and ticks that did compaction work. */
  maintenanceErases: number;
  compactionTicks: number;
  /** Logs still due at the end (0 = every compaction finished). */
  stillDue: number;
  /** The journal's acknowledged seq at the end: the bench's acks were believed (their chains are the journal's). */
  journalAcked: number;
  deltasApplied: number;
  rejected: Record<string, number>;
}

/** Boots a gate from the flash, then per round: one tap, one message, one maintenance tick. */
export function runCompactionDue(flashBytes: Uint8Array, n: number, ids: Uint8Array, messages: Uint8Array, crypto: Crypto, now: () => number): CompactionRun {
  const nor = NorFlash.fromSnapshot(flashBytes, { blockSize: 4096 });
  const flash = new CountingStore(nor);
  const vt = new VirtualTime({ wallSeconds: T0 + 2000 });
  const net = new CaptureNet();
  const gate = makeGate(flash, n, crypto, vt, net, () => {});
  gate.open();
  const reader = new Em4100AsciiDecoder({ onRead: (r) => gate.onRead(r) });
  const rnd = mulberry32(11);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) frames.push(em4100Frame(ids.subarray(Math.floor(rnd() * n) * 5).subarray(0, 5)));
  const r: CompactionRun = { taps: 0, handlers: 0, tapUs: [], handlerMs: [], tapUsMax: 0, handlerMsMax: 0, tapFlashMsModelMax: 0, handlerFlashMsModelMax: 0, erasesInTaps: 0, erasesInHandlers: 0, maintenanceErases: 0, compactionTicks: 0, stillDue: 0, journalAcked: 0, deltasApplied: 0, rejected: {} };
  const dv = new DataView(messages.buffer, messages.byteOffset, messages.byteLength);
  const erasesAtBoot = flash.erases;
  let at = 0;
  for (let i = 0; at < messages.length; i++) {
    // One tap: frame bytes in -> everything the gate does for it, synchronously.
    let busy = nor.stats.busyMs;
    flash.inside = true;
    let t0 = now();
    reader.push(frames[i % frames.length]!, vt.monotonicMs());
    let dt = now() - t0;
    flash.inside = false;
    r.erasesInTaps += flash.erasesInside;
    flash.erasesInside = 0;
    r.taps++;
    r.tapUsMax = Math.max(r.tapUsMax, dt * 1000);
    r.tapUs.push(dt * 1000);
    r.tapFlashMsModelMax = Math.max(r.tapFlashMsModelMax, nor.stats.busyMs - busy);
    // One message handler.
    const len = dv.getUint32(at, true);
    let payload = messages.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    let topic = i % 3 === 0 ? topics.list('main', 'delta') : topics.list('main', 'head');
    if (len === 0) {
      topic = topics.gate('bench-gate', 'ack');
      // MACed as the central sends it (sealed here, before the timed handler).
      payload = sealMaced(EventAck, { gate: 'bench-gate', epoch: 1, seq: gate.journal.lastSeq, chain: journalChain(gate, gate.journal.lastSeq, crypto) }, topic, BENCH_GATE_KEY, BENCH_GATE_KEY_ID, crypto);
    }
    busy = nor.stats.busyMs;
    flash.inside = true;
    t0 = now();
    net.message(topic, payload);
    dt = now() - t0;
    flash.inside = false;
    r.erasesInHandlers += flash.erasesInside;
    flash.erasesInside = 0;
    r.handlers++;
    r.handlerMsMax = Math.max(r.handlerMsMax, dt);
    r.handlerMs.push(dt);
    r.handlerFlashMsModelMax = Math.max(r.handlerFlashMsModelMax, nor.stats.busyMs - busy);
    // One maintenance tick (the gate's timer, not started here), then the lane closes.
    if (gate.maintenance.tick().steps > 0) r.compactionTicks++;
    vt.advance(10_000);
  }
  r.maintenanceErases = flash.erases - erasesAtBoot - r.erasesInTaps - r.erasesInHandlers;
  const s = gate.store;
  r.journalAcked = gate.journal.acked;
  r.stillDue = [gate.passback.compactionDue, s.overlayCompaction.compactionDue, s.stateCompaction.compactionDue, gate.state.compactionDue].filter((d) => d).length;
  r.deltasApplied = gate.sync.stats.deltasApplied;
  r.rejected = { ...gate.sync.stats.rejected };
  gate.close();
  return r;
}
