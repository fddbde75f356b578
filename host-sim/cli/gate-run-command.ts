// `subline gate run --record G.cbor --flash DIR`: one gate as a process, from
// its provisioning record, with its flash kept in DIR across runs (a kill -9
// is a power cut: every write is in DIR's files before the gate goes on).
// Taps come from stdin (`card HEX`, `uhf HEX`, `pass`) or from a serial
// reader (--reader DEVICE) through the firmware's frame decoders. A status
// line on stderr (in place on a terminal, one line per change otherwise);
// the summary on stdout at the end (SIGINT, SIGTERM, end of input), after the
// journal had a short time (--drain) to reach the central. Offline-first: an
// unreachable broker is a state shown in the status line, not an error.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { PROVISIONING_MAGIC, readProvisioningImage } from '../../firmware/moddable/provisioning-image.js';
import type { CredentialKind } from '../../firmware/ports.js';
import { MAX_RAW_ID_BYTES } from '../../protocol/credential-key.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { decodeProvisioning, type ProvisioningRecord } from '../../protocol/provisioning.js';
import { gateBrokerAuth, type BrokerAuth } from '../broker-auth.js';
import type * as FlashDir from '../gate-flash-dir.js';
import type { GateFlashDir } from '../gate-flash-dir.js';
import type { GateRunner, GateRunStatus, GateRunTotals, TapDecision } from '../gate-runner.js';
import { READER_KINDS, SerialReader, SerialReaderError, type ReaderKind } from '../serial-reader.js';
import { CliError } from './cli-error.js';
import { bad, checkBrokerUrl, parseInteger } from './common.js';

/**
 * gate-flash-dir.ts's DEFAULT_CAPACITY (for --capacity's help), repeated so that the other
 * commands and --help do not load the gate (imported when `gate run` runs); the type makes
 * tsc check that both are the same.
 */
const DEFAULT_CAPACITY: typeof FlashDir.DEFAULT_CAPACITY = 20000;

interface GateRunOptions {
  readonly record: string;
  readonly flash: string;
  readonly broker?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly username?: string;
  readonly password?: string;
  readonly capacity?: string;
  readonly reader?: string;
  readonly readerKind?: ReaderKind;
  readonly readerPoll?: string;
  readonly drain: string;
  readonly json?: boolean;
}

const HELP = `
Taps on stdin, one per line (ignored with --reader):
  card HEX     a card read (raw id, 1-${MAX_RAW_ID_BYTES} bytes in hex, e.g. card c0000001)
  uhf HEX      a UHF tag read (EPC in hex)
  pass         the subject passes: a turnstile rotation (person, goods lanes),
               or the vehicle on the loop and off it (vehicle lanes)
  Blank lines and lines starting with # are skipped; any other line is
  reported on stderr and ignored. Each decision is printed on stderr, e.g.
  "card c0000001: granted (institution), seq 5". A grant waits for its
  passage (pass) or 8 s; the same card again before that is refused
  (already_pending), as at a real lane.

Status line (stderr; in place on a terminal, one line per change otherwise):
  gate fl-in-t01: connected, list v12, journal 3 pending
  (OFFLINE while the broker cannot be reached: the gate decides from the list
  on its flash and journals; the backlog goes out when it reconnects. "list
  none" until the first image: taps before it are an unsynced gate's.)

The run ends on SIGINT, SIGTERM, the end of stdin, or the end of the --reader
stream. The journal then has up to --drain seconds to reach the central (what
is left stays in the flash and is sent on the next run), and the summary goes
to stdout:
  summary: taps N granted N denied N journaled N
(journaled: records this run added to the journal, its boot record included),
or with --json one object {gate, taps, granted, denied, journaled, pending, ...}.

The flash directory: data.flash, provision.flash, gate.json and a lock. It is
made on the first run and bound to that record: another gate's directory, or
this gate's from another provisioning, is refused (exit 2) and left as it is.

Exit: 0 done; 2 bad input (record, flash directory, option, reader device);
3 the flash directory is in use by another process; 1 anything else.

Example:
  subline provision --data D --gate fl-in-t01 --site futian --line first \\
    --direction in --lane person --broker mqtt://127.0.0.1:1883 --out fl-in-t01.cbor
  printf 'card c0000001\\npass\\n' | subline gate run --record fl-in-t01.cbor --flash gates/fl-in-t01`;

