// The simulated NOR flash (host-sim/flash/nor-flash.ts), its file persistence
// (host-sim/flash/flash-file.ts) and the Region window (firmware/core/region.ts):
// NOR rules, torn writes and erases under power cuts (properties with
// fast-check), op counting for cut-at-every-op sweeps, wear and timing, and
// the same seeded scenario on Node and on the real XS engine.

import { throwsKind } from './helpers/assert.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NorFlash, FlashMisuseError, PowerCutError, DEFAULT_TIMING, type CutMode } from '../host-sim/flash/nor-flash.js';
import { saveFlash, loadFlash, FlashFileError } from '../host-sim/flash/flash-file.js';
import { Region, RegionError } from '../firmware/core/region.js';
import type { BlockStore } from '../firmware/ports.js';
import { checkTear, flashScenario, type FlashScenarioRequest, type FlashScenarioResult } from './xs/flash.entry.js';
import { startXs } from './helpers/xs.js';

const seed = Number(process.env.FC_SEED ?? 20261127);
const runs = Number(process.env.FC_RUNS ?? 300);
const KiB = 1024;

const allFF = (b: Uint8Array): boolean => b.every((x) => x === 0xff);

// ---------------------------------------------------------------- NOR rules
const nor = suite('flash: NOR rules');
nor('fresh flash is all 0xFF and reports its geometry', () => {
  const f = new NorFlash({ size: 16 * KiB });
  assert.is(f.size, 16 * KiB);
  assert.is(f.blockSize, 4096);
  assert.is(f.blockCount, 4);
  assert.is(f.programUnit, 16);
  assert.ok(allFF(f.read(0, f.size)));
  assert.equal(f.timing, DEFAULT_TIMING);
});
nor('bad options are refused', () => {
  throwsKind(() => new NorFlash({ size: 5000 }), FlashMisuseError, /multiple of blockSize/);
  throwsKind(() => new NorFlash({ size: 0 }), FlashMisuseError, /positive multiple/);
  throwsKind(() => new NorFlash({ size: 4096, blockSize: 0 }), FlashMisuseError, /blockSize/);
  throwsKind(() => new NorFlash({ size: 4096, programUnit: 24 }), FlashMisuseError, /programUnit/);
  throwsKind(() => new NorFlash({ size: 4096, initial: new Uint8Array(10) }), FlashMisuseError, /initial contents are 10 bytes/);
  throwsKind(() => new NorFlash({ size: 8192, wear: [1] }), FlashMisuseError, /wear has 1 counters/);
  throwsKind(() => new NorFlash({ size: 4096, timing: { eraseMs: -1 } }), FlashMisuseError, /timing/);
});
nor('eraseBlock sets exactly that block to 0xFF', () => {
  const f = new NorFlash({ size: 12 * KiB, initial: new Uint8Array(12 * KiB) });
  f.eraseBlock(1);
  const all = f.snapshot();
  assert.ok(all.subarray(0, 4096).every((x) => x === 0));
  assert.ok(allFF(all.subarray(4096, 8192)));
  assert.ok(all.subarray(8192).every((x) => x === 0));
});
nor('write only clears bits: 1 over 0 stays 0; a second write ANDs', () => {
  const f = new NorFlash({ size: 4096 });
  f.write(10, Uint8Array.of(0x0f, 0xaa, 0x00));
  assert.equal(Array.from(f.read(9, 5)), [0xff, 0x0f, 0xaa, 0x00, 0xff]);
  f.write(10, Uint8Array.of(0xf0, 0xff, 0xff)); // rewrite allowed without noRewrite
  assert.equal(Array.from(f.read(10, 3)), [0x00, 0xaa, 0x00]);
  f.write(11, Uint8Array.of(0x55));
  assert.is(f.read(11, 1)[0], 0x00);
  f.eraseBlock(0);
  f.write(11, Uint8Array.of(0x55));
  assert.is(f.read(11, 1)[0], 0x55);
});
nor('unaligned byte writes are fine without noRewrite', () => {
  const f = new NorFlash({ size: 4096 });
  f.write(4093, Uint8Array.of(1, 2, 3));
  assert.equal(Array.from(f.read(4093, 3)), [1, 2, 3]);
});
nor('noRewrite: a unit written since its erase cannot be written again; erase frees it', () => {
  const f = new NorFlash({ size: 8192, noRewrite: true });
  f.write(0, new Uint8Array(16).fill(0x5a));
  f.write(16, new Uint8Array(32).fill(0x11)); // neighbours are fine
  throwsKind(() => f.write(0, new Uint8Array(16).fill(0x00)), FlashMisuseError, /already written since its last erase/);
  throwsKind(() => f.write(32, new Uint8Array(32)), FlashMisuseError, /already written/); // overlaps unit 32..47
  throwsKind(() => f.write(0, new Uint8Array(16).fill(0xff)), FlashMisuseError, /already written/); // even all-ones
  assert.ok(f.read(0, 16).every((x) => x === 0x5a), 'refused write changed nothing');
  f.write(4096, new Uint8Array(16)); // other block untouched by the rule
  f.eraseBlock(0);
  f.write(0, new Uint8Array(16).fill(0x00));
  assert.ok(f.read(0, 16).every((x) => x === 0));
  throwsKind(() => f.write(4096, new Uint8Array(16)), FlashMisuseError, /already written/); // block 1 was not erased
});
nor('noRewrite: offset and length must be aligned to the program unit', () => {
  const f = new NorFlash({ size: 4096, noRewrite: true });
  throwsKind(() => f.write(8, new Uint8Array(16)), FlashMisuseError, /aligned/);
  throwsKind(() => f.write(0, new Uint8Array(17)), FlashMisuseError, /aligned/);
  const g = new NorFlash({ size: 4096, noRewrite: true, programUnit: 32 });
  throwsKind(() => g.write(16, new Uint8Array(16)), FlashMisuseError, /32-byte aligned/);
  assert.is(f.opCount + g.opCount, 0, 'refused writes are not counted');
});
nor('noRewrite: initial contents that are not erased count as written', () => {
  const initial = new Uint8Array(4096).fill(0xff);
  initial[40] = 0x7f;
  const f = new NorFlash({ size: 4096, noRewrite: true, initial });
  throwsKind(() => f.write(32, new Uint8Array(16)), FlashMisuseError, /already written/);
  f.write(48, new Uint8Array(16));
});
nor('map() is the live backing view; read() copies', () => {
  const f = new NorFlash({ size: 8192 });
  const m = f.map();
  assert.is(m.length, 8192);
  assert.is(f.map(), m);
  f.write(100, Uint8Array.of(0x12));
  assert.is(m[100], 0x12);
  const copy = f.read(100, 1);
  copy[0] = 0;
  assert.is(m[100], 0x12, 'mutating a read result does not touch the flash');
  f.eraseBlock(0);
  assert.is(m[100], 0xff);
});
nor('read into a caller buffer returns that buffer', () => {
  const f = new NorFlash({ size: 4096 });
  f.write(0, Uint8Array.of(1, 2, 3, 4));
  const into = new Uint8Array(8).fill(9);
  const r = f.read(1, 3, into);
  assert.is(r, into);
  assert.equal(Array.from(into), [2, 3, 4, 9, 9, 9, 9, 9]);
  throwsKind(() => f.read(0, 9, into), FlashMisuseError, /into holds 8 bytes, 9 requested/);
});
nor('writing from a view of the flash itself (aliasing) is well defined', () => {
  const f = new NorFlash({ size: 4096 });
  f.write(0, Uint8Array.of(0xf0, 0x0f, 0x3c, 0xc3));
  f.write(1, f.map().subarray(0, 4)); // forward overlap
  assert.equal(Array.from(f.read(0, 5)), [0xf0, 0x0f & 0xf0, 0x3c & 0x0f, 0xc3 & 0x3c, 0xc3]);
});
nor('bounds and index errors are FlashMisuseError with a clear message', () => {
  const f = new NorFlash({ size: 8192 });
  throwsKind(() => f.read(8190, 3), FlashMisuseError, /read: range offset 8190 length 3 is outside the flash \(size 8192\)/);
  throwsKind(() => f.read(-1, 1), FlashMisuseError, /outside/);
  throwsKind(() => f.read(1.5, 1), FlashMisuseError, /outside/);
  throwsKind(() => f.read(Number.NaN, 1), FlashMisuseError, /outside/);
  throwsKind(() => f.write(8192, Uint8Array.of(0)), FlashMisuseError, /write: range offset 8192/);
  throwsKind(() => f.write(0, [0] as unknown as Uint8Array), FlashMisuseError, /Uint8Array/);
  for (const b of [-1, 2, 1.5, Number.NaN, Infinity]) throwsKind(() => f.eraseBlock(b), FlashMisuseError, /bad block index .* \(flash has 2 blocks of 4096 bytes\)/);
  f.read(8192, 0); // empty range at the end is fine
  f.write(8192, new Uint8Array(0));
  assert.is(f.opCount, 0, 'zero-length and refused operations are not counted');
});

