// Power cut at every flash write and erase (one cut per run, torn writes
// included) during image install, slot switch, overlay append, overlay
// compaction and head acceptance. After the cut and a reboot the store must
// hold exactly the old or the new state, never a mix; a change reported
// durable is never lost; and the recovered store takes the operation again.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decide, Decision, DEFAULT_POLICY } from '../firmware/core/decision.js';
import { WhitelistStore } from '../firmware/core/whitelist-store.js';
import { nobleCrypto, toHex } from '../protocol/index.js';
import { Reason } from '../protocol/reasons.js';
import { buildImage, encodeDeltaRecords, type ImageModel } from '../host-sim/central/image-builder.js';
import { mulberry32, NorFlash, PowerCutError } from '../host-sim/flash/nor-flash.js';
import { BLOCK, installImage, makeRegions, regionsBlocks } from './helpers/whitelist-scenario.js';
import { sweepSlotSwitch, sweepStepwiseCompaction } from './helpers/powercut-scenario.js';
import { startXs } from './helpers/xs.js';

const T0 = 1_795_000_000;
const rnd = mulberry32(7);
const keys = Array.from({ length: 40 }, () => Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256)));
const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] } as const;

function model(version: number, count: number): ImageModel {
  return {
    epoch: 1,
    version,
    industries: [{ grant: { ...everywhere, lanes: ['goods'] } }],
    institutions: [{ industry: 0, grant: everywhere }, { suspended: version % 2 === 0 }],
    credentials: keys.slice(0, count).map((key, i) => ({ key, institution: i % 3 === 2 ? undefined : i % 2, grant: i % 5 === 0 ? { ...everywhere, validUntil: T0 + version } : undefined })),
    schedules: [],
  };
}

const SLOT_BLOCKS = 2;
const crypto = nobleCrypto;

function openStore(flash: NorFlash): WhitelistStore {
  const s = new WhitelistStore(makeRegions(flash, SLOT_BLOCKS), crypto, { writeOnce: flash.noRewrite });
  s.open();
  return s;
}

/** The observable state: version plus the decision for every key (and an unknown one). */
function probe(store: WhitelistStore): string {
  const out = new Decision();
  const gate = { line: 'first' as const, direction: 'in' as const, lane: 'person' as const, policy: DEFAULT_POLICY.first, passbackSeconds: 0 };
  const tap = { now: T0, clockTrusted: true, headIssuedAt: T0 - 10, headExpires: T0 + 86400, mode: 'normal' as const, journalFull: false };
  const reasons = [...keys, new Uint8Array(8)].map((k) => {
    const v = new DataView(k.buffer, k.byteOffset, 8);
    return decide(v.getUint32(0, false), v.getUint32(4, false), gate, tap, store.whitelist, null, out).reason;
  });
  const head = store.head;
  return `v${store.epoch}.${store.version} head:${head === null ? '-' : `${head.version}@${head.issuedAt}`} ${reasons.join(',')}`;
}

type Op = (store: WhitelistStore) => unknown;

/**
 * Runs `setup` on fresh flash, snapshots, then runs `op` once to count its
 * mutating flash operations; then for every cut point re-runs `op` from the
 * snapshot with a cut, reboots, and checks the state is old or new.
 */
function everyCut(name: string, setup: Op, op: Op, opts: { noRewrite?: boolean; mustBeNew?: Op } = {}): { cuts: number; sawOld: number; sawNew: number } {
  const size = regionsBlocks(SLOT_BLOCKS) * BLOCK;
  const base = new NorFlash({ size, blockSize: BLOCK, noRewrite: opts.noRewrite ?? false });
  setup(openStore(base));
  const snap = base.snapshot();
  const oldState = probe(openStore(NorFlash.fromSnapshot(snap, { blockSize: BLOCK })));
  const counting = NorFlash.fromSnapshot(snap, { blockSize: BLOCK, noRewrite: opts.noRewrite ?? false });
  const s0 = openStore(counting);
  const before = counting.opCount;
  const result = op(s0);
  assert.is(result, null, `${name}: the operation itself fails: ${String(result)}`);
  const ops = counting.opCount - before;
  const newState = probe(openStore(counting));
  assert.ok(oldState !== newState, `${name}: the operation changes nothing observable`);
  let sawOld = 0;
  let sawNew = 0;
  for (let n = 1; n <= ops; n++) {
    const flash = NorFlash.fromSnapshot(snap, { blockSize: BLOCK, seed: n * 7919, noRewrite: opts.noRewrite ?? false });
    const store = openStore(flash);
    flash.cutAfter(n);
    let cut = false;
    try {
      op(store);
    } catch (e) {
      if (!(e instanceof PowerCutError)) throw e;
      cut = true;
    }
    assert.ok(cut, `${name}: cut ${n} of ${ops} did not fire`);
    flash.restore();
    const rebooted = openStore(flash);
    const state = probe(rebooted);
    if (state === oldState) sawOld++;
    else if (state === newState) sawNew++;
    else assert.unreachable(`${name}: cut at op ${n}/${ops} left a mixed state:\n old ${oldState}\n new ${newState}\n got ${state}`);
    // The recovered store accepts the same operation again (logs sealed by the tear are compacted).
    if (state === oldState) {
      assert.is(op(rebooted), null, `${name}: retry after cut ${n} failed`);
      assert.is(probe(rebooted), newState, `${name}: retry after cut ${n} gave another state`);
      assert.is(probe(openStore(flash)), newState, `${name}: retry after cut ${n} not durable`);
    }
  }
  return { cuts: ops, sawOld, sawNew };
}

