// Guest shim for Moddable's `time` module (modules/base/time): ticks are the
// virtual ms since boot as a signed 32-bit integer, delta() subtracts in
// unsigned 32-bit arithmetic, set(seconds) sets the system clock that
// Date.now() reads (runtime.ts patches Date.now).

import { clock } from './runtime.js';

const Time = {
  set(seconds: number): void {
    clock.setWall(seconds);
  },
  timezone: 0,
  dst: 0,
  get ticks(): number {
    return clock.ticks;
  },
  delta(start: number, end?: number): number {
    return ((end ?? clock.ticks) - start) >>> 0;
  },
  get microseconds(): number {
    return clock.now * 1000;
  },
};

export default Time;
