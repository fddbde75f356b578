// npm run bench -- sync : revocation latency over 200 gates with 50,000
// credentials each on a local Mosquitto; resync of one gate from empty to
// 250,000 credentials; central event ingest into SQLite through the store
// interface (host-sim/central/store/).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { findMosquitto, freeLoopbackPorts, startEmbeddedBroker, startMosquitto, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { GateAuthenticator } from '../host-sim/central/gate-authenticator.js';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { sealMaced } from '../protocol/mac-envelope.js';
import { EventAck, EventBatch } from '../protocol/messages.js';
import { Topics } from '../protocol/topics.js';
import { generateKeys, writeKeyFile, type CentralKeys } from '../host-sim/central/keys.js';
import { writeBrokerConfig } from '../host-sim/broker-config.js';
import type { BrokerAuth } from '../host-sim/broker-auth.js';
import { DeploymentPki } from '../host-sim/pki/deployment-pki.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { NodeGate } from '../host-sim/node-gate.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { BenchReport, percentile } from './lib.js';

const GATES = Number(process.env.BENCH_SYNC_GATES ?? 200);
const PER_GATE = Number(process.env.BENCH_SYNC_CREDENTIALS ?? 50000);
const RESYNC = Number(process.env.BENCH_RESYNC_CREDENTIALS ?? 250000);
const round = (x: number) => Math.round(x * 10) / 10;
const te = new TextEncoder();
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await wait(5);
  }
}

async function populate(c: Central, n: number): Promise<void> {
  const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;
  await c.registry.bulk(async (r) => {
    const insts: number[] = [];
    for (let i = 0; i < 40; i++) insts.push(await r.addInstitution({ name: `Institution ${i}` }));
    for (const i of insts) await r.grant('institution', i, everywhere);
    for (let i = 0; i < n; i++) {
      await r.addSubject({ id: `p${i}`, kind: 'person', institution: insts[i % insts.length]!, name: `P${i}` });
      await r.addCredential({ subject: `p${i}`, kind: 'card', rawId: te.encode(`card-${i}`) });
    }
  });
}

/**
 * The broker the fleet uses: Mosquitto locked down as in production (the
 * files of `subline broker config`: TLS with the deployment PKI's client
 * certificates, the ACL, no anonymous client), its gate identities registered
 * first; without Mosquitto, the embedded broker, open (tls: false in the results).
 */