// ----------------------------------------------------------- torn operations
const torn = suite('flash: torn writes and erases');

const tornWriteCase = fc.record({
  flashSeed: fc.integer({ min: 0, max: 0xffffffff }),
  old: fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
  offset: fc.nat(4095),
  data: fc.uint8Array({ minLength: 1, maxLength: 600 }),
});

function tornWrite(flashSeed: number, old: Uint8Array, offset: number, data: Uint8Array): Uint8Array {
  const f = new NorFlash({ size: 8192, seed: flashSeed, initial: Uint8Array.from([...old, ...old]) });
  f.cutAfter(1, 'write');
  throwsKind(() => f.write(offset, data), PowerCutError, /power cut during write/);
  assert.ok(f.poweredOff);
  return f.snapshot();
}

torn('a torn write leaves every bit either the old bit or old AND new; nothing outside changes', () => {
  fc.assert(
    fc.property(tornWriteCase, ({ flashSeed, old, offset, data }) => {
      const before = Uint8Array.from([...old, ...old]);
      const after = tornWrite(flashSeed, old, offset, data);
      const violations: string[] = [];
      checkTear('write', before, after, offset, offset + data.length, data, violations, 0);
      assert.equal(violations, []);
    }),
    { seed, numRuns: runs },
  );
});
torn('the same seed reproduces the same tear; different seeds differ at least sometimes', () => {
  fc.assert(
    fc.property(tornWriteCase, ({ flashSeed, old, offset, data }) => {
      assert.equal(tornWrite(flashSeed, old, offset, data), tornWrite(flashSeed, old, offset, data));
    }),
    { seed, numRuns: 50 },
  );
  const old = new Uint8Array(4096).fill(0xff);
  const data = new Uint8Array(256).fill(0x00);
  const distinct = new Set<string>();
  for (let s = 1; s <= 32; s++) distinct.add(tornWrite(s, old, 0, data).subarray(0, 256).join(','));
  assert.ok(distinct.size >= 8, `only ${distinct.size} distinct tears over 32 seeds`);
});
torn('a tear can program none, all, or part of the intended bits', () => {
  const old = new Uint8Array(4096).fill(0xff);
  const data = new Uint8Array(64).fill(0x00);
  const kinds = new Set<string>();
  for (let s = 1; s <= 200; s++) {
    const r = tornWrite(s, old, 100, data).subarray(100, 164);
    kinds.add(allFF(r) ? 'none' : r.every((x) => x === 0) ? 'all' : 'part');
  }
  assert.equal([...kinds].sort(), ['all', 'none', 'part']);
});

