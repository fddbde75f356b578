// Inputs (rotation sensor, door contact, presence loop, fire release) on
// ECMA-419 digital pins with an interrupt on both edges.
//
// Debouncing is done here, in software. The digital driver does not time
// edges: its ISR only sets a "triggered" bit and queues one callback, so the
// edges of a bouncing contact coalesce into one onReadable
// (modules/io/digital/esp32/digitalbank.c, digitalISR). So on each onReadable
// the input's settle timer restarts; when the level has held for debounceMs
// the pin is read once, and if the (polarity-corrected) value differs from
// the last one reported, onChange fires with the time of the first edge of
// the burst. With debounceMs 0 the pin is read and reported in onReadable.
//
// An input with no pin configured reads false and never changes.

import device from 'embedded:provider/builtin';
import type Digital from 'embedded:io/digital';
import Timer from 'timer';
import type { Clock, InputName, Inputs } from '../ports.js';
import type { InputPinSettings } from './settings.js';

export interface DigitalInputsOptions {
  readonly pins: Readonly<Partial<Record<InputName, InputPinSettings>>>;
  /** Time stamps for onChange. */
  readonly clock: Clock;
  /**
   * Inputs that read false and report nothing until release(); then, if one
   * is active, it is reported through onChange. main.ts holds `fire` until the
   * gate is open: the lane controller acts on an active fire input in its
   * constructor, before the journal is open, and that throws.
   */
  readonly hold?: readonly InputName[];
}

interface Pin {
  readonly name: InputName;
  readonly io: Digital;
  readonly activeLow: boolean;
  readonly debounceMs: number;
  value: boolean;
  settle: Timer | null;
  firstEdgeAt: number;
}

export class DigitalInputs implements Inputs {
  readonly #pins = new Map<InputName, Pin>();
  readonly #clock: Clock;
  readonly #held = new Set<InputName>();
  #onChange: ((input: InputName, value: boolean, atMs: number) => void) | null = null;

  constructor(options: DigitalInputsOptions) {
    this.#clock = options.clock;
    for (const name of options.hold ?? []) this.#held.add(name);
    const Io = device.io.Digital;
    try {
      for (const [name, p] of Object.entries(options.pins) as [InputName, InputPinSettings | undefined][]) {
        if (p === undefined) continue;
        const mode = p.pull === 'up' ? Io.InputPullUp : p.pull === 'down' ? Io.InputPullDown : Io.Input;
        let pin: Pin | null = null;
        const io = new Io({
          pin: p.pin,
          mode,
          edge: Io.Rising | Io.Falling,
          onReadable: () => {
            if (pin !== null) this.#edge(pin);
          },
        });
        pin = { name, io, activeLow: p.activeLow, debounceMs: p.debounceMs, value: false, settle: null, firstEdgeAt: 0 };
        pin.value = this.#level(pin);
        this.#pins.set(name, pin);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  read(input: InputName): boolean {
    if (this.#held.has(input)) return false;
    return this.#pins.get(input)?.value ?? false;
  }

  /** Ends the hold: held inputs that are active now are reported as changes. */
  release(): void {
    const held = [...this.#held];
    this.#held.clear();
    const now = this.#clock.monotonicMs();
    for (const name of held) {
      const p = this.#pins.get(name);
      if (p !== undefined && p.value) this.#onChange?.(name, true, now);
    }
  }

  onChange(callback: (input: InputName, value: boolean, atMs: number) => void): void {
    this.#onChange = callback;
  }

  close(): void {
    for (const p of this.#pins.values()) {
      if (p.settle !== null) Timer.clear(p.settle);
      p.settle = null;
      try {
        p.io.close();
      } catch {
        // already closed
      }
    }
    this.#pins.clear();
    this.#onChange = null;
  }

  #level(p: Pin): boolean {
    return (p.io.read() === 1) !== p.activeLow;
  }

  #edge(p: Pin): void {
    const now = this.#clock.monotonicMs();
    if (p.debounceMs === 0) {
      this.#report(p, now);
      return;
    }
    if (p.settle === null) p.firstEdgeAt = now;
    else Timer.clear(p.settle);
    p.settle = Timer.set(() => {
      p.settle = null;
      this.#report(p, p.firstEdgeAt);
    }, p.debounceMs);
  }

  #report(p: Pin, atMs: number): void {
    const v = this.#level(p);
    if (v === p.value) return;
    p.value = v;
    if (!this.#held.has(p.name)) this.#onChange?.(p.name, v, atMs);
  }
}
