// A power-cut sweep as plain code (runs on Node and inside XS): set up a
// store, then for every mutating flash operation of one operation, cut
// there, reboot, and record the observable state. Returns the list of
// states (one per cut), so two engines can be compared exactly.

import { decide, Decision, DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { WhitelistStore } from '../../firmware/core/whitelist-store.js';
import type { Crypto } from '../../protocol/crypto.js';
import { buildImage, encodeDeltaRecords, type ImageModel } from '../../host-sim/central/image-builder.js';
import { mulberry32, NorFlash, PowerCutError } from '../../host-sim/flash/nor-flash.js';
import { BLOCK, installImage, makeRegions, regionsBlocks } from './whitelist-scenario.js';

const T0 = 1_795_000_000;
const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] } as const;

export function sweepSlotSwitch(crypto: Crypto): { ops: number; states: string[] } {
  const rnd = mulberry32(5);
  const keys = Array.from({ length: 24 }, () => Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256)));
  const model = (version: number, count: number): ImageModel => ({ epoch: 1, version, industries: [], institutions: [{ grant: everywhere }], credentials: keys.slice(0, count).map((key, i) => ({ key, institution: i % 2 === 0 ? 0 : undefined })), schedules: [] });
  const open = (f: NorFlash) => {
    const s = new WhitelistStore(makeRegions(f, 1), crypto);
    s.open();
    return s;
  };
  const probe = (s: WhitelistStore) => {
    const out = new Decision();
    const gate = { line: 'first' as const, direction: 'in' as const, lane: 'person' as const, policy: DEFAULT_POLICY.first, passbackSeconds: 0 };
    const tap = { now: T0, clockTrusted: true, headIssuedAt: T0, headExpires: T0 + 60, mode: 'normal' as const, journalFull: false };
    return `${s.version}:` + keys.map((k) => decide(new DataView(k.buffer).getUint32(0, false), new DataView(k.buffer).getUint32(4, false), gate, tap, s.whitelist, null, out).reason).join('');
  };
  const base = new NorFlash({ size: regionsBlocks(1) * BLOCK, blockSize: BLOCK });
  const s0 = open(base);
  installImage(s0, buildImage(model(10, 16)), crypto, 128);
  s0.applyDelta(1, 11, encodeDeltaRecords([{ op: 'revoke', key: keys[0]! }]));
  const snap = base.snapshot();
  const op = (s: WhitelistStore) => installImage(s, buildImage(model(20, 24)), crypto, 32);
  const counter = NorFlash.fromSnapshot(snap, { blockSize: BLOCK });
  const sc = open(counter);
  const before = counter.opCount;
  op(sc);
  const ops = counter.opCount - before;
  const states: string[] = [];
  for (let n = 1; n <= ops; n++) {
    const f = NorFlash.fromSnapshot(snap, { blockSize: BLOCK, seed: n });
    const s = open(f);
    f.cutAfter(n);
    try {
      op(s);
    } catch (e) {
      if (!(e instanceof PowerCutError)) throw e;
    }
    f.cancelCut();
    f.restore();
    states.push(probe(open(f)));
  }
  return { ops, states };
}

export interface StepwiseSweep {
  /** Mutating flash operations in the whole script. */
  ops: number;
  /** Per cut: index of the script state the store recovered to (before or after the step that was cut). */
  picks: number[];
  /** Broken promises found (must be empty). */
  violations: string[];
}

/**
 * Stepwise compaction under power cuts: a store whose overlay log holds stale
 * deltas (a newer image made them dead) and whose state log is nearly full of
 * superseded heads. The script interleaves single compaction steps of both
 * logs (as the maintenance scheduler runs them, one block per tick) with
 * deltas and heads appended while the compactions are half-done. Cut at every
 * mutating operation; after the reboot the store must hold exactly the state
 * before or after the step that was cut, then finish both compactions and
 * take another delta.
 */
