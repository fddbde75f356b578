// `subline gate run` as an operator runs it: the real CLI in a child process,
// a gate provisioned by `subline provision`, `central serve` on an embedded
// broker, taps on stdin. On both store engines: a known card granted and an
// unknown one denied, kill -9 mid-run and a rerun on the same --flash
// directory (what was journaled before the kill reaches the central exactly
// once), a revocation reaching the running gate, offline runs, a serial
// reader's bytes through the firmware's decoder, a foreign flash directory
// refused. Without a store: bad records and --help.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeProvisioning, encodeProvisioning } from '../protocol/provisioning.js';
import { freeLoopbackPorts, startEmbeddedBroker, trackChild, type BrokerHandle } from '../host-sim/broker.js';
import { BIN, ROOT, tempDir, type CliProcess } from './helpers/cli.js';
import { CARD, context, escapeRe, plainCli, populated, withStore, type Ctx } from './helpers/cli-context.js';
import { engineSuites } from './helpers/store-engines.js';

const GATE = 'fl-in-t01';
const OTHER = 'fl-out-t02';
/** An EM4100 card (5 bytes) enrolled for p-1 in before(): the reader test's known card. */
const EM_CARD = '62e3086ced';

// ---------------------------------------------------------------- a gate process with stdin

interface GateProc {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stderr matches `re` (from `from` on); rejects when the process ends first or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** The same on stderr without its status lines (taps and their decisions, in order). */
  waitNote(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  write(lines: string): void;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startGate(args: readonly string[]): GateProc {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('SUBLINE_')) delete env[k];
  const child = spawn(process.execPath, [BIN, 'gate', 'run', ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  child.stdin?.on('error', () => {}); // a killed gate: EPIPE on a late write is the test's problem, not a crash
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    }),
  );
  const wait = async (re: RegExp, timeoutMs: number, from: number, notes: boolean): Promise<RegExpExecArray> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const text = err.slice(from);
      const m = re.exec(notes ? withoutStatus(text) : text);
      if (m !== null) return m;
      if (ended) throw new Error(`gate run ended before ${String(re)}:\n${out}\n${err}`);
      if (Date.now() > end) throw new Error(`gate run: no ${String(re)} within ${timeoutMs} ms:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, timeoutMs = 20_000, from = 0) => wait(re, timeoutMs, from, false),
    waitNote: (re, timeoutMs = 20_000, from = 0) => wait(re, timeoutMs, from, true),
    write: (lines) => {
      child.stdin?.write(lines);
    },
    exited,
  };
}

/** Status lines (`gate G: connected, ...`) out: what is left are the notes, in order. */
const withoutStatus = (text: string): string => text.split('\n').filter((l) => !/^gate \S+: (connected|connecting|OFFLINE)/.test(l)).join('\n');

const sha = (dir: string): string => {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
};

/** One EM4100 (RDM6300) frame: STX, 10 hex digits, the XOR of the 5 bytes, ETX (docs/READERS.md). */
function em4100(hex: string, badChecksum = false): Buffer {
  const bytes = Buffer.from(hex, 'hex');
  const x = bytes.reduce((a, b) => a ^ b, 0) ^ (badChecksum ? 1 : 0);
  return Buffer.concat([Buffer.of(0x02), Buffer.from(`${hex}${x.toString(16).padStart(2, '0')}`.toUpperCase()), Buffer.of(0x03)]);
}

// ---------------------------------------------------------------- on both engines

engineSuites('cli gate run: a gate process from its record, its flash kept across kill -9', (test, engine) => {
  const c: Ctx = context(engine);
  const S = {} as { data: string; broker: BrokerHandle; record: string; other: string; flash: string; serve: CliProcess | null; gate: GateProc | null; closedPort: number };

  const serve = async (): Promise<CliProcess> => {
    const p = await c.start(['central', 'serve', '--data', S.data, '--broker', S.broker.url, '--head-interval', '2', '--poll', '0.2']);
    await p.waitForOutput(/central: serving list main/);
    return p;
  };
  const stored = (): Promise<number> => withStore(c, S.data, (s) => s.events.count(GATE));

  test.before(async () => {
    S.data = await populated(c);
    S.broker = await startEmbeddedBroker({ port: 0 });
    S.record = join(S.data, `${GATE}.cbor`);
    S.other = join(S.data, `${OTHER}.cbor`);
    S.flash = join(S.data, 'flash', GATE);
    writeFileSync(join(S.data, 'em.csv'), `subject,kind,raw_id\np-1,card,${EM_CARD}\n`);
    const provision = (gate: string, direction: string, out: string) => c.cli(['provision', '--data', S.data, '--gate', gate, '--site', 'futian', '--line', 'first', '--direction', direction, '--lane', 'person', '--broker', S.broker.url, '--out', out], 0);
    await Promise.all([c.cli(['central', 'import', '--data', S.data, join(S.data, 'em.csv')], 0), provision(GATE, 'in', S.record), provision(OTHER, 'out', S.other)]);
    S.serve = await serve();
    S.gate = null;
    [S.closedPort] = await freeLoopbackPorts(1) as [number];
  });

  test.after(async () => {
    S.gate?.child.kill('SIGKILL');
    await S.serve?.stop();
    await S.broker?.close();
    if (S.data !== undefined) rmSync(S.data, { recursive: true, force: true });
  });

  test('known card granted, unknown denied; kill -9 with events pending; the rerun sends them, each exactly once', async () => {
    const g = startGate(['--record', S.record, '--flash', S.flash]);
    S.gate = g;
    await g.waitFor(/flash .* \(new, 20000 credentials\)/);
    await g.waitFor(new RegExp(`gate ${GATE}: connected, list v2, journal 0 pending`));
    const taps = g.stderr().length;
    g.write(`card ${CARD(1)}\npass\ncard 0bad0bad\n`);
    await g.waitNote(new RegExp(`card ${CARD(1)}: granted \\(institution\\), seq 2\\npass: passage completed\\ncard 0bad0bad: denied \\(unknown_credential\\), seq 4\\n`), 20_000, taps);
    // The status line follows each tap (3 pending), then the acknowledgement (0 pending).
    await g.waitFor(/journal 3 pending\n[\s\S]*journal 0 pending\n/, 10_000, taps);
    assert.is(await stored(), 4, 'boot, grant, passage, denial: stored, each once');

    // The central goes away: what the gate journals now stays pending (the broker has nobody to give it to).
    await S.serve?.stop();
    S.serve = null;
    const mark = g.stderr().length;
    g.write(`card ${CARD(2)}\npass\ncard 0bad0bad\n`);
    await g.waitNote(new RegExp(`card ${CARD(2)}: granted \\(individual\\), seq 5\\npass: passage completed\\ncard 0bad0bad: denied \\(unknown_credential\\), seq 7`), 10_000, mark);
    await g.waitFor(/journal 3 pending/, 5000, mark);
    g.child.kill('SIGKILL');
    const killed = await g.exited;
    assert.is(killed.signal, 'SIGKILL');
    assert.is(g.stdout(), '', 'no summary after a kill -9');
    assert.is(await stored(), 4, 'the 3 pending events did not reach the central');

    S.serve = await serve();
    const again = startGate(['--record', S.record, '--flash', S.flash]);
    S.gate = again;
    // Boot 2 of the same journal: seq 8 is its boot record, 5..8 are pending until the central acknowledges them.
    await again.waitFor(/boot 2, journal epoch \d+, last seq 8 \(4 pending\); flash .* \(kept, 20000 credentials\)/);
    await again.waitFor(/connected, list v2, journal 0 pending/);
    assert.is(await stored(), 8, 'the events journaled before the kill, and the new boot, stored once');
  });

  test('the running gate refuses a card once its revocation reaches it; bad lines are reported and ignored; end of stdin: summary, exit 0', async () => {
    const g = S.gate;
    if (g === null) throw new Error('no gate running (the test before failed)');
    const mark = g.stderr().length;
    g.write(`card ${CARD(3)}\npass\ncard zz\nhello there\ncard\n\n# a comment\n`);
    await g.waitNote(new RegExp(`card ${CARD(3)}: granted \\(institution\\), seq 9\\npass: passage completed\\n`), 10_000, mark);
    await g.waitNote(/stdin line 3: card 'zz': the id must be hex digits.*; ignored\nstdin line 4: unknown 'hello' .*; ignored\nstdin line 5: card takes one hex id .*; ignored\n/, 5000, mark);
    await c.cli(['central', 'revoke', '--data', S.data, '--card', CARD(3)], 0);
    await g.waitFor(/connected, list v3, journal \d+ pending/, 15_000, mark);
    g.write(`card ${CARD(3)}\n`);
    await g.waitFor(new RegExp(`card ${CARD(3)}: denied \\(revoked\\), seq 11`), 10_000, mark);
    g.child.stdin?.end();
    const { code } = await g.exited;
    S.gate = null;
    assert.is(code, 0, g.stderr());
    assert.is(g.stdout(), 'summary: taps 2 granted 1 denied 1 journaled 4\n', 'boot, grant, passage, denial');
    assert.match(g.stderr(), /journal 0 pending\n$/, `the journal drained before the exit\n${g.stderr()}`);
    const ev = await c.cli(['central', 'events', '--data', S.data, '--gate', GATE, '--format', 'json'], 0);
    const events = JSON.parse(ev.stdout) as { seq: number; type: string; reason: string }[];
    assert.equal(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'every record of both runs, once');
    assert.equal(
      events.map((e) => e.type),
      ['boot', 'decision_granted', 'passage_completed', 'decision_denied', 'decision_granted', 'passage_completed', 'decision_denied', 'boot', 'decision_granted', 'passage_completed', 'decision_denied'],
    );
    assert.is(events[10]?.reason, 'revoked');
  });

  test('unreachable broker: the gate runs offline on the list in its flash and says so; SIGINT: the JSON summary, exit 0', async () => {
    const url = `mqtt://127.0.0.1:${S.closedPort}`;
    const g = startGate(['--record', S.record, '--flash', S.flash, '--broker', url, '--json']);
    await g.waitFor(new RegExp(`gate ${GATE}: OFFLINE \\(${escapeRe(url)} unreachable; retrying\\), list v3, journal 1 pending`));
    g.write(`card ${CARD(1)}\npass\ncard ${CARD(3)}\n`);
    await g.waitFor(new RegExp(`card ${CARD(3)}: denied \\(revoked\\), seq 15`));
    g.child.kill('SIGINT');
    const { code } = await g.exited;
    assert.is(code, 0, g.stderr());
    const summary = JSON.parse(g.stdout()) as Record<string, unknown>;
    assert.equal(
      { gate: summary.gate, taps: summary.taps, granted: summary.granted, denied: summary.denied, journaled: summary.journaled, pending: summary.pending, online: summary.online, list: summary.list, denials: summary.denials, ended: summary.ended },
      { gate: GATE, taps: 2, granted: 1, denied: 1, journaled: 4, pending: 4, online: false, list: 3, denials: { revoked: 1 }, ended: 'SIGINT' },
    );
    assert.match(g.stderr(), /4 event\(s\) stay in the flash .* and are sent on the next run/);
  });

  test('--reader: EM4100 frames from a device path go through the firmware decoder; a bad frame is refused; a file ends the run at its end, a FIFO stays open until SIGINT', async () => {
    const offline = ['--record', S.record, '--flash', S.flash, '--broker', `mqtt://127.0.0.1:${S.closedPort}`, '--json'];
    const file = join(S.data, 'reader.bin');
    writeFileSync(file, Buffer.concat([Buffer.from('noise'), em4100(EM_CARD), em4100('0102030405', true), em4100('0102030405')]));
    const g = startGate([...offline, '--reader', file]);
    const { code } = await g.exited;
    assert.is(code, 0, g.stderr());
    assert.match(g.stderr(), new RegExp(`taps from em4100 reader ${escapeRe(file)}`));
    assert.match(withoutStatus(g.stderr()), new RegExp(`card ${EM_CARD} \\(reader\\): granted \\(institution\\), seq 17\\nreader: a frame refused \\(checksum\\)\\ncard 0102030405 \\(reader\\): denied \\(unknown_credential\\), seq 18`));
    const s = JSON.parse(g.stdout()) as { taps: number; granted: number; denied: number; ended: string; reader: { frames: number; rejected: Record<string, number>; noise: number } };
    assert.equal([s.taps, s.granted, s.denied, s.ended], [2, 1, 1, 'end of the reader stream']);
    assert.equal([s.reader.frames, s.reader.rejected.checksum, s.reader.noise], [2, 1, 5]);

    // A FIFO, as a serial line: two writers one after the other, then SIGINT (never a read blocked at exit).
    const fifo = join(S.data, 'reader.fifo');
    execFileSync('mkfifo', [fifo]);
    const f = startGate([...offline, '--reader', fifo]);
    await f.waitFor(/OFFLINE/);
    for (const frame of [em4100('0a0b0c0d0e'), em4100(EM_CARD)]) {
      const w = await open(fifo, 'w');
      await w.write(frame);
      await w.close();
    }
    await f.waitNote(new RegExp(`card 0a0b0c0d0e \\(reader\\): denied \\(unknown_credential\\), seq 20\\ncard ${EM_CARD} \\(reader\\): granted \\(institution\\), seq 21`));
    f.child.kill('SIGINT');
    const ended = await f.exited;
    assert.is(ended.code, 0, f.stderr());
    assert.equal((JSON.parse(f.stdout()) as { taps: number; ended: string }).ended, 'SIGINT');
  });

  test("another gate's flash directory is refused (exit 2) and left as it was; so is this gate's under another record", async () => {
    const before = sha(S.flash);
    const r = await plainCli(['gate', 'run', '--record', S.other, '--flash', S.flash], 2, new RegExp(`--flash ${escapeRe(S.flash)} holds the flash of gate ${GATE}, not of ${OTHER} \\(this record\\): refused, nothing changed`));
    assert.is(r.stdout, '');
    // Re-provisioned (what `subline provision` of the same gate writes: the next key id, a new journal epoch):
    // the old directory holds the old record's unsent events.
    const old = decodeProvisioning(new Uint8Array(readFileSync(S.record)));
    if (!old.ok) throw new Error('the record does not decode');
    const newer = join(S.data, `${GATE}-2.cbor`);
    writeFileSync(newer, encodeProvisioning({ ...old.value, gateKeyId: 2, journalEpoch: old.value.journalEpoch + 1 }));
    await plainCli(['gate', 'run', '--record', newer, '--flash', S.flash], 2, /holds gate fl-in-t01's flash from another provisioning record \(key id 1, journal epoch \d+; this record: key id 2, epoch \d+\): refused, nothing changed/);
    assert.is(sha(S.flash), before, 'the flash directory is unchanged');
  });
});