const install = (version: number, count: number): Op => (s) => installImage(s, buildImage(model(version, count)), crypto, 128);
const delta = (version: number, ops: Parameters<typeof encodeDeltaRecords>[0]): Op => (s) => s.applyDelta(1, version, encodeDeltaRecords(ops));
const head = (version: number, issuedAt: number): Op => (s) => s.acceptHead({ epoch: 1, version, issuedAt, expires: issuedAt + 86400 }, T0, true);

const t = suite('whitelist: power cut at every write and erase');
for (const noRewrite of [false, true]) {
  const mode = noRewrite ? ' (flash encryption: no rewrite)' : '';
  t(`first image install${mode}`, () => {
    const r = everyCut('install', () => null, install(10, 30), { noRewrite });
    assert.ok(r.cuts >= 6 && r.sawOld > 0, JSON.stringify(r));
  });
  t(`slot switch to a newer image over base + overlay${mode}`, () => {
    const r = everyCut('switch', (s) => [install(10, 30)(s), delta(11, [{ op: 'revoke', key: keys[1]! }])(s)], install(20, 36), { noRewrite });
    assert.ok(r.cuts >= 6 && r.sawOld > 0, JSON.stringify(r));
  });
  t(`overlay append: a revocation${mode}`, () => {
    everyCut('revoke', install(10, 30), delta(11, [{ op: 'revoke', key: keys[3]! }, { op: 'suspendInstitution', institution: 0 }]), { noRewrite });
  });
  t(`overlay append after earlier deltas: earlier revocations stay durable${mode}`, () => {
    everyCut(
      'second delta',
      (s) => [install(10, 30)(s), delta(11, [{ op: 'revoke', key: keys[4]! }])(s), delta(12, [{ op: 'add', key: keys[35]!, institution: 0 }])(s)],
      delta(13, [{ op: 'revoke', key: keys[6]! }]),
      { noRewrite },
    );
  });
  t(`head acceptance (freshness and time floor)${mode}`, () => {
    everyCut('head', (s) => [install(10, 30)(s), head(10, T0 - 100)(s)], head(11, T0 - 50), { noRewrite });
  });
}

for (const noRewrite of [false, true]) {
  t(`stepwise compaction of the overlay and state logs, with deltas and heads between the steps${noRewrite ? ' (flash encryption: no rewrite)' : ''}`, () => {
    const r = sweepStepwiseCompaction(crypto, noRewrite);
    assert.equal(r.violations, []);
    assert.ok(r.ops >= 12, `the script erases and writes (${r.ops} ops)`);
    // Both outcomes of a cut step occur: the state before it (a cut erase, a torn append) and after it.
    assert.ok(new Set(r.picks).size > 3, `cuts land in many steps: ${r.picks.join(',')}`);
  });
}