function tornErase(flashSeed: number, old: Uint8Array, block: number): { before: Uint8Array; after: Uint8Array } {
  const f = new NorFlash({ size: old.length, blockSize: 1024, seed: flashSeed, initial: old });
  f.cutAfter(1, 'erase');
  throwsKind(() => f.eraseBlock(block), PowerCutError, /power cut during erase of block/);
  return { before: old, after: f.snapshot() };
}
torn('a torn erase only sets bits (0 -> 1) inside that block; same seed, same tear', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ minLength: 4096, maxLength: 4096 }), fc.nat(3), (flashSeed, old, block) => {
      const { before, after } = tornErase(flashSeed, old, block);
      const violations: string[] = [];
      checkTear('erase', before, after, block * 1024, (block + 1) * 1024, new Uint8Array(0), violations, 0);
      assert.equal(violations, []);
      assert.equal(tornErase(flashSeed, old, block).after, after);
    }),
    { seed, numRuns: runs },
  );
  const zeros = new Uint8Array(4096);
  const kinds = new Set<string>();
  const distinct = new Set<string>();
  for (let s = 1; s <= 200; s++) {
    const blk = tornErase(s, zeros, 2).after.subarray(2048, 3072);
    kinds.add(allFF(blk) ? 'all' : blk.every((x) => x === 0) ? 'none' : 'part');
    distinct.add(blk.join(','));
  }
  assert.equal([...kinds].sort(), ['all', 'none', 'part']);
  assert.ok(distinct.size > 20);
});
torn('noRewrite: a torn write still marks its units; a torn erase does not free them', () => {
  const f = new NorFlash({ size: 8192, noRewrite: true });
  f.cutAfter(1);
  throwsKind(() => f.write(0, new Uint8Array(32)), PowerCutError);
  f.restore();
  throwsKind(() => f.write(16, new Uint8Array(16)), FlashMisuseError, /already written/);
  f.cutAfter(1);
  throwsKind(() => f.eraseBlock(0), PowerCutError);
  f.restore();
  throwsKind(() => f.write(0, new Uint8Array(16)), FlashMisuseError, /already written/);
  f.eraseBlock(0);
  f.write(0, new Uint8Array(16));
});

