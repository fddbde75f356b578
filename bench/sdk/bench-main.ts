// The SDK bench program's entry (npm run bench -- sdk builds it with mcconfig
// -p x-cli-lin): the store, journal and tap workloads of the xsnap benchmarks,
// timed with a monotonic microsecond clock from the program's C (on lin the
// SDK's Time.ticks is in milliseconds and XS has no compute meter). Usage:
//   bench-sdk decision FLASH IMAGE_BYTES TAPS COUNT
//   bench-sdk journal APPENDS RECOVERIES
//   bench-sdk tap FLASH CREDENTIALS IDS COUNT
//   bench-sdk mac COUNT
// Prints one JSON object. The tap uses the device's crypto: SHA-256 from the
// SDK's native Digest, as on the gate.

import '../../firmware/moddable/globals.js';
import { argument, micros, readFile, write } from 'sdk-host';
import { DigestCrypto } from '../../firmware/moddable/digest-crypto.js';
import { runStore } from '../store-cases.js';
import { runTaps } from '../tap-cases.js';
import { runJournalBench } from '../xs/journal.entry.js';
import { macCases } from '../protocol-cases.js';

const now = (): number => micros() / 1000;
const arg = (i: number): string => {
  const a = argument(i);
  if (a === undefined) throw new Error(`bench-sdk: argument ${i} missing (see the usage in bench/sdk/bench-main.ts)`);
  return a;
};
const bytes = (path: string): Uint8Array => new Uint8Array(readFile(path));
const crypto = new DigestCrypto();

let result: unknown;
switch (arg(0)) {
  case 'decision': {
    const taps = bytes(arg(3));
    result = runStore(bytes(arg(1)), Number(arg(2)), new Uint32Array(taps.buffer, taps.byteOffset, taps.byteLength / 4), Number(arg(4)), crypto, now);
    break;
  }
  case 'journal':
    result = runJournalBench(now, { appends: Number(arg(1)), recoveries: Number(arg(2)) });
    break;
  case 'tap':
    result = runTaps(bytes(arg(1)), Number(arg(2)), bytes(arg(3)), Number(arg(4)), crypto, now);
    break;
  case 'mac':
    result = macCases(crypto).map(([name, fn]) => {
      const samplesUs: number[] = [];
      for (let i = 0; i < Number(arg(1)); i++) {
        const t0 = micros();
        fn();
        samplesUs.push(micros() - t0);
      }
      return { name, samplesUs };
    });
    break;
  default:
    throw new Error(`bench-sdk: unknown workload ${arg(0)}`);
}
write(`${JSON.stringify(result)}\n`);
