// Stored journal records (protocol/event-record.ts) decoded for people
// and exports: type and reason by name, level by name, times as ISO 8601.

import { AlarmCode, BootCause, CommandCode, createRecord, decodeRecord, eventTypeName, EventType, GapReason, GrantLevel } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import { reasonName } from '../../protocol/reasons.js';
import type { EventRow } from './event-store.js';

export interface DecodedEvent {
  readonly gate: string;
  readonly epoch: number;
  readonly seq: number;
  /** ISO 8601 (UTC) of the record's time; '' for a gap tombstone or an invalid record. */
  readonly time: string;
  /** True when the gate's clock was not trusted when it wrote the record. */
  readonly clockUntrusted: boolean;
  /** EventType name; 'invalid' when the record fails its check. */
  readonly type: string;
  /** The reason byte by name (its table depends on the type), else the number. */
  readonly reason: string;
  readonly level: string;
  /** Credential key, 16 hex digits; '' when none. */
  readonly key: string;
  /** ISO 8601 of when the central stored it. */
  readonly receivedAt: string;
}

const LEVEL_NAMES = invert(GrantLevel);
const COMMAND_NAMES = invert(CommandCode);
const ALARM_NAMES = invert(AlarmCode);
const BOOT_NAMES = invert(BootCause);
const GAP_NAMES = invert(GapReason);
const DECISION_TYPES: ReadonlySet<number> = new Set([EventType.decision_granted, EventType.decision_denied, EventType.passage_completed, EventType.passage_not_taken, EventType.goods_lot_denied]);

function invert(o: Readonly<Record<string, number>>): Map<number, string> {
  return new Map(Object.entries(o).map(([k, v]) => [v, k]));
}

/** The reason byte by name for an event type (decision reasons, commands, alarms, boot causes, gaps). */
export function reasonNameFor(type: number, reason: number): string {
  let name: string | undefined;
  if (DECISION_TYPES.has(type)) name = reasonName(reason);
  else if (type === EventType.command) name = COMMAND_NAMES.get(reason);
  else if (type === EventType.alarm) name = ALARM_NAMES.get(reason);
  else if (type === EventType.boot) name = BOOT_NAMES.get(reason);
  else if (type === EventType.gap) name = GAP_NAMES.get(reason);
  else if (type === EventType.fire_release) name = reason === 1 ? 'on' : reason === 0 ? 'off' : undefined;
  return name === undefined || name === 'unknown' ? String(reason) : name;
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

export function decodeEvent(row: EventRow): DecodedEvent {
  const r = createRecord();
  const base = { gate: row.gate, epoch: row.epoch, seq: row.seq, receivedAt: new Date(row.receivedAt).toISOString() };
  const status = decodeRecord(row.record, 0, row.seq, row.epoch, r);
  if (status !== 0) return { ...base, time: '', clockUntrusted: false, type: 'invalid', reason: GAP_NAMES.get(status) ?? String(status), level: '', key: '' };
  const gap = r.type === EventType.gap;
  const key = r.key.every((b) => b === 0) ? '' : toHex(r.key);
  return {
    ...base,
    time: gap ? '' : iso(r.time),
    clockUntrusted: r.clockUntrusted,
    type: eventTypeName(r.type),
    reason: reasonNameFor(r.type, r.reason),
    level: LEVEL_NAMES.get(r.level) ?? String(r.level),
    key,
  };
}
