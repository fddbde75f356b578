// What an XS gate is built and wired with: the manifest's `config` (what
// `mc/config` holds on the device) with per-gate overrides, the partition
// sizes from the partition table the manifest selects, and the wiring that
// follows from the config (which pin is which input or output, and at which
// level an input is idle).

import { readFileSync } from 'node:fs';
import { parseSettings, type GateSettings } from '../../firmware/moddable/settings.js';
import type { InputName, OutputName } from '../../firmware/ports.js';

const root = new URL('../../', import.meta.url);

export type ConfigValue = string | number | boolean | null | ConfigObject | ConfigValue[];
export interface ConfigObject {
  [key: string]: ConfigValue;
}

interface Manifest {
  config: ConfigObject;
  platforms: Record<string, { build?: Record<string, string> }>;
}

function manifest(): Manifest {
  return JSON.parse(readFileSync(new URL('manifest.json', root), 'utf8')) as Manifest;
}

/** The manifest's `config` (the generic esp32/esp32s3 build: no platform override). */
export function manifestConfig(): ConfigObject {
  return structuredClone(manifest().config);
}

function isObject(v: unknown): v is ConfigObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base` (objects key by key; anything else replaces). */
export function mergeConfig(base: ConfigObject, over: ConfigObject | undefined): ConfigObject {
  const out: ConfigObject = structuredClone(base);
  for (const [k, v] of Object.entries(over ?? {})) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? mergeConfig(b, v) : structuredClone(v);
  }
  return out;
}

/** Partition sizes by label from the table of the esp32/esp32s3 build (PARTITIONS_FILE). */
export function partitionTable(): Map<string, number> {
  const m = manifest();
  const file = m.platforms['esp32/esp32s3']?.build?.['PARTITIONS_FILE'] ?? './firmware/moddable/partitions-16MB.csv';
  const csv = readFileSync(new URL(file.replace(/^\.\//, ''), root), 'utf8');
  const sizes = new Map<string, number>();
  for (const line of csv.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const cols = t.split(',').map((c) => c.trim());
    const name = cols[0];
    const size = cols[4];
    if (name === undefined || size === undefined) continue;
    const n = size.toLowerCase().endsWith('k') ? Number(size.slice(0, -1)) * 1024 : size.toLowerCase().endsWith('m') ? Number(size.slice(0, -1)) * 1024 * 1024 : Number(size);
    if (Number.isInteger(n) && n > 0) sizes.set(name, n);
  }
  return sizes;
}

/** The firmware's own reading of a config (firmware/moddable/settings.ts); throws with its message. */
export function settingsOf(config: ConfigObject): GateSettings {
  const s = parseSettings(config);
  if (!s.ok) throw new Error(`config: ${s.error}`);
  return s.value;
}

export interface Wiring {
  readonly inputs: Partial<Record<InputName, { readonly pin: number; readonly activeLow: boolean; readonly debounceMs: number }>>;
  readonly outputs: Partial<Record<OutputName, { readonly pin: number; readonly activeLow: boolean }>>;
  readonly reader: GateSettings['reader'];
}

export function wiringOf(s: GateSettings): Wiring {
  const inputs: Wiring['inputs'] = {};
  for (const [k, v] of Object.entries(s.inputs)) if (v !== undefined) (inputs as Record<string, unknown>)[k] = { pin: v.pin, activeLow: v.activeLow, debounceMs: v.debounceMs };
  const outputs: Wiring['outputs'] = {};
  for (const [k, v] of Object.entries(s.outputs)) if (v !== undefined) (outputs as Record<string, unknown>)[k] = { pin: v.pin, activeLow: v.activeLow };
  return { inputs, outputs, reader: s.reader };
}

/** The pin level for a logical input value. */
export function levelFor(activeLow: boolean, value: boolean): 0 | 1 {
  return value !== activeLow ? 1 : 0;
}
