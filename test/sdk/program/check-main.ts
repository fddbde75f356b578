// The device check program's entry (built by host-sim/moddable-sdk/sdk.ts with
// mcconfig -p x-cli-lin; run by npm run device:check and the device test).
// Reads the input file named by its first argument and the vector files named by the others, runs the shared cases on
// the SDK's XS with the device's crypto (native Digest for SHA-256) and prints
// one line per case.

import '../../../firmware/moddable/globals.js'; // TextEncoder/TextDecoder, as on the device
import { argument, readFile, write } from 'sdk-host';
import { DigestCrypto } from '../../../firmware/moddable/digest-crypto.js';
import type { VectorFile } from '../../../protocol/vectors.js';
import { runDeviceCases, vectorLines, type DeviceCheckInput } from '../device-cases.js';

const path = argument(0);
if (path === undefined) throw new Error('usage: device-check INPUT.json [VECTORS.json ...]');
const readJson = (p: string): unknown => JSON.parse(new TextDecoder().decode(new Uint8Array(readFile(p))));
const input = readJson(path) as DeviceCheckInput;
const crypto = new DigestCrypto();
// The vector files one at a time, each dropped before the next is read (they do not fit the chunk heap together).
for (let i = 1; argument(i) !== undefined; i++) {
  for (const line of vectorLines(readJson(argument(i) as string) as VectorFile, input.trustedKeys, crypto)) write(`${line}\n`);
}
for (const line of runDeviceCases(input, crypto)) write(`${line}\n`);