async function broker(dir: string, keys: CentralKeys, gateIds: readonly string[]): Promise<{ b: BrokerHandle; kind: string; tls: boolean; gateTls: Map<string, NonNullable<ProvisioningRecord['tls']>>; centralAuth?: BrokerAuth }> {
  const gateTls = new Map<string, NonNullable<ProvisioningRecord['tls']>>();
  if (findMosquitto() === null) {
    console.error('sync: Mosquitto not installed (apt-get install -y mosquitto); measuring on the embedded broker without TLS');
    return { b: await startEmbeddedBroker(), kind: 'aedes', tls: false, gateTls };
  }
  writeKeyFile(join(dir, 'keys.json'), keys);
  const pki = await DeploymentPki.create(join(dir, 'pki'));
  const t0 = performance.now();
  const store = await openCentralStore(join(dir, 'central.db'), { create: true });
  for (const id of gateIds) {
    await store.identities.register({ gate: id, site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, 1);
    const c = await pki.issueGate(id);
    gateTls.set(id, { cert: c.certDer, key: c.keyDer, ca: c.caDer });
  }
  await store.close();
  console.error(`sync: ${gateIds.length} gate certificates issued in ${Math.round(performance.now() - t0)} ms`);
  const [tlsPort, port] = await freeLoopbackPorts(2);
  await writeBrokerConfig({ data: dir, out: join(dir, 'broker'), port, tlsPort, host: '127.0.0.1' });
  const b = await startMosquitto({ configDir: join(dir, 'broker') });
  const centralAuth = { ca: readFileSync(join(dir, 'pki', 'ca.crt.pem'), 'utf8'), cert: readFileSync(join(dir, 'pki', 'central.crt.pem'), 'utf8'), key: readFileSync(join(dir, 'pki', 'central.key.pem'), 'utf8') };
  return { b, kind: 'mosquitto', tls: true, gateTls, centralAuth };
}


/** A gate's record, registered with the central (as `subline provision` does), with its TLS identity when the broker wants one. */
async function provisioning(gate: string, url: string, keys: ReturnType<typeof generateKeys>, central: Central, tls?: NonNullable<ProvisioningRecord['tls']>): Promise<ProvisioningRecord> {
  const { gateKey, gateKeyId } = await central.provisionGate({ gate, site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' });
  return { gate, site: 'futian', line: 'first', direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: url, trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, gateKey, gateKeyId, ...(tls !== undefined ? { tls } : {}), journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0 };
}

export async function benchSync(): Promise<string> {
  const report = new BenchReport('sync');
  const dir = mkdtempSync(join(tmpdir(), 'subline-bench-sync-'));
  const keys = generateKeys();
  const ids = ['g0000', 'resync', ...Array.from({ length: GATES }, (_, i) => `g${String(i).padStart(4, '0')}`)];
  const { b, kind, tls, gateTls, centralAuth } = await broker(dir, keys, [...new Set(ids)]);
  const auth = centralAuth !== undefined ? { brokerAuth: centralAuth } : {};
  try {
    // ---- revocation over a fleet ----
    const central = await Central.open({ db: join(dir, 'central.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: b.url, headIntervalSeconds: 30, ...auth });
    await central.start();
    let t0 = performance.now();
    await populate(central, PER_GATE);
    central.publishHead();
    console.error(`sync: registry of ${PER_GATE} in ${Math.round(performance.now() - t0)} ms`);
    const layout = { credentials: PER_GATE, journalSectors: 8 };
    // One gate pulls the image; the others start from a copy of its flash (the fleet is provisioned).
    const first = new NodeGate({ provisioning: await provisioning('g0000', b.url, keys, central, gateTls.get('g0000')), crypto: nodeCrypto, layout, sync: { tickMs: 20 } });
    first.start();
    let version = await central.registry.version();
    await until('first gate image', () => first.gate.store.version === version, 120000);
    first.stop();
    const snapshot = first.flash.snapshot();
    const changedAt = new Map<string, number>();
    let target = -1;
    const gates: NodeGate[] = [];
    for (let i = 0; i < GATES; i++) {
      const id = `g${String(i).padStart(4, '0')}`;
      const g: NodeGate = new NodeGate({
        provisioning: await provisioning(id, b.url, keys, central, gateTls.get(id)), crypto: nodeCrypto, layout, seed: i + 1,
        flash: NorFlash.fromSnapshot(snapshot, { blockSize: 4096 }),
        sync: { tickMs: 50, keepAliveSeconds: 60 },
        onSyncChange: () => {
          if (target > 0 && !changedAt.has(id) && g.gate.store.version >= target) changedAt.set(id, performance.now());
        },
      });
      g.start();
      gates.push(g);
    }
    version = await central.registry.version();
    await until('fleet connected', () => gates.every((g) => g.gate.sync.connected && g.gate.store.version === version), 120000);
    await wait(500);
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      changedAt.clear();
      target = (await central.registry.version()) + 1;
      t0 = performance.now();
      await central.registry.revokeCredential({ kind: 'card', rawId: te.encode(`card-${round * 13}`) });
      await until('revocation durable on every gate', () => changedAt.size === GATES, 60000);
      for (const at of changedAt.values()) samples.push(at - t0);
      await wait(300);
    }
    const extra = { broker: kind, tls, gates: GATES, rounds: 5, note: `central revoke call -> delta durable in the overlay log of each gate (all gates in one Node process)${tls ? '; Mosquitto from `subline broker config`: TLS 1.2+ with client certificates, ACL, no anonymous client' : ''}` };
    report.add({ metric: 'revocation_ms_p50', value: round(percentile(samples, 50)), unit: 'ms', engine: 'node', entries: PER_GATE, ...extra });
    report.add({ metric: 'revocation_ms_p99', value: round(percentile(samples, 99)), unit: 'ms', engine: 'node', entries: PER_GATE, ...extra });
    for (const g of gates) g.stop();
    await central.close();

    // ---- resync of one gate from empty ----
    const c2 = await Central.open({ db: join(dir, 'resync.db'), signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: b.url, headIntervalSeconds: 30, ...auth });
    await c2.start();
    t0 = performance.now();
    await populate(c2, RESYNC);
    c2.publishHead();
    console.error(`sync: registry of ${RESYNC} in ${Math.round(performance.now() - t0)} ms`);
    const fresh = new NodeGate({ provisioning: await provisioning('resync', b.url, keys, c2, gateTls.get('resync')), crypto: nodeCrypto, layout: { credentials: RESYNC, journalSectors: 8 }, sync: { tickMs: 5 } });
    t0 = performance.now();
    fresh.start();
    const resyncVersion = await c2.registry.version();
    await until('resync', () => fresh.gate.store.version === resyncVersion, 120000);
    const resyncMs = performance.now() - t0;
    report.add({ metric: 'resync_ms', value: round(resyncMs), unit: 'ms', engine: 'node', entries: RESYNC, broker: kind, imageBytes: c2.image?.bytes.length, chunks: c2.image?.chunked.chunks.length, note: 'gate start on blank flash -> image pulled (16 KiB chunks, window 4), verified, erased, written, committed; flash timing not charged' });
    fresh.stop();
    await c2.close();

    // ---- central ingest ----
    await benchIngest(report, keys, dir);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return report.write();
}


/** Central ingest in-process, without and with MAC verification (exported for a quick run). */
export async function benchIngest(report: BenchReport, keys: ReturnType<typeof generateKeys>, dir: string): Promise<void> {
  let t0: number;
  const total = 200_000;
  const batches = [];
  let prev: Uint8Array = new Uint8Array(32);
  const rec = new Uint8Array(16);
  for (let first = 1; first <= total; first += 256) {
    const records = new Uint8Array(256 * 16);
    for (let i = 0; i < 256; i++) {
      rec.fill((first + i) & 0xff);
      records.set(rec, i * 16);
    }
    let chain = prev;
    for (let i = 0; i < 256; i++) {
      const buf = new Uint8Array(48);
      buf.set(chain, 0);
      buf.set(records.subarray(i * 16, i * 16 + 16), 32);
      chain = sha256(buf);
    }
    batches.push({ gate: `g${first % 8}`, epoch: 1, first, count: 256, records, prev, chain });
    prev = chain;
  }
  // One gate's stream (chained); spread over one gate so every batch joins the previous.
  for (const x of batches) x.gate = 'ingest-gate';
  for (const verified of [false, true]) {
    const path = join(dir, `events-${verified ? 'verified' : 'plain'}.db`);
    const central = await openCentralStore(path, { create: true });
    const store = central.events;
    const auth = new GateAuthenticator({ gates: central.identities, masterKey: keys.gateMasterKey, crypto: nodeCrypto });
    const topics = new Topics('subline');
    const topic = topics.gate('ingest-gate', 'events');
    const ackTopic = topics.gate('ingest-gate', 'ack');
    const { keyId } = await central.identities.register({ gate: 'ingest-gate', site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, 1);
    // What the gate sends: the batch MACed with its key for its topic (sealed outside the timed loop).
    const wire = verified ? batches.map((x) => sealMaced(EventBatch, x, topic, auth.keyFor('ingest-gate', keyId), keyId, nodeCrypto)) : [];
    t0 = performance.now();
    if (verified) {
      // The central's path per batch: identity lookup, MAC check, decode, chain check and insert, MACed ack.
      for (const bytes of wire) {
        const r = await auth.open('ingest-gate', topic, EventBatch, bytes);
        if (!r.ok) throw new Error(`bench: batch refused (${r.cause})`);
        const res = await store.ingest(r.value);
        if (res.ack === null || (await auth.seal('ingest-gate', ackTopic, EventAck, { gate: 'ingest-gate', epoch: res.ack.epoch, seq: res.ack.seq, chain: res.ack.chain })) === null) throw new Error('bench: no ack');
      }
    } else for (const x of batches) await store.ingest(x);
    const ms = performance.now() - t0;
    if ((await store.count('ingest-gate')) !== batches.length * 256) throw new Error('bench: not every event stored');
    await central.close();
    report.add({
      metric: 'central_ingest_events_per_s', value: Math.round((batches.length * 256 * 1000) / ms), unit: 'events/s', engine: 'node', entries: 0, events: batches.length * 256, store: 'sqlite', verified,
      note: verified
        ? 'MACed 256-record batches: gate identity looked up, HMAC-SHA256 checked, decoded, chain verified, exactly-once insert into SQLite (WAL, synchronous=FULL), ack MACed'
        : 'EventStore.ingest of 256-record batches (chain verified, exactly-once insert) into SQLite, WAL, synchronous=FULL, one file; no MAC',
    });
  }
}
