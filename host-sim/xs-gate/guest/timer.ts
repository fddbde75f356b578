// Guest shim for Moddable's `timer` module (modules/base/timer) on the
// simulated provider's virtual clock (runtime.ts). Timer.set(cb, delay,
// repeat), Timer.repeat(cb, interval), Timer.schedule, Timer.clear (no-op on
// a fired or cleared timer), Timer.delay (blocks: the virtual clock jumps, no
// callback runs). Callbacks get the timer as their argument.

import { clock, VTimer } from './runtime.js';

type Callback = (timer: Timer) => void;

export default class Timer {
  readonly #t: VTimer;

  private constructor(callback: Callback) {
    this.#t = new VTimer(() => callback(this), 'timer callback');
  }

  static set(callback: Callback, delay = 0, repeat?: number): Timer {
    const t = new Timer(callback);
    clock.schedule(t.#t, delay, repeat ?? 0);
    return t;
  }

  static repeat(callback: Callback, interval: number): Timer {
    const t = new Timer(callback);
    clock.schedule(t.#t, interval, Math.max(1, interval));
    return t;
  }

  static schedule(timer: Timer, delay = 0, repeat?: number): void {
    clock.schedule(timer.#t, delay, repeat ?? 0);
  }

  static clear(timer: Timer | undefined | null): void {
    if (timer === undefined || timer === null) return;
    clock.cancel(timer.#t);
  }

  static delay(ms: number): void {
    clock.now += Math.max(0, ms);
  }
}
