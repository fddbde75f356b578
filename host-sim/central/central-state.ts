// The central's own state beside the registry and the event store, in the
// same SQLite database, so that other processes (the `subline` CLI) can read
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

import type Database from 'better-sqlite3';
import type { GateStatusMessage } from '../../protocol/messages.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gates (
  gate TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  journal INTEGER NOT NULL DEFAULT 0,
  boot INTEGER NOT NULL,
  conn INTEGER NOT NULL DEFAULT 0,
  at INTEGER NOT NULL,
  firmware TEXT NOT NULL,
  line TEXT NOT NULL,
  direction TEXT NOT NULL,
  lane TEXT NOT NULL,
  lists TEXT NOT NULL,
  backlog INTEGER NOT NULL,
  refused TEXT NOT NULL DEFAULT '[]',
  received_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS published (
  list TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL,
  version INTEGER NOT NULL,
  at INTEGER NOT NULL) WITHOUT ROWID;
`;

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
  readonly db: Database.Database;
  readonly #put: Database.Statement;
  readonly #touch: Database.Statement;
  readonly #all: Database.Statement;
  readonly #one: Database.Statement;
  readonly #published: Database.Statement;
  readonly #setPublished: Database.Statement;

  /** On an open database (the registry's); creates the tables if missing. */
  constructor(db: Database.Database) {
    this.db = db;
    db.exec(SCHEMA);
    // Databases made before statuses carried the journal epoch.
    const cols = db.prepare('PRAGMA table_info(gates)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'journal')) db.exec('ALTER TABLE gates ADD COLUMN journal INTEGER NOT NULL DEFAULT 0');
    // ... and before they carried the connection counter and refusal counts.
    if (!cols.some((c) => c.name === 'conn')) db.exec('ALTER TABLE gates ADD COLUMN conn INTEGER NOT NULL DEFAULT 0');
    if (!cols.some((c) => c.name === 'refused')) db.exec("ALTER TABLE gates ADD COLUMN refused TEXT NOT NULL DEFAULT '[]'");
    this.#put = db.prepare(`INSERT INTO gates (gate, state, journal, boot, conn, at, firmware, line, direction, lane, lists, backlog, refused, received_at, last_seen)
      VALUES (@gate, @state, @journal, @boot, @conn, @at, @firmware, @line, @direction, @lane, @lists, @backlog, @refused, @received_at, @last_seen)
      ON CONFLICT (gate) DO UPDATE SET state = excluded.state, journal = excluded.journal, boot = excluded.boot, conn = excluded.conn, at = excluded.at, firmware = excluded.firmware, line = excluded.line,
        direction = excluded.direction, lane = excluded.lane, lists = excluded.lists, backlog = excluded.backlog, refused = excluded.refused, received_at = excluded.received_at,
        last_seen = MAX(gates.last_seen, excluded.last_seen)`);
    this.#touch = db.prepare('UPDATE gates SET last_seen = MAX(last_seen, ?) WHERE gate = ?');
    this.#all = db.prepare('SELECT * FROM gates ORDER BY gate');
    this.#one = db.prepare('SELECT * FROM gates WHERE gate = ?');
    this.#published = db.prepare('SELECT epoch, version FROM published WHERE list = ?');
    // Forward only: two processes publishing (serve and a one-shot publish) never move it back.
    this.#setPublished = db.prepare(`INSERT INTO published (list, epoch, version, at) VALUES (?, ?, ?, ?)
      ON CONFLICT (list) DO UPDATE SET epoch = excluded.epoch, version = excluded.version, at = excluded.at
      WHERE excluded.epoch > published.epoch OR (excluded.epoch = published.epoch AND excluded.version > published.version)`);
  }

  /**
   * Stores the status the presence rule kept for its gate. `lastSeen`: when the
   * gate itself was last heard (never moves back: a row keeps the later time).
   */
  putStatus(status: GateStatusMessage, receivedAt: number, lastSeen = receivedAt): void {
    const s = status;
    this.#put.run({
      gate: s.gate,
      state: s.state,
      journal: s.journal,
      boot: s.boot,
      conn: s.conn,
      at: s.at,
      firmware: s.firmware,
      line: s.line,
      direction: s.direction,
      lane: s.lane,
      lists: JSON.stringify(s.lists),
      backlog: s.backlog,
      refused: JSON.stringify(s.refused),
      received_at: receivedAt,
      last_seen: lastSeen,
    });
  }

  /** Something was heard from a gate that already has a row. */
  touch(gate: string, at: number): void {
    this.#touch.run(at, gate);
  }

  gates(): GateRecord[] {
    return (this.#all.all() as GateRow[]).map((r) => this.#record(r));
  }

  gate(gate: string): GateRecord | undefined {
    const r = this.#one.get(gate) as GateRow | undefined;
    return r === undefined ? undefined : this.#record(r);
  }

  published(list: string): PublishedMark | undefined {
    return this.#published.get(list) as PublishedMark | undefined;
  }

  setPublished(list: string, mark: PublishedMark, at: number): void {
    this.#setPublished.run(list, mark.epoch, mark.version, at);
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
