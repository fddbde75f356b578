// npm run bench -- console : the console's search over a large store, and
// its live feed at a high event rate.
// - console_search_ms: GET /api/events over HTTP (login, cookie, the real
//   route and event-query.ts) on a SQLite store of 1,000,000 events (100
//   gates, 2,000 people in 20 institutions, 30 days), by card as printed,
//   subject, institution, gate and a day, reason, denials in a day, and a
//   card's CSV export: median and max of 5 runs each (the aim: within
//   a second). SUBLINE_BENCH_EVENTS overrides the event count.
// - console_feed: events stored at 1,000/s for 5 s while a page listens on
//   /api/stream: messages and events it received per second and the lag
//   from storing to receiving (the feed coalesces: a few messages a second).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecord, encodeRecord, EventType, GrantLevel, RECORD_BYTES } from '../protocol/event-record.js';
import { toHex } from '../protocol/hex.js';
import type { EventBatchMessage } from '../protocol/messages.js';
import { Reason } from '../protocol/reasons.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { OperatorStore } from '../host-sim/central/operator-store.js';
import { ConsoleServer } from '../host-sim/console/console-server.js';
import { sha256Pair } from '../host-sim/node-crypto.js';
import { mulberry32 } from '../host-sim/flash/nor-flash.js';
import { BenchReport, percentile } from './lib.js';

const GATES = 100;
const PEOPLE = 2000;
const INSTITUTIONS = 20;
const DAYS = 30;
const BATCH = 500;

const cardOf = (p: number) => Uint8Array.of(0x10, 0, 0, (p >> 8) & 0xff, p & 0xff);

