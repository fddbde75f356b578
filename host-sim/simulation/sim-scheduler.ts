// Virtual time for a whole simulated system: one queue of timers for every
// node (gates, central, broker, links), run in time order (ties: the order
// they were set), so a seed replays exactly. Each node gets its own Timers
// (a group, cancelled at once when the node crashes) and its own Clock view
// (skew, jumps and loss of trust are per node); there is one true time.
//
// Bounded: at most `capacity` timers wait at once (an assertion, not a
// silent drop: a leak of timers is a bug the simulation must show).

import type { Clock, TimerHandle, Timers } from '../../firmware/ports.js';

interface Entry {
  readonly id: number;
  at: number;
  readonly every: number; // 0 = once
  readonly cb: () => void;
  readonly group: TimerGroup;
  cancelled: boolean;
}

export class SchedulerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerError';
  }
}

/** A binary heap of timers ordered by (at, id). */
class TimerHeap {
  readonly #a: Entry[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): Entry | undefined {
    return this.#a[0];
  }
  push(e: Entry): void {
    const a = this.#a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
const before = (x: Entry, y: Entry): boolean => x.at < y.at || (x.at === y.at && x.id < y.id);

/** One node's timers: cleared all at once by cancel() (a crash or a power cut). */
export class TimerGroup implements Timers {
  readonly #s: SimScheduler;
  readonly name: string;
  #live = 0;
  #cancelled = false;
  readonly #entries = new Map<number, Entry>();
  constructor(scheduler: SimScheduler, name: string) {
    this.#s = scheduler;
    this.name = name;
  }
  /** Timers of this group waiting. */
  get live(): number {
    return this.#live;
  }
  set(cb: () => void, delayMs: number): TimerHandle {
    return this.#add(cb, delayMs, 0);
  }
  repeat(cb: () => void, intervalMs: number): TimerHandle {
    return this.#add(cb, intervalMs, Math.max(1, intervalMs));
  }
  clear(h: TimerHandle): void {
    const e = this.#entries.get(h as number);
    if (e === undefined) return;
    e.cancelled = true;
    this.#entries.delete(e.id);
    this.#live--;
  }
  /** Drops every timer of the group; later set() calls are ignored (a dead node sets none). */
  cancel(): void {
    this.#cancelled = true;
    for (const e of this.#entries.values()) e.cancelled = true;
    this.#entries.clear();
    this.#live = 0;
  }
  get cancelled(): boolean {
    return this.#cancelled;
  }
  /** @internal the scheduler ran a one-shot timer. */
  done(e: Entry): void {
    if (this.#entries.delete(e.id)) this.#live--;
  }
  #add(cb: () => void, delay: number, every: number): number {
    if (!Number.isFinite(delay)) delay = 0;
    const e = this.#s.enqueue(this, cb, Math.max(0, Math.floor(delay)), every);
    if (this.#cancelled) {
      e.cancelled = true;
      return e.id;
    }
    this.#entries.set(e.id, e);
    this.#live++;
    return e.id;
  }
}

/** A node's view of time: the true time plus its own offset; trust as the simulation sets it. */
export class NodeClock implements Clock {
  readonly #s: SimScheduler;
  /** Seconds added to the true wall time (skew, jumps). */
  offsetSeconds = 0;
  #trusted = true;
  #bootMs: number;
  constructor(scheduler: SimScheduler, options: { offsetSeconds?: number; trusted?: boolean } = {}) {
    this.#s = scheduler;
    this.offsetSeconds = options.offsetSeconds ?? 0;
    this.#trusted = options.trusted ?? true;
    this.#bootMs = scheduler.nowMs;
  }
  wallSeconds(): number {
    return this.#s.wallSeconds() + this.offsetSeconds;
  }
  trusted(): boolean {
    return this.#trusted;
  }
  setTrusted(on: boolean): void {
    this.#trusted = on;
  }
  /** Since this node's boot (a reboot starts it again at 0, as on the device). */
  monotonicMs(): number {
    return this.#s.nowMs - this.#bootMs;
  }
  reboot(): void {
    this.#bootMs = this.#s.nowMs;
  }
}

export interface SimSchedulerOptions {
  /** True wall time at virtual 0 (UTC seconds). */
  readonly wallSeconds?: number;
  /** Timers waiting at once, at most (default 1,000,000). */
  readonly capacity?: number;
}

export class SimScheduler {
  #ms = 0;
  #seq = 1;
  readonly #wallBase: number;
  readonly #capacity: number;
  readonly #heap = new TimerHeap();
  /** Timers run so far. */
  steps = 0;

  constructor(options: SimSchedulerOptions = {}) {
    this.#wallBase = options.wallSeconds ?? 1_795_000_000;
    this.#capacity = options.capacity ?? 1_000_000;
  }

  get nowMs(): number {
    return this.#ms;
  }
  wallSeconds(): number {
    return this.#wallBase + Math.floor(this.#ms / 1000);
  }
  group(name: string): TimerGroup {
    return new TimerGroup(this, name);
  }
  clock(options: { offsetSeconds?: number; trusted?: boolean } = {}): NodeClock {
    return new NodeClock(this, options);
  }

  /** @internal */
  enqueue(group: TimerGroup, cb: () => void, delay: number, every: number): Entry {
    if (this.#heap.size >= this.#capacity) throw new SchedulerError(`more than ${this.#capacity} timers waiting (a timer leak)`);
    const e: Entry = { id: this.#seq++, at: this.#ms + delay, every, cb, group, cancelled: false };
    this.#heap.push(e);
    return e;
  }

  /** When the next timer is due (virtual ms), or undefined if none waits. */
  nextAt(): number | undefined {
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined) return undefined;
      if (!top.cancelled) return top.at;
      this.#heap.pop();
    }
  }

  /**
   * Runs the next timer due at or before `untilMs` and returns true; or moves
   * time to `untilMs` and returns false when none is due.
   */
  step(untilMs: number): boolean {
    const at = this.nextAt();
    if (at === undefined || at > untilMs) {
      if (untilMs > this.#ms) this.#ms = untilMs;
      return false;
    }
    const e = this.#heap.pop()!;
    this.#ms = Math.max(this.#ms, e.at);
    if (e.every > 0) {
      e.at = this.#ms + e.every;
      this.#heap.push(e);
    } else e.group.done(e);
    this.steps++;
    e.cb();
    return true;
  }
}
