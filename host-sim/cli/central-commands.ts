import type { Command } from 'commander';

/** Not built yet (being written in parallel). */
export function registerCentral(_program: Command): void {}
