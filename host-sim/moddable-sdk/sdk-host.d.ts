// Types of the host functions program.c gives the x-cli-lin programs
// (module "sdk-host", declared in sdk-host.js). Only those programs import it.
declare module 'sdk-host' {
  /** Writes the text to stdout as it is. */
  export function write(text: string): void;
  /** Monotonic microseconds. */
  export function micros(): number;
  /** The whole file; throws when it cannot be read. */
  export function readFile(path: string): ArrayBuffer;
  /** The index-th command-line argument after the program name. */
  export function argument(index: number): string | undefined;
}