// ------------------------------------------------------------ cuts and counts
const cuts = suite('flash: power cuts and op counting');

/** A scenario of mixed operations: 7 mutating ops (4 writes, 3 erases), 2 reads, 1 zero-length write. */
function scenario(f: BlockStore): void {
  f.write(0, new Uint8Array(100).fill(0x0f));
  f.read(0, 10);
  f.eraseBlock(1);
  f.write(4096, new Uint8Array(10));
  f.write(5000, new Uint8Array(0)); // zero-length: not an op
  f.read(4096, 10);
  f.eraseBlock(0);
  f.write(10, Uint8Array.of(1, 2, 3));
  f.eraseBlock(3);
  f.write(3 * 4096, new Uint8Array(4096));
}
function mustBeOff(f: NorFlash): void {
  throwsKind(() => f.read(0, 1), PowerCutError, /power is off/);
  throwsKind(() => f.write(0, Uint8Array.of(0)), PowerCutError, /power is off/);
  throwsKind(() => f.eraseBlock(0), PowerCutError, /power is off/);
  throwsKind(() => f.map(), PowerCutError, /power is off/);
  throwsKind(() => f.read(99999, 1), PowerCutError); // power is checked before arguments
}

cuts('opCount counts writes and erases, not reads or zero-length writes', () => {
  const f = new NorFlash({ size: 16 * KiB });
  scenario(f);
  assert.is(f.opCount, 7);
  assert.is(f.stats.reads, 2);
  assert.is(f.stats.writes, 4);
  assert.is(f.stats.erases, 3);
});
cuts('cutAfter(k) fires exactly at the k-th mutating op, for every k; later ops throw until restore()', () => {
  const n = (() => {
    const f = new NorFlash({ size: 16 * KiB });
    scenario(f);
    return f.opCount;
  })();
  for (let k = 1; k <= n; k++) {
    const f = new NorFlash({ size: 16 * KiB, seed: k });
    f.cutAfter(k);
    assert.ok(f.cutArmed);
    throwsKind(() => scenario(f), PowerCutError, new RegExp(`op ${k}$`));
    assert.is(f.opCount, k, `cut at op ${k}`);
    assert.ok(f.poweredOff);
    assert.not.ok(f.cutArmed);
    mustBeOff(f);
    assert.is(f.opCount, k, 'refused ops are not counted');
    const frozen = f.snapshot(); // snapshot works while off
    f.restore();
    assert.not.ok(f.poweredOff);
    assert.equal(f.read(0, f.size), frozen, 'restore keeps the contents the cut left');
    scenario(f); // runs to the end: the cut fired once
    assert.is(f.opCount, k + n);
  }
  // Past the end: never fires.
  const f = new NorFlash({ size: 16 * KiB });
  f.cutAfter(n + 1);
  scenario(f);
  assert.ok(f.cutArmed);
  f.cancelCut();
  assert.not.ok(f.cutArmed);
});
cuts("mode 'write' and 'erase' count only their kind", () => {
  const kinds: Record<CutMode, string[]> = { write: [], erase: [], any: [] };
  for (const mode of ['write', 'erase'] as const) {
    for (let k = 1; ; k++) {
      const f = new NorFlash({ size: 16 * KiB });
      f.cutAfter(k, mode);
      try {
        scenario(f);
        break;
      } catch (e) {
        assert.instance(e, PowerCutError);
        kinds[mode].push(/during (\w+)/.exec((e as Error).message)![1]!);
      }
    }
  }
  assert.equal(kinds.write, ['write', 'write', 'write', 'write']);
  assert.equal(kinds.erase, ['erase', 'erase', 'erase']);
});
cuts('misuse is reported before the cut is counted', () => {
  const f = new NorFlash({ size: 4096 });
  f.cutAfter(1);
  throwsKind(() => f.write(4095, Uint8Array.of(1, 2)), FlashMisuseError);
  throwsKind(() => f.eraseBlock(1), FlashMisuseError);
  assert.ok(f.cutArmed);
  throwsKind(() => f.write(0, Uint8Array.of(0)), PowerCutError);
});
cuts('cutAfter refuses bad arguments', () => {
  const f = new NorFlash({ size: 4096 });
  throwsKind(() => f.cutAfter(0), FlashMisuseError, /positive integer/);
  throwsKind(() => f.cutAfter(1.5), FlashMisuseError);
  throwsKind(() => f.cutAfter(1, 'read' as CutMode), FlashMisuseError, /bad mode/);
});

