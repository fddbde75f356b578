// `subline sim --rate`: the taps the gates count match the rate asked for, and
// a rate the machine does not keep up with is reported as such (issue 17, item 7).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetSimulator, type SimReport } from '../host-sim/sim/fleet-simulator.js';
import { runSubline } from './helpers/sim-cli.js';

const t = suite('subline sim --rate');

t('--rate 4 for 10 s: the gates count 4 taps a second across the fleet (goods lots of 1-3 tags and repeated cards included)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-sim-rate-'));
  try {
    const report = join(dir, 'r.json');
    const r = await runSubline(['sim', '--duration', '10', '--rate', '4', '--seed', '3', '--report', report, '--no-view']);
    assert.is(r.code, 0, r.err + r.out);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as SimReport;
    // What an operator measures: the taps the gates counted over the run.
    const measured = rep.taps / rep.durationSeconds;
    assert.ok(Math.abs(measured - 4) <= 0.4, `${rep.taps} taps in ${rep.durationSeconds} s = ${measured.toFixed(2)}/s for --rate 4`);
    assert.is(rep.rateAsked, 4);
    assert.ok(Math.abs(rep.rateSustained - 4) <= 0.4, `sustained ${rep.rateSustained}`);
    assert.match(r.out, /rate: asked 4\/s, sustained [34]\.\d\/s\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('a rate the process cannot keep up with (its event loop blocked for a second) is reported: asked N/s, sustained M/s', async () => {
  const sim = new FleetSimulator({ gates: 4, rate: 200, seed: 2, population: { institutions: 3, people: 30, vehicles: 3, consignments: 3 }, revokeAt: null, suspendAt: null, brokerRestartAt: null });
  try {
    await sim.start();
    await new Promise((r) => setTimeout(r, 500));
    // A machine too slow for the rate: nothing runs for a second.
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      /* blocked */
    }
    await new Promise((r) => setTimeout(r, 500));
    await sim.drain(10000);
    const rep = await sim.report();
    assert.is(rep.rateAsked, 200);
    assert.ok(rep.rateSustained < 180, `sustained ${rep.rateSustained}`);
    assert.ok(rep.rateSustained > 0);
    assert.ok(rep.rateShort, 'flagged as not sustained');
  } finally {
    await sim.close();
  }
});

t.run();
