// An error meant for the user: its message is printed as is (no stack) and
// the process exits with its code. Codes: 2 bad input or usage, 3 refused
// (by a gate or the central), 4 timed out, 1 anything else.
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
