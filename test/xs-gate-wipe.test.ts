// Issue 16 item 1 on the real XS engine: main.ts keeps the format counter in
// the provisioning partition, so a gate whose data partition is erased (the
// provisioning partition kept) starts its journal in a new epoch; an
// ordinary power cycle keeps the epoch and writes nothing to the provisioning
// partition. The power-cut cases of the same core code are in wiped-gate.test.ts.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { generateKeys } from '../host-sim/central/keys.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { XsGate } from '../host-sim/xs-gate/xs-gate.js';
import { toHex } from '../protocol/hex.js';

const keys = generateKeys();
const CONFIG = { subline: { layout: { credentials: 4000, journalSectors: 16 }, reader: { kind: 'em4100' } } };
const card = (i: number) => Uint8Array.of(0x4e, 0x05, 0x00, (i >> 8) & 0xff, i & 0xff);

const p: ProvisioningRecord = {
  gate: 'xs-wipe', site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
  trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, gateKey: new Uint8Array(32).fill(7), gateKeyId: 1, journalEpoch: 500, policy: DEFAULT_POLICY.first, passbackSeconds: 0,
};

const t = suite('xs gate: a wiped data partition');

t('a new journal epoch after the wipe; the same epoch after a power cycle; the provisioning partition written only on a format', async () => {
  const g = new XsGate({ provisioning: p, wifi: false, config: CONFIG, partitionBytes: { data: 2 * 1024 * 1024 } });
  try {
    let s = await g.start();
    assert.is(s.journal.epoch, 500, 'first boot: the provisioned epoch');
    for (let i = 0; i < 5; i++) g.tap(card(i));
    s = await g.runUntil('taps journaled', (x) => x.journal.lastSeq >= 6);
    const prov1 = toHex(await g.snapshot('provision'));
    // An ordinary power cycle.
    s = await g.powerCycle();
    assert.is(s.journal.epoch, 500);
    assert.ok(s.journal.lastSeq >= 7, 'the journal continues');
    assert.is(toHex(await g.snapshot('provision')), prov1, 'no provisioning write without a format');
    // The wipe.
    await g.kill();
    g.wipeData();
    s = await g.start();
    assert.is(s.journal.epoch, 501, 'a new epoch after the wipe');
    assert.is(s.journal.lastSeq, 1, 'a new journal (its boot record)');
    assert.ok(g.lines.some((l) => /journal 501\.1 \(acked 0, new journal: data partition formatted\)/.test(l)), g.lines.filter((l) => l.includes('boot')).join('\n'));
    s = await g.powerCycle();
    assert.is(s.journal.epoch, 501, 'kept across power cycles');
  } finally {
    await g.close();
  }
});

t.run();
