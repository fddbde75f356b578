// Every message the central refuses, counted per gate and cause: in memory
// for the central's own stats and view, in the database (table `refusals`,
// written at most once a second) for `subline central gates`, and in the log
// at most once per gate and cause per minute, so a flood is visible without
// drowning the log. Gate ids come from topics (valid ids, but chosen by
// whoever publishes): at most GATE_CAPACITY distinct ids are tracked, the
// rest are counted under OTHER_GATES.

import type Database from 'better-sqlite3';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refusals (
  gate TEXT NOT NULL,
  cause TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  last_at INTEGER NOT NULL,
  PRIMARY KEY (gate, cause)) WITHOUT ROWID;
`;

export const GATE_CAPACITY = 4096;
/** Where refusals from ids beyond GATE_CAPACITY are counted (not a valid gate id). */
export const OTHER_GATES = '(other ids)';
const LOG_INTERVAL_SECONDS = 60;

export interface RefusalCount {
  readonly gate: string;
  readonly cause: string;
  readonly count: number;
  readonly firstAt: number;
  readonly lastAt: number;
}

interface Entry {
  count: number;
  /** Not yet written to the database. */
  pending: number;
  firstAt: number;
  lastAt: number;
  loggedAt: number;
}

export interface RefusalLogOptions {
  /** Persist here (omit for memory only). */
  readonly db?: Database.Database;
  /** UTC seconds. */
  readonly clock: () => number;
  readonly log?: (line: string) => void;
}

export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #byGate = new Map<string, Map<string, Entry>>();
  readonly #upsert: Database.Statement | null;
  #dirty = false;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
    if (options.db !== undefined) {
      options.db.exec(SCHEMA);
      this.#upsert = options.db.prepare(`INSERT INTO refusals (gate, cause, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (gate, cause) DO UPDATE SET count = refusals.count + excluded.count, last_at = MAX(refusals.last_at, excluded.last_at)`);
    } else this.#upsert = null;
  }

  /** Counts one refusal; logs it unless this gate's cause was logged in the last minute. */
  count(gate: string, cause: string, detail = ''): void {
    let causes = this.#byGate.get(gate);
    if (causes === undefined) {
      // The overflow bucket itself is always admitted (one slot beyond the capacity).
      if (gate !== OTHER_GATES && this.#byGate.size >= GATE_CAPACITY) return this.count(OTHER_GATES, cause, detail);
      causes = new Map();
      this.#byGate.set(gate, causes);
    }
    const now = this.#o.clock();
    let e = causes.get(cause);
    if (e === undefined) {
      e = { count: 0, pending: 0, firstAt: now, lastAt: now, loggedAt: -Infinity };
      causes.set(cause, e);
    }
    e.count++;
    e.pending++;
    e.lastAt = now;
    this.#dirty = true;
    if (now - e.loggedAt >= LOG_INTERVAL_SECONDS) {
      e.loggedAt = now;
      this.#o.log?.(`refused from ${gate}: ${cause}${detail !== '' ? ` (${detail})` : ''}; ${e.count} so far (logged at most once a minute)`);
    }
  }

  /** This process's counts for one gate (cause -> count). */
  forGate(gate: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [cause, e] of this.#byGate.get(gate) ?? []) out[cause] = e.count;
    return out;
  }

  /** Every count this process has seen. */
  all(): RefusalCount[] {
    const out: RefusalCount[] = [];
    for (const [gate, causes] of this.#byGate) for (const [cause, e] of causes) out.push({ gate, cause, count: e.count, firstAt: e.firstAt, lastAt: e.lastAt });
    return out;
  }

  /** Writes the counts not yet in the database (one transaction). */
  flush(): void {
    const up = this.#upsert;
    const db = this.#o.db;
    if (!this.#dirty || up === null || db === undefined || !db.open) return;
    this.#dirty = false;
    db.transaction(() => {
      for (const [gate, causes] of this.#byGate)
        for (const [cause, e] of causes) {
          if (e.pending === 0) continue;
          up.run(gate, cause, e.pending, e.firstAt, e.lastAt);
          e.pending = 0;
        }
    })();
  }

  /** The counts in a database (every central process that wrote there), for the CLI. */
  static read(db: Database.Database): RefusalCount[] {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refusals'").get();
    if (exists === undefined) return [];
    return (db.prepare('SELECT gate, cause, count, first_at AS firstAt, last_at AS lastAt FROM refusals ORDER BY gate, cause').all() as RefusalCount[]);
  }
}
