// `subline central events`: the stored gate events, decoded and filtered
// through the event query module (central/event-query.ts), as a table, CSV,
// JSON or JSON lines; `--follow` tails the store; `--conflicts` the records
// kept beside a differing one (event-store.ts).

import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { Option, type Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { CredentialFactsReader } from '../central/credential-facts.js';
import { decodeEvent } from '../central/event-decode.js';
import { EventFilterError, EventQuery, reasonNames, typeNames, type EventFilter, type QueriedEvent } from '../central/event-query.js';
import { fromHex } from '../../protocol/hex.js';
import type { CentralStore } from '../central/store/open-store.js';
import { CliError } from './cli-error.js';
import { bad, checkId, dataOption, dataPaths, dbOption, loadKeys, note, nowSeconds, openStore, out, parseHex, parseInteger, parseTime } from './common.js';

export function registerEvents(central: Command): void {
  central
    .command('events')
    .description('the stored gate events, decoded and filtered (table, CSV, JSON or JSON lines); --follow prints them live as the store grows')
    .option('--since <time>', 'gate time from: a date (start of day UTC), an ISO date and time, UTC seconds, or an age (30s, 15m, 2h, 7d ago)')
    .option('--until <time>', 'gate time until, inclusive: as --since (a date: through the end of that day UTC)')
    .option('--gate <gate>', 'only this gate')
    .option('--epoch <n>', "only this journal epoch (with --gate)")
    .option('--site <site>', "only gates of this site (the gate's identity)")
    .addOption(new Option('--line <line>', 'only this line').choices(['first', 'second']))
    .addOption(new Option('--direction <direction>', 'only this direction').choices(['in', 'out']))
    .option('--subject <id>', 'only events of credentials this subject held')
    .option('--institution <id>', "only events of this institution's subjects (its id)")
    .option('--card <hex>', 'only this card (raw id as printed on it; the key is derived with keys.json)')
    .option('--uhf <hex>', 'only this UHF tag (raw id)')
    .option('--key <hex>', 'only this credential key (16 hex digits)')
    .option('--reason <name>', 'only this reason (revoked, unknown_credential, lockdown, ...; see docs/CLI.md)')
    .option('--type <name>', 'only this event type (decision_granted, decision_denied, alarm, command, boot, ...)')
    .option('--denied', 'only refusals (decision_denied, goods_lot_denied)')
    .option('--limit <n>', 'at most this many events (not with --follow)')
    .addOption(new Option('--format <format>', 'output format: csv, table, json (one array), jsonl (JSON lines)').choices(['csv', 'table', 'json', 'jsonl']).default('csv'))
    .option('--json', 'same as --format json')
    .option('--follow', 'keep printing events as they are stored, until Ctrl-C (with --since: the stored ones first); csv, table or jsonl')
    .option('--poll <seconds>', 'with --follow: read the store this often (0.1-60)', '0.5')
    .option('--out <file>', 'write to this file (default: standard output; not with --follow)')
    .option('--conflicts', 'instead: the records a gate sent that differ from the one stored for the same (gate, epoch, seq), next to it (JSON)')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: EventsOptions) => (o.conflicts === true ? conflicts(o) : events(o)));
}

/** The stores of an initialised central for reading (no keys unless a raw card or tag id must be turned into its key). */
const openForReading = (o: { readonly data: string; readonly db?: string }, withKeys = false): Promise<CentralStore> => {
  const p = dataPaths(o.data, o.db);
  return openStore(p, withKeys ? loadKeys(p) : undefined);
};

interface EventsOptions {
  readonly data: string;
  readonly db?: string;
  readonly since?: string;
  readonly until?: string;
  readonly gate?: string;
  readonly epoch?: string;
  readonly site?: string;
  readonly line?: string;
  readonly direction?: string;
  readonly subject?: string;
  readonly institution?: string;
  readonly card?: string;
  readonly uhf?: string;
  readonly key?: string;
  readonly reason?: string;
  readonly type?: string;
  readonly denied?: boolean;
  readonly limit?: string;
  readonly format: 'csv' | 'table' | 'json' | 'jsonl';
  readonly json?: boolean;
  readonly follow?: boolean;
  readonly poll: string;
  readonly out?: string;
  readonly conflicts?: boolean;
}

