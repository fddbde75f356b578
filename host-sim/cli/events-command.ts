// `subline central events`: the stored gate events, decoded, as CSV or JSON;
// `--conflicts` the records kept beside a differing one (event-store.ts).

import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { Option, type Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { CredentialFactsReader } from '../central/credential-facts.js';
import { decodeEvent, type DecodedEvent } from '../central/event-decode.js';
import type { CentralStore } from '../central/store/open-store.js';
import { CliError } from './cli-error.js';
import { bad, checkId, dataOption, dataPaths, dbOption, note, openStore, out, parseInteger } from './common.js';

export function registerEvents(central: Command): void {
  central
    .command('events')
    .description('export the stored gate events, decoded (CSV or JSON)')
    .option('--gate <gate>', 'only this gate')
    .option('--epoch <n>', 'only this journal epoch')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'json']).default('csv'))
    .option('--out <file>', 'write to this file (default: standard output)')
    .option('--conflicts', 'instead: the records a gate sent that differ from the one stored for the same (gate, epoch, seq), next to it (JSON)')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: EventsOptions) => (o.conflicts === true ? conflicts(o) : events(o)));;
}

/** The stores of an initialised central for reading (no keys: nothing is signed). */
const openForReading = (o: { readonly data: string; readonly db?: string }): Promise<CentralStore> => openStore(dataPaths(o.data, o.db));

interface EventsOptions {
  readonly data: string;
  readonly db?: string;
  readonly gate?: string;
  readonly epoch?: string;
  readonly format: 'csv' | 'json';
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

/** A decoded event and, for a gate's `unknown_credential`, what the registry knows of the key (credential-facts.ts). */
type ExportedEvent = DecodedEvent & { readonly registry: string };
const CSV_COLUMNS: readonly (keyof ExportedEvent)[] = ['gate', 'epoch', 'seq', 'time', 'type', 'reason', 'level', 'key', 'clockUntrusted', 'receivedAt', 'registry'];
const CSV_HEADER = ['gate', 'epoch', 'seq', 'time', 'type', 'reason', 'level', 'key', 'clock_untrusted', 'received_at', 'registry'];

async function events(o: EventsOptions): Promise<void> {
  const gate = o.gate !== undefined ? checkId(o.gate, '--gate') : undefined;
  const epoch = o.epoch !== undefined ? parseInteger(o.epoch, '--epoch', 0, 0xffffffff) : undefined;
  const stores = await openForReading(o);
  const tmp = o.out !== undefined ? `${o.out}.tmp-${process.pid}` : undefined;
  let sink: WriteStream | NodeJS.WriteStream = process.stdout;
  let n = 0;
  try {
    const store = stores.events;
    if (tmp !== undefined) {
      sink = createWriteStream(tmp, { flags: 'wx' });
      await once(sink, 'open');
    }
    const s = sink;
    const write = async (text: string) => {
      if (!s.write(text)) await once(s, 'drain');
    };
    const facts = new CredentialFactsReader(stores.db);
    let batch: ExportedEvent[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      if (o.format === 'csv') await write(stringify(batch.map((e) => CSV_COLUMNS.map((c) => (typeof e[c] === 'boolean' ? (e[c] ? '1' : '0') : String(e[c]))))));
      else await write(batch.map((e, i) => `${n - batch.length + i === 0 ? '' : ',\n'}  ${JSON.stringify(e)}`).join(''));
      batch = [];
    };
    await write(o.format === 'csv' ? stringify([CSV_HEADER]) : '[\n');
    for await (const row of store.rows(gate, epoch)) {
      const e = decodeEvent(row);
      batch.push({ ...e, registry: e.reason === 'unknown_credential' && e.key !== '' ? await facts.describe(e.key) : '' });
      n++;
      if (batch.length === 1000) await flush();
    }
    await flush();
    if (o.format === 'json') await write(n === 0 ? ']\n' : '\n]\n');
    if (tmp !== undefined && o.out !== undefined) {
      await new Promise<void>((resolve, reject) => (sink as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
      renameSync(tmp, o.out);
      note(`exported ${n} event(s) to ${o.out}`);
    }
  } catch (e) {
    if (tmp !== undefined) {
      if (sink !== process.stdout) (sink as WriteStream).destroy();
      rmSync(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== undefined) throw new CliError(`--out ${o.out}: cannot be written (${code})`, 2);
    }
    throw e;
  } finally {
    await stores.close();
  }
}