// ---------------------------------------------------------------- no store needed

const plain = suite('cli gate run: bad input, help');

plain('a missing, unreadable or invalid record exits 2 naming the file; a directory that is not a flash directory is refused', async () => {
  const dir = tempDir();
  try {
    const garbage = join(dir, 'garbage.cbor');
    writeFileSync(garbage, Buffer.from('not a record at all'));
    const busy = join(dir, 'busy');
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    await Promise.all([
      plainCli(['gate', 'run', '--record', join(dir, 'nope.cbor'), '--flash', busy], 2, new RegExp(`--record ${escapeRe(join(dir, 'nope.cbor'))}: no such file`)),
      plainCli(['gate', 'run', '--record', garbage, '--flash', busy], 2, new RegExp(`--record ${escapeRe(garbage)}: not a valid provisioning record`)),
      plainCli(['gate', 'run', '--record', dir, '--flash', busy], 2, new RegExp(`--record ${escapeRe(dir)}: cannot be read \\(EISDIR\\)`)),
      plainCli(['gate', 'run', '--flash', busy], 2, /required option '--record <file>' not specified/),
    ]);
    assert.equal(readdirSync(dir).sort(), ['garbage.cbor', 'notes.txt'], 'nothing made for a refused record');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

plain('--help describes the options, the stdin format, the status line, the summary and the exit codes', async () => {
  const r = await plainCli(['gate', 'run', '--help'], 0);
  for (const s of ['--record <file>', '--flash <dir>', '--broker <url>', '--ca <file>', '--cert <file>', '--key <file>', '--capacity <credentials>', '--reader <device>', '--reader-kind <kind>', '--reader-poll <ms>', '--drain <seconds>', '--json', 'card HEX', 'uhf HEX', 'pass', 'journal 3 pending', 'summary: taps N granted N denied N journaled N', 'Exit: 0']) {
    assert.ok(r.stdout.includes(s), `--help mentions ${s}\n${r.stdout}`);
  }
});

plain.run();