// -------------------------------------------------------- wear, timing, copies
const wear = suite('flash: wear, timing, snapshots');
wear('wear counters per block and stats', () => {
  const f = new NorFlash({ size: 16 * KiB });
  f.eraseBlock(2);
  f.eraseBlock(2);
  f.eraseBlock(0);
  f.write(0, new Uint8Array(300));
  assert.equal(Array.from(f.stats.eraseCountPerBlock), [1, 0, 2, 0]);
  assert.is(f.stats.erases, 3);
  assert.is(f.stats.bytesWritten, 300);
  f.cutAfter(1);
  throwsKind(() => f.eraseBlock(3), PowerCutError);
  assert.equal(Array.from(f.stats.eraseCountPerBlock), [1, 0, 2, 1], 'a torn erase still wears the block');
  const g = new NorFlash({ size: 8192, wear: [7, 9] });
  g.eraseBlock(1);
  assert.equal(Array.from(g.stats.eraseCountPerBlock), [7, 10]);
});
wear('timing model: erase per block, program per 256-byte page touched; charge() gets each', () => {
  const charged: number[] = [];
  const f = new NorFlash({ size: 8192, charge: (ms) => charged.push(ms) });
  f.eraseBlock(0);
  f.write(0, new Uint8Array(16)); // 1 page
  f.write(250, new Uint8Array(10)); // crosses 256: 2 pages
  f.write(512, new Uint8Array(512)); // exactly 2 pages
  f.read(0, 100); // free
  assert.equal(charged, [45, 0.7, 1.4, 1.4]);
  assert.ok(Math.abs(f.stats.busyMs - (45 + 0.7 * 5)) < 1e-9);
  f.cutAfter(1);
  throwsKind(() => f.eraseBlock(1), PowerCutError);
  assert.is(charged.length, 4, 'a torn op is not charged');
  const g = new NorFlash({ size: 4096, timing: { eraseMs: 400 } });
  assert.equal(g.timing, { eraseMs: 400, programMsPerPage: 0.7 });
  g.eraseBlock(0);
  g.write(0, new Uint8Array(1));
  assert.ok(Math.abs(g.stats.busyMs - 400.7) < 1e-9);
});
wear('snapshot is a copy; fromSnapshot round-trips the contents', () => {
  const f = new NorFlash({ size: 8192, seed: 3 });
  f.write(7, Uint8Array.of(1, 2, 3));
  f.eraseBlock(1);
  f.write(5000, new Uint8Array(100).fill(0x42));
  const snap = f.snapshot();
  snap[7] = 0xee;
  assert.is(f.read(7, 1)[0], 1);
  const g = NorFlash.fromSnapshot(f.snapshot(), { seed: 3 });
  assert.equal(g.snapshot(), f.snapshot());
  assert.is(g.size, 8192);
  assert.is(g.opCount, 0);
  const src = f.snapshot();
  const h = NorFlash.fromSnapshot(src);
  src[0] = 0;
  assert.is(h.read(0, 1)[0], 0xff, 'fromSnapshot copies its input');
  throwsKind(() => NorFlash.fromSnapshot(f.snapshot(), { size: 4096 }), FlashMisuseError, /snapshot is 8192 bytes/);
  throwsKind(() => NorFlash.fromSnapshot(new Uint8Array(5000)), FlashMisuseError, /multiple of blockSize/);
});