/** Conflicting records (event-store.ts, `event_conflicts`): both sides decoded, nothing dropped. */
async function conflicts(o: EventsOptions): Promise<void> {
  if (o.out !== undefined || o.epoch !== undefined) bad('--conflicts takes --gate only (it prints JSON)');
  const gate = o.gate !== undefined ? checkId(o.gate, '--gate') : undefined;
  const store = await openForReading(o);
  try {
    const rows = await store.events.conflicts(gate);
    const dec = (record: Uint8Array, r: (typeof rows)[number]) => decodeEvent({ gate: r.gate, epoch: r.epoch, seq: r.seq, record, chain: r.chain, receivedAt: r.receivedAt });
    out(JSON.stringify(rows.map((r) => ({ gate: r.gate, epoch: r.epoch, seq: r.seq, problem: r.problem, stored: r.stored === null ? null : dec(r.stored, r), conflicting: dec(r.record, r) })), null, 2));
    if (rows.length > 0) note(`${rows.length} conflicting record(s): a gate sent records that differ from those stored under the same (gate, epoch, seq); both are kept (docs/SYNC.md, "Conflicting records")`);
  } finally {
    await store.close();
  }
}


/** A queried event and, for a gate's `unknown_credential`, what the registry knows of the key (credential-facts.ts). */
type ExportedEvent = QueriedEvent & { readonly registry: string };

// CSV keeps the columns of earlier builds in their places; the ones added with the query module follow.
const CSV_COLUMNS: readonly (keyof ExportedEvent)[] = ['gate', 'epoch', 'seq', 'time', 'type', 'reason', 'level', 'key', 'clockUntrusted', 'receivedAt', 'registry', 'site', 'line', 'direction', 'subject', 'institution'];
const CSV_HEADER = ['gate', 'epoch', 'seq', 'time', 'type', 'reason', 'level', 'key', 'clock_untrusted', 'received_at', 'registry', 'site', 'line', 'direction', 'subject', 'institution'];
// The table is fixed-width so that it can be printed a line at a time (--follow).
const TABLE: readonly [string, number, (e: ExportedEvent) => string][] = [
  ['TIME', 20, (e) => e.time],
  ['GATE', 12, (e) => e.gate],
  ['SEQ', 7, (e) => String(e.seq)],
  ['TYPE', 17, (e) => e.type],
  ['REASON', 22, (e) => e.reason],
  ['SUBJECT', 12, (e) => e.subject],
  ['KEY', 16, (e) => e.key],
  ['SITE', 10, (e) => e.site],
];
const tableLine = (cells: readonly string[]): string => `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd((TABLE[i] as [string, number, unknown])[1]))).join('  ').trimEnd()}\n`;

const AGE = /^(\d+)(s|m|h|d)$/;
const AGE_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** --since/--until: what parseTime takes, or an age before now. */
function timeOption(value: string, what: string, endOfDay: boolean): number {
  const m = AGE.exec(value.trim());
  if (m !== null) return Math.max(0, nowSeconds() - Number(m[1]) * (AGE_SECONDS[m[2] as string] as number));
  return parseTime(value, what, endOfDay);
}

/** The filter the options name; keys of raw ids derived with the data directory's keys. */
function filterOf(o: EventsOptions, store: CentralStore): EventFilter {
  const ids = [o.card, o.uhf, o.key].filter((x) => x !== undefined);
  if (ids.length > 1) bad('give one of --card, --uhf and --key');
  let credential: Uint8Array | undefined;
  if (o.card !== undefined) credential = store.registry.credentialKey('card', fromHex(parseHex(o.card, '--card', 1, 64)));
  if (o.uhf !== undefined) credential = store.registry.credentialKey('uhf', fromHex(parseHex(o.uhf, '--uhf', 1, 64)));
  if (o.key !== undefined) credential = fromHex(parseHex(o.key, '--key', 8, 8));
  const f: EventFilter = {
    since: o.since !== undefined ? timeOption(o.since, '--since', false) : undefined,
    until: o.until !== undefined ? timeOption(o.until, '--until', true) : undefined,
    gate: o.gate !== undefined ? checkId(o.gate, '--gate') : undefined,
    epoch: o.epoch !== undefined ? parseInteger(o.epoch, '--epoch', 0, 0xffffffff) : undefined,
    site: o.site !== undefined ? checkId(o.site, '--site') : undefined,
    line: o.line,
    direction: o.direction,
    subject: o.subject,
    institution: o.institution !== undefined ? parseInteger(o.institution, '--institution', 0, Number.MAX_SAFE_INTEGER) : undefined,
    credential,
    reason: o.reason,
    type: o.type,
    denied: o.denied === true ? true : undefined,
  };
  if (f.since !== undefined && f.until !== undefined && f.since > f.until) bad(`--since is after --until`);
  return f;
}

