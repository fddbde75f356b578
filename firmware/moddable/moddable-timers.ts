// Timers on Moddable's `timer` module (modules/base/timer): Timer.set for a
// one-shot, Timer.repeat for an interval, Timer.clear (a no-op on a timer
// that already fired, see xs_timer_clear). Handles are Timer host objects.

import Timer from 'timer';
import type { TimerHandle, Timers } from '../ports.js';

/** No options yet; the object is kept for the adapters' common shape. */
export type ModdableTimersOptions = Readonly<Record<string, never>>;

export class ModdableTimers implements Timers {
  readonly #live = new Set<TimerHandle>();
  #closed = false;

  constructor(_options: ModdableTimersOptions = {}) {}

  set(callback: () => void, delayMs: number): TimerHandle {
    this.#check();
    const t: Timer = Timer.set(() => {
      this.#live.delete(t);
      callback();
    }, Math.max(0, delayMs));
    this.#live.add(t);
    return t;
  }

  repeat(callback: () => void, intervalMs: number): TimerHandle {
    this.#check();
    const t = Timer.repeat(() => callback(), Math.max(1, intervalMs));
    this.#live.add(t);
    return t;
  }

  clear(handle: TimerHandle): void {
    if (!this.#live.delete(handle)) return;
    Timer.clear(handle as Timer);
  }

  /** Clears every timer this instance set. */
  close(): void {
    for (const t of this.#live) Timer.clear(t as Timer);
    this.#live.clear();
    this.#closed = true;
  }

  #check(): void {
    if (this.#closed) throw new Error('ModdableTimers is closed');
  }
}
