// Every message the central refuses, counted per gate and cause: in memory
// for the central's own stats and view, in the database (table `refusals`,
// written at most once a second) for `subline central gates`, and in the log
// at most once per gate and cause per minute, so a flood is visible without
// drowning the log. Gate ids come from topics (valid ids, but chosen by
// whoever publishes): at most GATE_CAPACITY distinct ids are tracked, the
// rest are counted under OTHER_GATES.

import { dialect, type SqlDb } from './store/sql-db.js';

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
  readonly db?: SqlDb;
  /** UTC seconds. */
  readonly clock: () => number;
  readonly log?: (line: string) => void;
}

export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #byGate = new Map<string, Map<string, Entry>>();
  readonly #upsert: string | null;
  #dirty = false;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
    this.#upsert = options.db === undefined ? null : `INSERT INTO refusals (gate, cause, count, first_at, last_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (gate, cause) DO UPDATE SET count = refusals.count + excluded.count, last_at = ${dialect(options.db.engine).max2('refusals.last_at', 'excluded.last_at')}`;
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

  /** Writes the counts not yet in the database (one transaction). A failed write keeps them pending. */
  async flush(): Promise<void> {
    const up = this.#upsert;
    const db = this.#o.db;
    if (!this.#dirty || up === null || db === undefined || !db.open) return;
    this.#dirty = false;
    const taken: [Entry, number][] = [];
    try {
      await db.transaction(async () => {
        for (const [gate, causes] of this.#byGate)
          for (const [cause, e] of causes) {
            if (e.pending === 0) continue;
            const n = e.pending;
            await db.run(up, [gate, cause, n, e.firstAt, e.lastAt]);
            taken.push([e, n]);
          }
      }, { write: true });
      for (const [e, n] of taken) e.pending -= n;
    } catch (e) {
      this.#dirty = true;
      throw e;
    }
  }

  /** The counts in a database (every central process that wrote there), for the CLI. */
  static async read(db: SqlDb): Promise<RefusalCount[]> {
    return db.all<RefusalCount>('SELECT gate, cause, count, first_at AS "firstAt", last_at AS "lastAt" FROM refusals ORDER BY gate, cause');
  }
}
