// Store benchmark workload, shared by the Node and XS sides: a population of
// N credentials across institutions and industries, a 1,000-record overlay
// in ten deltas, and a tap mix of known (70%), revoked/suspended and unknown
// keys. The gate opens the store exactly as at boot and decides.

import { decide, Decision, DEFAULT_POLICY, type GateConfig, type TapState } from '../firmware/core/decision.js';
import { Region } from '../firmware/core/region.js';
import type { BlockStore } from '../firmware/ports.js';
import { WhitelistStore } from '../firmware/core/whitelist-store.js';
import type { Crypto } from '../protocol/crypto.js';
import { buildImage, encodeDeltaRecords, type DeltaOpSpec, type GrantSpec, type ImageModel } from '../host-sim/central/image-builder.js';
import { mulberry32, NorFlash } from '../host-sim/flash/nor-flash.js';
import { chunkImage } from '../host-sim/central/image-builder.js';

export const T0 = 1_795_000_000;
export const BLOCK = 4096;
const everywhere: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] };

export interface Population {
  model: ImageModel;
  deltas: DeltaOpSpec[][];
  /** Tap keys as (hi, lo) pairs. */
  taps: Uint32Array;
}

export function population(n: number, seed = 1): Population {
  const rnd = mulberry32(seed);
  const key = () => Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256));
  const grants: GrantSpec[] = Array.from({ length: 48 }, (_, i) => ({ ...everywhere, lines: i % 3 === 0 ? ['second'] : ['first', 'second'], validUntil: T0 + 86400 * (30 + i), passbackGroup: i % 4 === 0 ? 1 : undefined }));
  const credentials = Array.from({ length: n }, (_, i) => ({ key: key(), institution: i % 10 === 0 ? undefined : i % 40, grant: i % 3 === 0 ? grants[i % grants.length] : undefined }));
  const model: ImageModel = {
    epoch: 1,
    version: 100,
    industries: Array.from({ length: 4 }, (_, i) => ({ grant: { ...everywhere, lanes: ['goods'] as const }, suspended: i === 3 })),
    institutions: Array.from({ length: 40 }, (_, i) => ({ industry: i % 4, grant: grants[(i * 7) % grants.length], suspended: i === 39 })),
    credentials,
    schedules: [],
  };
  const deltas: DeltaOpSpec[][] = [];
  for (let d = 0; d < 10; d++) {
    const ops: DeltaOpSpec[] = [];
    for (let r = 0; r < 100; r++) {
      const pick = credentials[Math.floor(rnd() * n)]!.key;
      ops.push(r % 3 === 0 ? { op: 'add', key: key(), institution: r % 40 } : r % 3 === 1 ? { op: 'revoke', key: pick } : { op: 'suspendSubject', key: pick });
    }
    deltas.push(ops);
  }
  const taps = new Uint32Array(2 * 4096);
  for (let i = 0; i < 4096; i++) {
    const k = i % 10 < 7 ? credentials[Math.floor(rnd() * n)]!.key : key();
    const v = new DataView(k.buffer, k.byteOffset, 8);
    taps[2 * i] = v.getUint32(0, false);
    taps[2 * i + 1] = v.getUint32(4, false);
  }
  return { model, deltas, taps };
}

export function regionsFor(flash: BlockStore, slotBytes: number) {
  const slotBlocks = Math.ceil(slotBytes / BLOCK);
  let at = 0;
  const take = (blocks: number, name: string) => {
    const r = new Region(flash, at * BLOCK, blocks * BLOCK, name);
    at += blocks;
    return r;
  };
  return { slotA: take(slotBlocks, 'slotA'), slotB: take(slotBlocks, 'slotB'), state: take(2, 'state'), overlay: take(32, 'overlay') };
}

export function partitionBytes(slotBytes: number): number {
  return (2 * Math.ceil(slotBytes / BLOCK) + 2 + 32) * BLOCK;
}

