// The device check's cases: run on Node (test/device-sdk.test.ts) and inside
// a program built with the Moddable SDK (program/check-main.ts, mcconfig -p x-cli-lin),
// on the same input; each engine prints one line per case and the lines must be
// byte-identical. No Node APIs here: this module is compiled by the SDK's tsc
// and xsc.
//
// Cases: every protocol golden vector; the RFC 4231 HMAC-SHA256 vectors (the
// SDK side computes them with the native Digest); whitelist images built, installed on
// simulated NOR flash and decided on (scenarios chosen on the Node side so that
// every reason code of the engine occurs); the event journal appended, read,
// acknowledged and reopened after a simulated reboot; a delta applied to the
// overlay, kept across a reboot.

import type { Crypto } from '../../protocol/crypto.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { crc32 } from '../../protocol/crc32.js';
import { runVector, type VectorFile } from '../../protocol/vectors.js';
import { HMAC_SHA256_VECTORS } from '../../protocol/hmac-vectors.js';
import { Journal } from '../../firmware/core/journal.js';
import { createRecord, EventType } from '../../protocol/event-record.js';
import { decide, Decision, DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { WhitelistStore } from '../../firmware/core/whitelist-store.js';
import { buildImage, encodeDeltaRecords } from '../../host-sim/central/image-builder.js';
import { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { BLOCK, installImage, makeRegions, regionsBlocks, runScenario, type Scenario } from '../helpers/whitelist-scenario.js';

export interface DeviceCheckInput {
  /**
   * The golden vector files. The SDK program gets them as separate files and
   * reads one at a time (all of them at once exceed the device's 2 MiB chunk
   * heap, which the program keeps), so here it is empty there.
   */
  readonly vectorFiles: readonly VectorFile[];
  /** Trusted public keys of the signed vectors, hex. */
  readonly trustedKeys: readonly string[];
  readonly scenarios: readonly Scenario[];
  readonly journal: { readonly sectors: number; readonly sectorSize: number; readonly appends: number };
}

/** The lines of one vector file's cases. */
export function vectorLines(file: VectorFile, trustedKeys: readonly string[], crypto: Crypto): string[] {
  const keys = trustedKeys.map(fromHex);
  return file.vectors.map((v) => `vector ${file.type} ${v.name} ${JSON.stringify(runVector(file, v, crypto, keys))}`);
}

/** Every case's line, in order: the vectors of input.vectorFiles, then the rest. */
export function runDeviceCases(input: DeviceCheckInput, crypto: Crypto): string[] {
  const lines: string[] = [];
  for (const file of input.vectorFiles) lines.push(...vectorLines(file, input.trustedKeys, crypto));
  for (const v of HMAC_SHA256_VECTORS) lines.push(`hmac ${v.name} ${toHex(crypto.hmacSha256(fromHex(v.keyHex), fromHex(v.dataHex)))}`);
  input.scenarios.forEach((s, i) => lines.push(`scenario ${i} ${JSON.stringify(runScenario(s, crypto))}`));
  journalCase(input.journal, lines);
  overlayCase(crypto, lines);
  return lines;
}

function journalCase(g: DeviceCheckInput['journal'], lines: string[]): void {
  const epoch = 0x5eed_0002;
  const flash = new NorFlash({ size: g.sectors * g.sectorSize, blockSize: g.sectorSize });
  let j = new Journal(flash, { epoch });
  const first = j.open();
  lines.push(`journal open lastSeq=${first.lastSeq} acked=${first.acked} head=${first.headSector}`);
  j.maintain(2);
  const rec = createRecord();
  const types = [EventType.decision_granted, EventType.decision_denied, EventType.passage_completed, EventType.alarm];
  let full = 0;
  for (let i = 0; i < g.appends; i++) {
    rec.time = 1_790_000_000 + i;
    for (let k = 0; k < 8; k++) rec.key[k] = (Math.imul(i + 7, 0x9e3779b1) >>> (k * 3)) & 0xff;
    rec.type = types[i % types.length]!;
    rec.reason = i % 21;
    rec.level = i % 4;
    rec.clockUntrusted = i % 7 === 0;
    if (j.append(rec) === 'full') full++;
    if (i % 64 === 63) j.maintain(1);
  }
  lines.push(`journal appended n=${g.appends} lastSeq=${j.lastSeq} full=${full} backlog=${j.backlog}`);
  const batch = new Uint8Array(16 * 32);
  const b = j.readBatch(1, 32, batch);
  lines.push(`journal batch first=${b.first} count=${b.count} crc32=${crc32(batch.subarray(0, b.count * 16)).toString(16)}`);
  const ackTo = Math.floor(j.lastSeq / 2);
  j.ack(ackTo);
  j.maintain(4);
  lines.push(`journal acked=${j.acked} durable=${j.ackedDurable} backlog=${j.backlog}`);
  // Reboot: the RAM state is gone, the flash stays.
  j = new Journal(NorFlash.fromSnapshot(flash.snapshot(), { blockSize: g.sectorSize }), { epoch });
  const rep = j.open();
  lines.push(`journal reopened lastSeq=${rep.lastSeq} acked=${rep.acked} gaps=${rep.gapsFound} sectorsUsed=${rep.sectorsUsed}`);
  let sum = 0;
  let count = 0;
  let tombstones = 0;
  j.read(ackTo + 1, 1 << 20, (seq, r) => {
    count++;
    if (r.type === EventType.gap) tombstones++;
    sum = (Math.imul(sum, 31) + seq * 7 + r.time + r.type * 131 + r.reason * 17 + r.level + (r.clockUntrusted ? 1 : 0) + (r.key[0] ?? 0) + (r.key[7] ?? 0) * 256) >>> 0;
  });
  lines.push(`journal read from=${ackTo + 1} count=${count} tombstones=${tombstones} sum=${sum.toString(16)}`);
  const after = j.append(rec);
  lines.push(`journal append after reboot seq=${String(after)}`);
}

function overlayCase(crypto: Crypto, lines: string[]): void {
  const key = (i: number) => Uint8Array.from({ length: 8 }, (_, k) => (i * 37 + k * 11 + 1) & 0xff);
  const grant = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;
  const image = buildImage({ epoch: 3, version: 10, industries: [], institutions: [], credentials: [0, 1, 2, 3].map((i) => ({ key: key(i), grant })), schedules: [] });
  const slotBlocks = Math.ceil(image.length / BLOCK);
  const flash = new NorFlash({ size: regionsBlocks(slotBlocks) * BLOCK, blockSize: BLOCK });
  let store = new WhitelistStore(makeRegions(flash, slotBlocks), crypto);
  store.open();
  const installed = installImage(store, image, crypto);
  const now = 1_790_000_000;
  const head = store.acceptHead({ epoch: 3, version: 10, issuedAt: now - 60, expires: now + 86400 }, now, true);
  lines.push(`overlay install=${String(installed)} head=${String(head)} version=${store.version}`);
  const delta = encodeDeltaRecords([{ op: 'revoke', key: key(1) }, { op: 'add', key: key(9) }, { op: 'suspendSubject', key: key(2) }]);
  lines.push(`overlay delta 11=${String(store.applyDelta(3, 11, delta))} replay=${String(store.applyDelta(3, 11, delta))} version=${store.version}`);
  const decideAll = (label: string): void => {
    const out = new Decision();
    const gate = { line: 'first', direction: 'in', lane: 'person', policy: DEFAULT_POLICY.first, passbackSeconds: 0 } as const;
    const tap = { now, clockTrusted: true, headIssuedAt: now - 60, headExpires: now + 86400, mode: 'normal', journalFull: false } as const;
    const seen: string[] = [];
    for (const i of [0, 1, 2, 3, 9, 42]) {
      const k = key(i);
      const v = new DataView(k.buffer, k.byteOffset, 8);
      decide(v.getUint32(0, false), v.getUint32(4, false), gate, tap, store.whitelist, null, out);
      seen.push(`${toHex(k)}:${out.granted ? 'granted' : 'denied'}/${out.reason}`);
    }
    lines.push(`overlay ${label} ${seen.join(' ')}`);
  };
  decideAll('decisions');
  store = new WhitelistStore(makeRegions(NorFlash.fromSnapshot(flash.snapshot(), { blockSize: BLOCK }), slotBlocks), crypto);
  const rep = store.open();
  lines.push(`overlay reopened version=${store.version} deltas=${rep.overlayDeltas} skipped=${rep.overlaySkipped}`);
  decideAll('after reboot');
}
