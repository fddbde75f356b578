// Writing a file so that a crash leaves either the old file or the new one:
// write a temporary file next to it, fsync, optionally check it, rename over
// the target, then fsync the directory (best effort: not every platform can
// open one). The temporary file is removed on any failure.

import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644). */
  readonly mode?: number;
  /** Called with the temporary file's path after it is durable, before the rename; throw to abort. */
  readonly verify?: (tmpPath: string) => void;
}

export function writeFileAtomic(path: string, parts: Uint8Array | readonly Uint8Array[], options: AtomicWriteOptions = {}): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = openSync(tmp, 'w', options.mode ?? 0o644);
    try {
      if (options.mode !== undefined) fchmodSync(fd, options.mode); // exactly this mode, whatever the umask
      for (const part of parts instanceof Uint8Array ? [parts] : parts) {
        let done = 0;
        while (done < part.length) done += writeSync(fd, part, done, part.length - done);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    options.verify?.(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // the rename is done; only its durability on this platform is unknown
  }
}