export async function benchConsole(): Promise<string> {
  const report = new BenchReport('console');
  const total = Number(process.env.SUBLINE_BENCH_EVENTS ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'subline-bench-console-'));
  const central = await Central.open({ db: join(dir, 'central.db'), ...generateKeys(), brokerUrl: 'mqtt://127.0.0.1:1' });
  let web: ConsoleServer | null = null;
  try {
    const r = central.registry;
    const keys: Uint8Array[] = [];
    const institutions: number[] = [];
    await r.bulk(async (b) => {
      for (let i = 0; i < INSTITUTIONS; i++) institutions.push(await b.addInstitution({ name: `inst-${i}`, industry: null }));
      for (let p = 0; p < PEOPLE; p++) {
        await b.addSubject({ id: `p-${p}`, kind: 'person', institution: institutions[p % INSTITUTIONS]!, name: `Person ${p}` });
        keys.push(await b.addCredential({ subject: `p-${p}`, kind: 'card', rawId: cardOf(p) }));
      }
    });
    for (let g = 0; g < GATES; g++) await central.store.identities.register({ gate: `g-${g}`, site: `site-${g % 10}`, list: 'main', line: g % 2 === 0 ? 'first' : 'second', direction: g % 4 < 2 ? 'in' : 'out', lane: 'person' }, 1);
    const t0 = Math.floor(Date.now() / 1000) - DAYS * 86_400;
    const chains: { prev: Uint8Array; next: number }[] = Array.from({ length: GATES }, () => ({ prev: new Uint8Array(32), next: 1 }));
    const random = mulberry32(12345);
    const rnd = (m: number) => Math.floor(random() * m);
    const rec = createRecord();
    const batchOf = (g: number, n: number, timeOf: (i: number) => number): EventBatchMessage => {
      const c = chains[g]!;
      const all = new Uint8Array(n * RECORD_BYTES);
      let chain = c.prev;
      const prev = chain;
      const one = new Uint8Array(RECORD_BYTES);
      for (let i = 0; i < n; i++) {
        const p = rnd(PEOPLE);
        const kind = rnd(10);
        rec.time = timeOf(i);
        rec.key.set(kind === 9 ? new Uint8Array(8) : keys[p]!);
        rec.type = kind < 7 ? EventType.decision_granted : kind === 9 ? EventType.alarm : EventType.decision_denied;
        rec.reason = kind < 7 ? Reason.granted : kind === 7 ? Reason.revoked : kind === 8 ? Reason.no_grant : 1;
        rec.level = kind < 7 ? GrantLevel.individual : 0;
        encodeRecord(rec, c.next + i, g + 1, one);
        all.set(one, i * RECORD_BYTES);
        chain = sha256Pair(chain, one);
      }
      const b = { gate: `g-${g}`, epoch: g + 1, first: c.next, count: n, records: all, prev, chain };
      c.prev = chain;
      c.next += n;
      return b;
    };
    const perGate = Math.ceil(total / GATES);
    const span = DAYS * 86_400;
    const ingestStart = performance.now();
    let stored = 0;
    for (let done = 0; done < perGate; done += BATCH) {
      const n = Math.min(BATCH, perGate - done);
      for (let g = 0; g < GATES; g++) {
        const res = await central.events.ingest(batchOf(g, n, (i) => t0 + Math.floor(((done + i) * span) / perGate)));
        if (res.problem !== undefined) throw new Error(`ingest: ${res.problem}`);
        stored += n;
      }
      if ((done / BATCH) % 20 === 0) process.stderr.write(`console bench: ${stored} events stored\n`);
    }
    const ingestMs = performance.now() - ingestStart;
    const machine = { engine: 'node' as const, entries: PEOPLE, events: stored, store: 'sqlite', gates: GATES, people: PEOPLE, days: DAYS };
    report.add({ metric: 'console_bench_ingest_events_per_second', value: Math.round(stored / (ingestMs / 1000)), unit: 'events/s', ...machine, note: 'setup only: EventStore.ingest in batches of 500' });

    await new OperatorStore(central.store.db).add('bench', 'viewer', 'bench password 1234');
    web = await ConsoleServer.start({ central });
    const login = await fetch(new URL('/api/login', web.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', password: 'bench password 1234' }) });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const day = t0 + 15 * 86_400;
    const queries: [string, string][] = [
      ['card', `card=${toHex(cardOf(777))}`],
      ['subject', 'subject=p-1234'],
      ['institution', `institution=${institutions[3]!}`],
      ['gate and a day', `gate=g-42&from=${day}&to=${day + 86_399}`],
      ['reason', 'reason=revoked'],
      ['denied in a day', `denied=true&from=${day}&to=${day + 86_399}`],
      ['card as CSV', `card=${toHex(cardOf(777))}&format=csv&limit=10000`],
    ];
    for (const [label, q] of queries) {
      const ms: number[] = [];
      let rows = 0;
      for (let i = 0; i < 5; i++) {
        const s = performance.now();
        const res = await fetch(new URL(`/api/events?${q}`, web.url), { headers: { cookie } });
        const body = await res.text();
        ms.push(performance.now() - s);
        if (res.status !== 200) throw new Error(`${label}: ${res.status} ${body}`);
        rows = q.includes('format=csv') ? body.trim().split('\n').length - 1 : (JSON.parse(body) as { count: number }).count;
      }
      report.add({ metric: 'console_search_ms', value: Math.round(percentile(ms, 50) * 10) / 10, unit: 'ms', query: label, rows, maxMs: Math.round(Math.max(...ms) * 10) / 10, runs: 5, ...machine, limit: q.includes('limit=') ? 10_000 : 200, over: 'HTTP on loopback' });
    }

    // The live feed at 1,000 events/s for 5 s: what one listening page receives.
    const abort = new AbortController();
    const stream = await fetch(new URL('/api/stream', web.url), { headers: { cookie }, signal: abort.signal });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    let messages = 0;
    let events = 0;
    const lags: number[] = [];
    const storedAt = new Map<string, number>();
    let text = '';
    const reading = (async () => {
      try {
        for (;;) {
          const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
          if (chunk.done) return;
          text += new TextDecoder().decode(chunk.value);
          let end: number;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            if (!block.startsWith('event: passages')) continue;
            messages++;
            const data = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { events: { gate: string; seq: number }[]; skipped: number };
            events += data.events.length + data.skipped;
            const now = performance.now();
            for (const e of data.events) {
              const at = storedAt.get(`${e.gate} ${e.seq}`);
              if (at !== undefined) lags.push(now - at);
            }
          }
        }
      } catch {
        // aborted
      }
    })();
    await new Promise((r) => setTimeout(r, 1500)); // the feed's follower starts with the first listener
    const feedStart = performance.now();
    const live = t0 + span;
    for (let tick = 0; tick < 50; tick++) {
      // 100 ms ticks of 100 events: 10 gates x 10.
      for (let g = 0; g < 10; g++) {
        const b = batchOf(g, 10, () => live + tick);
        const at = performance.now();
        for (let i = 0; i < 10; i++) storedAt.set(`g-${g} ${b.first + i}`, at);
        await central.events.ingest(b);
      }
      const wait = feedStart + (tick + 1) * 100 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const seconds = (performance.now() - feedStart) / 1000;
    abort.abort();
    await reading;
    report.add({ metric: 'console_feed_messages_per_second', value: Math.round((messages / seconds) * 10) / 10, unit: 'messages/s', storedPerSecond: 1000, eventsReceived: events, eventsStored: 5000, seconds: Math.round(seconds * 10) / 10, ...machine });
    report.add({ metric: 'console_feed_lag_ms', value: Math.round(percentile(lags, 50)), unit: 'ms', ...machine, p99: Math.round(percentile(lags, 99)), max: Math.round(Math.max(...lags)), samples: lags.length, storedPerSecond: 1000, note: 'from ingest to the page receiving it (follower polls every 200 ms, flushes every 250 ms)' });
  } finally {
    await web?.close();
    await central.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return report.write();
}
