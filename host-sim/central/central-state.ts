// The central's own state beside the registry and the event store, in the
// same database, so that other processes (the `subline` CLI) can read
// it:
//
// - `gates`: the presence of every gate the central has heard from (the
//   status the presence rule kept, docs/SYNC.md "Presence"), when it arrived,
//   and when anything was last heard from the gate. Read back when the central
//   starts, so that the retained statuses it then receives go through the
//   presence rule against what it knew.
// - `published`: per list, the epoch and highest version whose delta the
//   broker has acknowledged (QoS 1). A central that starts (or `subline
//   central publish`) publishes the deltas after it.

import type { GateStatusMessage } from '../../protocol/messages.js';
import { dialect, type SqlDb } from './store/sql-db.js';

/** A gate as the central last heard of it. Times are UTC seconds of the central's clock, except `at` (the gate's). */
export interface GateRecord {
  readonly status: GateStatusMessage;
  /** When the status was received. */
  readonly receivedAt: number;
  /** When any message from the gate was last received (updated at most every few seconds). */
  readonly lastSeen: number;
}

export interface PublishedMark {
  readonly epoch: number;
  readonly version: number;
}

interface GateRow {
  gate: string;
  state: 'online' | 'offline';
  journal: number;
  boot: number;
  conn: number;
  at: number;
  firmware: string;
  line: 'first' | 'second';
  direction: 'in' | 'out';
  lane: 'person' | 'vehicle' | 'goods';
  lists: string;
  backlog: number;
  refused: string;
  received_at: number;
  last_seen: number;
}

function parseArray<T>(text: string): T[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

export class CentralState {
  readonly db: SqlDb;
  readonly #put: string;
  readonly #touch: string;

  /** On an open database of the current schema (store/open-store.ts). */
  constructor(db: SqlDb) {
    this.db = db;
    const d = dialect(db.engine);
    this.#put = `INSERT INTO gates (gate, state, journal, boot, conn, at, firmware, line, direction, lane, lists, backlog, refused, received_at, last_seen)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (gate) DO UPDATE SET state = excluded.state, journal = excluded.journal, boot = excluded.boot, conn = excluded.conn, at = excluded.at, firmware = excluded.firmware, line = excluded.line,
        direction = excluded.direction, lane = excluded.lane, lists = excluded.lists, backlog = excluded.backlog, refused = excluded.refused, received_at = excluded.received_at,
        last_seen = ${d.max2('gates.last_seen', 'excluded.last_seen')}`;
    this.#touch = `UPDATE gates SET last_seen = ${d.max2('last_seen', '?')} WHERE gate = ?`;
  }

  /**
   * Stores the status the presence rule kept for its gate. `lastSeen`: when the
   * gate itself was last heard (never moves back: a row keeps the later time).
   */
  async putStatus(status: GateStatusMessage, receivedAt: number, lastSeen = receivedAt): Promise<void> {
    const s = status;
    await this.db.run(this.#put, [s.gate, s.state, s.journal, s.boot, s.conn, s.at, s.firmware, s.line, s.direction, s.lane, JSON.stringify(s.lists), s.backlog, JSON.stringify(s.refused), receivedAt, lastSeen]);
  }

  /** Something was heard from a gate that already has a row. */
  async touch(gate: string, at: number): Promise<void> {
    await this.db.run(this.#touch, [at, gate]);
  }

  async gates(): Promise<GateRecord[]> {
    return (await this.db.all<GateRow>('SELECT * FROM gates ORDER BY gate')).map((r) => this.#record(r));
  }

  async gate(gate: string): Promise<GateRecord | undefined> {
    const r = await this.db.get<GateRow>('SELECT * FROM gates WHERE gate = ?', [gate]);
    return r === undefined ? undefined : this.#record(r);
  }

  async published(list: string): Promise<PublishedMark | undefined> {
    return this.db.get<PublishedMark>('SELECT epoch, version FROM published WHERE list = ?', [list]);
  }

  /** Forward only: two processes publishing (serve and a one-shot publish) never move it back. */
  async setPublished(list: string, mark: PublishedMark, at: number): Promise<void> {
    await this.db.run(`INSERT INTO published (list, epoch, version, at) VALUES (?, ?, ?, ?)
      ON CONFLICT (list) DO UPDATE SET epoch = excluded.epoch, version = excluded.version, at = excluded.at
      WHERE excluded.epoch > published.epoch OR (excluded.epoch = published.epoch AND excluded.version > published.version)`, [list, mark.epoch, mark.version, at]);
  }

  #record(r: GateRow): GateRecord {
    return {
      status: {
        gate: r.gate, state: r.state, journal: r.journal, boot: r.boot, conn: r.conn, at: r.at, firmware: r.firmware, line: r.line, direction: r.direction, lane: r.lane,
        lists: parseArray(r.lists), backlog: r.backlog, refused: parseArray(r.refused),
      },
      receivedAt: r.received_at,
      lastSeen: r.last_seen,
    };
  }
}
