// What the console's live pages receive (GET /api/stream, server-sent
// events), shared by every open page: the fleet, re-read every second and
// sent when it changed, and the events as they are stored, coalesced into one
// message every 250 ms (at most 500 a message: at 1,000 events/s a page gets
// four messages a second, never a thousand; the rest are counted as
// `skipped`). One follower and one fleet reader run while anyone listens.

import type { EventQuery, QueriedEvent } from '../central/event-query.js';
import type { Fleet } from '../central/fleet-view.js';

export type FeedEvent = 'fleet' | 'passages';
export type FeedListener = (event: FeedEvent, data: unknown) => void;

export interface LiveFeedOptions {
  readonly fleet: () => Promise<Fleet>;
  readonly events: EventQuery;
  readonly fleetMs?: number;
  readonly flushMs?: number;
  readonly maxBatch?: number;
}

export class LiveFeed {
  readonly #o: LiveFeedOptions;
  readonly #listeners = new Set<FeedListener>();
  #fleetJson = '';
  #fleet: Fleet | null = null;
  #buffer: QueriedEvent[] = [];
  #skipped = 0;
  #abort: AbortController | null = null;
  #timers: NodeJS.Timeout[] = [];
  #readingFleet = false;

  constructor(o: LiveFeedOptions) {
    this.#o = o;
  }

  /** Listens until the returned function is called; the current fleet comes at once (when known). */
  subscribe(cb: FeedListener): () => void {
    this.#listeners.add(cb);
    if (this.#fleet !== null) cb('fleet', this.#fleet);
    if (this.#abort === null) this.#start();
    else void this.#readFleet();
    return () => {
      this.#listeners.delete(cb);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  close(): void {
    this.#listeners.clear();
    this.#stop();
  }

  #start(): void {
    const abort = new AbortController();
    this.#abort = abort;
    void this.#readFleet();
    this.#timers.push(setInterval(() => void this.#readFleet(), this.#o.fleetMs ?? 1000));
    this.#timers.push(setInterval(() => this.#flush(), this.#o.flushMs ?? 250));
    void this.#follow(abort.signal);
  }

  /** Follows the store while anyone listens; a failed read (the store busy) starts again after a pause, from now. */
  async #follow(signal: AbortSignal): Promise<void> {
    for (let pause = 250; !signal.aborted; pause = Math.min(pause * 2, 10_000)) {
      try {
        for await (const e of this.#o.events.follow({}, { from: 'now', pollMs: 200, signal })) {
          if (this.#buffer.length >= (this.#o.maxBatch ?? 500)) {
            this.#buffer.shift();
            this.#skipped++;
          }
          this.#buffer.push(e);
          pause = 250;
        }
      } catch {
        // the store busy or closing: below, again after a pause (the abort ends it)
      }
      await new Promise((r) => setTimeout(r, pause).unref());
    }
  }

  #stop(): void {
    this.#abort?.abort();
    this.#abort = null;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#buffer = [];
    this.#skipped = 0;
  }

  async #readFleet(): Promise<void> {
    if (this.#readingFleet) return;
    this.#readingFleet = true;
    try {
      const f = await this.#o.fleet();
      const json = JSON.stringify(f);
      if (json === this.#fleetJson) return;
      this.#fleetJson = json;
      this.#fleet = f;
      this.#send('fleet', f);
    } catch {
      // the store is busy or closing: the next second tries again
    } finally {
      this.#readingFleet = false;
    }
  }

  #flush(): void {
    if (this.#buffer.length === 0) return;
    const events = this.#buffer;
    const skipped = this.#skipped;
    this.#buffer = [];
    this.#skipped = 0;
    this.#send('passages', { events, skipped });
  }

  #send(event: FeedEvent, data: unknown): void {
    for (const l of this.#listeners) {
      try {
        l(event, data);
      } catch {
        // one page's broken connection is not the others'
      }
    }
  }
}