/** Builds the gate's flash as it would be after install + deltas (Node side). */
export function provisionFlash(p: Population, crypto: Crypto): { flash: Uint8Array; imageBytes: number; credentials: number } {
  const image = buildImage(p.model);
  const flash = new NorFlash({ size: partitionBytes(image.length), blockSize: BLOCK });
  const store = new WhitelistStore(regionsFor(flash, image.length), crypto);
  store.open();
  const ci = chunkImage(image, 16384, crypto);
  let e = store.beginInstall({ epoch: 1, version: p.model.version, imageSize: image.length, chunkSize: 16384 }, ci.hashes);
  if (e !== null) throw new Error(e);
  while (!store.eraseStep());
  ci.chunks.forEach((c, i) => {
    e = store.writeChunk(i, c);
    if (e !== null) throw new Error(e);
  });
  e = store.commitInstall();
  if (e !== null) throw new Error(e);
  p.deltas.forEach((ops, i) => {
    const r = store.applyDelta(1, p.model.version + 1 + i, encodeDeltaRecords(ops));
    if (r !== null) throw new Error(r);
  });
  e = store.acceptHead({ epoch: 1, version: store.version, issuedAt: T0 - 60, expires: T0 + 86400 }, T0, true);
  if (e !== null) throw new Error(e);
  return { flash: flash.snapshot(), imageBytes: image.length, credentials: p.model.credentials.length };
}

export interface StoreRun {
  coldStartMs: number;
  samplesUs: number[];
  granted: number;
}

export const GATE: GateConfig = { line: 'first', direction: 'in', lane: 'person', policy: DEFAULT_POLICY.first, passbackSeconds: 60 };

/** Boot from the flash image (timed), then time `count` decisions one by one. */
export function runStore(flashBytes: Uint8Array, imageBytes: number, taps: Uint32Array, count: number, crypto: Crypto, now: () => number): StoreRun {
  const flash = NorFlash.fromSnapshot(flashBytes, { blockSize: BLOCK });
  const t0 = now();
  const store = new WhitelistStore(regionsFor(flash, imageBytes), crypto);
  store.open();
  const head = store.head;
  const tap: TapState = { now: T0, clockTrusted: true, headIssuedAt: head?.issuedAt ?? 0, headExpires: head?.expires ?? 0, mode: 'normal', journalFull: false };
  const out = new Decision();
  decide(taps[0]!, taps[1]!, GATE, tap, store.whitelist, null, out);
  const coldStartMs = now() - t0;
  const samplesUs: number[] = new Array<number>(count);
  let granted = 0;
  const n = taps.length / 2;
  for (let i = 0; i < count; i++) {
    const j = (i % n) * 2;
    const a = now();
    decide(taps[j]!, taps[j + 1]!, GATE, tap, store.whitelist, null, out);
    samplesUs[i] = (now() - a) * 1000;
    if (out.granted) granted++;
  }
  return { coldStartMs, samplesUs, granted };
}

/** Read-only flash over bytes already in memory: no copy, so heap growth is the store's own RAM. */
export function mappedFlash(bytes: Uint8Array): BlockStore {
  return {
    size: bytes.length,
    blockSize: BLOCK,
    read: (offset, length, into) => {
      const out = into ?? new Uint8Array(length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    },
    write: () => {
      throw new Error('read-only');
    },
    eraseBlock: () => {
      throw new Error('read-only');
    },
    map: () => bytes,
  };
}

/** Decisions in a tight loop (for the XS compute meter per decision), on read-only mapped flash. */
export function decideLoop(flashBytes: Uint8Array, imageBytes: number, taps: Uint32Array, count: number, crypto: Crypto): { store: WhitelistStore; run: () => number } {
  const flash = mappedFlash(flashBytes);
  const store = new WhitelistStore(regionsFor(flash, imageBytes), crypto);
  store.open();
  const tap: TapState = { now: T0, clockTrusted: true, headIssuedAt: T0 - 60, headExpires: T0 + 86400, mode: 'normal', journalFull: false };
  const out = new Decision();
  const n = taps.length / 2;
  return {
    store,
    run: () => {
      let granted = 0;
      for (let i = 0; i < count; i++) {
        const j = (i % n) * 2;
        if (decide(taps[j]!, taps[j + 1]!, GATE, tap, store.whitelist, null, out).granted) granted++;
      }
      return granted;
    },
  };
}
