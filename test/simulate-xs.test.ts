// The deterministic simulation with gates on the real XS engine
// (`subline simulate --xs K`, docs/SIMULATION.md "XS gates"): the firmware
// that is flashed, firmware/moddable/main.ts, in xsnap workers advanced in
// lockstep with virtual time and talking to the seeded broker through the
// command channel. Same seed, same digest, with XS and Node gates in one run;
// a power cut restarts a worker from its flash image; a wipe boots a blank
// one; and a bug patched into the running XS firmware is caught.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventType } from '../protocol/event-record.js';
import { runSimulation, type SimulationReport } from '../host-sim/simulation/simulation.js';
import { runCli } from './helpers/cli.js';

const explain = (r: SimulationReport): string => r.violations.map((v) => `${v.invariant}: ${v.detail}\n  ${v.lastEvents.join('\n  ')}\n  replay: ${r.replay}`).join('\n');

// Seed 1 at these sizes cuts the power of an XS gate at a flash write; seed 2 wipes XS gates twice.
const MIXED = { gates: 3, xs: 2, hours: 0.5 } as const;

test('with XS gates the same seed gives the same digest; a power cut restarts the worker from its flash image', async () => {
  const a = await runSimulation({ seed: 1, ...MIXED });
  assert.equal(a.violations.length, 0, explain(a));
  assert.is(a.xs, 2);
  assert.ok((a.injected['power-cut.fired.xs'] ?? 0) >= 1, `a power cut fired at an XS gate: ${JSON.stringify(a.injected)}`);
  assert.ok(a.taps.checkedXs > 50, `${a.taps.checkedXs} decisions of XS gates checked against the reference`);
  assert.ok(a.taps.checked > a.taps.checkedXs, 'the Node gate decided too');
  assert.ok(a.convergedMs !== null, 'converged');
  const b = await runSimulation({ seed: 1, ...MIXED });
  assert.is(b.digest, a.digest);
  assert.is(b.steps, a.steps);
  assert.equal(b.taps, a.taps);
  assert.equal(b.injected, a.injected);
  assert.is(a.replay, 'subline simulate --seed 1 --gates 3 --hours 0.5 --xs 2');
});

test('XS gates wiped and booted blank hold every invariant', async () => {
  const r = await runSimulation({ seed: 2, ...MIXED });
  assert.equal(r.violations.length, 0, explain(r));
  assert.ok((r.injected['wipe.xs'] ?? 0) >= 1, `an XS gate was wiped: ${JSON.stringify(r.injected)}`);
  assert.ok(r.events.stored > 100, `${r.events.stored} events stored`);
});

test('a bug patched into the running XS firmware (a grant reported journaled but never written) is caught', async () => {
  // Evaluated in each worker after boot: main.ts's `running` is globalThis.sublineRunning there.
  const bug = `{
    const j = globalThis.sublineRunning.gate.journal;
    const append = j.append;
    let grants = 0;
    j.append = function (r) { return r.type === ${EventType.decision_granted} && ++grants % 7 === 0 ? this.lastSeq + 1 : append.call(this, r); };
  }`;
  const r = await runSimulation({ seed: 1, ...MIXED, xsAfterBoot: bug });
  assert.ok(r.violations.length > 0, 'the bug went unnoticed');
  const v = r.violations[0]!;
  assert.is(v.invariant, 'no passage without a durable record before the relay');
  assert.ok(v.gate === 'l1-huanggang-in-p1' || v.gate === 'l1-huanggang-out-p1', `an XS gate: ${v.gate ?? 'none'}`);
  assert.is(r.replay, 'subline simulate --seed 1 --gates 3 --hours 0.5 --xs 2');
});

test('subline simulate --xs: more XS gates than gates is a usage error', async () => {
  const r = await runCli(['simulate', '--gates', '2', '--xs', '3']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--xs must be an integer from 0 to 2/);
});

test.run();