t('applyDelta and acceptHead never erase: a full log refuses with compacting, then takes it once compaction ran', () => {
  const size = regionsBlocks(SLOT_BLOCKS) * BLOCK;
  const flash = new NorFlash({ size, blockSize: BLOCK });
  const s = openStore(flash);
  assert.is(install(10, 30)(s), null);
  let v = 11;
  const filler = () => Array.from({ length: 40 }, (_, i) => ({ op: 'resumeSubject' as const, key: keys[(v + i) % 30]! }));
  while (s.overlayFill < 0.9) assert.is(delta(v++, filler())(s), null);
  assert.is(install(v, 32)(s), null); // every delta so far is dead now
  const erases = flash.stats.erases;
  // Append until the log refuses: no erase on the way, and the refusal changes nothing.
  let refused: string | null = null;
  for (let i = 0; i < 100 && refused === null; i++) {
    const e = delta(v + 1, filler())(s) as string | null;
    if (e === null) v++;
    else refused = e;
  }
  assert.is(refused, 'compacting', 'out of room, but compaction can make room');
  assert.is(flash.stats.erases, erases, 'applyDelta never erased');
  assert.ok(s.overlayBlocked && s.overlayCompaction.appendsBlocked && s.overlayCompaction.compactionDue);
  const stateBefore = probe(s);
  assert.is(probe(openStore(NorFlash.fromSnapshot(flash.snapshot(), { blockSize: BLOCK }))), stateBefore, 'the refused delta left nothing on flash');
  // The same delta after the compaction ran (stepwise, as the scheduler does).
  let steps = 0;
  while (s.overlayCompaction.compactionDue && steps < 100) steps += s.overlayCompaction.compactStep(1);
  assert.ok(steps >= 5, `compaction took ${steps} steps (one block each)`);
  assert.is(flash.stats.erases - erases, 5, 'one half erased, block by block');
  assert.ok(!s.overlayBlocked);
  assert.is(delta(v + 1, filler())(s), null);
  // A head on a full state log: refused the same way, accepted after compaction.
  let at = T0 - 5000;
  let e: string | null = null;
  for (let i = 0; i < 300 && e === null; i++) e = s.acceptHead({ epoch: 1, version: s.version, issuedAt: ++at, expires: at + 86400 }, T0, true);
  assert.is(e, 'compacting');
  assert.is(s.head?.issuedAt, at - 1, 'the refused head is not accepted');
  while (s.stateCompaction.compactionDue && steps < 200) steps += s.stateCompaction.compactStep(1);
  assert.is(s.acceptHead({ epoch: 1, version: s.version, issuedAt: at, expires: at + 86400 }, T0, true), null);
  assert.is(openStore(flash).head?.issuedAt, at);
});

t('a revocation reported durable survives every later cut', () => {
  const size = regionsBlocks(SLOT_BLOCKS) * BLOCK;
  // Key 22: granted before the revocation (institution 0's grant), not in the later
  // image (20 credentials), and never revoked again by the later deltas (they touch
  // keys 0-19 only): after recovery nothing but the one durable revocation denies it.
  const REVOKED = 22;
  const k = keys[REVOKED]!;
  const v = new DataView(k.buffer, k.byteOffset, 8);
  const probeKey = (st: WhitelistStore) => decide(v.getUint32(0, false), v.getUint32(4, false), { line: 'first', direction: 'in', lane: 'person', policy: DEFAULT_POLICY.first, passbackSeconds: 0 }, { now: T0, clockTrusted: true, headIssuedAt: T0, headExpires: T0 + 9, mode: 'normal', journalFull: false }, st.whitelist, null, new Decision());
  for (let n = 1; n <= 60; n++) {
    const flash = new NorFlash({ size, blockSize: BLOCK, seed: n });
    const s = openStore(flash);
    install(10, 30)(s);
    assert.ok(probeKey(s).granted, `key ${REVOKED} is granted before its revocation`);
    assert.is(delta(11, [{ op: 'revoke', key: k }])(s), null);
    assert.is(probeKey(s).reason, Reason.revoked, 'revoked once the delta is durable');
    flash.cutAfter(n);
    try {
      for (let ver = 12; ver < 40; ver++) delta(ver, [{ op: 'revoke', key: keys[(ver * 7) % 20]! }])(s);
      install(50, 20)(s);
    } catch (e) {
      if (!(e instanceof PowerCutError)) throw e;
    }
    flash.cancelCut();
    flash.restore();
    const r = openStore(flash);
    const d = probeKey(r);
    // Still revoked (overlay on the old image), or the new image, which does not hold the credential.
    const expected = r.version === 50 ? Reason.unknown_credential : Reason.revoked;
    assert.ok(!d.granted && d.reason === expected, `cut ${n}: revoked credential ${toHex(k)} gave reason ${d.reason} (granted ${d.granted}) after recovery at version ${r.version}, expected ${expected}`);
  }
});
t.run();

const xs = suite('whitelist: power-cut recovery on XS equals Node');
xs('slot switch sweep: every cut recovers to the same state on both engines', async () => {
  const node = sweepSlotSwitch(crypto);
  assert.ok(node.ops > 5);
  const states = new Set(node.states);
  assert.ok(states.size >= 1 && states.size <= 2, `old or new only, got ${[...states].join(' | ')}`);
  const x = await startXs('powercut.entry.ts');
  try {
    assert.equal((await x.call<typeof node>({})).value, node);
  } finally {
    await x.close();
  }
});
xs('stepwise compaction sweep: every cut recovers to the same state on both engines (and write-once)', async () => {
  const x = await startXs('powercut.entry.ts');
  try {
    for (const noRewrite of [false, true]) {
      const node = sweepStepwiseCompaction(crypto, noRewrite);
      const got = (await x.call<typeof node>({ stepwise: true, noRewrite })).value;
      assert.equal(got.violations, []);
      assert.equal(got, node);
    }
  } finally {
    await x.close();
  }
});
xs.run();
