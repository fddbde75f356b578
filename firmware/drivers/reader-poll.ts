// Readers that only answer when asked. A Wiegand interface and an EM4100
// module send a frame by themselves whenever a card is in the field; an M100
// UHF module reports tags only in answer to an inventory command (docs/READERS.md).
// The poller sends that command on the reader's UART every `intervalMs`, the
// frame decoder reads what comes back. Per reader kind: whether it is polled,
// how often by default, and whether it stays quiet while the lane is busy.
//
// Bounded and allocation-free: one repeating timer, one constant command frame
// written as it is. Device code: no Node APIs.

import type { Timers, TimerHandle } from '../ports.js';

export type PolledReaderKind = 'wiegand' | 'em4100' | 'uhf';

/** M100 single inventory (command 0x22): BB, type 00 (command), 22, PL 00 00, checksum 22, 7E. */
export const M100_SINGLE_POLL: Uint8Array = Uint8Array.of(0xbb, 0x00, 0x22, 0x00, 0x00, 0x22, 0x7e);

export interface ReaderPollSpec {
  /** The command frame that asks the reader for a read; null: the reader reports by itself. */
  readonly command: Uint8Array | null;
  /** Default interval between commands, ms (0 = not polled). */
  readonly intervalMs: number;
  /**
   * No commands while the lane is busy (a grant waits for its passage). A UHF
   * reader keeps seeing the tag of the vehicle or consignment that is passing:
   * polled, it would report it again every duplicate window and each report
   * would be a refused repeat tap in the journal.
   */
  readonly quietWhileBusy: boolean;
}

/**
 * Why 100 ms for UHF: one single inventory takes the M100 some tens of ms; 10
 * polls a second add at most 100 ms to the time from tag to barrier and keep
 * the UART (115200 baud, 7 bytes out, ~24 bytes back per tag) far from busy.
 */
export const READER_POLL: Readonly<Record<PolledReaderKind, ReaderPollSpec>> = {
  wiegand: { command: null, intervalMs: 0, quietWhileBusy: false },
  em4100: { command: null, intervalMs: 0, quietWhileBusy: false },
  uhf: { command: M100_SINGLE_POLL, intervalMs: 100, quietWhileBusy: true },
};

/** Longest configurable interval (a minute): beyond that a reader is effectively off. */
export const MAX_POLL_INTERVAL_MS = 60_000;

export interface ReaderPollerOptions {
  readonly kind: PolledReaderKind;
  /** Overrides the kind's default interval (0 = never poll). */
  readonly intervalMs?: number;
  readonly timers: Timers;
  /** Sends bytes to the reader (the serial source's write); false if they were not taken. */
  readonly write: (bytes: Uint8Array) => boolean;
  /** True while the lane is busy (see ReaderPollSpec.quietWhileBusy). */
  readonly busy: () => boolean;
}

export interface ReaderPollStats {
  /** Commands written. */
  polls: number;
  /** Ticks skipped because the lane was busy. */
  quiet: number;
  /** Writes the UART refused (TX FIFO full). */
  writeFailed: number;
}

export class ReaderPoller {
  readonly spec: ReaderPollSpec;
  readonly intervalMs: number;
  readonly stats: ReaderPollStats = { polls: 0, quiet: 0, writeFailed: 0 };
  readonly #o: ReaderPollerOptions;
  #timer: TimerHandle | null = null;

  constructor(o: ReaderPollerOptions) {
    this.#o = o;
    this.spec = READER_POLL[o.kind];
    const ms = o.intervalMs ?? this.spec.intervalMs;
    if (!Number.isInteger(ms) || ms < 0 || ms > MAX_POLL_INTERVAL_MS) throw new RangeError(`reader poll interval must be 0..${MAX_POLL_INTERVAL_MS} ms, got ${String(ms)}`);
    this.intervalMs = this.spec.command === null ? 0 : ms;
  }

  /** True if this reader is sent commands at all. */
  get active(): boolean {
    return this.intervalMs > 0;
  }

  start(): void {
    if (!this.active || this.#timer !== null) return;
    this.#timer = this.#o.timers.repeat(() => this.#tick(), this.intervalMs);
  }

  stop(): void {
    if (this.#timer !== null) this.#o.timers.clear(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    const command = this.spec.command;
    if (command === null) return;
    if (this.spec.quietWhileBusy && this.#o.busy()) {
      this.stats.quiet++;
      return;
    }
    if (this.#o.write(command)) this.stats.polls++;
    else this.stats.writeFailed++;
  }
}
