// Deterministic virtual time: a Clock and Timers driven by `advance()`, so a
// simulation with a seed replays exactly. Flash operations can charge time
// to it (NorFlash's `charge` option).

import type { Clock, TimerHandle, Timers } from '../../firmware/ports.js';

interface Entry {
  id: number;
  at: number;
  every: number; // 0 = once
  cb: () => void;
}

export class VirtualTime implements Clock, Timers {
  #ms = 0;
  #wallBase: number;
  #trusted: boolean;
  #seq = 1;
  readonly #queue: Entry[] = [];

  constructor(options: { wallSeconds?: number; trusted?: boolean } = {}) {
    this.#wallBase = options.wallSeconds ?? 1_795_000_000;
    this.#trusted = options.trusted ?? true;
  }

  wallSeconds(): number {
    return this.#wallBase + Math.floor(this.#ms / 1000);
  }
  trusted(): boolean {
    return this.#trusted;
  }
  monotonicMs(): number {
    return this.#ms;
  }
  setWall(seconds: number, trusted: boolean): void {
    this.#wallBase = seconds - Math.floor(this.#ms / 1000);
    this.#trusted = trusted;
  }

  set(cb: () => void, delayMs: number): TimerHandle {
    return this.#add(cb, delayMs, 0);
  }
  repeat(cb: () => void, intervalMs: number): TimerHandle {
    return this.#add(cb, intervalMs, Math.max(1, intervalMs));
  }
  clear(h: TimerHandle): void {
    const i = this.#queue.findIndex((e) => e.id === h);
    if (i >= 0) this.#queue.splice(i, 1);
  }
  /** Time spent by the simulated hardware (flash erase, …). */
  charge(ms: number): void {
    this.#ms += ms;
  }

  #add(cb: () => void, delay: number, every: number): number {
    const e = { id: this.#seq++, at: this.#ms + Math.max(0, delay), every, cb };
    this.#queue.push(e);
    return e.id;
  }

  /** Runs every timer due up to now + ms, in time order (ties: creation order). */
  advance(ms: number): void {
    const end = this.#ms + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      let next: Entry | undefined;
      for (const e of this.#queue) if (e.at <= end && (next === undefined || e.at < next.at || (e.at === next.at && e.id < next.id))) next = e;
      if (next === undefined) break;
      this.#ms = Math.max(this.#ms, next.at);
      if (next.every > 0) next.at += next.every;
      else this.#queue.splice(this.#queue.indexOf(next), 1);
      next.cb();
    }
    this.#ms = Math.max(this.#ms, end);
  }
}
