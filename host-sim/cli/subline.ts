// The `subline` command line. Each command group lives in its own module;
// this file only wires them up. Every command has --help; bad input exits
// non-zero with a message that names what was wrong (docs/CLI.md).

import { Command, CommanderError } from 'commander';
import { registerCentral } from './central-commands.js';
import { registerGate } from './gate-commands.js';
import { registerProvision } from './provision-command.js';
import { registerSim } from './sim-command.js';
import { registerSimulate } from './simulate-command.js';
import { registerBroker } from './broker-command.js';
import { CliError } from './cli-error.js';

// `subline ... | head`: a reader that stops early is not an error (no stack trace).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command('subline')
  .description('subline-gate: fleet simulator, reference central and gate tools')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerSim(program);
registerSimulate(program);
registerCentral(program);
registerProvision(program);
registerGate(program);
registerBroker(program);

// Subcommands inherit exitOverride so errors come back here with their codes.
for (const c of program.commands) {
  c.exitOverride();
  for (const s of c.commands) s.exitOverride();
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Help and version exit 0; every usage error (unknown command or option, missing argument or subcommand) exits 2.
    process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : e.exitCode === 0 ? 0 : 2;
  }
  else if (e instanceof CliError) {
    console.error(`subline: ${e.message}`);
    process.exitCode = e.exitCode;
  } else {
    console.error(`subline: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
