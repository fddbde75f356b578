// A seeded flash scenario (writes, erases, reads, power cuts, restores,
// through Regions) that checks the torn-operation invariants as it goes and
// returns the final contents and counters. The same function runs on Node
// (test/flash.test.ts imports it) and inside XS (this file is the entry); the
// two results must be identical.

import { NorFlash, PowerCutError, FlashMisuseError, mulberry32, type CutMode } from '../../host-sim/flash/nor-flash.js';
import { Region } from '../../firmware/core/region.js';
import { nobleCrypto } from '../../protocol/crypto-noble.js';
import { toHex } from '../../protocol/hex.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

export interface FlashScenarioRequest {
  /** Seed of the scenario's own choices (ops, offsets, data, cuts). */
  readonly seed: number;
  /** Seed of the flash (its tears). */
  readonly flashSeed: number;
  readonly noRewrite: boolean;
  readonly steps: number;
}

export interface FlashScenarioResult {
  readonly hex: string;
  readonly sha256: string;
  readonly opCount: number;
  readonly stats: { reads: number; writes: number; erases: number; bytesWritten: number; busyMs: number; wear: number[] };
  readonly charged: number;
  /** One entry per power cut: op number, kind, and the SHA-256 of the whole flash right after it. */
  readonly cuts: { op: number; kind: string; sha256: string }[];
  /** Refused operations (FlashMisuseError), e.g. rewrites in noRewrite mode. */
  readonly misuse: number;
  /** Invariant violations found (must be empty). */
  readonly violations: string[];
}

export function flashScenario(req: FlashScenarioRequest): FlashScenarioResult {
  const rng = mulberry32(req.seed);
  const int = (n: number): number => Math.floor(rng() * n);
  let charged = 0;
  const flash = new NorFlash({ size: 16384, blockSize: 4096, seed: req.flashSeed, noRewrite: req.noRewrite, charge: (ms) => (charged += ms) });
  const parts = Region.split(flash, [
    { name: 'a', blocks: 1 },
    { name: 'b', blocks: 1 },
    { name: 'journal', blocks: 2 },
  ]);
  const regions = [parts.a, parts.b, parts.journal];
  const unit = flash.programUnit;
  const cuts: { op: number; kind: string; sha256: string }[] = [];
  const violations: string[] = [];
  let misuse = 0;

  for (let step = 0; step < req.steps; step++) {
    const region = regions[int(regions.length)]!;
    const before = flash.snapshot();
    const r = rng();
    if (r < 0.08) {
      const modes: CutMode[] = ['any', 'write', 'erase'];
      flash.cutAfter(1 + int(6), modes[int(3)]);
      continue;
    }
    let kind: 'write' | 'erase' | 'read' = 'read';
    let lo = 0;
    let hi = 0;
    let data = new Uint8Array(0);
    try {
      if (r < 0.65) {
        kind = 'write';
        let length = 1 + int(300);
        let offset = int(region.size - length);
        if (req.noRewrite) {
          length = unit * (1 + int(8));
          offset = unit * int((region.size - length) / unit);
        }
        data = new Uint8Array(length);
        for (let i = 0; i < length; i++) data[i] = int(256) & int(256); // mostly clears bits
        lo = region.offset + offset;
        hi = lo + length;
        region.write(offset, data);
      } else if (r < 0.8) {
        kind = 'erase';
        const block = int(region.blockCount);
        lo = region.offset + block * region.blockSize;
        hi = lo + region.blockSize;
        region.eraseBlock(block);
      } else {
        kind = 'read';
        const length = int(64);
        const got = region.read(int(region.size - length), length);
        if (got.length !== length) violations.push(`step ${step}: read returned ${got.length} bytes`);
        continue;
      }
    } catch (e) {
      if (e instanceof FlashMisuseError) {
        misuse++;
        continue;
      }
      if (!(e instanceof PowerCutError)) throw e;
      if (kind === 'read') throw e; // reads cannot be cut: power is restored after every cut
      const after = flash.snapshot();
      cuts.push({ op: flash.opCount, kind, sha256: toHex(nobleCrypto.sha256(after)) });
      // Every operation fails until restore().
      try {
        flash.read(0, 1);
        violations.push(`step ${step}: read worked while powered off`);
      } catch (e2) {
        if (!(e2 instanceof PowerCutError)) throw e2;
      }
      checkTear(kind, before, after, lo, hi, data, violations, step);
      flash.restore();
      continue;
    }
    // Completed operation: exact NOR result.
    const after = flash.snapshot();
    for (let i = 0; i < after.length; i++) {
      const expect = i < lo || i >= hi ? before[i]! : kind === 'write' ? before[i]! & data[i - lo]! : 0xff;
      if (after[i] !== expect) {
        violations.push(`step ${step}: ${kind} left byte ${i} = ${after[i]}, expected ${expect}`);
        break;
      }
    }
  }
  const snap = flash.snapshot();
  const s = flash.stats;
  return {
    hex: toHex(snap),
    sha256: toHex(nobleCrypto.sha256(snap)),
    opCount: flash.opCount,
    stats: { reads: s.reads, writes: s.writes, erases: s.erases, bytesWritten: s.bytesWritten, busyMs: s.busyMs, wear: Array.from(s.eraseCountPerBlock) },
    charged,
    cuts,
    misuse,
    violations,
  };
}

/** The torn-operation invariants: nothing outside [lo, hi) changes; inside, a write only clears bits it meant to clear, an erase only sets bits. */
export function checkTear(kind: 'write' | 'erase', before: Uint8Array, after: Uint8Array, lo: number, hi: number, data: Uint8Array, violations: string[], step: number): void {
  for (let i = 0; i < after.length; i++) {
    const old = before[i]!;
    const now = after[i]!;
    if (i < lo || i >= hi) {
      if (now !== old) violations.push(`step ${step}: torn ${kind} changed byte ${i} outside its range`);
    } else if (kind === 'write') {
      const intended = old & data[i - lo]!;
      // now ⊆ old (no bit set) and now ⊇ old & data (no bit cleared that the write kept).
      if ((now & ~old) !== 0 || (intended & ~now) !== 0) violations.push(`step ${step}: torn write byte ${i}: old ${old} data ${data[i - lo]} now ${now}`);
    } else if ((old & ~now) !== 0) {
      violations.push(`step ${step}: torn erase cleared a bit at byte ${i}: old ${old} now ${now}`);
    }
    if (violations.length > 20) return;
  }
}

// Serve only inside the XS worker (which provides issueCommand); importing
// this module from a Node test must not install a global handler.
if (typeof (globalThis as { issueCommand?: unknown }).issueCommand === 'function') serveJson(flashScenario);
