// `subline sim --broker URL` on a broker a real central uses (issue 17,
// item 2): by default the run keeps to a topic root of its own, and it
// refuses to start where another central's head is retained under its root.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startEmbeddedBroker, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { keyIdOf } from '../protocol/crypto.js';
import { Signed } from '../protocol/envelope.js';
import { toHex } from '../protocol/hex.js';
import { decodeMessage } from '../protocol/schema.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import type { SimReport } from '../host-sim/sim/fleet-simulator.js';
import { runSubline } from './helpers/sim-cli.js';

/** A signed envelope of any payload size (its kid is what is looked at). */
const ANY_SIGNED = { ...Signed, maxSize: 1 << 21 };

/** The head retained under `root` on the broker: its signer's key id and version (null: none). */
async function retainedHead(url: string, root: string): Promise<{ kid: string; bytes: string } | null> {
  const c = mqtt.connect(url, { reconnectPeriod: 0 });
  try {
    return await new Promise((resolve, reject) => {
      c.on('error', reject);
      c.on('message', (_t, payload, packet) => {
        if (!packet.retain) return;
        const env = decodeMessage(ANY_SIGNED, new Uint8Array(payload));
        resolve(env.ok ? { kid: toHex(env.value.kid), bytes: toHex(new Uint8Array(payload)) } : null);
      });
      c.once('connect', () => c.subscribe(`${root}/v1/lists/main/head`, { qos: 1 }, () => setTimeout(() => resolve(null), 1000)));
    });
  } finally {
    c.end(true);
  }
}

const t = suite('subline sim on a shared broker');
let broker: BrokerHandle;
let central: Central;
let dir: string;
const keys = generateKeys();

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'subline-sim-shared-'));
  // A lab broker (plain mqtt://, no auth) and a real central on it, under the default root.
  broker = await startEmbeddedBroker({ port: 0 });
  central = await Central.open({ db: join(dir, 'real.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: broker.url, headIntervalSeconds: 3600 });
  await central.start();
  // Its head is published once connected: retained on the broker from then on.
  for (let i = 0; i < 50 && (await retainedHead(broker.url, 'subline')) === null; i++) await new Promise((r) => setTimeout(r, 100));
});
t.after(async () => {
  await central.close();
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
});

t("--topic-root subline where the real central's head is retained: refused (exit 3) before anything is published; the head stays the real central's", async () => {
  const before = await retainedHead(broker.url, 'subline');
  assert.ok(before !== null && before.kid === toHex(keyIdOf(nodeCrypto, keys.publicKey)), 'the real head is there');
  const r = await runSubline(['sim', '--broker', broker.url, '--topic-root', 'subline', '--gates', '4', '--duration', '5', '--no-view']);
  assert.is(r.code, 3, r.err + r.out);
  assert.match(r.err, /another central's head is retained on mqtt:\/\/127\.0\.0\.1:\d+ under 'subline' \(list main, signed by key id [0-9a-f]+, not the simulator's key\)/);
  assert.not.match(r.out, /summary:/);
  const after = await retainedHead(broker.url, 'subline');
  assert.equal(after, before, 'the retained head is the same message');
  assert.is(await central.events.count(), 0);
  assert.equal(central.refusals.all(), [], 'no unknown gate at the real central');
});

t('the default on a plain broker: a topic root of its own (printed); the real root is untouched: no head overwritten, no events or unknown gates at the real central', async () => {
  const before = await retainedHead(broker.url, 'subline');
  const report = join(dir, 'r.json');
  const r = await runSubline(['sim', '--broker', broker.url, '--gates', '4', '--duration', '6', '--no-view', '--report', report]);
  assert.is(r.code, 0, r.err + r.out);
  const root = /topic root (sim-1-[0-9a-f]+) \(its own for this run/.exec(r.err)?.[1];
  assert.ok(root !== undefined, r.err);
  const rep = JSON.parse(readFileSync(report, 'utf8')) as SimReport;
  assert.is(rep.topicRoot, root);
  assert.ok(rep.eventsJournaled > 0 && rep.exactlyOnce, r.out);
  assert.is(await retainedHead(broker.url, root), null, 'the run leaves no retained head under its own root (its key was for this run only)');
  assert.equal(await retainedHead(broker.url, 'subline'), before, 'the real head is untouched');
  assert.is(await central.events.count(), 0, 'no event of the simulator at the real central');
  assert.equal(central.refusals.all(), [], 'no unknown gate at the real central');
  assert.is(central.stats.received.events ?? 0, 0);
  assert.is(central.stats.received.status ?? 0, 0);
});

t('--topic-root chosen: the run leaves no retained head of its own behind, so the next run on that root starts', async () => {
  for (const run of [1, 2]) {
    const r = await runSubline(['sim', '--broker', broker.url, '--topic-root', 'lab/sim', '--gates', '2', '--duration', '3', '--no-view']);
    assert.is(r.code, 0, `run ${run}: ${r.err}${r.out}`);
  }
  assert.is(await central.events.count(), 0);
});

t('--topic-root checks its value (exit 2)', async () => {
  const r = await runSubline(['sim', '--broker', broker.url, '--topic-root', 'bad root', '--no-view']);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /--topic-root 'bad root' must be 1-4 segments/);
});

t.run();
