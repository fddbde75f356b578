// npm run device:build | device:check — the gate built with the Moddable SDK.
//   device:build  mcconfig -m -p lin manifest.json into build/device-lin: every
//                 module of the gate compiled by the SDK (tsc, xsc, xsl) and
//                 linked into mc.so. A compile check: lin has no ECMA-419 device
//                 provider and no flash, so mc.so does not run a gate.
//   device:check  the protocol, whitelist, journal and overlay cases on the
//                 SDK's own XS (an x-cli-lin program) and on Node; the lines
//                 must be byte-identical.
//   device:tls-check  a real TLS handshake from the SDK's XS (x-cli-lin program,
//                 the device's mqtt-net.ts + tls-socket.ts) with a gate's
//                 certificate to a Mosquitto from `subline broker config`
//                 (test/sdk/tls-check.ts). Needs mosquitto too.
// Needs MODDABLE (docs/FLASHING.md, "Install the Moddable SDK"). Exit 0 ok,
// 1 failed, 2 usage or no SDK.

import { join } from 'node:path';
import { buildHost, locateSdk, ROOT, SdkError } from '../host-sim/moddable-sdk/sdk.js';
import { runDeviceCheck } from '../test/sdk/device-check.js';
import { runTlsCheck } from '../test/sdk/tls-check.js';
import { findMosquitto } from '../host-sim/broker.js';

const USAGE = `usage: npm run device:build [-- --json] | npm run device:check [-- --json] [--verbose] | npm run device:tls-check [-- --json] [--verbose]
  device:build   compile the whole gate with the Moddable SDK (mcconfig -m -p lin) into build/device-lin
  device:check   run the device cases on the SDK's XS and on Node and compare them line by line
  device:tls-check  TLS from the SDK's XS with a gate's certificate to Mosquitto: handshake, status, ack, refusals (needs mosquitto)
  --json         one JSON object on stdout instead of text
  --verbose      echo mcconfig's output
needs MODDABLE set to an SDK with host tools (docs/FLASHING.md)`;

const [command, ...flags] = process.argv.slice(2);
if (command === undefined || flags.includes('--help') || flags.includes('-h') || command === '--help' || command === '-h') {
  console.log(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
const unknown = flags.filter((f) => f !== '--json' && f !== '--verbose');
if ((command !== 'build' && command !== 'check' && command !== 'tls-check') || unknown.length > 0) {
  console.error(`device: unknown ${unknown.length > 0 ? `option ${unknown.join(' ')}` : `command ${command}`}\n${USAGE}`);
  process.exit(2);
}
const json = flags.includes('--json');
const log = flags.includes('--verbose') ? (c: string) => process.stderr.write(c) : undefined;
const sdk = locateSdk();
if (!sdk.ok) {
  console.error(`device:${command}: ${sdk.reason}`);
  process.exit(2);
}

try {
  if (command === 'build') {
    if (!json) console.error(`device:build: mcconfig -m -p lin manifest.json (MODDABLE=${sdk.moddable}); about a minute from clean`);
    const r = await buildHost(join(ROOT, 'build', 'device-lin'), log);
    if (json) console.log(JSON.stringify({ ok: true, so: r.so, ms: Math.round(r.ms) }));
    else console.log(`device:build: linked ${r.so} in ${(r.ms / 1000).toFixed(1)} s`);
  } else if (command === 'tls-check') {
    if (findMosquitto() === null) {
      console.error('device:tls-check: mosquitto is not installed (apt-get install -y mosquitto)');
      process.exit(2);
    }
    if (!json) console.error('device:tls-check: building the TLS program (mcconfig -m -p x-cli-lin), a deployment with `central init` and `provision`, Mosquitto from `broker config`');
    const r = await runTlsCheck(log);
    if (json) console.log(JSON.stringify({ ok: r.ok, handshakeMs: r.handshakeMs, memory: r.memory, problems: r.problems, exit: r.exit, buildMs: Math.round(r.buildMs), runMs: Math.round(r.runMs) }));
    else {
      for (const l of r.lines) console.log(`  ${l}`);
      if (r.stderr !== '') console.log(`  stderr: ${r.stderr.trim()}`);
      // The program's own last line is the verdict when every check on this side held too.
      console.log(r.ok ? (r.lines[r.lines.length - 1] ?? '') : `tls-check: FAILED: ${r.problems.join('; ')}`);
    }
    process.exit(r.ok ? 0 : 1);
  } else {
    if (!json) console.error('device:check: building the check program (mcconfig -m -p x-cli-lin) and running the cases on the SDK XS and on Node');
    const r = await runDeviceCheck(log);
    if (json) console.log(JSON.stringify({ ok: r.identical, cases: r.cases, firstDifference: r.firstDifference, sdkExit: r.sdkExit, buildMs: Math.round(r.buildMs), runMs: Math.round(r.runMs) }));
    else if (r.identical) console.log(`device:check: ${r.cases} cases, SDK XS and Node identical (program ${r.binary}, ran in ${Math.round(r.runMs)} ms)`);
    else {
      const i = r.firstDifference - 1;
      console.log(`device:check: FAILED (program exit ${r.sdkExit}) at line ${r.firstDifference} of ${r.cases}\n  node: ${r.node[i] ?? '(none)'}\n  sdk:  ${r.sdk[i] ?? '(none)'}${r.sdkStderr === '' ? '' : `\n  stderr: ${r.sdkStderr.trim()}`}`);
    }
    process.exit(r.identical ? 0 : 1);
  }
} catch (e) {
  console.error(`device:${command}: ${e instanceof SdkError ? e.message : String(e instanceof Error ? (e.stack ?? e.message) : e)}`);
  process.exit(1);
}