// ------------------------------------------------------------------- Region
const region = suite('flash: Region');
region('translates offsets and block indices onto the parent', () => {
  const f = new NorFlash({ size: 32 * KiB });
  const r = new Region(f, 8192, 8192, 'journal');
  assert.is(r.size, 8192);
  assert.is(r.blockSize, 4096);
  assert.is(r.blockCount, 2);
  r.write(10, Uint8Array.of(0x11, 0x22));
  assert.equal(Array.from(f.read(8202, 2)), [0x11, 0x22]);
  assert.equal(Array.from(r.read(10, 2)), [0x11, 0x22]);
  const into = new Uint8Array(2);
  assert.is(r.read(10, 2, into), into);
  f.write(8192 + 4096, Uint8Array.of(0));
  r.eraseBlock(1);
  assert.is(f.read(8192 + 4096, 1)[0], 0xff);
  assert.equal(Array.from(f.stats.eraseCountPerBlock), [0, 0, 0, 1, 0, 0, 0, 0]);
  r.eraseBlock(0);
  assert.is(f.read(8202, 1)[0], 0xff);
});
region('map() is the parent map narrowed, and live', () => {
  const f = new NorFlash({ size: 16 * KiB });
  const r = new Region(f, 4096, 4096);
  const m = r.map()!;
  assert.is(m.length, 4096);
  assert.is(m.buffer, f.map().buffer);
  assert.is(m.byteOffset, 4096);
  f.write(4096 + 5, Uint8Array.of(0x33));
  assert.is(m[5], 0x33);
  const noMap: BlockStore = { size: 8192, blockSize: 4096, read: (o, l) => f.read(o, l), write: (o, d) => f.write(o, d), eraseBlock: (b) => f.eraseBlock(b) };
  assert.is(new Region(noMap, 0, 4096).map(), undefined);
});
region('refuses accesses outside the window before they reach the parent', () => {
  const f = new NorFlash({ size: 16 * KiB });
  const r = new Region(f, 4096, 8192, 'slotB');
  throwsKind(() => r.read(8190, 3), RegionError, /region "slotB": read at 8190 length 3 is outside the region \(size 0x2000\)/);
  throwsKind(() => r.write(8192, Uint8Array.of(0)), RegionError, /write at 8192/);
  throwsKind(() => r.write(-1, Uint8Array.of(0)), RegionError);
  throwsKind(() => r.read(0.5, 1), RegionError);
  for (const b of [-1, 2, 0.5]) throwsKind(() => r.eraseBlock(b), RegionError, /erase of block .* outside the region \(2 blocks\)/);
  assert.is(f.opCount, 0);
  assert.ok(new RegionError('x') instanceof RangeError);
});
region('refuses windows that are misaligned or do not fit', () => {
  const f = new NorFlash({ size: 16 * KiB });
  throwsKind(() => new Region(f, 100, 4096), RegionError, /offset 100 is not a multiple of the block size 4096/);
  throwsKind(() => new Region(f, 0, 5000), RegionError, /size 5000 is not a positive multiple/);
  throwsKind(() => new Region(f, 0, 0), RegionError, /size 0/);
  throwsKind(() => new Region(f, 8192, 12288), RegionError, /does not fit in the parent/);
});
region('split() lays out consecutive regions; nested regions compose; power cuts pass through', () => {
  const f = new NorFlash({ size: 32 * KiB });
  const p = Region.split(f, [
    { name: 'slotA', blocks: 2 },
    { name: 'slotB', blocks: 2 },
    { name: 'overlay', blocks: 1 },
    { name: 'journal', blocks: 2 },
    { name: 'state', blocks: 1 },
  ]);
  assert.equal(
    Object.values(p).map((r) => [r.name, r.offset, r.size]),
    [['slotA', 0, 8192], ['slotB', 8192, 8192], ['overlay', 16384, 4096], ['journal', 20480, 8192], ['state', 28672, 4096]],
  );
  throwsKind(() => Region.split(f, [{ name: 'a', blocks: 8 }, { name: 'b', blocks: 1 }]), RegionError, /"b".*does not fit/);
  throwsKind(() => Region.split(f, [{ name: 'a', blocks: 1 }, { name: 'a', blocks: 1 }]), RegionError, /named twice/);
  throwsKind(() => Region.split(f, [{ name: 'a', blocks: 0 }]), RegionError, /positive integer/);
  const inner = new Region(p.journal, 4096, 4096, 'inner');
  inner.write(1, Uint8Array.of(0x44));
  assert.is(f.read(20480 + 4096 + 1, 1)[0], 0x44);
  inner.eraseBlock(0);
  assert.is(f.stats.eraseCountPerBlock[6], 1);
  assert.is(inner.map()!.byteOffset, 20480 + 4096);
  f.cutAfter(1);
  throwsKind(() => p.state.write(0, Uint8Array.of(0)), PowerCutError);
  throwsKind(() => p.slotA.read(0, 1), PowerCutError);
});

