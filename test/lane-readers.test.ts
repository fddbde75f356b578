// Readers that answer only when polled (docs/READERS.md "Polling"): the
// firmware's ReaderPoller writes the M100 single inventory command at the
// reader kind's interval (configurable), stays quiet while a grant waits for
// its passage, and a simulated M100 (host-sim/sim-uhf-reader.ts) reports tags
// only in answer. Checked on the bytes written: in the Node lane scenarios, the
// same scenarios inside XS, and firmware/moddable/main.ts on XS (XsGate), whose
// simulated UART carries the polls to the simulated reader.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_POLICY } from '../firmware/core/decision.js';
import { M100_SINGLE_POLL, READER_POLL, ReaderPoller } from '../firmware/drivers/reader-poll.js';
import { UhfFrameDecoder } from '../firmware/drivers/uhf-frame.js';
import { parseSettings } from '../firmware/moddable/settings.js';
import type { TimerHandle, Timers } from '../firmware/ports.js';
import { generateKeys } from '../host-sim/central/keys.js';
import { M100_NO_TAG, SimUhfReader } from '../host-sim/sim-uhf-reader.js';
import { manifestConfig, mergeConfig, type ConfigObject } from '../host-sim/xs-gate/config.js';
import { XsGate } from '../host-sim/xs-gate/xs-gate.js';
import { nobleCrypto, toHex } from '../protocol/index.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { TEST_GATE_KEYS } from './helpers/gate-key.js';
import { READER_EXPECTED, READER_SCENARIOS, runLaneScenario, type LaneResult } from './helpers/lane-scenario.js';
import { startXs } from './helpers/xs.js';

const POLL_HEX = 'bb00220000227e';
const t = suite('lane readers: polled UHF');

t('the M100 single inventory command is BB 00 22 00 00 22 7E; only UHF readers are polled', () => {
  assert.is(toHex(M100_SINGLE_POLL), POLL_HEX);
  assert.is(READER_POLL.uhf.intervalMs, 100);
  assert.ok(READER_POLL.uhf.quietWhileBusy);
  assert.is(READER_POLL.wiegand.command, null);
  assert.is(READER_POLL.em4100.command, null);
});

/** Timers that run only when told (tick), for the poller alone. */
function manualTimers(): Timers & { tick(): void } {
  const live = new Map<number, () => void>();
  let next = 1;
  return {
    set: (): TimerHandle => next++,
    repeat: (cb): TimerHandle => {
      live.set(next, cb);
      return next++;
    },
    clear: (h) => void live.delete(h as number),
    tick: () => {
      for (const cb of [...live.values()]) cb();
    },
  };
}

t('ReaderPoller: writes the command each tick, nothing while busy, counts refused writes; card readers and interval 0 never poll', () => {
  const timers = manualTimers();
  const written: string[] = [];
  let busy = false;
  let accept = true;
  const p = new ReaderPoller({ kind: 'uhf', timers, write: (b) => (written.push(toHex(b)), accept), busy: () => busy });
  p.start();
  timers.tick();
  busy = true;
  timers.tick();
  busy = false;
  accept = false;
  timers.tick();
  assert.equal(written, [POLL_HEX, POLL_HEX]);
  assert.equal(p.stats, { polls: 1, quiet: 1, writeFailed: 1 });
  p.stop();
  timers.tick();
  assert.is(written.length, 2, 'stopped');
  for (const o of [{ kind: 'em4100' as const, intervalMs: 100 }, { kind: 'wiegand' as const }, { kind: 'uhf' as const, intervalMs: 0 }]) {
    const q = new ReaderPoller({ ...o, timers, write: () => (assert.unreachable('written'), false), busy: () => false });
    q.start();
    timers.tick();
    assert.is(q.active, false, o.kind);
  }
  for (const bad of [-1, 1.5, 60_001]) {
    try {
      new ReaderPoller({ kind: 'uhf', intervalMs: bad, timers, write: () => true, busy: () => false });
      assert.unreachable(`interval ${bad} accepted`);
    } catch (e) {
      assert.instance(e, RangeError);
    }
  }
});

t('the simulated M100 answers a well-formed single inventory only (any split), "no tag" when the field is empty', () => {
  const answers: Uint8Array[] = [];
  const r = new SimUhfReader((b) => answers.push(b));
  const epc = Uint8Array.of(0x30, 0x75, 0x1f, 0xeb, 0x70, 0x5c, 0x59, 0x04, 0xe3, 0xd5, 0x0d, 0x70);
  r.present(epc, 0, 1000);
  assert.is(answers.length, 0, 'a tag in the field is not reported unprompted');
  r.write(Uint8Array.of(0xbb, 0x00, 0x22, 0x00, 0x00, 0x23, 0x7e), 10); // bad checksum
  r.write(Uint8Array.of(0xbb, 0x00, 0x27, 0x00, 0x03, 0x22, 0x00, 0x01, 0x4d, 0x7e), 10); // multi-poll: not simulated
  r.write(Uint8Array.of(0x00, 0x55), 10);
  assert.is(answers.length, 0);
  r.write(M100_SINGLE_POLL.subarray(0, 3), 20);
  r.write(M100_SINGLE_POLL.subarray(3), 20);
  assert.is(answers.length, 1);
  // A tag notification (BB 02 22, PL 0x11, RSSI C9, PC for 6 words) carrying the EPC.
  assert.is(toHex(answers[0]!).slice(0, 16), 'bb02220011c93000');
  const reads: string[] = [];
  const d = new UhfFrameDecoder({ onRead: (x) => reads.push(toHex(x.id)) });
  d.push(answers[0]!, 20);
  assert.equal(reads, [toHex(epc)]);
  r.write(M100_SINGLE_POLL, 1000); // the tag left the field at 1000
  assert.equal(answers[1], M100_NO_TAG);
  assert.equal(r.stats, { polls: 2, reports: 1, empty: 1, ignored: 4 });
});

