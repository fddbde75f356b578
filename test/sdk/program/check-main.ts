// The device check program's entry (built by host-sim/moddable-sdk/sdk.ts with
// mcconfig -p x-cli-lin; run by npm run device:check and the device test).
// Reads the input file named by its first argument, runs the shared cases on
// the SDK's XS with the device's crypto (native Digest for SHA-256) and prints
// one line per case.

import '../../../firmware/moddable/globals.js'; // TextEncoder/TextDecoder, as on the device
import { argument, readFile, write } from 'sdk-host';
import { DigestCrypto } from '../../../firmware/moddable/digest-crypto.js';
import { runDeviceCases, type DeviceCheckInput } from '../device-cases.js';

const path = argument(0);
if (path === undefined) throw new Error('usage: device-check INPUT.json');
const input = JSON.parse(new TextDecoder().decode(new Uint8Array(readFile(path)))) as DeviceCheckInput;
for (const line of runDeviceCases(input, new DigestCrypto())) write(`${line}\n`);