// --------------------------------------------------------------------- files
const files = suite('flash: save and load');
let dir = '';
files.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'subline-flash-'));
});
files.after(() => {
  rmSync(dir, { recursive: true, force: true });
});
files('round trip: contents and wear survive; no temporary file is left', () => {
  const f = new NorFlash({ size: 16 * KiB, seed: 5 });
  f.eraseBlock(1);
  f.eraseBlock(1);
  f.eraseBlock(3);
  f.write(123, Uint8Array.of(1, 2, 3));
  const path = join(dir, 'gate.flash');
  saveFlash(f, path);
  assert.equal(readdirSync(dir), ['gate.flash']);
  const g = loadFlash(path, { seed: 5 });
  assert.equal(g.snapshot(), f.snapshot());
  assert.is(g.size, f.size);
  assert.is(g.blockSize, f.blockSize);
  assert.equal(Array.from(g.stats.eraseCountPerBlock), [0, 2, 0, 1]);
  // Overwrite in place (atomic rename over the old file).
  g.write(0, Uint8Array.of(0));
  saveFlash(g, path);
  assert.is(loadFlash(path).read(0, 1)[0], 0);
  assert.equal(readdirSync(dir), ['gate.flash']);
  // Other block sizes and noRewrite on load.
  const h = new NorFlash({ size: 8192, blockSize: 1024 });
  h.write(0, new Uint8Array(16));
  saveFlash(h, join(dir, 'small.flash'));
  const k = loadFlash(join(dir, 'small.flash'), { noRewrite: true, blockSize: 1024 });
  assert.is(k.blockCount, 8);
  throwsKind(() => k.write(0, new Uint8Array(16)), FlashMisuseError, /already written/);
  rmSync(join(dir, 'small.flash'));
});
files('a snapshot taken after a power cut saves too', () => {
  const f = new NorFlash({ size: 4096, seed: 9 });
  f.cutAfter(1);
  throwsKind(() => f.write(0, new Uint8Array(64)), PowerCutError);
  saveFlash(f, join(dir, 'cut.flash'));
  assert.equal(loadFlash(join(dir, 'cut.flash')).snapshot(), f.snapshot());
  rmSync(join(dir, 'cut.flash'));
});
files('missing, corrupt, truncated and mismatched files are clear errors', () => {
  throwsKind(() => loadFlash(join(dir, 'nope.flash')), FlashFileError, /flash file not found: .*nope\.flash/);
  const path = join(dir, 'x.flash');
  const f = new NorFlash({ size: 8192 });
  f.write(0, Uint8Array.of(0x12));
  saveFlash(f, path);
  const good = readFileSync(path);
  const corrupt = (bytes: Uint8Array, re: RegExp): void => {
    writeFileSync(path, bytes);
    throwsKind(() => loadFlash(path), FlashFileError, re);
  };
  corrupt(new TextEncoder().encode('hello, not a flash'), /not a flash file/);
  corrupt(new Uint8Array(0), /not a flash file/);
  corrupt(good.subarray(0, good.length - 1), /holds 8191 content bytes, header says 8192/);
  corrupt(good.subarray(0, 30), /header length .* runs past the end|not JSON/);
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 1]! ^= 1;
  corrupt(flipped, /do not match their SHA-256/);
  const badHeader = Uint8Array.from(good);
  badHeader[12] = 0x7b + 1; // '{' -> '|'
  corrupt(badHeader, /header is not JSON/);
  writeFileSync(path, good);
  throwsKind(() => loadFlash(path, { size: 4096 }), FlashFileError, /size mismatch: file holds 8192 bytes, expected 4096/);
  throwsKind(() => loadFlash(path, { blockSize: 1024 }), FlashFileError, /block size mismatch/);
  assert.is(loadFlash(path).read(0, 1)[0], 0x12);
  rmSync(path);
  assert.not.ok(existsSync(path));
});

