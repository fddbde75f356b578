// npm run bench -- scale : the central's stores side by side in one run (issue
// 18). Central ingest with verification — per batch: the gate's identity, its
// HMAC checked, decoded, chain verified, stored exactly once, the ack MACed —
// into SQLite (EventStore, WAL, synchronous=FULL) and into PostgreSQL
// (PgEventStore on a server this bench starts as the tests do, fsync on),
// with one gate's stream (one writer) and eight gates' streams in parallel on
// PostgreSQL (eight connections). Every row states `store` and `verified`.
// Not yet here: registry change latency on PostgreSQL (the registry is not on
// PostgreSQL yet).
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventStore, type IngestResult } from '../host-sim/central/event-store.js';
import { GateAuthenticator } from '../host-sim/central/gate-authenticator.js';
import { GateRegistry } from '../host-sim/central/gate-registry.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { PgEventStore } from '../host-sim/central/pg-event-store.js';
import { nodeCrypto, sha256Pair } from '../host-sim/node-crypto.js';
import { locatePostgres, startPostgres } from '../host-sim/postgres-server.js';
import { sealMaced } from '../protocol/mac-envelope.js';
import { EventAck, EventBatch, type EventBatchMessage } from '../protocol/messages.js';
import { Topics } from '../protocol/topics.js';
import { BenchReport } from './lib.js';

const PER_GATE = 51_200; // 200 batches of 256
const GATES = 8;

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

export async function benchScale(): Promise<string> {
  const report = new BenchReport('scale');
  const dir = mkdtempSync(join(tmpdir(), 'subline-bench-scale-'));
  const keys = generateKeys();
  const topics = new Topics('subline');
  const db = new Database(join(dir, 'identities.db'));
  const gates = new GateRegistry(db);
  const auth = new GateAuthenticator({ gates, masterKey: keys.gateMasterKey, crypto: nodeCrypto });
  const ids = Array.from({ length: GATES }, (_, i) => `scale-g${i}`);
  const wire = new Map<string, Uint8Array[]>();
  for (const g of ids) {
    const { keyId } = gates.register({ gate: g, site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, 1);
    wire.set(g, stream(g).map((b) => sealMaced(EventBatch, b, topics.gate(g, 'events'), auth.keyFor(g, keyId), keyId, nodeCrypto)));
  }
  // The central's path for one batch, the store's ingest given.
  const handle = async (g: string, bytes: Uint8Array, ingest: (b: EventBatchMessage) => IngestResult | Promise<IngestResult>) => {
    const r = auth.open(g, topics.gate(g, 'events'), EventBatch, bytes);
    if (!r.ok) throw new Error(`bench: batch refused (${r.cause})`);
    const res = await ingest(r.value);
    if (res.ack === null || auth.seal(g, topics.gate(g, 'ack'), EventAck, { gate: g, epoch: res.ack.epoch, seq: res.ack.seq, chain: res.ack.chain }) === null) throw new Error('bench: no ack');
  };
  const row = (store: string, writers: number, events: number, ms: number, note: string) =>
    report.add({ metric: 'central_ingest_events_per_s', value: Math.round((events * 1000) / ms), unit: 'events/s', engine: 'node', entries: 0, store, verified: true, writers, events, note });
  try {
    // SQLite: one gate's stream, one writer (better-sqlite3 is synchronous: one writer per database).
    const lite = new EventStore(join(dir, 'events.db'));
    let t0 = performance.now();
    for (const bytes of wire.get(ids[0] as string) as Uint8Array[]) await handle(ids[0] as string, bytes, (b) => lite.ingest(b));
    row('sqlite', 1, PER_GATE, performance.now() - t0, 'MACed 256-record batches into SQLite (WAL, synchronous=FULL), in-process');
    lite.close();

    const where = locatePostgres();
    if (!where.ok) {
      console.error(`scale: PostgreSQL not run (${where.reason})`);
      return report.write();
    }
    const server = await startPostgres({ durable: true });
    try {
      const pg1 = await PgEventStore.open({ url: server.url, connections: GATES });
      try {
        t0 = performance.now();
        for (const bytes of wire.get(ids[1] as string) as Uint8Array[]) await handle(ids[1] as string, bytes, (b) => pg1.ingest(b));
        row('postgres', 1, PER_GATE, performance.now() - t0, `MACed 256-record batches into PostgreSQL ${where.version} (fsync on) on loopback, one batch at a time`);
        // The other seven gates at once: one stream each, in parallel over the pool.
        const parallel = ids.filter((g) => g !== ids[1]);
        t0 = performance.now();
        await Promise.all(parallel.map(async (g) => {
          for (const bytes of wire.get(g) as Uint8Array[]) await handle(g, bytes, (b) => pg1.ingest(b));
        }));
        const ms = performance.now() - t0;
        const n = await pg1.count();
        if (n !== PER_GATE * GATES) throw new Error(`bench: ${n} events stored, expected ${PER_GATE * GATES}`);
        row('postgres', parallel.length, PER_GATE * parallel.length, ms, `${parallel.length} gates' streams in parallel over a pool of ${GATES} connections`);
      } finally {
        await pg1.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return report.write();
}
