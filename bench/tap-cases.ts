// The tap benchmark workload (Node and XS run this same code): a whole gate
// on simulated flash holding N credentials, an EM4100 reader (RDM6300 ASCII
// frames) in front. One tap = frame bytes pushed into the decoder -> key hash
// -> decision -> durable journal append (write + read-back) -> relay command.
// Timed from push() to the relay output call.

import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { Gate } from '../firmware/core/gate.js';
import { partitionBytes, type LayoutOptions } from '../firmware/core/partition.js';
import { Em4100AsciiDecoder } from '../firmware/drivers/em4100-ascii.js';
import type { InputName, Inputs, Outputs } from '../firmware/ports.js';
import { NullNet } from '../host-sim/adapters/null-net.js';
import { credentialKey } from '../protocol/credential-key.js';
import type { Crypto } from '../protocol/crypto.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { buildImage, chunkImage } from '../host-sim/central/image-builder.js';
import { mulberry32, NorFlash } from '../host-sim/flash/nor-flash.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { em4100Frame } from '../host-sim/xs-gate/reader-frames.js';

export const T0 = 1_795_000_000;
const DK = new Uint8Array(32).fill(9);
/** The bench gate's MAC key (fixed): the benches' central seals acks with it. */
export const BENCH_GATE_KEY = new Uint8Array(32).fill(0x5a);
export const BENCH_GATE_KEY_ID = 1;

export function tapLayout(credentials: number): LayoutOptions {
  return { credentials, journalSectors: 400 };
}

export function provisioning(): ProvisioningRecord {
  return {
    gate: 'bench-gate', site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
    trustedKeys: [new Uint8Array(32).fill(1)], deploymentKey: DK, gateKey: BENCH_GATE_KEY, gateKeyId: BENCH_GATE_KEY_ID, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0,
  };
}

/** Raw 5-byte EM4100 ids; the first `enrolled` are in the whitelist. */
export function rawIds(count: number, seed = 3): Uint8Array {
  const rnd = mulberry32(seed);
  const out = new Uint8Array(count * 5);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  return out;
}


/** Node side: the gate's flash after installing an image of `n` enrolled ids. */
export function provisionTapFlash(n: number, ids: Uint8Array, crypto: Crypto): Uint8Array {
  const layout = tapLayout(n);
  const flash = new NorFlash({ size: partitionBytes(layout), blockSize: 4096 });
  const gate = makeGate(flash, layout, crypto, new VirtualTime({ wallSeconds: T0 }));
  gate.open();
  const keys = [];
  for (let i = 0; i < n; i++) keys.push({ key: credentialKey(crypto, DK, 1, ids.subarray(i * 5, i * 5 + 5)), grant: { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const });
  const image = buildImage({ epoch: 1, version: 1, industries: [], institutions: [], credentials: keys, schedules: [] });
  const ci = chunkImage(image, 16384, crypto);
  const s = gate.store;
  if (s.beginInstall({ epoch: 1, version: 1, imageSize: image.length, chunkSize: 16384 }, ci.hashes) !== null) throw new Error('begin');
  while (!s.eraseStep());
  ci.chunks.forEach((c, i) => {
    if (s.writeChunk(i, c) !== null) throw new Error('chunk');
  });
  if (s.commitInstall() !== null) throw new Error('commit');
  if (s.acceptHead({ epoch: 1, version: 1, issuedAt: T0, expires: T0 + 86400 }, T0, true) !== null) throw new Error('head');
  for (let i = 0; i < 4; i++) gate.maintain();
  return flash.snapshot();
}

function makeGate(flash: NorFlash, layout: LayoutOptions, crypto: Crypto, vt: VirtualTime, outputs?: Outputs): Gate {
  const inputs: Inputs = { read: (_i: InputName) => false, onChange: () => {} };
  return new Gate({ provisioning: provisioning(), flash, layout, clock: vt, timers: vt, net: new NullNet(), crypto, outputs: outputs ?? { set: () => true }, inputs, random: () => 0.5 });
}

export interface TapRun {
  samplesUs: number[];
  granted: number;
  recoveryMs: number;
}

/** Boots a gate from the flash bytes, then taps `count` times (70% enrolled ids), timing push -> relay. */
export function runTaps(flashBytes: Uint8Array, n: number, ids: Uint8Array, count: number, crypto: Crypto, now: () => number): TapRun {
  const flash = NorFlash.fromSnapshot(flashBytes, { blockSize: 4096 });
  const vt = new VirtualTime({ wallSeconds: T0 + 60 });
  let relayAt = -1;
  let granted = 0;
  const outputs: Outputs = {
    set: (o, on) => {
      if (o === 'relay' && on) {
        relayAt = now();
        granted++;
      }
      return true;
    },
  };
  const t0 = now();
  const gate = makeGate(flash, tapLayout(n), crypto, vt, outputs);
  gate.open();
  const recoveryMs = now() - t0;
  const reader = new Em4100AsciiDecoder({ onRead: (r) => gate.onRead(r) });
  const frames: Uint8Array[] = [];
  const rnd = mulberry32(11);
  const unknown = rawIds(64, 99);
  for (let i = 0; i < 256; i++) {
    const pick = i % 10 < 7 ? ids.subarray(Math.floor(rnd() * n) * 5).subarray(0, 5) : unknown.subarray((i % 64) * 5, (i % 64) * 5 + 5);
    frames.push(em4100Frame(pick));
  }
  const samplesUs: number[] = [];
  for (let i = 0; i < count; i++) {
    relayAt = -1;
    const a = now();
    reader.push(frames[i % frames.length]!, vt.monotonicMs());
    if (relayAt >= 0) samplesUs.push((relayAt - a) * 1000);
    vt.advance(10_000); // the lane closes (not taken) before the next tap; maintenance runs
  }
  gate.close();
  return { samplesUs, granted, recoveryMs };
}
