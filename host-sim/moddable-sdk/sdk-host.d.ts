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
  /** After the main module: keep turning the GLib main context (timers, sockets) until exit(). */
  export function loop(): void;
  /** Ends the loop; the process exits with `code`. */
  export function exit(code: number): void;
  /** A full garbage collection now. */
  export function gc(): void;
  /** The machine's XS memory counters: chunk bytes, heap slots (current and peak) and the size of one slot. */
  export function memory(): { chunks: number; peakChunks: number; slots: number; peakSlots: number; slotBytes: number };
}