// ----------------------------------------------------------- Node versus XS
const xs = suite('flash: seeded scenario on Node and on XS');
const requests: FlashScenarioRequest[] = [
  { seed: 1, flashSeed: 1, noRewrite: false, steps: 400 },
  { seed: 2, flashSeed: 77, noRewrite: false, steps: 400 },
  { seed: 3, flashSeed: 3, noRewrite: true, steps: 400 },
];
xs('the scenario is deterministic on Node and keeps the invariants', () => {
  for (const req of requests) {
    const a = flashScenario(req);
    assert.equal(a.violations, []);
    assert.ok(a.cuts.length >= 5, `only ${a.cuts.length} cuts`);
    assert.ok(a.cuts.some((c) => c.kind === 'write') && a.cuts.some((c) => c.kind === 'erase'));
    assert.ok(a.charged > 0 && Math.abs(a.charged - a.stats.busyMs) < 1e-9);
    if (req.noRewrite) assert.ok(a.misuse > 0, 'noRewrite scenario hit no refused rewrite');
    assert.equal(flashScenario(req), a);
  }
  assert.not.equal(flashScenario({ ...requests[0]!, flashSeed: 2 }).hex, flashScenario(requests[0]!).hex);
});
xs('XS returns exactly what Node returns', async () => {
  const runner = await startXs('flash.entry.ts');
  try {
    for (const req of requests) {
      const { value } = await runner.call<FlashScenarioResult>(req);
      const node = flashScenario(req);
      assert.equal(value.violations, [], 'invariant violated on XS');
      assert.is(value.sha256, node.sha256);
      assert.equal(value, node);
    }
  } finally {
    await runner.close();
  }
});

for (const s of [nor, torn, cuts, wear, region, files, xs]) s.run();