const nodeResults = new Map<string, LaneResult>();
for (const s of READER_SCENARIOS) {
  t(`node: ${s.name}`, () => {
    const r = runLaneScenario(s, nobleCrypto);
    nodeResults.set(s.name, r);
    assert.equal({ events: r.events, readerWrites: r.readerWrites, reader: r.reader }, READER_EXPECTED[s.name]);
  });
}

let xsRun: Promise<LaneResult[]> | null = null;
for (const [i, s] of READER_SCENARIOS.entries()) {
  t(`xs: ${s.name}`, async () => {
    xsRun ??= (async () => {
      const x = await startXs('lane-readers.entry.ts');
      try {
        return (await x.call<LaneResult[]>({})).value;
      } finally {
        await x.close();
      }
    })();
    const r = (await xsRun)[i]!;
    assert.equal({ events: r.events, readerWrites: r.readerWrites, reader: r.reader }, READER_EXPECTED[s.name]);
    assert.equal(r, nodeResults.get(s.name) ?? runLaneScenario(s, nobleCrypto), 'XS gives what Node gives');
  });
}

t('settings: pollIntervalMs is read and bounded; a polled reader without a TX pin is refused', () => {
  const reader = (r: ConfigObject) => parseSettings(mergeConfig(manifestConfig(), { subline: { reader: r } }));
  const ok = reader({ kind: 'uhf', pollIntervalMs: 250 });
  assert.ok(ok.ok && ok.value.reader.pollIntervalMs === 250, JSON.stringify(ok));
  const big = reader({ kind: 'uhf', pollIntervalMs: 60_001 });
  assert.ok(!big.ok && /pollIntervalMs/.test(big.error), JSON.stringify(big));
  const c = mergeConfig(manifestConfig(), { subline: { reader: { kind: 'uhf' } } }) as { subline: { reader: ConfigObject } };
  delete c.subline.reader['transmit'];
  const noTx = parseSettings(c);
  assert.ok(!noTx.ok && /transmit/.test(noTx.error), JSON.stringify(noTx));
  c.subline.reader['pollIntervalMs'] = 0;
  assert.ok(parseSettings(c).ok, 'not polled: no TX pin needed');
  c.subline.reader['kind'] = 'em4100';
  delete c.subline.reader['pollIntervalMs'];
  assert.ok(parseSettings(c).ok, 'a card reader reports by itself');
});

// ---- main.ts on XS: the device polls through the serial source's write ----

const keys = generateKeys();
function record(gate: string): ProvisioningRecord {
  return {
    gate, site: 'futian', line: 'first', direction: 'in', lane: 'vehicle', list: 'main', topicRoot: 'subline', broker: 'mqtt://127.0.0.1:1',
    trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey, ...TEST_GATE_KEYS, journalEpoch: 1, policy: DEFAULT_POLICY.first, passbackSeconds: 0,
  };
}
const SMALL = { layout: { credentials: 4000, journalSectors: 16 } };
const EPC = Uint8Array.of(0xe2, 0x00, 0x00, 0x17, 0x27, 0x02, 0x02, 0x67, 0x12, 0x80, 0xee, 0x17);

t('xs gate (main.ts): the UHF reader UART carries M100 polls every 100 ms; a tag is read only in answer (quiet-while-busy: the lane scenarios above, Node and XS)', async () => {
  // No whitelist on this gate: the read is decided (denied) at once, so the lane never gets busy.
  const g = new XsGate({ provisioning: record('poll-xs'), wifi: false, config: { subline: { ...SMALL, reader: { kind: 'uhf', duplicateWindowMs: 0 } } }, partitionBytes: { data: 2 * 1024 * 1024 } });
  try {
    await g.start();
    const port = g.wiring.reader.port;
    await g.advance(1000);
    const first = g.uartWrites.filter((w) => w.port === port);
    assert.ok(first.length >= 9 && first.length <= 11, `about 10 polls in 1 s, got ${first.length}`);
    for (const w of first) assert.is(w.hex, POLL_HEX);
    for (let i = 1; i < first.length; i++) assert.is(first[i]!.atMs - first[i - 1]!.atMs, 100, 'every 100 ms');
    assert.is(g.status().taps, 0);
    // The tag is in the field from now on: it is decided after the next poll, not before.
    const lastPoll = first.at(-1)!.atMs;
    g.tap(EPC, 'uhf');
    await g.advance(lastPoll + 100 - g.status().nowMs - 1);
    assert.is(g.status().taps, 0, 'in the field, but not polled yet: not read');
    await g.advance(20);
    assert.is(g.status().taps, 1, 'read in answer to the next poll');
    assert.equal(g.status().faults, []);
  } finally {
    await g.close();
  }
  // Polling off in the config: main.ts writes nothing and the tag is never read.
  const off = new XsGate({ provisioning: record('poll-off'), wifi: false, config: { subline: { ...SMALL, reader: { kind: 'uhf', pollIntervalMs: 0 } } }, partitionBytes: { data: 2 * 1024 * 1024 } });
  try {
    await off.start();
    off.tap(EPC, 'uhf');
    await off.advance(2000);
    assert.equal(off.uartWrites, []);
    assert.is(off.status().taps, 0);
    assert.ok(off.status().running);
  } finally {
    await off.close();
  }
});

t.run();
