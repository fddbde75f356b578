// `subline central people|institutions|... list|show` and `central who-has`: reading the registry (issue 19).
import type { Command } from 'commander';

export function registerRegistryReads(_central: Command): void {
  // filled in by the registry read-out commands (issue 19)
}
