// Determinism enforced, not hoped for: while a simulation runs, the sources
// of nondeterminism a component could reach for behind the simulation's back
// throw. Every component gets time, timers and randomness through its ports
// instead. The driver itself keeps the originals (it yields to the event loop
// with setImmediate, which it captured before installing the guard).

import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { performance } from 'node:perf_hooks';

export class NondeterminismError extends Error {
  constructor(what: string) {
    super(`${what} called inside a deterministic simulation: use the simulation's Clock, Timers or Random port`);
    this.name = 'NondeterminismError';
  }
}

type Patch = readonly [target: object, key: string, original: unknown];

/** The originals, for the driver (captured when this module loads). */
export const realSetImmediate: typeof setImmediate = globalThis.setImmediate;

export class DeterminismGuard {
  #patches: Patch[] = [];
  /** Calls refused since install(): a component that caught the error still shows up here. */
  readonly refused: string[] = [];

  get installed(): boolean {
    return this.#patches.length > 0;
  }

  install(): void {
    if (this.installed) return;
    const refuse = (what: string) => () => {
      if (this.refused.length < 100) this.refused.push(what);
      throw new NondeterminismError(what);
    };
    const patch = (target: object, key: string, what: string): void => {
      this.#patches.push([target, key, (target as Record<string, unknown>)[key]]);
      Object.defineProperty(target, key, { value: refuse(what), configurable: true, writable: true });
    };
    patch(Date, 'now', 'Date.now');
    patch(Math, 'random', 'Math.random');
    patch(globalThis, 'setTimeout', 'setTimeout');
    patch(globalThis, 'setInterval', 'setInterval');
    patch(globalThis, 'setImmediate', 'setImmediate');
    patch(performance, 'now', 'performance.now');
    patch(crypto, 'randomBytes', 'crypto.randomBytes');
    patch(crypto, 'randomUUID', 'crypto.randomUUID');
    patch(crypto, 'randomInt', 'crypto.randomInt');
    patch(globalThis.crypto, 'getRandomValues', 'crypto.getRandomValues');
    // Named imports of node:crypto (import { randomBytes } from ...) see the patch too.
    syncBuiltinESMExports();
  }

  uninstall(): void {
    for (const [target, key, original] of this.#patches.reverse()) Object.defineProperty(target, key, { value: original, configurable: true, writable: true });
    this.#patches = [];
    syncBuiltinESMExports();
  }
}
