// The live view of `subline sim` / `npm start`: 80 columns, what comes next,
// and the first scripted moment within 20 s (issue 17, item 7).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FleetSimulator } from '../host-sim/sim/fleet-simulator.js';
import { render } from '../host-sim/cli/sim-command.js';
import { bin, startGroup } from './helpers/sim-cli.js';
import { waitFor } from './helpers/fleet.js';

const t = suite('subline sim: live view');

t('the live view of the default fleet (8 gates) fits 80 columns and says what comes next', async () => {
  const sim = new FleetSimulator({ gates: 8, rate: 20, seed: 1, population: { institutions: 3, people: 30, vehicles: 3, consignments: 3 }, revokeAt: 15, suspendAt: 30, brokerRestartAt: 45 });
  try {
    await sim.start();
    await waitFor('taps at every gate', () => sim.view().totals.taps > 20, 20000);
    const text = render(sim, null);
    const lines = text.split('\n');
    assert.ok(lines.length > 10, text);
    for (const l of lines) assert.ok(l.length <= 80, `${l.length} columns: '${l}'`);
    for (const s of sim.specs) assert.ok(text.includes(s.id), `${s.id} shown whole`);
    assert.match(text, /next: revoke \d+ cards at t=15s/);
    assert.match(text, /rate: asked 20\/s, sustained/);
  } finally {
    await sim.close();
  }
});

t('npm start\'s schedule (no --duration): the first scripted moment comes within 20 s, and the status line announces it', async () => {
  // The status lines (no terminal: one every 5 s) until the moment has happened, then Ctrl-C.
  const r = await startGroup(process.execPath, [bin, 'sim', '--no-view'], { ready: /t=20s .*moments: \d+s /, interrupt: 'SIGINT', timeoutMs: 90000 });
  const lines = r.out.split('\n');
  const first = lines.find((l) => l.startsWith('t=5s'));
  assert.ok(first !== undefined, r.out);
  const m = /next: (.+) at t=(\d+)s/.exec(first);
  assert.ok(m !== null, first);
  assert.ok(Number(m[2]) <= 20, first);
  const at20 = lines.find((l) => l.startsWith('t=20s'));
  assert.ok(at20 !== undefined && /moments: (\d+)s \d+ cards revoked/.test(at20), at20);
  assert.ok(Number(/moments: (\d+)s/.exec(at20)![1]) <= 20, at20);
});

t.run();
