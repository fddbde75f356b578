// A simulated M100-family UHF reader, as the gate sees it on its UART: tags
// come into its field and leave it, and it reports them only when polled. On
// a single inventory command (BB 00 22 00 00 22 7E) it answers with one tag
// notification per tag in the field, or the "no tag" response when none is;
// anything else the gate writes is counted and ignored. Used by the Node lane
// scenarios (test/helpers/lane-scenario.ts) and by the XS gate's simulated
// UART (host-sim/xs-gate/guest/), so it runs on XS too: no Node APIs.

import { uhfFrame } from './xs-gate/reader-frames.js';

/** The M100 "no tag" error response (docs/READERS.md). */
export const M100_NO_TAG: Uint8Array = Uint8Array.of(0xbb, 0x01, 0xff, 0x00, 0x01, 0x15, 0x16, 0x7e);

export interface SimUhfReaderStats {
  /** Inventory commands received. */
  polls: number;
  /** Tag notifications sent. */
  reports: number;
  /** Polls answered "no tag". */
  empty: number;
  /** Well-formed commands other than a single inventory, and bytes outside commands. */
  ignored: number;
}

interface TagInField {
  readonly epc: Uint8Array;
  readonly hex: string;
  untilMs: number;
}

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export class SimUhfReader {
  readonly stats: SimUhfReaderStats = { polls: 0, reports: 0, empty: 0, ignored: 0 };
  /** Tags in the field, in the order they came in (the order of the reports). */
  readonly #field: TagInField[] = [];
  readonly #cmd = new Uint8Array(64);
  #n = 0;
  readonly #answer: (bytes: Uint8Array) => void;

  /** `answer` gets the reader's reply to each poll (what it puts on its TX line). */
  constructor(answer: (bytes: Uint8Array) => void) {
    this.#answer = answer;
  }

  /** A tag enters the field (or stays longer) until nowMs + dwellMs. */
  present(epc: Uint8Array, nowMs: number, dwellMs: number): void {
    const hex = hexOf(epc);
    const t = this.#field.find((x) => x.hex === hex);
    if (t !== undefined) t.untilMs = Math.max(t.untilMs, nowMs + dwellMs);
    else this.#field.push({ epc: epc.slice(), hex, untilMs: nowMs + dwellMs });
  }

  /** Tags in the field at nowMs. */
  inField(nowMs: number): number {
    return this.#field.filter((t) => t.untilMs > nowMs).length;
  }

  /** Bytes the gate wrote to the reader at nowMs (any split). */
  write(bytes: Uint8Array, nowMs: number): void {
    for (const b of bytes) this.#byte(b, nowMs);
  }

  #byte(b: number, nowMs: number): void {
    if (this.#n === 0 && b !== 0xbb) {
      this.stats.ignored++;
      return;
    }
    if (this.#n >= this.#cmd.length) {
      this.#n = 0;
      this.stats.ignored++;
      return;
    }
    this.#cmd[this.#n++] = b;
    if (this.#n < 5) return;
    const pl = ((this.#cmd[3] as number) << 8) | (this.#cmd[4] as number);
    if (7 + pl > this.#cmd.length) {
      this.#n = 0;
      this.stats.ignored++;
      return;
    }
    if (this.#n < 7 + pl) return;
    const c = this.#cmd;
    this.#n = 0;
    let sum = 0;
    for (let i = 1; i < 5 + pl; i++) sum = (sum + (c[i] as number)) & 0xff;
    const ok = c[5 + pl] === sum && c[6 + pl] === 0x7e;
    if (ok && c[1] === 0x00 && c[2] === 0x22 && pl === 0) this.#poll(nowMs);
    else this.stats.ignored++;
  }

  #poll(nowMs: number): void {
    this.stats.polls++;
    for (let i = this.#field.length - 1; i >= 0; i--) if ((this.#field[i] as TagInField).untilMs <= nowMs) this.#field.splice(i, 1);
    if (this.#field.length === 0) {
      this.stats.empty++;
      this.#answer(M100_NO_TAG);
      return;
    }
    const frames = this.#field.map((t) => uhfFrame(t.epc));
    const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of frames) {
      out.set(f, at);
      at += f.length;
    }
    this.stats.reports += frames.length;
    this.#answer(out);
  }
}
