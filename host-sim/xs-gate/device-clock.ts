// A Clock for a gate on Node that keeps time the way an XS gate's device
// clock does (firmware/moddable/system-clock.ts on the simulated `time`
// module): untrusted from boot, wall = the seconds last set plus the
// monotonic ms elapsed since, trusted once set from a trusted source. Used to
// run a Node gate in lockstep with an XS gate (same virtual time, same
// records, byte for byte): setWall(seconds, atMs) replays the XS gate's
// Time.set at the virtual ms it happened.

import type { Clock } from '../../firmware/ports.js';

export class DeviceClock implements Clock {
  readonly #mono: () => number;
  #wallMs: number;
  #wallAt = 0;
  #trusted = false;

  /** `monotonicMs`: the virtual ms since boot; `rtcSeconds`: the wall clock at boot (default 0). */
  constructor(monotonicMs: () => number, rtcSeconds = 0) {
    this.#mono = monotonicMs;
    this.#wallMs = rtcSeconds * 1000;
  }

  wallSeconds(): number {
    return Math.floor((this.#wallMs + (this.#mono() - this.#wallAt)) / 1000);
  }

  trusted(): boolean {
    return this.#trusted;
  }

  monotonicMs(): number {
    return this.#mono();
  }

  /** Time.set(seconds) at virtual ms `atMs` (default now), from a trusted source unless told otherwise. */
  setWall(seconds: number, atMs = this.#mono(), trusted = true): void {
    this.#wallMs = seconds * 1000;
    this.#wallAt = atMs;
    if (trusted) this.#trusted = true;
  }
}
