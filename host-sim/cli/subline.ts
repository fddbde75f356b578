// The `subline` command line. Each subcommand lives in its own module; this
// file only wires them up. Every command has --help; bad input exits non-zero
// with a message that names what was wrong.

import { Command, CommanderError } from 'commander';

const program = new Command('subline')
  .description('subline-gate: gate firmware simulator, reference central and tools')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('sim')
  .description('run the fleet simulator on an embedded MQTT broker (not built yet: see below)')
  .action(() => {
    // The fleet simulator arrives with the sync and CLI issues. Say so plainly
    // rather than pretend: list what this checkout can do today.
    console.log(
      [
        'subline-gate: the fleet simulator is not built yet.',
        '',
        'What this checkout has today:',
        '  npm test           protocol golden vectors on Node and on the real XS engine,',
        '                     fuzzing of every decoder, topic and CBOR-profile checks',
        '  npm run bench      protocol decode benchmarks (node and xs) -> bench/results/',
        '  npm run typecheck  strict TypeScript, device code checked without Node types',
        '  npm run lint',
        '',
        'See README.md and docs/ARCHITECTURE.md for the plan and the layout.',
      ].join('\n'),
    );
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else {
    console.error(`subline: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
