// The run's trace: every line folded into one SHA-256 digest (same seed, same
// digest), and the last lines per node kept (bounded) to show what led up to
// a violation.

import { createHash, type Hash } from 'node:crypto';

const KEEP_PER_NODE = 24;

export class Trace {
  readonly #hash: Hash = createHash('sha256');
  readonly #recent = new Map<string, string[]>();
  lines = 0;
  #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** One line about `node` (a gate id, 'central', 'broker', 'world'). */
  add(node: string, line: string): void {
    if (this.#digest !== null) return; // the run is over
    const l = `${this.#now()} ${node} ${line}`;
    this.#hash.update(l);
    this.#hash.update('\n');
    this.lines++;
    let r = this.#recent.get(node);
    if (r === undefined) {
      r = [];
      this.#recent.set(node, r);
    }
    r.push(l);
    if (r.length > KEEP_PER_NODE) r.shift();
  }

  recent(node: string): readonly string[] {
    return this.#recent.get(node) ?? [];
  }

  /** The digest of every line so far (ends the trace). */
  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
  #digest: string | null = null;
}
