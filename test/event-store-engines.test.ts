// The event store on both engines (issue 18): one EventStore, written once
// against the store interface, over SqliteDb and over PgDb applies the same
// rules (planIngest), so the same batches — in order, duplicated,
// overlapping, with gaps, from a journal that restarted in the same epoch
// (conflicts), torn — give the same results, the same stored rows, acks and
// conflicts on both; and two writers on two PostgreSQL connections ingesting
// the same batches at once store each record exactly once. Needs a
// PostgreSQL server (host-sim/postgres-server.ts, started by
// test/helpers/store-engines.ts); without one the suite is not run.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { EventStore } from '../host-sim/central/event-store.js';
import { PgDb } from '../host-sim/central/store/pg-db.js';
import { migrate } from '../host-sim/central/store/schema.js';
import { SqliteDb } from '../host-sim/central/store/sqlite-db.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { toHex } from '../protocol/hex.js';
import type { EventBatchMessage } from '../protocol/messages.js';
import { engines, notRun, postgresMissing } from './helpers/store-engines.js';

const ZERO = new Uint8Array(32);
const CLOCK = () => 1_800_000_000_000;

function chainTo(recs: readonly Uint8Array[], n: number): Uint8Array {
  let c: Uint8Array = ZERO;
  for (let i = 0; i < n; i++) c = sha256Pair(c, recs[i] as Uint8Array);
  return c;
}

function batch(gate: string, epoch: number, recs: readonly Uint8Array[], first: number, count: number): EventBatchMessage {
  const slice = recs.slice(first - 1, first - 1 + count);
  const prev = chainTo(recs, first - 1);
  let c = prev;
  for (const r of slice) c = sha256Pair(c, r);
  const all = new Uint8Array(slice.length * 16);
  slice.forEach((r, i) => all.set(r, i * 16));
  return { gate, epoch, first, count: slice.length, records: all, prev, chain: c };
}

function journal(seed: number, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const r = new Uint8Array(16);
    for (let j = 0; j < 16; j++) r[j] = (seed * 131 + i * 17 + j * 7) & 0xff;
    return r;
  });
}

const show = (x: unknown): string => JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v));

/** A new PostgreSQL database with the central's schema (the helper's server). */
async function freshPostgres(): Promise<string> {
  const pg = engines().find((e) => e.name === 'postgres');
  if (pg === undefined) throw new Error('no PostgreSQL here');
  const url = await pg.fresh();
  const db = await PgDb.connect({ url });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  return url;
}

const missing = postgresMissing();
if (missing !== null) notRun('event store on SQLite and PostgreSQL', missing);
else {
  const t = suite('event store: SQLite and PostgreSQL');
  let url = '';
  let pgDb: PgDb | null = null;
  let pgStore: EventStore | null = null;
  t.before(async () => {
    url = await freshPostgres();
    pgDb = await PgDb.connect({ url });
    pgStore = new EventStore(pgDb, { clock: CLOCK });
  });
  t.after(async () => {
    await pgDb?.close();
  });

  // A batch: from the journal or from a second journal of the same epoch (a gate that restarted it), anywhere, any length; sometimes torn.
  const step = fc.record({ alt: fc.boolean(), first: fc.integer({ min: 1, max: 40 }), count: fc.integer({ min: 1, max: 12 }), torn: fc.integer({ min: 0, max: 19 }) });

  t('the same batches give the same results, rows, acks and conflicts on both engines (property)', async () => {
    const pgs = pgStore as EventStore;
    assert.is(pgs.db.engine, 'postgres');
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 1000 }), async (steps, seed) => {
        const gate = `g-${run++}`;
        const a = journal(seed, 60);
        const b = journal(seed + 1, 60);
        const liteDb = new SqliteDb(':memory:');
        try {
          await migrate(liteDb);
          const lite = new EventStore(liteDb, { clock: CLOCK });
          for (const s of steps) {
            const m = batch(gate, 7, s.alt ? b : a, s.first, s.count);
            if (s.torn === 0) m.records[3] = (m.records[3] as number) ^ 0xff; // its own chain no longer holds: bad_chain
            const x = await lite.ingest(m);
            const y = await pgs.ingest(m);
            assert.is(show(y), show(x), `batch ${show(s)}`);
          }
          assert.is(show(await pgs.export(gate)), show(await lite.export(gate)), 'stored rows');
          assert.is(show(await pgs.conflicts(gate)), show(await lite.conflicts(gate)), 'conflicts');
          assert.is(await pgs.conflictCount(gate), await lite.conflictCount(gate), 'conflict count');
          assert.is(show(await pgs.ack(gate, 7)), show(await lite.ack(gate, 7)), 'ack');
          assert.is(await pgs.count(gate), await lite.count(gate), 'count');
          assert.is(await pgs.audit(gate, 7), await lite.audit(gate, 7), 'audit');
        } finally {
          await liteDb.close();
        }
      }),
      { numRuns: 40, seed: 18 },
    );
  });

  t('two PostgreSQL writers ingesting the same batches at once store every record exactly once and agree on the ack', async () => {
    const [c1, c2] = await Promise.all([PgDb.connect({ url }), PgDb.connect({ url })]);
    const [w1, w2] = [new EventStore(c1), new EventStore(c2)];
    try {
      const recs = journal(5, 400);
      const batches: EventBatchMessage[] = [];
      for (let first = 1; first <= 400; first += 8) batches.push(batch('g-two', 9, recs, first, 8));
      // Each writer takes the batches in its own order (one reversed), so they meet everywhere.
      const [r1, r2] = await Promise.all([Promise.all(batches.map((m) => w1.ingest(m))), Promise.all([...batches].reverse().map((m) => w2.ingest(m)))]);
      const stored = [...r1, ...r2].reduce((n, r) => n + r.stored, 0);
      assert.is(stored, 400, 'each record stored by exactly one writer');
      assert.is([...r1, ...r2].filter((r) => r.problem !== undefined && r.problem !== 'gap_before').length, 0, 'no refusals');
      assert.is(await w1.count('g-two'), 400);
      const ack = await w2.ack('g-two', 9);
      assert.equal([ack?.seq, toHex(ack?.chain ?? new Uint8Array())], [400, toHex(chainTo(recs, 400))]);
      const rows = await w1.export('g-two', 9);
      assert.equal(
        rows.map((r) => r.seq),
        Array.from({ length: 400 }, (_, i) => i + 1),
      );
      assert.is(await w2.audit('g-two', 9), null, 'the stored chain audits');
    } finally {
      await Promise.all([c1.close(), c2.close()]);
    }
  });

  t.run();
}
