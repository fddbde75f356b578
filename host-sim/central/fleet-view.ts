// The fleet as an operator sees it, from the central's store: every gate
// provisioned or heard from, by site and line, with its presence, the
// whitelist version it holds and its lag behind the head, its journal
// backlog, whether its clock was trusted (its last stored record says), its
// alarms and refusals, and when it was last seen. Read by the console
// (host-sim/console/); one query per table, whatever the fleet's size.

import { createRecord, decodeRecord, EventType } from '../../protocol/event-record.js';
import type { CentralStore } from './store/open-store.js';
import { RefusalLog } from './refusal-log.js';

export interface FleetGate {
  readonly gate: string;
  readonly site: string | null;
  readonly line: string | null;
  readonly direction: string | null;
  readonly lane: string | null;
  /** 'online', 'offline', 'never seen'; 'decommissioned' for an ended identity. */
  readonly state: string;
  readonly boot: number | null;
  readonly firmware: string | null;
  /** The list version it holds and how many versions it is behind the central's (null: unknown or another epoch). */
  readonly whitelist: { readonly epoch: number; readonly version: number; readonly behind: number | null } | null;
  /** Records journaled and not yet acknowledged, as its last status said. */
  readonly backlog: number | null;
  /** From its last stored record: false when the gate's clock was not trusted then; null without records. */
  readonly clockTrusted: boolean | null;
  /** Alarm records stored in the last `alarmWindowSeconds`. */
  readonly alarms: number;
  /** Messages refused: by the central from this gate's id, and by the gate (its last status). */
  readonly refused: { readonly atCentral: number; readonly atGate: number };
  /** UTC seconds; null when never seen. */
  readonly lastSeen: number | null;
}

export interface Fleet {
  readonly list: { readonly name: string; readonly epoch: number; readonly version: number } | null;
  readonly gates: readonly FleetGate[];
}

export async function fleetView(store: CentralStore, o: { readonly list: string; readonly now: number; readonly alarmWindowSeconds?: number }): Promise<Fleet> {
  const [rows, identities, refusals, lists] = [await store.state.gates(), await store.identities.all(), await RefusalLog.read(store.db), await store.registry.lists()];
  const current = lists.find((l) => l.name === o.list);
  const since = o.now - (o.alarmWindowSeconds ?? 86_400);
  // The type is a literal (a fixed fragment, not input): the partial index events_alarms (schema 4) answers it.
  const alarms = new Map(((await store.db.rows(`SELECT gate, COUNT(*) FROM events WHERE type = ${EventType.alarm} AND at >= ? GROUP BY gate`, [since])) as [string, number][]).map(([g, n]) => [g, Number(n)]));
  // The newest record of each gate's newest epoch: whether its clock was trusted when it wrote it.
  const lastRecords = (await store.db.rows(
    `SELECT e.gate, e.epoch, e.seq, e.record FROM events e JOIN (SELECT gate, MAX(epoch) AS epoch FROM event_heads GROUP BY gate) h ON e.gate = h.gate AND e.epoch = h.epoch
     JOIN event_heads x ON x.gate = e.gate AND x.epoch = e.epoch AND e.seq = x.max_seq`,
  )) as [string, number, number, Uint8Array][];
  const r = createRecord();
  const clock = new Map(lastRecords.map(([g, epoch, seq, record]) => [g, decodeRecord(record, 0, Number(seq), Number(epoch), r) === 0 ? !r.clockUntrusted : null]));
  const byId = new Map(identities.map((g) => [g.gate, g]));
  const presence = new Map(rows.map((g) => [g.status.gate, g]));
  const refusedAt = new Map<string, number>();
  for (const r of refusals) refusedAt.set(r.gate, (refusedAt.get(r.gate) ?? 0) + r.count);
  const ids = [...new Set([...byId.keys(), ...presence.keys()])];
  const gates = ids.map((id): FleetGate => {
    const g = presence.get(id);
    const identity = byId.get(id);
    const held = g?.status.lists.find((l) => l.list === o.list);
    const behind = held !== undefined && current !== undefined && held.epoch === current.epoch ? current.version - held.version : null;
    const decommissioned = identity?.state === 'decommissioned';
    return {
      gate: id,
      site: identity?.site ?? null,
      line: g?.status.line ?? identity?.line ?? null,
      direction: g?.status.direction ?? identity?.direction ?? null,
      lane: g?.status.lane ?? identity?.lane ?? null,
      state: decommissioned ? 'decommissioned' : (g?.status.state ?? 'never seen'),
      boot: g?.status.boot ?? null,
      firmware: g?.status.firmware ?? null,
      whitelist: held === undefined ? null : { epoch: held.epoch, version: held.version, behind },
      backlog: g?.status.backlog ?? null,
      clockTrusted: clock.get(id) ?? null,
      alarms: alarms.get(id) ?? 0,
      refused: { atCentral: refusedAt.get(id) ?? 0, atGate: (g?.status.refused ?? []).reduce((a, r) => a + r.count, 0) },
      lastSeen: g === undefined || g.lastSeen <= 0 ? null : g.lastSeen,
    };
  });
  gates.sort((a, b) => (a.site ?? '~').localeCompare(b.site ?? '~') || (a.line ?? '').localeCompare(b.line ?? '') || a.gate.localeCompare(b.gate));
  return { list: current === undefined ? null : { name: current.name, epoch: current.epoch, version: current.version }, gates };
}
