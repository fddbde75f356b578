// Timers and Clock for a gate running in real time on Node.
import type { Clock, TimerHandle, Timers } from '../../firmware/ports.js';

export const nodeTimers: Timers = {
  set: (cb, ms) => setTimeout(cb, ms),
  repeat: (cb, ms) => setInterval(cb, ms),
  clear: (h: TimerHandle) => {
    clearTimeout(h as ReturnType<typeof setTimeout>);
    clearInterval(h as ReturnType<typeof setInterval>);
  },
};

/** Wall time from the host; `trusted` as configured (a host with NTP is trusted). */
export class SystemClock implements Clock {
  readonly #start = performance.now();
  constructor(private readonly isTrusted = true, private readonly offsetSeconds = 0) {}
  wallSeconds(): number {
    return Math.floor(Date.now() / 1000) + this.offsetSeconds;
  }
  trusted(): boolean {
    return this.isTrusted;
  }
  monotonicMs(): number {
    return performance.now() - this.#start;
  }
}
