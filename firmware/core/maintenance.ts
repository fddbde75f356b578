// The one place the gate erases flash while it runs (docs/decisions/0010).
// An erase takes tens to hundreds of ms on NOR flash and blocks the event
// loop, so taps and message handlers only ever append; this scheduler, called
// from the gate's maintenance timer, does the erasing and the copying behind
// it, at most `blocksPerTick` blocks of flash work per tick (one block erased,
// or about one block of entries copied), in priority order:
//
//   1. the journal's spare sectors and persisted acks: they guard "no pass
//      without a record";
//   2. a log whose appends are being refused (it ran out before its
//      compaction finished), in the order given;
//   3. the first log whose compaction is due, in the order given (the gate
//      gives passback, overlay, store state, gate state).
//
// Compactions are resumable (RecordLog.compactStep): a tick that runs out of
// budget leaves one half-done, and the next tick carries on. Device code: no
// Node APIs.

/** A log the scheduler compacts (a RecordLog owner supplies its liveness policy). */
export interface CompactionTask {
  /** For reports. */
  readonly name: string;
  /** A compaction is running or should start. */
  readonly compactionDue: boolean;
  /** Appends are refused until the compaction finishes: goes before tasks that are merely due. */
  readonly appendsBlocked: boolean;
  /** Does at most `budget` steps (one block erased, or about one block copied each); returns the steps used. */
  compactStep(budget: number): number;
}

/** What the scheduler needs from the journal (firmware/core/journal.ts). */
export interface JournalUpkeep {
  maintain(maxErases: number): { readonly erased: number };
}

export interface MaintenanceOptions {
  readonly journal: JournalUpkeep | null;
  /** In priority order; at most MAX_TASKS. */
  readonly tasks: readonly CompactionTask[];
  /** Flash work per tick, in blocks (the erase budget). Default 1: a tap waits behind at most one erase. */
  readonly blocksPerTick?: number;
}

export const MAX_TASKS = 8;

export interface TickReport {
  /** Blocks the journal erased this tick. */
  journalErases: number;
  /** Compaction steps done this tick. */
  steps: number;
  /** Index (in options.tasks) of the last task that worked, or -1. */
  worked: number;
}

export class MaintenanceScheduler {
  readonly blocksPerTick: number;
  readonly #journal: JournalUpkeep | null;
  readonly #tasks: readonly CompactionTask[];
  /** Steps done per task since start (same order as options.tasks). */
  readonly stepsByTask: Uint32Array;
  ticks = 0;
  journalErases = 0;
  readonly #report: TickReport = { journalErases: 0, steps: 0, worked: -1 };

  constructor(o: MaintenanceOptions) {
    const b = o.blocksPerTick ?? 1;
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`blocksPerTick must be a positive integer, got ${String(o.blocksPerTick)}`);
    if (o.tasks.length > MAX_TASKS) throw new RangeError(`at most ${MAX_TASKS} compaction tasks, got ${o.tasks.length}`);
    this.blocksPerTick = b;
    this.#journal = o.journal;
    this.#tasks = o.tasks.slice();
    this.stepsByTask = new Uint32Array(o.tasks.length);
  }

  /** True if some log has compaction work (running or due). */
  get due(): boolean {
    for (const t of this.#tasks) if (t.compactionDue) return true;
    return false;
  }

  /** One tick of background flash work; the report object is reused. */
  tick(): TickReport {
    const r = this.#report;
    r.journalErases = 0;
    r.steps = 0;
    r.worked = -1;
    this.ticks++;
    let left = this.blocksPerTick;
    if (this.#journal !== null) {
      const erased = this.#journal.maintain(left).erased;
      if (!(erased >= 0 && erased <= left)) throw new Error(`journal maintenance erased ${erased} blocks of a budget of ${left}`);
      r.journalErases = erased;
      this.journalErases += erased;
      left -= erased;
    }
    // Two passes: blocked logs first, then due ones; each task at most once per pass (bounded).
    for (let pass = 0; pass < 2 && left > 0; pass++) {
      for (let i = 0; i < this.#tasks.length && left > 0; i++) {
        const t = this.#tasks[i] as CompactionTask;
        if (!t.compactionDue || (pass === 0 && !t.appendsBlocked)) continue;
        const used = t.compactStep(left);
        if (!(used >= 0 && used <= left)) throw new Error(`${t.name}: compaction used ${used} steps of a budget of ${left}`);
        left -= used;
        r.steps += used;
        this.stepsByTask[i] = (this.stepsByTask[i] as number) + used;
        if (used > 0) r.worked = i;
      }
    }
    return r;
  }
}
