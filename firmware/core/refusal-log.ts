// Every message the gate refuses (forged or stale heads, deltas, commands,
// chunks, acks: issue 12), counted by cause, so an operator sees forgeries in
// the gate's status (`refused`) and in its journal. Counts live in RAM only:
// a flood must cost no flash. The journal gets at most one alarm per cause per
// `alarmEveryMs` of the monotonic clock, so a flood of forgeries can never
// fill the journal and turn into journal_full denials.
//
// Fixed capacity: causes come from a finite set in the code, but decode
// errors are folded in, so the table is bounded anyway; once it is full,
// new causes are counted (and alarmed) under OVERFLOW_CAUSE. Device code: no
// Node APIs; no allocation per refusal once a cause is in the table.

import type { Clock } from '../ports.js';

export interface RefusalCount {
  readonly cause: string;
  readonly count: number;
}

export interface RefusalLogOptions {
  readonly clock: Clock;
  /** Distinct causes kept (the last slot is OVERFLOW_CAUSE). Default 32. */
  readonly capacity?: number;
  /** At most one alarm per cause this often. Default 10 minutes. */
  readonly alarmEveryMs?: number;
  /** Journals one alarm for `cause`; called at most once per cause per alarmEveryMs. */
  readonly onAlarm?: (cause: string) => void;
}

export const DEFAULT_REFUSAL_CAPACITY = 32;
export const DEFAULT_REFUSAL_ALARM_MS = 10 * 60 * 1000;
/** Where refusals go once every slot holds another cause. */
export const OVERFLOW_CAUSE = 'other';
/** Causes are status ids: id(48) in protocol/messages.ts GateStatus.refused. */
const CAUSE_MAX = 48;
const CAUSE_OK = /^[a-z0-9][a-z0-9_-]*$/;

export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #every: number;
  readonly #causes: string[];
  readonly #counts: number[];
  readonly #alarmAt: number[]; // monotonic ms of the cause's last alarm, -1 never
  #size = 0;
  #total = 0;

  constructor(o: RefusalLogOptions) {
    const capacity = o.capacity ?? DEFAULT_REFUSAL_CAPACITY;
    if (capacity < 2) throw new RangeError('refusal log: capacity of at least 2');
    this.#o = o;
    this.#every = o.alarmEveryMs ?? DEFAULT_REFUSAL_ALARM_MS;
    this.#causes = new Array<string>(capacity).fill('');
    this.#counts = new Array<number>(capacity).fill(0);
    this.#alarmAt = new Array<number>(capacity).fill(-1);
  }

  /** Refusals counted since boot, all causes. */
  get total(): number {
    return this.#total;
  }

  /** Counts one refusal; journals an alarm if this cause had none within alarmEveryMs. */
  refuse(cause: string): void {
    const i = this.#slot(causeId(cause));
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#total++;
    const now = this.#o.clock.monotonicMs();
    const last = this.#alarmAt[i] as number;
    if (last >= 0 && now - last < this.#every) return;
    this.#alarmAt[i] = now;
    this.#o.onAlarm?.(this.#causes[i] as string);
  }

  count(cause: string): number {
    const id = causeId(cause);
    for (let i = 0; i < this.#causes.length; i++) if (this.#used(i) && this.#causes[i] === id) return this.#counts[i] as number;
    return 0;
  }

  /** The `max` most frequent causes, most frequent first (for the status; allocates, off the tap path). */
  top(max: number): RefusalCount[] {
    const out: RefusalCount[] = [];
    for (let i = 0; i < this.#causes.length; i++) if (this.#used(i)) out.push({ cause: this.#causes[i] as string, count: this.#counts[i] as number });
    out.sort((a, b) => b.count - a.count || (a.cause < b.cause ? -1 : 1));
    return out.length > max ? out.slice(0, max) : out;
  }

  // Slots 0..size-1 hold causes in order of first refusal; the last slot is
  // OVERFLOW_CAUSE's, used ('' until then) once the others are taken.
  #slot(id: string): number {
    const last = this.#causes.length - 1;
    if (id !== OVERFLOW_CAUSE) {
      for (let i = 0; i < this.#size; i++) if (this.#causes[i] === id) return i;
      if (this.#size < last) {
        this.#causes[this.#size] = id;
        return this.#size++;
      }
    }
    this.#causes[last] = OVERFLOW_CAUSE;
    return last;
  }

  #used(i: number): boolean {
    return i < this.#size || (i === this.#causes.length - 1 && this.#causes[i] !== '');
  }
}

/** A cause as a status id: [a-z0-9_-], starting with a letter or digit, at most 48 characters. */
export function causeId(cause: string): string {
  if (cause.length >= 1 && cause.length <= CAUSE_MAX && CAUSE_OK.test(cause)) return cause;
  let s = '';
  for (let i = 0; i < cause.length && s.length < CAUSE_MAX; i++) {
    const c = cause.charCodeAt(i);
    const lower = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    const ok = (lower >= 0x61 && lower <= 0x7a) || (lower >= 0x30 && lower <= 0x39) || ((lower === 0x5f || lower === 0x2d) && s.length > 0);
    s += ok ? String.fromCharCode(lower) : s.length > 0 ? '_' : '';
  }
  return s.length > 0 ? s : OVERFLOW_CAUSE;
}
