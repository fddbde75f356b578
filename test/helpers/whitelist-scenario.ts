// A whitelist scenario as plain JSON (so Node and XS run the same thing):
// a base image model, deltas, an optional reboot, and taps (the types:
// host-sim/simulation/whitelist-model.ts). runScenario runs it through the
// real store on simulated NOR flash and the real decision engine. No Node
// APIs: bundled into XS by test/xs/whitelist.entry.ts.

import { decide, Decision, DEFAULT_POLICY, type GateMode as FirmwareGateMode } from '../../firmware/core/decision.js';
import { PassbackTable } from '../../firmware/core/passback.js';
import { Region } from '../../firmware/core/region.js';
import { WhitelistStore } from '../../firmware/core/whitelist-store.js';
import type { BlockStore } from '../../firmware/ports.js';
import type { Crypto } from '../../protocol/crypto.js';
import { fromHex } from '../../protocol/hex.js';
import { buildImageIndexed, chunkImage, encodeDeltaRecords, type GrantSpec } from '../../host-sim/central/image-builder.js';
import { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { deltaFromJson, modelFromJson, type GateMode, type Scenario, type ScenarioResult } from '../../host-sim/simulation/whitelist-model.js';

// The JSON types and their conversions live with the reference model (host-sim/simulation/whitelist-model.ts,
// no firmware imports); re-exported here for the tests.
export type { DeltaOpJson, GrantJson, ModelJson, Scenario, ScenarioResult, TapJson, TapResult } from '../../host-sim/simulation/whitelist-model.js';
export { deltaFromJson, modelFromJson } from '../../host-sim/simulation/whitelist-model.js';

// The model spells the gate modes itself (it imports nothing from firmware/): they must stay the engine's.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _gateModesMatch: Same<GateMode, FirmwareGateMode> = true;

/** A stricter profile than the defaults: denies on anything but fresh data and a trusted clock. */
export const STRICT_POLICY = { staleAfterSeconds: 900, fresh: 'normal', stale: 'deny', expired: 'deny', unsynced: 'deny' } as const;

export const BLOCK = 4096;
/** A small partition: slot A, slot B, state (2 blocks), overlay (10 blocks: a half must hold the largest delta). */
export function makeRegions(flash: BlockStore, slotBlocks: number): { slotA: Region; slotB: Region; state: Region; overlay: Region } {
  let at = 0;
  const take = (blocks: number, name: string) => {
    const r = new Region(flash, at, blocks * BLOCK, name);
    at += blocks * BLOCK;
    return r;
  };
  return { slotA: take(slotBlocks, 'slotA'), slotB: take(slotBlocks, 'slotB'), state: take(2, 'state'), overlay: take(10, 'overlay') };
}

export function regionsBlocks(slotBlocks: number): number {
  return slotBlocks * 2 + 2 + 10;
}

/** Installs an image through the store's real path (erase steps, hashed chunks, commit). */
export function installImage(store: WhitelistStore, image: Uint8Array, crypto: Crypto, chunkSize = 1024): string | null {
  const ci = chunkImage(image, chunkSize, crypto);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const e = store.beginInstall({ epoch: v.getUint32(8, true), version: v.getUint32(12, true), imageSize: image.length, chunkSize }, ci.hashes);
  if (e !== null) return e;
  for (let guard = 0; guard < 100000 && !store.eraseStep(); guard++);
  for (let i = 0; i < ci.chunks.length; i++) {
    const w = store.writeChunk(i, ci.chunks[i] as Uint8Array);
    if (w !== null) return w;
  }
  return store.commitInstall();
}

export function runScenario(s: Scenario, crypto: Crypto): ScenarioResult {
  const built = buildImageIndexed(modelFromJson(s.model));
  const slotBlocks = Math.max(1, Math.ceil(built.bytes.length / BLOCK));
  const flash = new NorFlash({ size: regionsBlocks(slotBlocks) * BLOCK, blockSize: BLOCK });
  let store = new WhitelistStore(makeRegions(flash, slotBlocks), crypto);
  store.open();
  const installError = installImage(store, built.bytes, crypto);
  if (installError !== null) throw new Error(`install: ${installError}`);
  const deltaErrors = s.deltas.map((ops, i) => store.applyDelta(s.model.epoch, s.model.version + 1 + i, encodeDeltaRecords(deltaFromJson(ops))));
  if (s.reboot) {
    store = new WhitelistStore(makeRegions(flash, slotBlocks), crypto);
    store.open();
  }
  const passback = new PassbackTable(256);
  const out = new Decision();
  const taps = s.taps.map((t) => {
    const key = fromHex(t.key);
    const kv = new DataView(key.buffer, key.byteOffset, 8);
    const hi = kv.getUint32(0, false);
    const lo = kv.getUint32(4, false);
    const gate = { line: t.line, direction: t.direction, lane: t.lane, policy: t.strict ? STRICT_POLICY : DEFAULT_POLICY[t.line], passbackSeconds: t.passbackSeconds };
    decide(hi, lo, gate, t, store.whitelist, passback, out);
    if (out.granted && t.record) passback.record(hi, lo, out.passbackGroup, t.direction, t.now);
    return { granted: out.granted, reason: out.reason, level: out.level };
  });
  return { deltaErrors, version: store.version, taps };
}

export type { GrantSpec };