export function registerGateRun(gate: Command): void {
  gate
    .command('run')
    .description('run one gate (the firmware core on the host) from its provisioning record, its flash kept in a directory across runs; taps from stdin or a serial reader')
    .requiredOption('--record <file>', 'the gate\'s provisioning record, as `subline provision` wrote it (bare CBOR, or FILE.bin framed for the partition)')
    .requiredOption('--flash <dir>', 'the gate\'s flash directory: made on the first run, reused after (survives kill -9)')
    .addOption(new Option('--broker <url>', 'MQTT broker (mqtt:// or mqtts://host:port; default: the record\'s)').env('SUBLINE_BROKER'))
    .option('--ca <file>', 'CA certificate (PEM) the broker\'s certificate must chain to (default: the deployment CA in the record)')
    .option('--cert <file>', 'TLS client certificate (PEM) (default: the gate\'s certificate in the record)')
    .option('--key <file>', 'its private key (PEM) (default: the gate\'s key in the record)')
    .option('--username <user>', 'MQTT username (default: the record\'s, if any); SUBLINE_BROKER_* identity variables are not read: a gate presents its own identity')
    .option('--password <password>', 'MQTT password (default: the record\'s)')
    .option('--capacity <credentials>', `credentials the whitelist slots of a new flash directory hold (1000-1000000; default ${DEFAULT_CAPACITY}); an existing one keeps its own`)
    .option('--reader <device>', 'take taps from a serial reader at this path (/dev/ttyUSB0, a FIFO, a pty or a file; set baud and raw mode with stty first) instead of stdin')
    .addOption(new Option('--reader-kind <kind>', 'reader frame format (docs/READERS.md) (default: em4100 on person lanes, uhf on vehicle and goods lanes)').choices(READER_KINDS))
    .option('--reader-poll <ms>', 'UHF on a terminal: send the M100 inventory command this often, on the same line (0-60000; default 100; 0 = never)')
    .option('--drain <seconds>', 'at the end, wait at most this long for the central to acknowledge the journal (0-60)', '2')
    .option('--json', 'print the summary as one JSON object')
    .addHelpText('after', HELP)
    .action((o: GateRunOptions) => run(o));
}

// ---------------------------------------------------------------- input

