// Outputs (relay, barrier, lamps, buzzer) on ECMA-419 digital pins
// (`device.io.Digital` from embedded:provider/builtin; modules/io/digital).
// Pin numbers and polarity come from the settings (manifest config). An
// output that has no pin configured is not wired on this lane: set() on it
// succeeds and does nothing (main.ts refuses to start without the lane's
// relay or barrier).
//
// Faults: a GPIO write cannot tell whether the relay moved. set() reports a
// fault (false) only when the driver throws; a feedback contact would be a
// later addition.

import device from 'embedded:provider/builtin';
import type Digital from 'embedded:io/digital';
import type { OutputName, Outputs } from '../ports.js';
import type { OutputPinSettings } from './settings.js';

export interface DigitalOutputsOptions {
  readonly pins: Readonly<Partial<Record<OutputName, OutputPinSettings>>>;
}

interface Pin {
  readonly io: Digital;
  readonly activeLow: boolean;
  on: boolean;
}

export class DigitalOutputs implements Outputs {
  readonly #pins = new Map<OutputName, Pin>();
  /** Writes that threw, per output (for the status line). */
  readonly faults: Partial<Record<OutputName, number>> = {};

  constructor(options: DigitalOutputsOptions) {
    const Io = device.io.Digital;
    try {
      for (const [name, p] of Object.entries(options.pins) as [OutputName, OutputPinSettings | undefined][]) {
        if (p === undefined) continue;
        const io = new Io({ pin: p.pin, mode: p.openDrain ? Io.OutputOpenDrain : Io.Output });
        // Off from the first instant (the pin was an input until now).
        io.write(p.activeLow ? 1 : 0);
        this.#pins.set(name, { io, activeLow: p.activeLow, on: false });
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  set(output: OutputName, on: boolean): boolean {
    const p = this.#pins.get(output);
    if (p === undefined) return true;
    try {
      p.io.write(on !== p.activeLow ? 1 : 0);
      p.on = on;
      return true;
    } catch {
      this.faults[output] = (this.faults[output] ?? 0) + 1;
      return false;
    }
  }

  has(output: OutputName): boolean {
    return this.#pins.has(output);
  }

  /** Everything off, then the pins are released. */
  close(): void {
    for (const p of this.#pins.values()) {
      try {
        p.io.write(p.activeLow ? 1 : 0);
        p.io.close();
      } catch {
        // already closed or faulted: nothing more to do
      }
    }
    this.#pins.clear();
  }
}
