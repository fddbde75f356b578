// The event store on both engines (issue 18): the SQLite EventStore and the
// PostgreSQL PgEventStore apply the same rules (planIngest), so the same
// batches — in order, duplicated, overlapping, with gaps, from a journal that
// restarted in the same epoch (conflicts), torn — give the same results, the
// same stored rows, acks and conflicts; and two PostgreSQL writers ingesting
// the same batches at once store each record exactly once. Needs a PostgreSQL
// server (host-sim/postgres-server.ts); without one the suite is not run.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import { EventStore } from '../host-sim/central/event-store.js';
import { PgEventStore } from '../host-sim/central/pg-event-store.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { locatePostgres, startPostgres, type PostgresHandle } from '../host-sim/postgres-server.js';
import { toHex } from '../protocol/hex.js';
import type { EventBatchMessage } from '../protocol/messages.js';

const ZERO = new Uint8Array(32);

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

const where = locatePostgres();
if (!where.ok) {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `event store on PostgreSQL: not run (${where.reason})\n`);
  else console.log(`event store on PostgreSQL: not run (${where.reason})`);
} else {
  const t = suite('event store: SQLite and PostgreSQL');
  let server: PostgresHandle | null = null;
  let pgStore: PgEventStore | null = null;
  t.before(async () => {
    server = await startPostgres();
    pgStore = await PgEventStore.open({ url: server.url, clock: () => 1_800_000_000_000 });
  });
  t.after(async () => {
    await pgStore?.close();
    await server?.close();
  });

  // A batch: from the journal or from a second journal of the same epoch (a gate that restarted it), anywhere, any length; sometimes torn.
  const step = fc.record({ alt: fc.boolean(), first: fc.integer({ min: 1, max: 40 }), count: fc.integer({ min: 1, max: 12 }), torn: fc.integer({ min: 0, max: 19 }) });

  t('the same batches give the same results, rows, acks and conflicts on both engines (property)', async () => {
    const pgs = pgStore as PgEventStore;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 1000 }), async (steps, seed) => {
        const gate = `g-${run++}`;
        const a = journal(seed, 60);
        const b = journal(seed + 1, 60);
        const lite = new EventStore(':memory:', { clock: () => 1_800_000_000_000 });
        try {
          for (const s of steps) {
            const m = batch(gate, 7, s.alt ? b : a, s.first, s.count);
            if (s.torn === 0) m.records[3] = (m.records[3] as number) ^ 0xff; // its own chain no longer holds: bad_chain
            const [x, y] = [lite.ingest(m), await pgs.ingest(m)];
            assert.is(show(y), show(x), `batch ${show(s)}`);
          }
          assert.is(show(await pgs.export(gate)), show(lite.export(gate)), 'stored rows');
          assert.is(show(await pgs.conflicts(gate)), show(lite.conflicts(gate)), 'conflicts');
          assert.is(show(await pgs.ack(gate, 7)), show(lite.ack(gate, 7)), 'ack');
        } finally {
          lite.close();
        }
      }),
      { numRuns: 40, seed: 18 },
    );
  });

  t('two PostgreSQL writers ingesting the same batches at once store every record exactly once and agree on the ack', async () => {
    const url = (server as PostgresHandle).url;
    const [w1, w2] = await Promise.all([PgEventStore.open({ url }), PgEventStore.open({ url })]);
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
      assert.equal(rows.map((r) => r.seq), Array.from({ length: 400 }, (_, i) => i + 1));
    } finally {
      await Promise.all([w1.close(), w2.close()]);
    }
  });

  t.run();
}
