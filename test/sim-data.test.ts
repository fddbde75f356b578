// `subline sim --data DIR` (issue 17, item 4): a missing DIR is initialised as
// `central init` does; the demo database and the gates' flash live in DIR/sim/
// (never in DIR's central.db) and the next run continues them.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import type { SimReport } from '../host-sim/sim/fleet-simulator.js';
import { runSubline } from './helpers/sim-cli.js';

const t = suite('subline sim --data');

t('a missing DIR is initialised; a second run on it continues the demo population and every gate\'s journal (same epoch, later seq), exactly once across both', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-sim-data-'));
  const data = join(dir, 'lab', 'data');
  try {
    const r1 = await runSubline(['sim', '--data', data, '--gates', '3', '--duration', '4', '--no-view', '--report', join(dir, 'r1.json')]);
    assert.is(r1.code, 0, r1.err + r1.out);
    assert.match(r1.err, /initialised .* as `subline central init --data .*` does/);
    assert.match(r1.out, /public key: [0-9a-f]{64}/, "central init's own output");
    for (const f of ['keys.json', 'central.db', 'pki', 'sim/central.db', 'sim/population.json']) assert.ok(existsSync(join(data, f)), f);
    const rep1 = JSON.parse(readFileSync(join(dir, 'r1.json'), 'utf8')) as SimReport;
    assert.ok(rep1.exactlyOnce && rep1.eventsJournaled > 0, r1.out);

    const r2 = await runSubline(['sim', '--data', data, '--gates', '3', '--duration', '4', '--no-view', '--report', join(dir, 'r2.json')]);
    assert.is(r2.code, 0, r2.err + r2.out);
    assert.not.match(r2.err, /initialised/);
    const rep2 = JSON.parse(readFileSync(join(dir, 'r2.json'), 'utf8')) as SimReport;
    assert.ok(rep2.exactlyOnce, r2.out);
    assert.ok(rep2.centralVersion > rep1.centralVersion, `demo database version ${rep1.centralVersion} -> ${rep2.centralVersion}`);
    for (const g of rep2.perGate) {
      const before = rep1.perGate.find((x) => x.id === g.id)!;
      assert.is(g.epoch, before.epoch, `${g.id}: the same journal epoch`);
      assert.ok(g.journaled > before.journaled, `${g.id}: seq ${before.journaled} -> ${g.journaled}`);
      assert.is(g.stored, g.journaled, `${g.id}: the central holds both runs' events once`);
    }

    // The demo population is not in DIR's own registry.
    const real = await openCentralStore(join(data, 'central.db'));
    try {
      assert.is((await real.registry.counts()).subjects, 0);
      assert.is((await real.registry.counts()).credentials, 0);
    } finally {
      await real.close();
    }

    const other = await runSubline(['sim', '--data', data, '--gates', '3', '--seed', '9', '--duration', '2', '--no-view']);
    assert.is(other.code, 2, other.err);
    assert.match(other.err, /holds the demo population of seed 1: run with --seed 1, or remove .*sim for a new one/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
