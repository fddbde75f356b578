// The device settings that are not per gate: which flash partitions, how the
// data partition is laid out, pins, the reader's UART, Wi-Fi and SNTP. They
// come from the `config` section of manifest.json (the `mc/config` module;
// top-level keys can be overridden on the mcconfig command line, e.g.
// `wifi_ssid="..."`). Everything about the gate itself (id, lane, broker,
// keys) is in the provisioning record instead.
//
// Also the broker address of the provisioning record. Pure code (no Moddable
// imports), so the manifest test can check that the config in manifest.json
// parses.

import type { LayoutOptions } from '../core/partition.js';
import type { InputName, OutputName } from '../ports.js';
import { MAX_POLL_INTERVAL_MS, READER_POLL } from '../drivers/reader-poll.js';

export type ReaderKind = 'wiegand' | 'em4100' | 'uhf' | 'none';
export type Pull = 'up' | 'down' | 'none';

export interface ReaderSettings {
  readonly kind: ReaderKind;
  /** UART number (ESP32: 0-2; 0 is the console, use 1 or 2). */
  readonly port: number;
  readonly receive: number;
  readonly transmit?: number;
  readonly baud: number;
  /** UHF only: see UhfFrameOptions.duplicateWindowMs. */
  readonly duplicateWindowMs?: number;
  /** Readers that are polled (UHF): ms between inventory commands; default by kind (READER_POLL), 0 = never. */
  readonly pollIntervalMs?: number;
}

export interface OutputPinSettings {
  readonly pin: number;
  /** The output is on when the pin is low. */
  readonly activeLow: boolean;
  readonly openDrain: boolean;
}

export interface InputPinSettings {
  readonly pin: number;
  readonly pull: Pull;
  /** The input is true (door open, rotation, loop occupied, fire) when the pin is low. */
  readonly activeLow: boolean;
  /** The level must hold this long before a change is reported (0 = report every edge). */
  readonly debounceMs: number;
}

export interface GateSettings {
  readonly partitions: { readonly provisioning: string; readonly data: string };
  readonly layout: LayoutOptions;
  /** Flash encryption is on: written units are never rewritten (docs/decisions/0005). */
  readonly writeOnce: boolean;
  readonly wifi: { readonly ssid: string; readonly password?: string } | null;
  readonly sntp: string | null;
  readonly reader: ReaderSettings;
  readonly outputs: Partial<Record<OutputName, OutputPinSettings>>;
  readonly inputs: Partial<Record<InputName, InputPinSettings>>;
  readonly mqtt: { readonly maxMessageBytes: number; readonly connectTimeoutMs: number };
  /** A status line on the console every this many ms (0 = never). */
  readonly statusTraceMs: number;
  /** Every journaled event on the console. */
  readonly traceEvents: boolean;
}

export type SettingsResult = { readonly ok: true; readonly value: GateSettings } | { readonly ok: false; readonly error: string };

const OUTPUTS: readonly OutputName[] = ['relay', 'barrier', 'lampGreen', 'lampRed', 'buzzer'];
const INPUTS: readonly InputName[] = ['rotation', 'door', 'presence', 'fire'];
const READER_KINDS: readonly ReaderKind[] = ['wiegand', 'em4100', 'uhf', 'none'];
const PULLS: readonly Pull[] = ['up', 'down', 'none'];
/** Reader line rates (docs/READERS.md). */
const DEFAULT_BAUD: Readonly<Record<ReaderKind, number>> = { wiegand: 9600, em4100: 9600, uhf: 115200, none: 9600 };
/** ESP32 and ESP32-S3 GPIO numbers are below 49. */
const MAX_PIN = 48;

class SettingsError extends Error {}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string): Obj {
  if (v === undefined) return {};
  if (!isObj(v)) throw new SettingsError(`${path} must be an object`);
  return v;
}

function int(v: unknown, path: string, min: number, max: number, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new SettingsError(`${path} must be an integer from ${min} to ${max}`);
  return v;
}

