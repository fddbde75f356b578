// `subline sim --xs N`: N of the fleet's gates run main.ts on the XS engine
// next to the Node gates, against the same broker and central; the report's
// exactly-once check covers them.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimReport } from '../host-sim/sim/fleet-simulator.js';

const bin = fileURLToPath(new URL('../bin/subline.mjs', import.meta.url));

const t = suite('subline sim --xs');
t('sim --gates 6 --xs 3 --duration 8: XS gates online, deciding, and every event stored exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-sim-xs-'));
  try {
    const report = join(dir, 'r.json');
    const r = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [bin, 'sim', '--gates', '6', '--xs', '3', '--duration', '8', '--rate', '8', '--seed', '4', '--report', report, '--no-view'], { timeout: 90000 }, (e, stdout, stderr) => {
        resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, out: stdout, err: stderr });
      });
    });
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.err, /6 gates \(3 on the XS engine\)/);
    assert.match(r.out, /\(xs \d\/3\)/);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as SimReport;
    const xs = rep.perGate.filter((g) => g.engine === 'xs');
    assert.is(xs.length, 3);
    for (const g of xs) {
      assert.ok(g.online, `${g.id} online at the end`);
      assert.is(g.version, rep.centralVersion, `${g.id} on the latest whitelist`);
      assert.ok(g.journaled > 1, `${g.id}: the boot and taps journaled`);
      assert.is(g.stored, g.journaled, `${g.id}: stored exactly once`);
    }
    assert.ok(rep.exactlyOnce);
    assert.is(rep.eventsStoredAtCentral, rep.eventsJournaled);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
t.run();
