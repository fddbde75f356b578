// XS side of the store benchmark. Binary inputs (the gate's flash, the tap
// keys) come from the host through issueCommand, not as JSON.
import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { decide, Decision } from '../../firmware/core/decision.js';
import type { WhitelistStore } from '../../firmware/core/whitelist-store.js';
import { decideLoop, GATE, runStore, T0 } from '../store-cases.js';
import { buildNaive, decideNaive } from '../store-naive.js';

declare const issueCommand: (request: ArrayBuffer) => ArrayBuffer;
declare const performance: { now(): number };
declare const gc: () => void;

const te = new TextEncoder();
const fetchBytes = (what: string): Uint8Array => {
  const b = te.encode(what);
  return new Uint8Array(issueCommand(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
};

let flash: Uint8Array | null = null;
let taps: Uint32Array | null = null;
let imageBytes = 0;
let loop: (() => number) | null = null;
let naive: ReturnType<typeof buildNaive> | null = null;
let keep: unknown = null;

serveJson((req: { cmd: string; count?: number; imageBytes?: number }) => {
  switch (req.cmd) {
    case 'load': {
      flash = fetchBytes('flash');
      const t = fetchBytes('taps');
      taps = new Uint32Array(t.buffer, t.byteOffset, t.byteLength / 4);
      imageBytes = req.imageBytes ?? 0;
      gc();
      return { flashBytes: flash.length };
    }
    case 'run':
      return runStore(flash!, imageBytes, taps!, req.count ?? 1000, nobleCrypto, () => performance.now());
    case 'prepare': {
      const d = decideLoop(flash!, imageBytes, taps!, req.count ?? 1000, nobleCrypto);
      loop = d.run;
      keep = d.store;
      gc();
      return { ramBytes: d.store.whitelist.overlay.ramBytes };
    }
    case 'loop':
      return { granted: loop!() };
    case 'timed': {
      // Per-decision timing on the store kept by 'prepare'.
      const store = keep as WhitelistStore;
      const tap = { now: T0, clockTrusted: true, headIssuedAt: T0 - 60, headExpires: T0 + 86400, mode: 'normal' as const, journalFull: false };
      const out = new Decision();
      const n = taps!.length / 2;
      const samplesUs: number[] = [];
      for (let i = 0; i < (req.count ?? 1000); i++) {
        const j = (i % n) * 2;
        const a = performance.now();
        decide(taps![j]!, taps![j + 1]!, GATE, tap, store.whitelist, null, out);
        samplesUs.push((performance.now() - a) * 1000);
      }
      return { samplesUs };
    }
    case 'naive-build': {
      const img = flash!.subarray(0, imageBytes);
      naive = buildNaive(img.slice());
      gc();
      return { size: naive.size };
    }
    case 'naive-run': {
      const n = taps!.length / 2;
      const samples: number[] = [];
      let granted = 0;
      for (let i = 0; i < (req.count ?? 1000); i++) {
        const j = (i % n) * 2;
        const a = performance.now();
        if (decideNaive(naive!, taps![j]!, taps![j + 1]!, T0)) granted++;
        samples.push((performance.now() - a) * 1000);
      }
      return { samplesUs: samples, granted };
    }
    case 'gc':
      gc();
      return {};
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
});
