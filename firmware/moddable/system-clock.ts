// Clock on the device. Wall time is the system time (Date.now(), set with
// Time.set(seconds) when SNTP answers); it is *trusted* only once something
// trustworthy set it since boot: markTrusted() / setWallSeconds(s, true),
// called by main.ts when SNTP gives the time. The ESP32 has no battery RTC,
// so before that the wall time is whatever survived a soft reset, or 1970.
//
// Monotonic time comes from Time.ticks (modules/base/time/esp/modTime.c:
// modMilliseconds() returned as a signed 32-bit integer, so it turns negative
// after ~24.8 days and wraps after ~49.7). Time.delta(start, end) subtracts
// in unsigned 32-bit arithmetic, so the clock accumulates deltas into a
// Number that never goes back; a repeating timer folds the ticks in at least
// hourly so no two reads are 2^31 ms apart.

import Time from 'time';
import Timer from 'timer';
import type { Clock } from '../ports.js';

export interface SystemClockOptions {
  /** How often the tick counter is folded in (default 1 h; must be < 24 days). */
  readonly foldIntervalMs?: number;
}

export class SystemClock implements Clock {
  #trusted = false;
  #lastTicks: number;
  #monotonic: number;
  #fold: Timer | null;

  constructor(options: SystemClockOptions = {}) {
    this.#lastTicks = Time.ticks;
    // Ticks count from boot, so the first reading is already "ms since boot" (if not yet wrapped).
    this.#monotonic = this.#lastTicks >= 0 ? this.#lastTicks : 0;
    this.#fold = Timer.repeat(() => void this.monotonicMs(), options.foldIntervalMs ?? 3_600_000);
  }

  wallSeconds(): number {
    return Math.floor(Date.now() / 1000);
  }

  trusted(): boolean {
    return this.#trusted;
  }

  monotonicMs(): number {
    const now = Time.ticks;
    const d = Time.delta(this.#lastTicks, now);
    if (d > 0) {
      this.#monotonic += d;
      this.#lastTicks = now;
    }
    return this.#monotonic;
  }

  /** Sets the system time (UTC seconds); `trusted` if it came from a trusted source. */
  setWallSeconds(seconds: number, trusted: boolean): void {
    Time.set(seconds);
    if (trusted) this.#trusted = true;
  }

  markTrusted(): void {
    this.#trusted = true;
  }

  close(): void {
    if (this.#fold !== null) Timer.clear(this.#fold);
    this.#fold = null;
  }
}
