// The event query module (host-sim/central/event-query.ts) on both engines:
// events ingested through the real EventStore get their decoded columns
// (time, type, reason, credential, the gate's site/line/direction, the key's
// subject and institution) and every filter selects exactly what a plain
// reference filter over the decoded rows selects; pages are stable; the
// follower sees every row once, also rows committed late behind its cursor;
// a schema 2 database migrated to 3 gets the same columns for its rows.

import * as assert from 'uvu/assert';
import { encodeRecord, EventType, GrantLevel, RECORD_BYTES, createRecord } from '../protocol/event-record.js';
import { Reason } from '../protocol/reasons.js';
import { toHex } from '../protocol/hex.js';
import type { EventBatchMessage } from '../protocol/messages.js';
import { EventFilterError, EventQuery, type EventFilter, type QueriedEvent } from '../host-sim/central/event-query.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { migrate } from '../host-sim/central/store/schema.js';
import type { CentralStore } from '../host-sim/central/store/open-store.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { engineSuites } from './helpers/store-engines.js';

const KEYS = generateKeys();
const T0 = 1_800_000_000;
const ZERO = new Uint8Array(32);

interface Tap {
  readonly time: number;
  readonly key: Uint8Array | null;
  readonly type: number;
  readonly reason: number;
}

/** Encodes taps as the gate's journal records of (epoch, from seq). */
function records(taps: readonly Tap[], epoch: number, first: number): Uint8Array[] {
  return taps.map((t, i) => {
    const r = createRecord();
    r.time = t.time;
    if (t.key !== null) r.key.set(t.key);
    r.type = t.type;
    r.reason = t.reason;
    r.level = t.type === EventType.decision_granted ? GrantLevel.individual : 0;
    const out = new Uint8Array(RECORD_BYTES);
    encodeRecord(r, first + i, epoch, out);
    return out;
  });
}

/** Batches of `size` continuing one chain, as a gate uploads them. */
function batches(gate: string, epoch: number, recs: readonly Uint8Array[], size: number): EventBatchMessage[] {
  const out: EventBatchMessage[] = [];
  let prev: Uint8Array = ZERO;
  for (let i = 0; i < recs.length; i += size) {
    const part = recs.slice(i, i + size);
    const all = new Uint8Array(part.length * RECORD_BYTES);
    let c = prev;
    part.forEach((r, j) => {
      all.set(r, j * RECORD_BYTES);
      c = sha256Pair(c, r);
    });
    out.push({ gate, epoch, first: i + 1, count: part.length, records: all, prev, chain: c });
    prev = c;
  }
  return out;
}

/** A registry with two institutions, three people, a revoked card; two gates on two sites. */
async function populate(s: CentralStore): Promise<{ keys: Record<string, Uint8Array>; institutions: number[] }> {
  const r = s.registry;
  const ind = await r.addIndustry({ name: 'AI', code: 'ai' });
  const a = await r.addInstitution({ name: 'Quantum', industry: ind });
  const b = await r.addInstitution({ name: 'Networks', industry: null });
  await r.addSubject({ id: 'p-1', kind: 'person', institution: a, name: 'Li Wei' });
  await r.addSubject({ id: 'p-2', kind: 'person', institution: b, name: 'Chan' });
  await r.addSubject({ id: 'p-3', kind: 'person', institution: null, name: 'Wong' });
  const keys = {
    k1: await r.addCredential({ subject: 'p-1', kind: 'card', rawId: 'c0000001' }),
    k2: await r.addCredential({ subject: 'p-2', kind: 'card', rawId: 'c0000002' }),
    k3: await r.addCredential({ subject: 'p-3', kind: 'card', rawId: 'c0000003' }),
    unknown: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]),
  };
  await r.revokeCredential({ key: keys.k3 });
  await s.identities.register({ gate: 'fl-in-t01', site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, T0);
  await s.identities.register({ gate: 'sl-out-t02', site: 'luohu', list: 'main', line: 'second', direction: 'out', lane: 'person' }, T0);
  return { keys, institutions: [a, b] };
}

/** A deterministic mix of taps (seeded LCG): grants, denials of every kind, commands, alarms, boots. */
function tapsOf(seed: number, n: number, keys: Record<string, Uint8Array>): Tap[] {
  let x = seed;
  const rnd = (m: number): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % m;
  };
  const k = [keys.k1, keys.k2, keys.k3, keys.unknown] as Uint8Array[];
  return Array.from({ length: n }, (_, i) => {
    const time = T0 + i * 7 + rnd(5);
    switch (rnd(6)) {
      case 0:
      case 1:
        return { time, key: k[rnd(2)] as Uint8Array, type: EventType.decision_granted, reason: Reason.granted };
      case 2:
        return { time, key: keys.k3 as Uint8Array, type: EventType.decision_denied, reason: Reason.revoked };
      case 3:
        return { time, key: keys.unknown as Uint8Array, type: EventType.decision_denied, reason: Reason.unknown_credential };
      case 4:
        return { time, key: null, type: EventType.alarm, reason: 1 };
      default:
        return { time, key: null, type: EventType.boot, reason: 0 };
    }
  });
}

