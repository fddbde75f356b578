// Per-gate budget for answering sync requests: at most `requests` requests and
// `bytes` of answers per gate in each window of `windowSeconds`. A verified
// gate that asks for more (a bug, or a stolen key) is refused until the next
// window; an unverified sender never reaches the budget (it gets nothing).
// The defaults let a gate pull a 250,000-credential image (about 190 chunks
// of 16 KiB, asked 4 at a time) within one window.

export interface SyncBudgetOptions {
  readonly windowSeconds?: number;
  readonly requests?: number;
  readonly bytes?: number;
}

export const DEFAULT_SYNC_BUDGET = { windowSeconds: 10, requests: 600, bytes: 16 * 1024 * 1024 } as const;
/** Gates tracked at once; beyond it the oldest windows are dropped (they have ended anyway). */
const CAPACITY = 8192;

interface Window {
  start: number;
  requests: number;
  bytes: number;
}

export class SyncBudget {
  readonly windowSeconds: number;
  readonly requests: number;
  readonly bytes: number;
  readonly #windows = new Map<string, Window>();

  constructor(options: SyncBudgetOptions = {}) {
    this.windowSeconds = options.windowSeconds ?? DEFAULT_SYNC_BUDGET.windowSeconds;
    this.requests = options.requests ?? DEFAULT_SYNC_BUDGET.requests;
    this.bytes = options.bytes ?? DEFAULT_SYNC_BUDGET.bytes;
    if (!(this.windowSeconds > 0) || !(this.requests >= 1) || !(this.bytes >= 1)) throw new Error('sync budget: windowSeconds, requests and bytes must be positive');
  }

  /** Takes one request from the gate's budget at `now` (seconds); false (nothing answered) when it is spent. */
  take(gate: string, now: number): boolean {
    let w = this.#windows.get(gate);
    if (w === undefined || now - w.start >= this.windowSeconds) {
      if (w === undefined && this.#windows.size >= CAPACITY) this.#windows.delete(this.#windows.keys().next().value as string);
      w = { start: now, requests: 0, bytes: 0 };
      this.#windows.delete(gate);
      this.#windows.set(gate, w);
    }
    if (w.requests >= this.requests || w.bytes >= this.bytes) return false;
    w.requests++;
    return true;
  }

  /** Charges answer bytes; false once the gate's byte budget for this window is spent (stop answering). */
  charge(gate: string, bytes: number): boolean {
    const w = this.#windows.get(gate);
    if (w === undefined) return false;
    if (w.bytes >= this.bytes) return false;
    w.bytes += bytes;
    return true;
  }
}