async function events(o: EventsOptions): Promise<void> {
  const format = o.json === true ? 'json' : o.format;
  if (o.json === true && o.format !== 'csv' && o.format !== 'json') bad(`--json means --format json; it cannot go with --format ${o.format}`);
  if (o.follow === true) {
    if (format === 'json') bad('--follow prints one event per line: use --format jsonl (or csv, table); --format json is one array that never ends');
    if (o.out !== undefined) bad('--follow writes to standard output (no --out)');
    if (o.limit !== undefined) bad('--follow takes no --limit');
  }
  const limit = o.limit !== undefined ? parseInteger(o.limit, '--limit', 1, Number.MAX_SAFE_INTEGER) : undefined;
  const poll = o.follow === true ? parseSeconds(o.poll, '--poll', 0.1, 60) : 0;
  if (o.reason !== undefined && !reasonNames().includes(o.reason)) bad(`--reason '${o.reason}' is not a reason (one of: ${reasonNames().join(', ')})`);
  if (o.type !== undefined && !typeNames().includes(o.type)) bad(`--type '${o.type}' is not an event type (one of: ${typeNames().join(', ')})`);
  const stores = await openForReading(o, o.card !== undefined || o.uhf !== undefined);
  const tmp = o.out !== undefined ? `${o.out}.tmp-${process.pid}` : undefined;
  let sink: WriteStream | NodeJS.WriteStream = process.stdout;
  let n = 0;
  const ac = new AbortController();
  const stop = () => ac.abort();
  try {
    const filter = filterOf(o, stores);
    if (tmp !== undefined) {
      sink = createWriteStream(tmp, { flags: 'wx' });
      await once(sink, 'open');
    }
    const s = sink;
    const write = async (text: string) => {
      if (!s.write(text)) await once(s, 'drain');
    };
    const facts = new CredentialFactsReader(stores.db);
    const render = (e: ExportedEvent): string => {
      switch (format) {
        case 'csv':
          return stringify([CSV_COLUMNS.map((c) => { const v = e[c]; return typeof v === 'boolean' ? (v ? '1' : '0') : v === null ? '' : String(v); })]);
        case 'table':
          return tableLine(TABLE.map(([, , f]) => f(e)));
        case 'jsonl':
          return `${JSON.stringify(e)}\n`;
        default:
          return `${n === 0 ? '' : ',\n'}  ${JSON.stringify(e)}`;
      }
    };
    await write(format === 'csv' ? stringify([CSV_HEADER]) : format === 'table' ? tableLine(TABLE.map(([h]) => h)) : format === 'json' ? '[\n' : '');
    const query = new EventQuery(stores.db);
    const source =
      o.follow === true
        ? query.follow(filter, { from: filter.since !== undefined ? 'start' : 'now', pollMs: poll * 1000, signal: ac.signal })
        : query.find(filter, limit);
    if (o.follow === true) {
      note(`following the events stored in ${stores.db.where}${filter.since !== undefined ? ' (the stored ones first)' : ''}; Ctrl-C to stop`);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Stdout closed by the reader (`| head`): stop quietly.
      process.stdout.once('error', stop);
    }
    let chunk = '';
    for await (const q of source) {
      const e: ExportedEvent = { ...q, registry: q.reason === 'unknown_credential' && q.key !== '' ? await facts.describe(q.key) : '' };
      chunk += render(e);
      n++;
      // Followed events go out as they come; an export is written in chunks.
      if (o.follow === true || chunk.length > 65536) {
        await write(chunk);
        chunk = '';
      }
    }
    await write(chunk);
    if (format === 'json') await write(n === 0 ? ']\n' : '\n]\n');
    if (tmp !== undefined && o.out !== undefined) {
      await new Promise<void>((resolve, reject) => (sink as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
      renameSync(tmp, o.out);
      note(`exported ${n} event(s) to ${o.out}`);
    }
    if (o.follow === true) note(`followed ${n} event(s)`);
  } catch (e) {
    if (e instanceof EventFilterError) throw new CliError(e.message, 2);
    if (tmp !== undefined) {
      if (sink !== process.stdout) (sink as WriteStream).destroy();
      rmSync(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== undefined) throw new CliError(`--out ${o.out}: cannot be written (${code})`, 2);
    }
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await stores.close();
  }
}

function parseSeconds(value: string, what: string, min: number, max: number): number {
  const v = Number(value);
  if (!Number.isFinite(v) || v < min || v > max) bad(`${what} '${value}' must be seconds between ${min} and ${max}`);
  return v;
}
