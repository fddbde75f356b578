// npm run bench -- scale : the central's stores side by side in one run (issue
// 18), SQLite (WAL, synchronous=FULL) and PostgreSQL (a server this bench
// starts as the tests do, fsync on), both through the one store interface
// (host-sim/central/store/):
// - central ingest with verification — per batch: the gate's identity read
//   from the store, its HMAC checked, decoded, chain verified, stored exactly
//   once, the ack MACed — one gate's stream (one writer) on each engine, and
//   seven gates' streams in parallel on PostgreSQL (a pool of eight
//   connections). Every row states `store` and `verified`.
// - registry change latency on each engine: a revocation committed (one list
//   version, its signed delta stored) and that delta published by a Central
//   to a broker and acknowledged (QoS 1), over a registry of REGISTRY
//   credentials.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startEmbeddedBroker } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import type { IngestResult } from '../host-sim/central/event-store.js';
import { GateAuthenticator } from '../host-sim/central/gate-authenticator.js';
import { generateKeys, type CentralKeys } from '../host-sim/central/keys.js';
import { openCentralStore, type CentralStore } from '../host-sim/central/store/open-store.js';
import { nodeCrypto, sha256Pair } from '../host-sim/node-crypto.js';
import { locatePostgres, startPostgres } from '../host-sim/postgres-server.js';
import { sealMaced } from '../protocol/mac-envelope.js';
import { EventAck, EventBatch, type EventBatchMessage } from '../protocol/messages.js';
import { Topics } from '../protocol/topics.js';
import { BenchReport, percentile } from './lib.js';

const PER_GATE = 51_200; // 200 batches of 256
const GATES = 12;
/** One-writer streams measured on each engine (the median is reported; the machine is a shared VM). */
const SINGLE_ROUNDS = 5;
const REGISTRY = Number(process.env.BENCH_SCALE_CREDENTIALS ?? 10_000);
const ROUNDS = 20;
const te = new TextEncoder();
const round1 = (x: number) => Math.round(x * 10) / 10;

function stream(gate: string): EventBatchMessage[] {
  const out: EventBatchMessage[] = [];
  let prev: Uint8Array = new Uint8Array(32);
  for (let first = 1; first <= PER_GATE; first += 256) {
    const records = new Uint8Array(256 * 16);
    for (let i = 0; i < 256 * 16; i++) records[i] = (first * 31 + i) & 0xff;
    let chain = prev;
    for (let i = 0; i < 256; i++) chain = sha256Pair(chain, records.subarray(i * 16, i * 16 + 16));
    out.push({ gate, epoch: 1, first, count: 256, records, prev, chain });
    prev = chain;
  }
  return out;
}

/** The wire form of every gate's stream, MACed with the key the store registered for it. */
async function sealStreams(store: CentralStore, keys: CentralKeys, ids: readonly string[], topics: Topics): Promise<{ auth: GateAuthenticator; wire: Map<string, Uint8Array[]> }> {
  const auth = new GateAuthenticator({ gates: store.identities, masterKey: keys.gateMasterKey, crypto: nodeCrypto });
  const wire = new Map<string, Uint8Array[]>();
  for (const g of ids) {
    const { keyId } = await store.identities.register({ gate: g, site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, 1);
    wire.set(g, stream(g).map((b) => sealMaced(EventBatch, b, topics.gate(g, 'events'), auth.keyFor(g, keyId), keyId, nodeCrypto)));
  }
  return { auth, wire };
}

/** The central's path for one batch. */
async function handle(auth: GateAuthenticator, topics: Topics, g: string, bytes: Uint8Array, ingest: (b: EventBatchMessage) => Promise<IngestResult>): Promise<void> {
  const r = await auth.open(g, topics.gate(g, 'events'), EventBatch, bytes);
  if (!r.ok) throw new Error(`bench: batch refused (${r.cause})`);
  const res = await ingest(r.value);
  if (res.ack === null || (await auth.seal(g, topics.gate(g, 'ack'), EventAck, { gate: g, epoch: res.ack.epoch, seq: res.ack.seq, chain: res.ack.chain })) === null) throw new Error('bench: no ack');
}

/** Revocation latency: the registry call until its delta is published and acknowledged by the broker. */
async function registryLatency(report: BenchReport, store: CentralStore, keys: CentralKeys, engine: string, note: string): Promise<void> {
  const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;
  let t0 = performance.now();
  await store.registry.bulk(async (r) => {
    const inst = await r.addInstitution({ name: 'Institution' });
    await r.grant('institution', inst, everywhere);
    for (let i = 0; i < REGISTRY; i++) {
      await r.addSubject({ id: `p${i}`, kind: 'person', institution: inst, name: `P${i}` });
      await r.addCredential({ subject: `p${i}`, kind: 'card', rawId: te.encode(`card-${i}`) });
    }
  });
  const populateMs = performance.now() - t0;
  const broker = await startEmbeddedBroker();
  const central = await Central.open({ db: store, signingKey: keys.signingKey, deploymentKey: keys.deploymentKey, gateMasterKey: keys.gateMasterKey, brokerUrl: broker.url, headIntervalSeconds: 3600, subscribe: false });
  try {
    await central.start();
    await central.idle();
    const commit: number[] = [];
    const published: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      t0 = performance.now();
      await store.registry.revokeCredential({ kind: 'card', rawId: te.encode(`card-${i * 7}`) });
      commit.push(performance.now() - t0);
      await central.idle();
      published.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 50));
    }
    const extra = { store: engine, rounds: ROUNDS, populateMs: Math.round(populateMs), note };
    report.add({ metric: 'registry_change_committed_ms_p50', value: round1(percentile(commit, 50)), unit: 'ms', engine: 'node', entries: REGISTRY, ...extra });
    report.add({ metric: 'registry_change_published_ms_p50', value: round1(percentile(published, 50)), unit: 'ms', engine: 'node', entries: REGISTRY, ...extra });
    report.add({ metric: 'registry_change_published_ms_p99', value: round1(percentile(published, 99)), unit: 'ms', engine: 'node', entries: REGISTRY, ...extra });
  } finally {
    await central.close();
    await broker.close();
  }
}

