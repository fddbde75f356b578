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