function bool(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new SettingsError(`${path} must be true or false`);
  return v;
}

function str(v: unknown, path: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new SettingsError(`${path} must be a string of 1 to 64 characters`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, values: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  const found = values.find((x) => x === v);
  if (found === undefined) throw new SettingsError(`${path} must be one of ${values.join(', ')}`);
  return found;
}

/** Reads config.subline (+ the top-level wifi_ssid, wifi_password and sntp). */
export function parseSettings(config: unknown): SettingsResult {
  try {
    return { ok: true, value: parse(obj(config, 'config')) };
  } catch (e) {
    if (e instanceof SettingsError) return { ok: false, error: e.message };
    throw e;
  }
}

function parse(config: Obj): GateSettings {
  const c = obj(config['subline'], 'subline');
  const parts = obj(c['partitions'], 'subline.partitions');
  const layout = obj(c['layout'], 'subline.layout');
  const l: LayoutOptions = {
    credentials: int(layout['credentials'], 'subline.layout.credentials', 1, 10_000_000),
    ...(layout['sideTableBytes'] !== undefined ? { sideTableBytes: int(layout['sideTableBytes'], 'subline.layout.sideTableBytes', 0, 16 * 1024 * 1024) } : {}),
    ...(layout['overlayBlocks'] !== undefined ? { overlayBlocks: int(layout['overlayBlocks'], 'subline.layout.overlayBlocks', 2, 4096) } : {}),
    ...(layout['passbackBlocks'] !== undefined ? { passbackBlocks: int(layout['passbackBlocks'], 'subline.layout.passbackBlocks', 2, 4096) } : {}),
    ...(layout['journalSectors'] !== undefined ? { journalSectors: int(layout['journalSectors'], 'subline.layout.journalSectors', 4, 65536) } : {}),
  };

  const ssid = config['wifi_ssid'];
  const wifi =
    ssid === undefined || ssid === ''
      ? null
      : { ssid: str(ssid, 'wifi_ssid', ''), ...(config['wifi_password'] !== undefined && config['wifi_password'] !== '' ? { password: str(config['wifi_password'], 'wifi_password', '') } : {}) };
  const sntp = config['sntp'] === undefined || config['sntp'] === '' ? null : str(config['sntp'], 'sntp', '');

  const r = obj(c['reader'], 'subline.reader');
  const kind = oneOf(r['kind'], 'subline.reader.kind', READER_KINDS, 'none');
  const reader: ReaderSettings = {
    kind,
    port: int(r['port'], 'subline.reader.port', 0, 2, 1),
    receive: int(r['receive'], 'subline.reader.receive', 0, MAX_PIN, kind === 'none' ? 0 : undefined),
    ...(r['transmit'] !== undefined ? { transmit: int(r['transmit'], 'subline.reader.transmit', 0, MAX_PIN) } : {}),
    baud: int(r['baud'], 'subline.reader.baud', 1200, 2_000_000, DEFAULT_BAUD[kind]),
    ...(r['duplicateWindowMs'] !== undefined ? { duplicateWindowMs: int(r['duplicateWindowMs'], 'subline.reader.duplicateWindowMs', 0, 86_400_000) } : {}),
    ...(r['pollIntervalMs'] !== undefined ? { pollIntervalMs: int(r['pollIntervalMs'], 'subline.reader.pollIntervalMs', 0, MAX_POLL_INTERVAL_MS) } : {}),
  };
  // A polled reader is asked on its RX pin's partner: without a TX pin it would never report a tag.
  if (kind !== 'none' && READER_POLL[kind].command !== null && (reader.pollIntervalMs ?? READER_POLL[kind].intervalMs) > 0 && reader.transmit === undefined) {
    throw new SettingsError(`subline.reader.transmit: a ${kind} reader answers only when polled, it needs the gate's TX pin (or pollIntervalMs 0)`);
  }

  const used = new Map<number, string>();
  const claim = (pin: number, what: string): void => {
    const other = used.get(pin);
    if (other !== undefined) throw new SettingsError(`${what}: GPIO ${pin} is already used by ${other}`);
    used.set(pin, what);
  };
  if (kind !== 'none') {
    claim(reader.receive, 'subline.reader.receive');
    if (reader.transmit !== undefined) claim(reader.transmit, 'subline.reader.transmit');
  }

  const o = obj(c['outputs'], 'subline.outputs');
  for (const k of Object.keys(o)) if (!OUTPUTS.includes(k as OutputName)) throw new SettingsError(`subline.outputs.${k}: unknown output (${OUTPUTS.join(', ')})`);
  const outputs: Partial<Record<OutputName, OutputPinSettings>> = {};
  for (const name of OUTPUTS) {
    if (o[name] === undefined) continue;
    const p = obj(o[name], `subline.outputs.${name}`);
    const pin = int(p['pin'], `subline.outputs.${name}.pin`, 0, MAX_PIN);
    claim(pin, `subline.outputs.${name}`);
    outputs[name] = { pin, activeLow: bool(p['activeLow'], `subline.outputs.${name}.activeLow`, false), openDrain: bool(p['openDrain'], `subline.outputs.${name}.openDrain`, false) };
  }

  const i = obj(c['inputs'], 'subline.inputs');
  for (const k of Object.keys(i)) if (!INPUTS.includes(k as InputName)) throw new SettingsError(`subline.inputs.${k}: unknown input (${INPUTS.join(', ')})`);
  const inputs: Partial<Record<InputName, InputPinSettings>> = {};
  for (const name of INPUTS) {
    if (i[name] === undefined) continue;
    const p = obj(i[name], `subline.inputs.${name}`);
    const pin = int(p['pin'], `subline.inputs.${name}.pin`, 0, MAX_PIN);
    claim(pin, `subline.inputs.${name}`);
    inputs[name] = {
      pin,
      pull: oneOf(p['pull'], `subline.inputs.${name}.pull`, PULLS, 'up'),
      activeLow: bool(p['activeLow'], `subline.inputs.${name}.activeLow`, true),
      debounceMs: int(p['debounceMs'], `subline.inputs.${name}.debounceMs`, 0, 1000, 20),
    };
  }

  const m = obj(c['mqtt'], 'subline.mqtt');
  return {
    partitions: { provisioning: str(parts['provisioning'], 'subline.partitions.provisioning', 'provision'), data: str(parts['data'], 'subline.partitions.data', 'gatedata') },
    layout: l,
    writeOnce: bool(c['writeOnce'], 'subline.writeOnce', false),
    wifi,
    sntp,
    reader,
    outputs,
    inputs,
    mqtt: {
      maxMessageBytes: int(m['maxMessageBytes'], 'subline.mqtt.maxMessageBytes', 1024, 1024 * 1024, 70 * 1024),
      connectTimeoutMs: int(m['connectTimeoutMs'], 'subline.mqtt.connectTimeoutMs', 1000, 120_000, 20_000),
    },
    statusTraceMs: int(c['statusTraceSeconds'], 'subline.statusTraceSeconds', 0, 86_400, 60) * 1000,
    traceEvents: bool(c['traceEvents'], 'subline.traceEvents', false),
  };
}

export interface Broker {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
}

/** The provisioning record's `broker`: mqtt://host[:port] or mqtts://host[:port] (host name or IPv4). */
export function parseBroker(url: string): Broker | string {
  const m = /^(mqtts?):\/\/([A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (m === null) return `broker "${url}" is not mqtt://host[:port] or mqtts://host[:port]`;
  const secure = m[1] === 'mqtts';
  const port = m[3] === undefined ? (secure ? 8883 : 1883) : Number(m[3]);
  if (port < 1 || port > 65535) return `broker port ${port} is out of range`;
  return { secure, host: m[2] ?? '', port };
}
