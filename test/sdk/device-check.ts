// The device check, Node side: builds the check program with the Moddable SDK
// (mcconfig -p x-cli-lin, test/sdk/program/check-main.ts), writes its input (every
// golden vector, whitelist scenarios that reach every reason code of the
// engine, journal geometry), runs it on the SDK's XS and the same cases on
// Node, and compares the lines. Used by `npm run device:check` and by
// test/device-sdk.test.ts.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { nobleCrypto } from '../../protocol/index.js';
import { Reason, REASON_NAMES } from '../../protocol/reasons.js';
import { buildProgram, ROOT, run, type BuiltProgram } from '../../host-sim/moddable-sdk/sdk.js';
import { loadTrustedKeysHex, loadVectorFiles } from '../helpers/vectors.js';
import { scenario } from '../helpers/whitelist-arbitraries.js';
import { runScenario, type Scenario } from '../helpers/whitelist-scenario.js';
import { runDeviceCases, type DeviceCheckInput } from './device-cases.js';

export const CHECK_DIR = join(ROOT, 'build', 'device-check');

/** SDK manifests the check program includes besides the base: only platform-independent modules (no network, no pins). */
export const CHECK_INCLUDES = [
  '$(MODDABLE)/modules/crypt/digest/manifest.json',
  '$(MODDABLE)/modules/data/text/encoder/manifest.json',
  '$(MODDABLE)/modules/data/text/decoder/manifest.json',
] as const;

/** Reasons the decision engine itself gives (lane_fault, already_pending and lane_busy come from the lane controller's state). */
const LANE_REASONS: readonly string[] = ['lane_fault', 'already_pending', 'lane_busy'];
export const ENGINE_REASONS = REASON_NAMES.filter((n) => !LANE_REASONS.includes(n)).map((n) => Reason[n]);

/** Seeded scenarios, taken until every engine reason has occurred on Node (at most `max`). */
export function scenariosForEveryReason(seed = 20261202, max = 400): { scenarios: Scenario[]; missing: string[] } {
  const want = new Set<number>(ENGINE_REASONS);
  const scenarios: Scenario[] = [];
  for (const s of fc.sample(scenario(), { seed, numRuns: max })) {
    const r = runScenario(s, nobleCrypto);
    const adds = r.taps.some((t) => want.has(t.reason));
    for (const t of r.taps) want.delete(t.reason);
    if (adds || scenarios.length < 8) scenarios.push(s);
    if (want.size === 0 && scenarios.length >= 8) break;
  }
  return { scenarios, missing: [...want].map((c) => REASON_NAMES[c] ?? String(c)) };
}

export function checkInput(): DeviceCheckInput {
  const { scenarios, missing } = scenariosForEveryReason();
  if (missing.length > 0) throw new Error(`device check: no scenario reached ${missing.join(', ')}`);
  return { vectorFiles: loadVectorFiles(), trustedKeys: loadTrustedKeysHex(), scenarios, journal: { sectors: 16, sectorSize: 4096, appends: 1500 } };
}

export function buildCheckProgram(log?: (chunk: string) => void): Promise<BuiltProgram> {
  return buildProgram({ name: 'device-check', entry: 'test/sdk/program/check-main.ts', outDir: CHECK_DIR, include: CHECK_INCLUDES, ...(log === undefined ? {} : { log }) });
}

export interface DeviceCheckResult {
  readonly cases: number;
  readonly identical: boolean;
  /** First differing line (1-based), 0 when identical. */
  readonly firstDifference: number;
  readonly node: readonly string[];
  readonly sdk: readonly string[];
  readonly sdkStderr: string;
  readonly sdkExit: number;
  readonly buildMs: number;
  readonly runMs: number;
  readonly binary: string;
}

/** Builds and runs the check on both engines. */
export async function runDeviceCheck(log?: (chunk: string) => void): Promise<DeviceCheckResult> {
  const built = await buildCheckProgram(log);
  const input = checkInput();
  mkdirSync(CHECK_DIR, { recursive: true });
  const inputPath = join(CHECK_DIR, 'input.json');
  writeFileSync(inputPath, JSON.stringify({ ...input, vectorFiles: [] }));
  // Each vector file separately, in the order Node runs them.
  const vectorPaths = input.vectorFiles.map((f, i) => {
    const p = join(CHECK_DIR, `vectors-${String(i).padStart(2, '0')}.json`);
    writeFileSync(p, JSON.stringify(f));
    return p;
  });
  const r = await run(built.binary, [inputPath, ...vectorPaths]);
  const sdk = r.stdout.split('\n');
  if (sdk[sdk.length - 1] === '') sdk.pop();
  const node = runDeviceCases(input, nobleCrypto);
  let firstDifference = 0;
  for (let i = 0; i < Math.max(node.length, sdk.length); i++) {
    if (node[i] !== sdk[i]) {
      firstDifference = i + 1;
      break;
    }
  }
  return { cases: node.length, identical: r.code === 0 && firstDifference === 0, firstDifference, node, sdk, sdkStderr: r.stderr, sdkExit: r.code, buildMs: built.ms, runMs: r.ms, binary: built.binary };
}
