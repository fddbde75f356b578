// What time the gate believes, and whether it believes it.
//
// - The Clock port says whether its wall time is trusted (network time, or a
//   battery RTC). After a power cut without one it is not.
// - The time floor (persisted by the whitelist store) is the newest accepted
//   head's issue time: real time is never earlier. A clock below it is not
//   believed, whatever it claims.
// - A verified signed head is also a time source: when the clock is not
//   trusted, its issue time (plus time elapsed since it arrived) is adopted.
//   Heads are re-signed every few minutes, so the error is bounded by that
//   period plus delivery delay.
// - Untrusted, the best estimate is a lower bound: floor + time since boot
//   (the floor was reached before this boot began). Validity and schedule
//   checks use it; the freshness policy sees "unsynced".

import type { Clock } from '../ports.js';

export class GateTime {
  readonly #clock: Clock;
  readonly #floor: () => number;
  #signedAt = 0; // issue time of the last head adopted as time
  #signedMs = 0; // monotonic ms when it was adopted
  now = 0;
  trusted = false;

  constructor(clock: Clock, floor: () => number) {
    this.#clock = clock;
    this.#floor = floor;
  }

  /** Adopts a verified head's issue time when nothing better is known. */
  learnSignedTime(issuedAt: number): void {
    if (issuedAt > this.#estimateSigned()) {
      this.#signedAt = issuedAt;
      this.#signedMs = this.#clock.monotonicMs();
    }
  }

  #estimateSigned(): number {
    return this.#signedAt === 0 ? 0 : this.#signedAt + Math.floor((this.#clock.monotonicMs() - this.#signedMs) / 1000);
  }

  /** Updates and returns `this` (now, trusted); no allocation. */
  read(): this {
    const floor = this.#floor();
    const wall = this.#clock.wallSeconds();
    if (this.#clock.trusted() && wall >= floor) {
      this.now = wall;
      this.trusted = true;
      return this;
    }
    const signed = this.#estimateSigned();
    if (signed >= floor && signed > 0) {
      this.now = signed;
      this.trusted = true;
      return this;
    }
    this.now = floor + Math.floor(this.#clock.monotonicMs() / 1000);
    this.trusted = false;
    return this;
  }
}
