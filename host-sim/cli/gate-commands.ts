import type { Command } from 'commander';

/** Not built yet (being written in parallel). */
export function registerGate(_program: Command): void {}
