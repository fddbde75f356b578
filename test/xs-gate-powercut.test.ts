// Power cut on an XS gate at seeded random points of a sync (image pull,
// deltas, event upload): after the cut, the same flash image recovers to
// the same state on the XS gate (main.ts rebooted) and on a Node gate (the
// core opened on a copy of that flash), and the XS gate then converges.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { Gate } from '../firmware/core/gate.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { startEmbeddedBroker } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { mulberry32, NorFlash } from '../host-sim/flash/nor-flash.js';
import { NullNet } from '../host-sim/adapters/null-net.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { SimInputs, SimOutputs } from '../host-sim/sim-io.js';
import { XsGate } from '../host-sim/xs-gate/xs-gate.js';

const keys = generateKeys();
const LAYOUT = { credentials: 4000, journalSectors: 16 };
const CONFIG = { subline: { layout: LAYOUT, reader: { kind: 'em4100' } } };
const card = (i: number) => Uint8Array.of(0x4e, 0x03, 0x00, (i >> 8) & 0xff, i & 0xff);

/** The same flash opened by the core on Node: what it recovers. */
function recoverOnNode(snapshot: Uint8Array, p: ProvisioningRecord): { version: number; epoch: number; lastSeq: number; acked: number; boot: number } {
  const flash = NorFlash.fromSnapshot(snapshot, { blockSize: 4096 });
  const vt = new VirtualTime();
  const gate = new Gate({ provisioning: p, flash, layout: LAYOUT, clock: vt, timers: vt, net: new NullNet(), crypto: nodeCrypto, outputs: new SimOutputs(), inputs: new SimInputs(() => vt.monotonicMs()), random: () => 0.5 });
  const b = gate.open();
  return { version: gate.store.version, epoch: gate.store.epoch, lastSeq: b.journalLastSeq, acked: b.journalAcked, boot: b.boot };
}

const t = suite('xs gate: power cut at random points of a sync');
t('three seeded cuts: XS and Node recover the same state from the same flash; the XS gate then converges', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-xs-cut-'));
  const broker = await startEmbeddedBroker({ port: 0 });
  const central = await Central.open({ db: join(dir, 'central.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: broker.url, headIntervalSeconds: 3600, chunkSize: 4096 });
  await central.start();
  await central.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Future Networks Institute' });
    await r.grant('institution', inst, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] });
    for (let i = 0; i < 2000; i++) {
      await r.addSubject({ id: `p-${i}`, kind: 'person', institution: inst, name: `Person ${i}` });
      await r.addCredential({ subject: `p-${i}`, kind: 'card', rawId: card(i) });
    }
  });
  central.publishHead();
  const rnd = mulberry32(2026);
  const gates: XsGate[] = [];
  try {
    for (let seed = 1; seed <= 3; seed++) {
      const id = await central.provisionGate({ gate: `cut-${seed}`, site: 'futian', list: 'main', line: seed === 2 ? 'second' : 'first', direction: 'in', lane: 'person' });
      const p: ProvisioningRecord = {
        gate: `cut-${seed}`, site: 'futian', line: seed === 2 ? 'second' : 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: broker.url,
        trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, journalEpoch: 1, policy: DEFAULT_POLICY[seed === 2 ? 'second' : 'first'], passbackSeconds: 0,
        gateKey: id.gateKey, gateKeyId: id.gateKeyId,
      };
      const g = new XsGate({ provisioning: p, config: CONFIG, partitionBytes: { data: 2 * 1024 * 1024 }, seed });
      gates.push(g);
      await g.start();
      // A cut somewhere in the first image pull (erases and chunk writes) or the deltas and uploads that follow.
      const at = 1 + Math.floor(rnd() * 300);
      await g.armPowerCut(at, 'any');
      await central.registry.revokeCredential({ kind: 'card', rawId: card(seed) });
      for (let i = 0; i < 5; i++) g.tap(card(10 + i), 'card', i * 300);
      // Keep the sync busy (revocations, taps, uploads) until the cut fires.
      let cut = await g.advance(200);
      for (let step = 0; step < 150 && !cut.status.poweredOff; step++) {
        if (step % 3 === 2) await central.registry.revokeCredential({ kind: 'card', rawId: card(200 + seed * 100 + step) });
        g.tap(card(20 + step));
        await new Promise((r) => setTimeout(r, 20)); // real time for the broker and the bridge's MQTT.js
        cut = await g.advance(300);
      }
      assert.ok(cut.status.poweredOff, `cut ${seed}: op ${at} fired`);
      const flash = await g.snapshot('data');
      const node = recoverOnNode(flash, p);
      const xs = await g.powerCycle();
      assert.ok(xs.running, xs.refused ?? xs.faults.join('; '));
      assert.equal(
        { version: xs.version, epoch: xs.listEpoch, lastSeq: xs.journal.lastSeq, acked: xs.journal.acked, boot: xs.boot },
        node,
        `cut ${seed} at op ${at}: XS and Node recover the same state`,
      );
      await central.registry.revokeCredential({ kind: 'card', rawId: card(100 + seed) });
      const latest = await central.registry.version(); // the last change of this round
      await g.runUntil(`converged after cut ${seed}`, (s) => s.online && s.version === latest && s.journal.acked === s.journal.lastSeq, { timeoutMs: 30000 });
      const rows = await central.events.export(p.gate, 1);
      assert.is(new Set(rows.map((r) => r.seq)).size, rows.length, 'exactly once');
      assert.is(rows.length, g.status().journal.lastSeq);
    }
  } finally {
    for (const g of gates) await g.close();
    await central.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
t.run();
