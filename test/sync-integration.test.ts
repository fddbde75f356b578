// Gates running the real firmware core, the reference central and a real
// broker — the embedded aedes and Mosquitto, each started on a free loopback
// port by the test, both locked down as in production (test/helpers/fleet.ts:
// aedes with the ACL and a password per client; Mosquitto from `subline broker
// config`'s files with TLS client certificates for the central and every gate). Faults: broker stopped and restarted mid-upload and
// mid-image-pull, a gate cut off while deltas are published, duplicate and
// reordered deliveries, a gate reflashed (new epoch), the central restarted.
// Afterwards every gate holds the latest version and the central has every
// journaled event exactly once (count and bytes compared).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt from 'mqtt';
import { decide, Decision } from '../firmware/core/decision.js';
import { Reason } from '../protocol/reasons.js';
import { Topics } from '../protocol/topics.js';
import { Central } from '../host-sim/central/central.js';
import { findMosquitto } from '../host-sim/broker.js';
import { assertEventsExactlyOnce, Fleet, waitFor, type BrokerKind } from './helpers/fleet.js';
import type { NodeGate } from '../host-sim/node-gate.js';

const te = new TextEncoder();
const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] } as const;
const card = (i: number) => te.encode(`card-${i}`);

async function populate(c: Central, people: number): Promise<void> {
  await c.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Quantum Science Centre' });
    await r.grant('institution', inst, everywhere);
    for (let i = 0; i < people; i++) {
      const id = `p-${i}`;
      await r.addSubject({ id, kind: 'person', institution: inst, name: `Person ${i}` });
      await r.addCredential({ subject: id, kind: 'card', rawId: card(i) });
    }
  });
}

/** The decision the gate's current whitelist gives card i (decided directly: no journal record). */
function reasonFor(c: () => Central, g: NodeGate, i: number): number {
  const k = new DataView(c().registry.credentialKey('card', card(i)).buffer);
  const head = g.gate.store.head;
  const tap = { now: Math.floor(Date.now() / 1000), clockTrusted: true, headIssuedAt: head?.issuedAt ?? 0, headExpires: head?.expires ?? 0, mode: 'normal' as const, journalFull: false };
  return decide(k.getUint32(0, false), k.getUint32(4, false), g.gate.config, tap, g.gate.store.whitelist, null, new Decision()).reason;
}

function tap(g: NodeGate, i: number): void {
  g.gate.onRead({ kind: 'card', id: card(i), atMs: 0 });
  g.inputs.pulse('rotation');
}

async function scenario(kind: BrokerKind): Promise<void> {
  const f = new Fleet(kind);
  try {
    await f.startBroker();
    const c = await f.startCentral();
    await populate(c, 60);
    const central = () => f.central;
    c.publishHead();
    const gates = await Promise.all(['fl-in-t01', 'fl-out-t02', 'sl-in-t03'].map((id, n) => f.startGate(id, n === 2 ? { line: 'second' } : {})));
    const latest = () => c.registry.version();
    const converged = async () => {
      const v = await latest();
      return gates.every((g) => g.gate.store.version === v);
    };
    await waitFor('first image on every gate', converged);
    for (const g of gates) assert.is(reasonFor(central, g, 3), Reason.granted);

    // Taps, then the broker goes away mid-upload; taps continue offline; it comes back.
    for (const g of gates) for (let i = 0; i < 30; i++) tap(g, i % 70);
    await f.broker.close();
    for (const g of gates) for (let i = 0; i < 30; i++) tap(g, (i * 7) % 70);
    await new Promise((r) => setTimeout(r, 300));
    await f.startBroker();
    await waitFor('all events acknowledged after the broker restart', () => gates.every((g) => g.gate.journal.acked === g.gate.journal.lastSeq), 20000);

    // A revocation reaches every gate.
    await c.registry.revokeCredential({ kind: 'card', rawId: card(5) });
    await waitFor('revocation on every gate', () => gates.every((g) => reasonFor(central, g, 5) === Reason.revoked));

    // A gate cut off (power cut) while deltas are published catches up from its flash.
    const flash = f.cutGate('fl-out-t02');
    for (const i of [6, 7, 8]) await c.registry.revokeCredential({ kind: 'card', rawId: card(i) });
    await c.registry.suspend('subject', 'p-9');
    const back = await f.startGate('fl-out-t02', {}, flash);
    gates[1] = back;
    await waitFor('the cut-off gate catches up', converged);
    assert.is(reasonFor(central, back, 7), Reason.revoked);
    assert.is(reasonFor(central, back, 9), Reason.subject_suspended);

    // Duplicate and reordered deliveries of deltas: re-published (with the central's identity).
    const topics = new Topics('subline');
    const v = await latest();
    const d1 = (await c.registry.delta('main', v - 1))!;
    const d2 = (await c.registry.delta('main', v))!;
    const client = await mqtt.connectAsync(f.broker.url, f.centralClientOptions()); // the central's identity: on a secured broker nobody else may publish deltas
    for (const env of [d2.envelope, d1.envelope, d2.envelope, d1.envelope]) await client.publishAsync(topics.list('main', 'delta'), Buffer.from(env), { qos: 1 });
    await client.endAsync();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await converged(), 'duplicates and reordering change nothing');

    // The broker restarts in the middle of an image pull.
    const fresh = await f.startGate('fl-in-t04');
    await waitFor('pull started', async () => fresh.gate.sync.pulling || fresh.gate.store.version === (await latest()), 5000);
    await f.broker.close();
    await new Promise((r) => setTimeout(r, 200));
    await f.startBroker();
    gates.push(fresh);
    await waitFor('image pull finishes after the broker restart', converged, 20000);

    // The gate is reflashed: a new journal epoch on blank flash.
    f.cutGate('sl-in-t03');
    const reflashed = await f.startGate('sl-in-t03', { line: 'second', journalEpoch: 2 });
    gates[2] = reflashed;
    for (let i = 0; i < 10; i++) tap(reflashed, i);

    // The central restarts; more changes and taps follow.
    await c.close();
    const c2 = await f.startCentral();
    await c2.registry.revokeCredential({ kind: 'card', rawId: card(11) });
    for (const g of gates) for (let i = 0; i < 5; i++) tap(g, 20 + i);
    await waitFor('every gate on the latest version after the central restart', async () => {
      const v = await c2.registry.version();
      return gates.every((g) => g.gate.store.version === v);
    }, 20000);
    await waitFor('every event acknowledged', () => gates.every((g) => g.gate.journal.acked === g.gate.journal.lastSeq), 20000);
    for (const g of gates) assert.ok((await assertEventsExactlyOnce(f, g)) > 0);
    assert.is((await f.central.events.export('sl-in-t03', 1)).length > 0, true, 'the old epoch stays stored');
    for (const g of gates) assert.is(g.gate.sync.stats.rejected['head_bad_signature'] ?? 0, 0);
  } finally {
    await f.close();
  }
}

const t = suite('sync integration');
t('embedded broker (aedes): convergence and exactly-once under faults', async () => {
  await scenario('aedes');
});
t('real broker (Mosquitto): convergence and exactly-once under faults', async () => {
  if (findMosquitto() === null) {
    // Not a skip: without Mosquitto the suite fails and says how to get it.
    assert.unreachable('Mosquitto is not installed: apt-get install -y mosquitto (CI installs it in .ci/run)');
  }
  await scenario('mosquitto');
});
t.run();
