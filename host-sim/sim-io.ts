// Simulated lane hardware for a gate on the host: outputs that remember
// their state (and can be made to fail), inputs the simulator drives.

import type { InputName, Inputs, OutputName, Outputs } from '../firmware/ports.js';

export class SimOutputs implements Outputs {
  readonly state: Record<OutputName, boolean> = { relay: false, barrier: false, lampGreen: false, lampRed: false, buzzer: false };
  readonly faulty = new Set<OutputName>();
  changes = 0;
  set(output: OutputName, on: boolean): boolean {
    this.state[output] = on;
    this.changes++;
    return !this.faulty.has(output);
  }
}

export class SimInputs implements Inputs {
  readonly values: Record<InputName, boolean> = { rotation: false, door: false, presence: false, fire: false };
  #cb: ((input: InputName, value: boolean, atMs: number) => void) | null = null;
  constructor(private readonly now: () => number) {}
  read(input: InputName): boolean {
    return this.values[input];
  }
  onChange(cb: (input: InputName, value: boolean, atMs: number) => void): void {
    this.#cb = cb;
  }
  /** Drives an input as the hardware would. */
  set(input: InputName, value: boolean): void {
    if (this.values[input] === value) return;
    this.values[input] = value;
    this.#cb?.(input, value, this.now());
  }
  /** A turnstile rotation: the sensor pulses. */
  pulse(input: InputName): void {
    this.set(input, true);
    this.set(input, false);
  }
}
