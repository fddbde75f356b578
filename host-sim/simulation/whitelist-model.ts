// A whitelist scenario as plain JSON (so Node and XS, the real firmware and
// the reference model, all read the same thing): a base image model, deltas,
// an optional reboot, and taps. Shared by the reference model
// (./whitelist-reference.ts), the whole-system simulation and the tests
// (test/helpers/whitelist-scenario.ts runs it through the real firmware).
// Imports nothing from firmware/ and no Node APIs (bundled into XS too).

import { fromHex } from '../../protocol/hex.js';
import type { Direction, LaneKind, Line } from '../../protocol/whitelist-format.js';
import type { DeltaOpSpec, ImageModel } from '../central/image-builder.js';

export interface GrantJson {
  lines: readonly Line[];
  directions: readonly Direction[];
  lanes: readonly LaneKind[];
  validFrom?: number;
  validUntil?: number;
  schedule?: number;
  passbackGroup?: number;
}
export interface ModelJson {
  epoch: number;
  version: number;
  industries: { suspended?: boolean; grant?: GrantJson }[];
  institutions: { industry?: number; suspended?: boolean; grant?: GrantJson }[];
  credentials: { key: string; institution?: number; grant?: GrantJson }[];
  schedules: string[];
}
export type DeltaOpJson =
  | { op: 'add'; key: string; institution?: number; grant?: number }
  | { op: 'revoke' | 'suspendSubject' | 'resumeSubject'; key: string }
  | { op: 'suspendInstitution' | 'resumeInstitution'; institution: number }
  | { op: 'suspendIndustry' | 'resumeIndustry'; industry: number }
  | { op: 'defineGrant'; id: number; grant: GrantJson }
  | { op: 'defineInstitution'; institution: number; industry?: number; grant?: number }
  | { op: 'defineIndustry'; industry: number; grant?: number }
  | { op: 'noop' };

/**
 * The gate's mode, as firmware/core/decision.ts spells it (not imported: this
 * file shares no code with the firmware). runScenario hands a TapJson to the
 * real engine, so a drift fails the type check there.
 */
export type GateMode = 'normal' | 'lockdown' | 'emergency';

export interface TapJson {
  key: string;
  line: Line;
  direction: Direction;
  lane: LaneKind;
  passbackSeconds: number;
  now: number;
  clockTrusted: boolean;
  headIssuedAt: number;
  headExpires: number;
  mode: GateMode;
  journalFull: boolean;
  /** Record the passage for anti-passback if granted. */
  record: boolean;
  /** Use STRICT_POLICY instead of the line's default. */
  strict: boolean;
}

export interface Scenario {
  model: ModelJson;
  deltas: DeltaOpJson[][];
  reboot: boolean;
  taps: TapJson[];
}

export interface TapResult {
  granted: boolean;
  reason: number;
  level: number;
}

export interface ScenarioResult {
  deltaErrors: (string | null)[];
  version: number;
  taps: TapResult[];
}

/** The image builder's model of a JSON model (hex keys and schedules to bytes). */
export function modelFromJson(m: ModelJson): ImageModel {
  return { ...m, credentials: m.credentials.map((c) => ({ ...c, key: fromHex(c.key) })), schedules: m.schedules.map(fromHex) };
}

/** The image builder's delta ops of JSON ops (hex keys to bytes). */
export function deltaFromJson(ops: readonly DeltaOpJson[]): DeltaOpSpec[] {
  return ops.map((o) => ('key' in o ? { ...o, key: fromHex(o.key) } : o) as DeltaOpSpec);
}
