// Conformance: firmware/moddable/main.ts on the real XS engine (XsGate: the
// device entry, unchanged, on a simulated ECMA-419 provider) and the same
// firmware core on Node (NodeGate) run one scenario side by side against the
// same broker (embedded aedes) and reference central: taps (granted and
// passed, granted and not taken, unknown, forced rotations), a whitelist
// update (a revocation and a new card), a broker loss with taps offline, and
// a power cut (the XS worker killed and a new one booted from its flash
// snapshot; the Node gate restarted on its flash). Both gates run on the same
// virtual time, stepped together, and the Node gate's clock replays the XS
// gate's SNTP moment, so the central must hold the same journal records for
// both, byte for byte (time and CRC included), and the gates must have made
// the same decisions with the same reasons.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { eventTypeName, RECORD_BYTES } from '../protocol/event-record.js';
import { partitionBytes, type LayoutOptions } from '../firmware/core/partition.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { REASON_NAMES } from '../protocol/reasons.js';
import { toHex } from '../protocol/hex.js';
import { VirtualTime } from '../host-sim/adapters/virtual-time.js';
import { startEmbeddedBroker, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import type { NorFlash } from '../host-sim/flash/nor-flash.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { NodeGate } from '../host-sim/node-gate.js';
import { DeviceClock } from '../host-sim/xs-gate/device-clock.js';
import { XsGate } from '../host-sim/xs-gate/xs-gate.js';

const T0 = Math.floor(Date.now() / 1000);
const LAYOUT: LayoutOptions = { credentials: 4000, journalSectors: 16 };
const ROTATION_DEBOUNCE_MS = 10; // manifest config: subline.inputs.rotation.debounceMs
const card = (i: number) => Uint8Array.of(0x4e, 0x01, 0x00, (i >> 8) & 0xff, i & 0xff);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Node gate on virtual time with a device-like clock. */
class LockstepNodeGate {
  readonly vt = new VirtualTime({ wallSeconds: 0, trusted: false });
  readonly clock = new DeviceClock(() => this.vt.monotonicMs());
  readonly g: NodeGate;
  constructor(p: ProvisioningRecord, flash?: NorFlash) {
    this.g = new NodeGate({ provisioning: p, crypto: nodeCrypto, layout: LAYOUT, clock: this.clock, timers: this.vt, seed: 5, ...(flash !== undefined ? { flash } : {}) });
    this.g.start();
  }
}

interface World {
  dir: string;
  institution: number;
  broker: BrokerHandle;
  port: number;
  central: Central;
  keys: ReturnType<typeof generateKeys>;
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'subline-xs-conf-'));
  const broker = await startEmbeddedBroker({ port: 0 });
  const keys = generateKeys();
  // Every head carries the same issuedAt: both gates then hold the same time floor whatever head they saw last.
  const central = await Central.open({ db: join(dir, 'central.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: broker.url, headIntervalSeconds: 3600, chunkSize: 1024, clock: () => T0 - 30 });
  await central.start();
  const institution = await central.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Quantum Science Centre' });
    await r.grant('institution', inst, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] });
    for (let i = 0; i < 30; i++) {
      await r.addSubject({ id: `p-${i}`, kind: 'person', institution: inst, name: `Person ${i}` });
      await r.addCredential({ subject: `p-${i}`, kind: 'card', rawId: card(i) });
    }
    return inst;
  });
  central.publishHead();
  return { dir, institution, broker, port: broker.port, central, keys };
}