const drain = async (g: AsyncGenerator<QueriedEvent>): Promise<QueriedEvent[]> => {
  const out: QueriedEvent[] = [];
  for await (const e of g) out.push(e);
  return out;
};
const ids = (es: readonly QueriedEvent[]): string[] => es.map((e) => `${e.gate}/${e.epoch}/${e.seq}`);

engineSuites('event query', (test, engine) => {
  let s: CentralStore;
  let all: QueriedEvent[] = [];
  let keys: Record<string, Uint8Array> = {};
  let institutions: number[] = [];
  const clock = { now: T0 * 1000 };

  test.before(async () => {
    s = await engine.store({ registry: { signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey }, eventClock: () => clock.now });
    ({ keys, institutions } = await populate(s));
    const store = s.events;
    for (const [gate, seed] of [['fl-in-t01', 1], ['sl-out-t02', 2], ['xx-unknown', 3]] as const) {
      for (const b of batches(gate, 7, records(tapsOf(seed, 300, keys), 7, 1), 32)) {
        clock.now += 10;
        const r = await store.ingest(b);
        assert.is(r.problem, undefined, `${gate} ${b.first}: ${String(r.problem)}`);
      }
    }
    all = await drain(new EventQuery(s.db).find());
  });
  test.after(async () => {
    await s.close();
  });

  test('every stored event has its decoded columns; the order is by gate time', () => {
    assert.is(all.length, 900);
    const byGate = (g: string) => all.filter((e) => e.gate === g);
    for (const e of byGate('fl-in-t01')) assert.equal([e.site, e.line, e.direction], ['futian', 'first', 'in']);
    for (const e of byGate('sl-out-t02')) assert.equal([e.site, e.line, e.direction], ['luohu', 'second', 'out']);
    for (const e of byGate('xx-unknown')) assert.equal([e.site, e.line, e.direction], ['', '', ''], 'a gate without identity: no place');
    const holder = new Map([[toHex(keys.k1 as Uint8Array), ['p-1', institutions[0]]], [toHex(keys.k2 as Uint8Array), ['p-2', institutions[1]]], [toHex(keys.k3 as Uint8Array), ['p-3', null]]]);
    for (const e of all) {
      const h = holder.get(e.key);
      assert.equal([e.subject, e.institution], h ?? ['', null], `${e.key} -> ${e.subject}`);
    }
    for (let i = 1; i < all.length; i++) assert.ok((all[i - 1] as QueriedEvent).time <= (all[i] as QueriedEvent).time, 'by time');
  });

  test('each filter selects what the reference filter selects', async () => {
    const q = new EventQuery(s.db);
    const iso = (t: number) => new Date(t * 1000).toISOString().replace('.000Z', 'Z');
    const cases: [EventFilter, (e: QueriedEvent) => boolean][] = [
      [{ gate: 'sl-out-t02' }, (e) => e.gate === 'sl-out-t02'],
      [{ site: 'futian' }, (e) => e.site === 'futian'],
      [{ line: 'second', direction: 'out' }, (e) => e.line === 'second' && e.direction === 'out'],
      [{ subject: 'p-2' }, (e) => e.subject === 'p-2'],
      [{ institution: institutions[0] }, (e) => e.institution === institutions[0]],
      [{ credential: keys.unknown }, (e) => e.key === toHex(keys.unknown as Uint8Array)],
      [{ reason: 'revoked' }, (e) => e.reason === 'revoked'],
      [{ reason: 'unknown_credential', site: 'luohu' }, (e) => e.reason === 'unknown_credential' && e.site === 'luohu'],
      [{ denied: true }, (e) => e.type === 'decision_denied'],
      [{ type: 'alarm' }, (e) => e.type === 'alarm'],
      [{ since: T0 + 1000, until: T0 + 1500 }, (e) => e.time >= iso(T0 + 1000) && e.time <= iso(T0 + 1500)],
      [{ since: T0 + 2000, gate: 'fl-in-t01', denied: true }, (e) => e.time >= iso(T0 + 2000) && e.gate === 'fl-in-t01' && e.type === 'decision_denied'],
    ];
    for (const [f, ref] of cases) {
      const want = all.filter(ref);
      assert.ok(want.length > 0, `the case ${JSON.stringify(f)} selects something`);
      assert.ok(want.length < all.length, `and not everything: ${JSON.stringify(f)}`);
      assert.equal(ids(await drain(q.find(f))), ids(want), JSON.stringify(f));
      assert.is(await q.count(f), want.length, `count ${JSON.stringify(f)}`);
    }
  });

  test('limits and pages: a limit returns the first N; a result larger than a page is whole and in order', async () => {
    const q = new EventQuery(s.db);
    assert.equal(ids(await drain(q.find({}, 25))), ids(all.slice(0, 25)));
    assert.equal(ids(await drain(q.find({}, 1001))), ids(all.slice(0, 900)));
  });

  test('bad filters are refused by name; values never reach SQL as text', async () => {
    const q = new EventQuery(s.db);
    for (const f of [{ reason: 'nope' }, { type: 'drop table' }] as EventFilter[]) {
      try {
        await drain(q.find(f));
        assert.unreachable('refused');
      } catch (e) {
        assert.instance(e, EventFilterError);
      }
    }
    assert.equal(await drain(q.find({ gate: "x' OR '1'='1" })), [], 'a quote in a value is a value');
    assert.equal(await drain(q.find({ subject: "p-1'; DROP TABLE events; --" })), []);
    assert.is(await q.count(), 900, 'the table is still there');
  });

  test('follow: only rows stored after it starts, each once, a gap filled later too; from the start with a filter; ends on abort', async () => {
    const q = new EventQuery(s.db);
    const ac = new AbortController();
    const seen: QueriedEvent[] = [];
    const follower = (async () => {
      for await (const e of q.follow({}, { pollMs: 20, signal: ac.signal })) seen.push(e);
    })();
    const wait = async (n: number): Promise<void> => {
      for (let i = 0; i < 500 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen, [], 'the 900 stored rows are not news');
    await s.identities.register({ gate: 'fl-in-t02', site: 'futian', list: 'main', line: 'first', direction: 'in', lane: 'person' }, T0);
    const bs = batches('fl-in-t02', 1, records(tapsOf(9, 40, keys), 1, 1), 10);
    const ingest = async (b: EventBatchMessage | undefined) => assert.is((await s.events.ingest(b as EventBatchMessage)).problem ?? (b === bs[3] ? 'gap_before' : undefined), b === bs[3] ? 'gap_before' : undefined);
    await ingest(bs[0]);
    await wait(10);
    await ingest(bs[1]);
    await wait(20);
    await ingest(bs[3]); // stored above a gap
    await wait(30);
    await ingest(bs[2]); // the gap filled
    await wait(40);
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await follower;
    const want = [...Array.from({ length: 20 }, (_, i) => i + 1), ...Array.from({ length: 10 }, (_, i) => 31 + i), ...Array.from({ length: 10 }, (_, i) => 21 + i)];
    assert.equal(seen.map((e) => e.seq), want, 'every row once, as stored');
    assert.ok(seen.every((e) => e.gate === 'fl-in-t02' && e.site === 'futian'));

    const again = new AbortController();
    const fromStart: QueriedEvent[] = [];
    for await (const e of q.follow({ gate: 'sl-out-t02', denied: true }, { from: 'start', pollMs: 20, signal: again.signal })) {
      fromStart.push(e);
      if (fromStart.length === all.filter((x) => x.gate === 'sl-out-t02' && x.type === 'decision_denied').length) again.abort();
    }
    assert.equal(fromStart.map((e) => e.seq), all.filter((x) => x.gate === 'sl-out-t02' && x.type === 'decision_denied').map((e) => e.seq).sort((a, b) => a - b));
  });
});

engineSuites('event query: schema 2 -> 3', (test, engine) => {
  test('a schema 2 database migrated to 3 decodes its stored rows into the same columns as ingest', async () => {
    const s = await engine.store({ registry: { signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey }, eventClock: () => T0 * 1000 });
    try {
      const { keys } = await populate(s);
      for (const b of batches('fl-in-t01', 3, records(tapsOf(5, 120, keys), 3, 1), 50)) await s.events.ingest(b);
      const q = new EventQuery(s.db);
      const want = await drain(q.find());
      // Back to schema 2: schema 4's operators and alarm index, the decoded columns and their indexes gone.
      await s.db.exec('DROP TABLE operators');
      for (const i of ['events_alarms', 'events_at', 'events_credential']) await s.db.exec(`DROP INDEX ${i}`);
      for (const c of ['at', 'type', 'reason', 'credential', 'site', 'line', 'direction', 'subject', 'institution']) await s.db.exec(`ALTER TABLE events DROP COLUMN ${c}`);
      await s.db.run("UPDATE meta SET value = '2' WHERE key = 'schema'");
      const m = await migrate(s.db);
      assert.equal([m.from, m.to], [2, 4]);
      assert.equal(m.steps, ['2 -> 3: 9 event column(s) added, 120 stored event(s) decoded', '3 -> 4: operators table and alarm index created']);
      assert.equal(await drain(q.find()), want);
      assert.ok(want.some((e) => e.subject === 'p-1') && want.some((e) => e.reason === 'revoked'));
    } finally {
      await s.close();
    }
  });
});
