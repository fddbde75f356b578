import type { Command } from 'commander';

/** Not built yet (being written in parallel). */
export function registerProvision(_program: Command): void {}
