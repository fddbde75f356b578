import type { Command } from 'commander';

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('run the fleet simulator (being built)')
    .action(() => {
      console.log('subline-gate: the fleet simulator is being built; see README.md.');
    });
}
