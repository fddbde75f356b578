// The gate's TLS on the SDK's XS (docs/TESTING.md, "Device checks"): the
// x-cli-lin program test/sdk/program/tls-main.ts opens TLS with a gate's
// certificate from a real `central provision` record to a Mosquitto started
// from `subline broker config`, through the device's mqtt-net.ts and
// tls-socket.ts, publishes a sealed status, receives the central's ack, is
// refused on another gate's topic and, with another CA, at the handshake.
// Without an SDK ($MODDABLE) or Mosquitto this is not run: the runner prints
// "device TLS check: not run (<reason>)" and counts nothing for it.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync } from 'node:fs';
import { findMosquitto } from '../host-sim/broker.js';
import { locateSdk } from '../host-sim/moddable-sdk/sdk.js';
import { runTlsCheck } from './sdk/tls-check.js';

const sdk = locateSdk();
const reason = !sdk.ok ? sdk.reason : findMosquitto() === null ? 'mosquitto is not installed (apt-get install -y mosquitto)' : null;
if (reason !== null) {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `device TLS check: not run (${reason})\n`);
  else console.log(`device TLS check: not run (${reason})`);
} else {
  const t = suite('device: TLS from the SDK XS to Mosquitto with a gate certificate');

  t('handshake, status, ack, refusal on another gate topic and at the handshake with another CA', async () => {
    const r = await runTlsCheck();
    assert.equal(r.problems, [], `${r.problems.join('; ')}\n${r.lines.join('\n')}\n${r.stderr}`);
    assert.ok(r.ok);
    assert.is(r.exit, 0);
    assert.is(r.stderr, '', 'the program wrote nothing to stderr');
    assert.ok(r.handshakeMs > 0, 'the handshake was timed');
    assert.match(r.lines[r.lines.length - 1] ?? '', /^tls-check: ok, handshake \d+ ms$/);
    assert.ok(r.central.statusOpened, "the central opened g-a's status with g-a's key");
    assert.is(r.central.foreignDelivered, 0, "nothing of g-a's arrived on g-b's topic");
    assert.ok(r.lines.some((l) => l.startsWith('refused at handshake: server_untrusted')), 'another CA is refused at the handshake');
  });

  t.run();
}