async function provisioning(w: World, gate: string): Promise<ProvisioningRecord> {
  const { gateKey, gateKeyId } = await w.central.provisionGate({ gate, site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' });
  return {
    gate, site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: w.broker.url,
    trustedKeys: [w.keys.publicKey], deploymentKey: w.keys.deploymentKey, gateKey, gateKeyId, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0,
  };
}

const t = suite('xs gate conformance');

t('one scenario on an XS gate (main.ts) and a Node gate: same decisions, reasons and journal records at the central', async () => {
  const w = await world();
  let xs: XsGate | null = null;
  let node: LockstepNodeGate | null = null;
  try {
    const xsRecord = await provisioning(w, 'conf-xs');
    const newXs = (data?: Uint8Array) =>
      new XsGate({ provisioning: xsRecord, config: { subline: { reader: { kind: 'em4100' }, layout: { credentials: LAYOUT.credentials, journalSectors: LAYOUT.journalSectors ?? 16 } } }, ntpSeconds: T0, partitionBytes: { data: partitionBytes(LAYOUT) }, seed: 3, ...(data !== undefined ? { data } : {}) });
    xs = newXs();
    node = new LockstepNodeGate(await provisioning(w, 'conf-node'));
    await xs.start();

    let clockSet = false;
    const step = async (ms = 20) => {
      await xs!.advance(ms);
      node!.vt.advance(ms);
      const ts = xs!.status().timeSet;
      if (!clockSet && ts !== null) {
        node!.clock.setWall(ts.seconds, ts.atMs);
        clockSet = true;
      }
      await sleep(1);
    };
    const until = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20000, stepMs = 20) => {
      const end = Date.now() + timeoutMs;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: xs ${JSON.stringify(xs!.status())} node online ${node!.g.gate.sync.connected} v${node!.g.gate.store.version}`);
        await step(stepMs);
      }
    };
    const run = async (ms: number, stepMs = 20) => {
      for (let done = 0; done < ms; done += stepMs) await step(stepMs);
    };
    const tap = (i: number) => {
      xs!.tap(card(i));
      node!.g.gate.onRead({ kind: 'card', id: card(i), atMs: node!.vt.monotonicMs() });
    };
    /** The rotation sensor pulses; both firmwares report it after the debounce (the XS one debounces in DigitalInputs). */
    const pulse = () => {
      const hold = ROTATION_DEBOUNCE_MS * 2 + 10;
      xs!.pulse('rotation', hold);
      const n = node!;
      n.vt.set(() => n.g.inputs.set('rotation', true), ROTATION_DEBOUNCE_MS);
      n.vt.set(() => n.g.inputs.set('rotation', false), hold + ROTATION_DEBOUNCE_MS);
    };
    const synced = async () => {
      const v = await w.central.registry.version();
      return xs!.status().online && xs!.status().version === v && node!.g.gate.sync.connected && node!.g.gate.store.version === v;
    };
    const drained = () => {
      const s = xs!.status();
      const j = node!.g.gate.journal;
      return s.online && s.journal.acked === s.journal.lastSeq && node!.g.gate.sync.connected && j.acked === j.lastSeq;
    };

    // 1. Boot: both come online, pull the image, get the time.
    await until('both gates online with the whitelist and a trusted clock', async () => (await synced()) && clockSet && xs!.status().clockTrusted);
    assert.equal(xs.status().faults, []);
    assert.ok(xs.lines.some((l) => /^subline: subline-gate .* gate conf-xs \(first line, in, person\) boot 1/.test(l)), xs.lines.join('\n'));

    // 2. Taps: granted and passed, granted and not taken, unknown, a rotation with the lane closed, two rotations on one grant.
    tap(1);
    pulse();
    await run(200);
    tap(2);
    await run(9000, 50); // the grant times out: passage not taken
    tap(99);
    await run(200);
    pulse();
    await run(200);
    tap(3);
    pulse();
    await run(100);
    pulse();
    await run(300);
    assert.is(xs.status().granted, node.g.gate.controller.stats.granted);

    // 3. A whitelist update: a revocation and a new card.
    await w.central.registry.revokeCredential({ kind: 'card', rawId: card(4) });
    await w.central.registry.bulk(async (r) => {
      await r.addSubject({ id: 'p-40', kind: 'person', institution: w.institution, name: 'Person 40' });
      await r.addCredential({ subject: 'p-40', kind: 'card', rawId: card(40) });
    });
    await until('the update on both gates', synced);
    tap(4);
    await run(200);
    tap(40);
    pulse();
    await run(300);

    // 4. The broker goes away; taps go on offline; it comes back and both upload.
    await w.broker.close();
    await until('both offline', () => !xs!.status().online && !node!.g.gate.sync.connected, 10000);
    assert.is(xs.openConnections, 0, 'the bridge holds no connection: nothing reconnects behind the firmware');
    assert.ok(xs.bridgeStats.lost >= 1, 'the loss was reported to the firmware');
    tap(5);
    pulse();
    await run(300);
    tap(98);
    await run(200);
    w.broker = await startEmbeddedBroker({ port: w.port });
    await until('both back and every event acknowledged', drained, 30000, 50);

    const sameDecisions = (when: string) => {
      const x = xs!.status();
      const n = node!.g.gate.controller.stats;
      assert.is(x.taps, n.taps, `${when}: taps`);
      assert.is(x.granted, n.granted, `${when}: granted`);
      assert.equal(x.byReason, Array.from(n.byReason, (k) => k ?? 0), `${when}: decisions by reason`);
      assert.is(x.passages, n.passages, `${when}: passages`);
    };
    sameDecisions('before the power cut');

    // 5. A power cut: the XS worker is killed and a new one boots from the flash snapshot; the Node gate restarts on its flash.
    const beforeCut = xs.status().journal.lastSeq;
    const data = await xs.kill();
    assert.ok(data !== undefined);
    node.g.stop();
    const nodeFlash = node.g.flash;
    xs = newXs(data);
    node = new LockstepNodeGate(await provisioning(w, 'conf-node'), nodeFlash);
    clockSet = false;
    const boot = await xs.start();
    assert.is(boot.boot, 2, 'boot counter from flash');
    assert.is(boot.journal.lastSeq, beforeCut + 1, 'the journal survived; the boot is journaled');
    await until('both online again after the power cut', async () => (await synced()) && clockSet);
    tap(6);
    pulse();
    await run(200);
    tap(4);
    await run(200);
    await until('every event acknowledged', drained, 30000, 50);

    // The same decisions since the reboot...
    sameDecisions('after the power cut');
    const xsStatus = xs.status();
    // ...and the same journal, record for record, at the central.
    const xsRows = await w.central.events.export('conf-xs', 1);
    const nodeRows = await w.central.events.export('conf-node', 1);
    assert.is(xsRows.length, xsStatus.journal.lastSeq, 'the central holds every XS record once');
    assert.is(nodeRows.length, xsRows.length, 'both journals have the same length');
    const describe = (rec: Uint8Array) => `${eventTypeName((rec[12] ?? 0) & 0x1f)}/${REASON_NAMES[rec[13] ?? 0] ?? rec[13]}`;
    for (let i = 0; i < xsRows.length; i++) {
      const a = xsRows[i]!;
      const b = nodeRows[i]!;
      assert.is(a.seq, b.seq);
      assert.is(a.record.length, RECORD_BYTES);
      assert.is(toHex(a.record), toHex(b.record), `seq ${a.seq}: xs ${describe(a.record)} node ${describe(b.record)}`);
    }
    const types = xsRows.map((r) => eventTypeName((r.record[12] ?? 0) & 0x1f));
    const denials = xsRows.filter((r) => eventTypeName((r.record[12] ?? 0) & 0x1f) === 'decision_denied').map((r) => REASON_NAMES[r.record[13] ?? 0]);
    assert.equal(denials, ['unknown_credential', 'revoked', 'unknown_credential', 'revoked'], 'the denials, in order');
    for (const want of ['boot', 'decision_granted', 'decision_denied', 'passage_completed', 'passage_not_taken', 'forced_passage', 'tailgating'] as const) assert.ok(types.includes(want), `${want} in ${types.join(' ')}`);
    assert.is(types.filter((x) => x === 'boot').length, 2);
    assert.is(types.filter((x) => x === 'forced_passage').length, 1, 'a rotation with the lane closed');
    assert.is(types.filter((x) => x === 'tailgating').length, 1, 'two rotations on one grant');
    // Taps were decided on the SNTP time (trusted, after T0), boots before it (untrusted).
    for (const r of xsRows) {
      const time = new DataView(r.record.buffer, r.record.byteOffset, 4).getUint32(0, true);
      const untrusted = ((r.record[12] ?? 0) & 0x80) !== 0;
      if (eventTypeName((r.record[12] ?? 0) & 0x1f) === 'boot') assert.ok(untrusted, `seq ${r.seq}: boot before SNTP`);
      else assert.ok(!untrusted && time >= T0 && time < T0 + 600, `seq ${r.seq}: time ${time} (T0 ${T0}) trusted ${!untrusted}`);
    }
    assert.equal(xs.status().faults, []);
  } finally {
    await xs?.close();
    node?.g.stop();
    await w.central.close();
    await w.broker.close();
    rmSync(w.dir, { recursive: true, force: true });
  }
});

t.run();