export async function benchScale(): Promise<string> {
  const report = new BenchReport('scale');
  const dir = mkdtempSync(join(tmpdir(), 'subline-bench-scale-'));
  const keys = generateKeys();
  const topics = new Topics('subline');
  const ids = Array.from({ length: GATES }, (_, i) => `scale-g${i}`);
  const registryKeys = { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey };
  const row = (store: string, writers: number, events: number, ms: number, note: string, rounds?: number[]) =>
    report.add({ metric: 'central_ingest_events_per_s', value: Math.round((events * 1000) / ms), unit: 'events/s', engine: 'node', entries: 0, store, verified: true, writers, events, note, ...(rounds !== undefined ? { rounds } : {}) });
  /** One gate's stream at a time, SINGLE_ROUNDS gates: the median round's time, and every round's rate. */
  const single = async (store: CentralStore, auth: GateAuthenticator, wire: Map<string, Uint8Array[]>, gates: readonly string[]): Promise<{ ms: number; rates: number[] }> => {
    const times: number[] = [];
    for (const g of gates) {
      const t0 = performance.now();
      for (const bytes of wire.get(g) as Uint8Array[]) await handle(auth, topics, g, bytes, (b) => store.events.ingest(b));
      times.push(performance.now() - t0);
    }
    return { ms: percentile(times, 50), rates: times.map((ms) => Math.round((PER_GATE * 1000) / ms)) };
  };
  try {
    // SQLite: one gate's stream, one writer (one connection, one writer per database).
    const lite = await openCentralStore(join(dir, 'central.db'), { create: true, registry: registryKeys });
    try {
      const gates = ids.slice(0, SINGLE_ROUNDS);
      const { auth, wire } = await sealStreams(lite, keys, gates, topics);
      const r = await single(lite, auth, wire, gates);
      row('sqlite', 1, PER_GATE, r.ms, `MACed 256-record batches into SQLite (WAL, synchronous=FULL), in-process, through the store interface; decoded columns and their indexes written (schema 3); median of ${SINGLE_ROUNDS} gates' streams`, r.rates);
      await registryLatency(report, lite, keys, 'sqlite', 'revokeCredential -> one version, signed delta stored (SQLite, synchronous=FULL) -> published by the Central, PUBACK from the embedded broker');
    } finally {
      await lite.close();
    }

    const where = locatePostgres();
    if (!where.ok) {
      console.error(`scale: PostgreSQL not run (${where.reason})`);
      return report.write();
    }
    const server = await startPostgres({ durable: true });
    try {
      const pg = await openCentralStore(server.url, { create: true, registry: registryKeys, connections: GATES });
      try {
        const { auth, wire } = await sealStreams(pg, keys, ids, topics);
        const singles = ids.slice(0, SINGLE_ROUNDS);
        const r = await single(pg, auth, wire, singles);
        row('postgres', 1, PER_GATE, r.ms, `MACed 256-record batches into PostgreSQL ${where.version} (fsync on) on loopback, one batch at a time (one statement per batch on the hot path); median of ${SINGLE_ROUNDS} gates' streams`, r.rates);
        // The other gates at once: one stream each, in parallel over the pool.
        const parallel = ids.filter((g) => !singles.includes(g));
        const t0 = performance.now();
        await Promise.all(
          parallel.map(async (g) => {
            for (const bytes of wire.get(g) as Uint8Array[]) await handle(auth, topics, g, bytes, (b) => pg.events.ingest(b));
          }),
        );
        const ms = performance.now() - t0;
        const n = await pg.events.count();
        if (n !== PER_GATE * GATES) throw new Error(`bench: ${n} events stored, expected ${PER_GATE * GATES}`);
        row('postgres', parallel.length, PER_GATE * parallel.length, ms, `${parallel.length} gates' streams in parallel over a pool of ${GATES} connections`);
        await registryLatency(report, pg, keys, 'postgres', `revokeCredential -> one version, signed delta stored (PostgreSQL ${where.version}, fsync on, loopback) -> published by the Central, PUBACK from the embedded broker`);
      } finally {
        await pg.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return report.write();
}