/** Reads the record as `provision --check` does: bare CBOR, or framed (a .bin image, a partition dump). */
function readRecord(file: string): ProvisioningRecord {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return bad(code === 'ENOENT' ? `--record ${file}: no such file` : `--record ${file}: cannot be read (${code ?? String(e)})`);
  }
  const framed = bytes.length >= 4 && PROVISIONING_MAGIC.every((b, i) => bytes[i] === b);
  if (framed) {
    const r = readProvisioningImage((offset, length) => bytes.slice(offset, offset + length), bytes.length);
    if (!r.ok) bad(`--record ${file}: not a valid provisioning record: ${r.error} (${r.detail})`);
    return r.value;
  }
  const r = decodeProvisioning(bytes);
  if (!r.ok) bad(`--record ${file}: not a valid provisioning record: ${r.error.code}${r.error.field !== '' ? ` at field '${r.error.field}'` : ''}`);
  return r.value;
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    return bad(`${flag} ${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** The record's identity, each part replaced by the flags that name it. */
function brokerAuth(o: GateRunOptions, record: ProvisioningRecord): BrokerAuth | undefined {
  if ((o.cert === undefined) !== (o.key === undefined)) bad('--cert and --key go together');
  if (o.password !== undefined && o.username === undefined) bad('--password needs --username');
  const base = gateBrokerAuth(record) ?? {};
  const auth: BrokerAuth = {
    ...base,
    ...(o.ca !== undefined ? { ca: readPem(o.ca, '--ca') } : {}),
    ...(o.cert !== undefined ? { cert: readPem(o.cert, '--cert'), key: readPem(o.key as string, '--key') } : {}),
    ...(o.username !== undefined ? { username: o.username, password: o.password } : {}),
  };
  return Object.values(auth).some((v) => v !== undefined) ? auth : undefined;
}

type Line = { readonly op: 'read'; readonly kind: CredentialKind; readonly id: Uint8Array; readonly hex: string } | { readonly op: 'pass' } | { readonly op: 'skip' } | { readonly op: 'bad'; readonly why: string };

function parseLine(text: string): Line {
  const t = text.trim();
  if (t === '' || t.startsWith('#')) return { op: 'skip' };
  const words = t.split(/\s+/);
  const [verb, arg, ...rest] = words as [string, string | undefined, ...string[]];
  const v = verb.toLowerCase();
  if (v === 'pass') return rest.length === 0 && arg === undefined ? { op: 'pass' } : { op: 'bad', why: 'pass takes nothing after it' };
  if (v !== 'card' && v !== 'uhf') return { op: 'bad', why: `unknown '${verb}' (expected card HEX, uhf HEX or pass)` };
  if (arg === undefined || rest.length > 0) return { op: 'bad', why: `${v} takes one hex id (e.g. ${v} c0000001)` };
  if (!/^([0-9a-fA-F]{2})+$/.test(arg)) return { op: 'bad', why: `${v} '${arg}': the id must be hex digits, an even number of them` };
  if (arg.length / 2 > MAX_RAW_ID_BYTES) return { op: 'bad', why: `${v} '${arg}': the id is ${arg.length / 2} bytes, at most ${MAX_RAW_ID_BYTES}` };
  return { op: 'read', kind: v, id: fromHex(arg), hex: arg.toLowerCase() };
}

// ---------------------------------------------------------------- output

function statusText(s: GateRunStatus): string {
  const conn = s.connection === 'online' ? 'connected' : s.connection === 'connecting' ? `connecting to ${s.broker}` : s.everOnline ? `OFFLINE (lost ${s.broker}; retrying)` : `OFFLINE (${s.broker} unreachable; retrying)`;
  const list = s.list === null ? 'list none' : `list v${s.list}`;
  return `gate ${s.gate}: ${conn}, ${list}${s.pulling ? ' (pulling an image)' : ''}, journal ${s.pending} pending`;
}

/** In place only within one terminal row: a wrapped line could not be cleared. */
const fit = (text: string): string => text.slice(0, Math.max(20, (process.stderr.columns ?? 80) - 1));

/** The status line on stderr: redrawn in place on a terminal, a new line per change otherwise; notes go above it. */
class StatusLine {
  readonly #tty = process.stderr.isTTY;
  #shown = '';
  /** Plain lines: a note came after the status line, so a final line repeats it. */
  #buried = false;

  update(text: string): void {
    if (text === this.#shown) return;
    this.#shown = text;
    this.#buried = false;
    process.stderr.write(this.#tty ? `\r\x1b[K${fit(text)}` : `${text}\n`);
  }

  note(line: string): void {
    if (!this.#tty) this.#buried = this.#shown !== '';
    process.stderr.write(this.#tty ? `\r\x1b[K${line}\n${fit(this.#shown)}` : `${line}\n`);
  }

  /** The state the run ended in, as the last line. */
  final(text: string): void {
    if (this.#buried) this.#shown = '';
    this.update(text);
    if (this.#tty) process.stderr.write('\n');
  }
}

function describeDecision(d: TapDecision): string {
  if (d.seq === null) return 'denied (journal_full: not recorded, nobody passes)';
  return d.granted ? `granted (${d.level}), seq ${d.seq}` : `denied (${d.reason}), seq ${d.seq}`;
}

// ---------------------------------------------------------------- the run

async function run(o: GateRunOptions): Promise<void> {
  const record = readRecord(o.record);
  const broker = o.broker !== undefined ? checkBrokerUrl(o.broker) : record.broker;
  const auth = brokerAuth(o, record);
  const capacity = o.capacity !== undefined ? parseInteger(o.capacity, '--capacity', 1000, 1_000_000) : undefined;
  const drainMs = parseInteger(o.drain, '--drain', 0, 60) * 1000;
  const readerKind: ReaderKind = o.readerKind ?? (record.lane === 'person' ? 'em4100' : 'uhf');
  const readerPoll = o.readerPoll !== undefined ? parseInteger(o.readerPoll, '--reader-poll', 0, 60_000) : undefined;
  if (o.reader === undefined && (o.readerKind !== undefined || o.readerPoll !== undefined)) bad('--reader-kind and --reader-poll go with --reader DEVICE');

  const { GateFlashDir, GateFlashDirError } = await import('../gate-flash-dir.js');
  const { GateRunner } = await import('../gate-runner.js');
  let flash: GateFlashDir;
  try {
    flash = GateFlashDir.open({ dir: o.flash, record, ...(capacity !== undefined ? { capacity } : {}) });
  } catch (e) {
    if (e instanceof GateFlashDirError) throw new CliError(e.message, e.code === 'in_use' ? 3 : 2);
    throw e;
  }

  const status = new StatusLine();
  let finishing = false;
  let label: string | null = null;
  let runner: GateRunner;
  try {
    runner = new GateRunner({
      record, flash, brokerUrl: broker, ...(auth !== undefined ? { brokerAuth: auth } : {}),
      onDecision: (d) => status.note(`${label ?? 'lot tag'}: ${describeDecision(d)}`),
      // Not while stopping: closing the connection is not news, the last line is the state it ended in.
      onChange: () => {
        if (!finishing) status.update(statusText(runner.status));
      },
    });
  } catch (e) {
    flash.close();
    throw e;
  }
  const b = runner.boot;
  status.note(`gate ${record.gate}: boot ${b.boot}, journal epoch ${b.journalEpoch}, last seq ${b.journalLastSeq} (${runner.status.pending} pending); flash ${o.flash} (${flash.created ? 'new' : 'kept'}, ${flash.layout.credentials} credentials); taps from ${o.reader !== undefined ? `${readerKind} reader ${o.reader}` : 'stdin'}`);
  status.update(statusText(runner.status));
  const statusTimer = setInterval(() => status.update(statusText(runner.status)), 200);

  let badLines = 0;
  let lineNo = 0;
  let exitCode = 0;
  let reader: SerialReader | null = null;
  let endRun: (why: string) => void = () => {};
  const ended = new Promise<string>((resolve) => (endRun = resolve));

  const passage = (): void => {
    const s = runner.node.gate.controller.stats;
    const before = { passages: s.passages, tailgating: s.tailgating, forced: s.forced };
    runner.pass();
    const what = s.passages > before.passages ? 'passage completed' : s.tailgating > before.tailgating ? 'tailgating (a second passage on one grant)' : s.forced > before.forced ? 'forced passage (no grant)' : 'no passage recorded';
    status.note(`pass: ${what}`);
    status.update(statusText(runner.status));
  };
  const read = (kind: CredentialKind, id: Uint8Array, what: string): void => {
    label = what;
    const taps = runner.node.gate.controller.stats.taps;
    runner.read(kind, id);
    label = null;
    if (record.lane === 'goods' && runner.node.gate.controller.stats.taps === taps) status.note(`${what}: read, in the goods lot (decided when the lot closes)`);
    // At once, not at the next tick: the backlog a tap adds is part of its answer.
    status.update(statusText(runner.status));
  };

  let input: ReturnType<typeof createInterface> | null = null;
  try {
    if (o.reader !== undefined) {
      reader = new SerialReader({
        path: o.reader,
        kind: readerKind,
        ...(readerPoll !== undefined ? { pollIntervalMs: readerPoll } : {}),
        busy: () => runner.node.gate.controller.outstandingGrants > 0,
        onRead: (r) => read(r.kind, r.id, `${r.kind} ${toHex(r.id)} (reader)`),
        onReject: (reason) => status.note(`reader: a frame refused (${reason})`),
        onEnd: (e) => {
          if (e !== null) {
            status.note(`subline: ${e.message}`);
            exitCode = 1;
          }
          endRun(e === null ? 'end of the reader stream' : 'reader error');
        },
      });
    } else {
      input = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
      input.on('line', (text) => {
        lineNo++;
        if (finishing) return;
        const l = parseLine(text);
        if (l.op === 'bad') {
          badLines++;
          status.note(`stdin line ${lineNo}: ${l.why}; ignored`);
        } else if (l.op === 'pass') passage();
        else if (l.op === 'read') read(l.kind, l.id, `${l.kind} ${l.hex}`);
      });
      input.on('close', () => endRun('end of input'));
    }
  } catch (e) {
    clearInterval(statusTimer);
    runner.close();
    if (e instanceof SerialReaderError) bad(e.message);
    throw e;
  }
  if (reader !== null && reader.poller.active) {
    status.note(reader.polled ? `reader: polled every ${reader.poller.intervalMs} ms on ${reader.path}` : `reader: ${reader.path} is not a terminal: it cannot carry the poll command (not polled)`);
  }

  let drainCut: () => void = () => {};
  const onSignal = (sig: NodeJS.Signals): void => {
    // A second signal while the journal drains: stop waiting.
    if (finishing) drainCut();
    endRun(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const why = await ended;
  finishing = true;
  input?.close();
  process.stdin.destroy();
  reader?.close();
  const pending = runner.status.pending;
  if (pending > 0 && drainMs > 0 && runner.node.gate.sync.connected) {
    status.note(`${why}: ${pending} event(s) not yet acknowledged; waiting up to ${drainMs / 1000} s for the central`);
    await Promise.race([runner.drain(drainMs), new Promise<void>((r) => (drainCut = r))]);
  }
  clearInterval(statusTimer);
  const end = runner.status;
  const totals = runner.totals;
  runner.close();
  status.final(statusText(end));
  if (end.pending > 0) process.stderr.write(`${end.pending} event(s) stay in the flash (${o.flash}) and are sent on the next run\n`);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  printSummary(o.json === true, record.gate, totals, end, { badLines, ended: why, flash: o.flash, reader });
  process.exitCode = exitCode;
  // A read still blocked on a device (a FIFO without a writer) must not hold the process.
  setTimeout(() => process.exit(), 1000).unref();
}

function printSummary(json: boolean, gate: string, t: GateRunTotals, s: GateRunStatus, x: { badLines: number; ended: string; flash: string; reader: SerialReader | null }): void {
  if (!json) {
    process.stdout.write(`summary: taps ${t.taps} granted ${t.granted} denied ${t.denied} journaled ${t.journaled}\n`);
    return;
  }
  const reader = x.reader === null ? undefined : { device: x.reader.path, kind: x.reader.kind, frames: x.reader.stats.ok, rejected: x.reader.stats.rejected, noise: x.reader.stats.noise };
  const out = {
    gate, taps: t.taps, granted: t.granted, denied: t.denied, journaled: t.journaled,
    pending: s.pending, denials: t.denials, passages: t.passages,
    journal: { epoch: s.epoch, lastSeq: s.lastSeq },
    list: s.list, online: s.connection === 'online', broker: s.broker, flash: x.flash,
    badLines: x.badLines, ended: x.ended,
    ...(reader !== undefined ? { reader } : {}),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