export function sweepStepwiseCompaction(crypto: Crypto, noRewrite: boolean): StepwiseSweep {
  const rnd = mulberry32(9);
  const keys = Array.from({ length: 24 }, () => Uint8Array.from({ length: 8 }, () => Math.floor(rnd() * 256)));
  const model = (version: number, count: number): ImageModel => ({ epoch: 1, version, industries: [], institutions: [{ grant: everywhere }], credentials: keys.slice(0, count).map((key, i) => ({ key, institution: i % 2 === 0 ? 0 : undefined })), schedules: [] });
  const open = (f: NorFlash) => {
    const s = new WhitelistStore(makeRegions(f, 1), crypto, { writeOnce: noRewrite });
    s.open();
    return s;
  };
  const probe = (s: WhitelistStore) => {
    const out = new Decision();
    const gate = { line: 'first' as const, direction: 'in' as const, lane: 'person' as const, policy: DEFAULT_POLICY.first, passbackSeconds: 0 };
    const tap = { now: T0, clockTrusted: true, headIssuedAt: T0, headExpires: T0 + 60, mode: 'normal' as const, journalFull: false };
    return `${s.version}@${s.head?.issuedAt ?? 0}:` + keys.map((k) => decide(new DataView(k.buffer).getUint32(0, false), new DataView(k.buffer).getUint32(4, false), gate, tap, s.whitelist, null, out).reason).join(',');
  };
  const filler = (v: number) => encodeDeltaRecords(Array.from({ length: 40 }, (_, i) => ({ op: 'resumeSubject' as const, key: keys[(v + i) % 24]! })));
  const head = (s: WhitelistStore, at: number) => s.acceptHead({ epoch: 1, version: s.version, issuedAt: at, expires: at + 86400 }, T0, true);

  const base = new NorFlash({ size: regionsBlocks(1) * BLOCK, blockSize: BLOCK, noRewrite });
  const s0 = open(base);
  installImage(s0, buildImage(model(10, 16)), crypto, 128);
  let v = 11;
  while (s0.overlayFill < 0.9) if (s0.applyDelta(1, v++, filler(v)) !== null) throw new Error('setup delta');
  const snap = base.snapshot();
  // After every boot (write-once flash compacts sealed logs at boot): a newer image makes
  // those deltas dead, a few live ones follow, and superseded heads fill the state log.
  const prep = (s: WhitelistStore): void => {
    let pv = s.version + 1;
    if (installImage(s, buildImage(model(pv, 20)), crypto, 128) !== null) throw new Error('setup image');
    for (let i = 0; i < 3; i++) if (s.applyDelta(1, ++pv, encodeDeltaRecords([{ op: 'revoke', key: keys[i]! }])) !== null) throw new Error('live delta');
    let at = T0 - 1000;
    while (!s.stateCompaction.compactionDue) if (head(s, ++at) !== null) throw new Error('setup head');
    if (!s.overlayCompaction.compactionDue) throw new Error('overlay compaction not due after setup');
  };

  // The script: c = one overlay step, s = one state step (each only while due), d = a delta, h = a head.
  const script = 'ccdcshccsdscchccccccdhcscscscscscscscscs'.split('');
  const run = (s: WhitelistStore, states: string[] | null): void => {
    let nv = s.version;
    let nat = s.head?.issuedAt ?? 0;
    for (const step of script) {
      let e: string | null = null;
      if (step === 'c') {
        if (s.overlayCompaction.compactionDue) s.overlayCompaction.compactStep(1);
      } else if (step === 's') {
        if (s.stateCompaction.compactionDue) s.stateCompaction.compactStep(1);
      }
      else if (step === 'd') e = s.applyDelta(1, ++nv, encodeDeltaRecords([{ op: 'revoke', key: keys[nv % 24]! }]));
      else e = head(s, ++nat);
      if (e !== null) throw new Error(`step ${step}: ${e}`);
      states?.push(probe(s));
    }
  };
  const counting = NorFlash.fromSnapshot(snap, { blockSize: BLOCK, noRewrite });
  const sc = open(counting);
  prep(sc);
  const states = [probe(sc)];
  const before = counting.opCount;
  run(sc, states);
  const ops = counting.opCount - before;
  const violations: string[] = [];
  if (sc.overlayCompaction.compactionDue || sc.stateCompaction.compactionDue) violations.push('the script does not finish both compactions');
  const picks: number[] = [];
  for (let n = 1; n <= ops; n++) {
    const f = NorFlash.fromSnapshot(snap, { blockSize: BLOCK, seed: n * 31, noRewrite });
    const s = open(f);
    prep(s);
    f.cutAfter(n);
    let done = 0;
    const track: string[] = [];
    try {
      run(s, track);
    } catch (e) {
      if (!(e instanceof PowerCutError)) throw e;
    }
    done = track.length; // steps completed before the cut; the cut hit step `done`
    f.cancelCut();
    f.restore();
    const r = open(f);
    const got = probe(r);
    const pick = got === states[done + 1] ? done + 1 : got === states[done] ? done : -1;
    if (pick < 0) violations.push(`cut ${n} (in step ${done} '${script[done]}'): got ${got}, want ${states[done]} or ${states[done + 1]}`);
    picks.push(pick);
    // The recovered store finishes both compactions, stays the same, and takes the next delta.
    for (let i = 0; i < 64 && (r.overlayCompaction.compactionDue || r.stateCompaction.compactionDue); i++) {
      if (r.overlayCompaction.compactionDue) r.overlayCompaction.compactStep(1);
      if (r.stateCompaction.compactionDue) r.stateCompaction.compactStep(1);
    }
    if (r.overlayCompaction.compactionDue || r.stateCompaction.compactionDue) violations.push(`cut ${n}: compaction does not finish after the reboot`);
    if (probe(r) !== got) violations.push(`cut ${n}: compaction after the reboot changed the state`);
    const e = r.applyDelta(1, r.version + 1, encodeDeltaRecords([{ op: 'revoke', key: keys[5]! }]));
    if (e !== null) violations.push(`cut ${n}: the next delta is refused: ${e}`);
    if (probe(open(f)) !== probe(r)) violations.push(`cut ${n}: the next delta is not durable`);
  }
  return { ops, picks, violations };
}
