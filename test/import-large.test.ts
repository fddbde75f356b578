// Large imports (issue 17, item 1): reading 130,000 rows once failed with
// "Maximum call stack size exceeded"; an import streams its CSV rows into one
// transaction, shows its progress, and a change over a list's capacity
// (`central init --capacity`, default 250,000) is refused with exit 3 and the
// numbers unless --over-capacity. Peak memory of a million-row import is
// measured by `npm run bench -- import`, not asserted here.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createWriteStream, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { readImportFiles } from '../host-sim/cli/import.js';
import { readKeyFile } from '../host-sim/central/keys.js';
import { openCentralStore, type CentralStore } from '../host-sim/central/store/open-store.js';
import { runCli, tempDir, type CliResult } from './helpers/cli.js';

const t = suite('import: large files');

const card = (i: number): string => (0x04000000 + i).toString(16).padStart(8, '0');

function peopleCsv(n: number, from = 0): string {
  const lines = ['id,name,institution,card'];
  for (let i = from; i < from + n; i++) lines.push(`p-${i},Person ${i},,${card(i)}`);
  return `${lines.join('\n')}\n`;
}

async function writePeople(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  out.write('id,name,institution,card\n');
  for (let i = 0; i < n; i++) if (!out.write(`p-${i},Person ${i},,${card(i)}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

function show(r: CliResult): string {
  return `exit ${String(r.code)}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function registry(data: string): Promise<CentralStore> {
  const k = readKeyFile(join(data, 'keys.json'));
  return openCentralStore(join(data, 'central.db'), { registry: { signingKey: k.signingKey, deploymentKey: k.deploymentKey } });
}

t('130,000 people with cards in one CSV file are read, every row, in order', async () => {
  const dir = tempDir();
  try {
    const n = 130_000;
    const file = join(dir, 'people.csv');
    writeFileSync(file, peopleCsv(n));
    const rows = await readImportFiles([file]);
    assert.is(rows.length, n);
    assert.is(rows[0]?.values.id, 'p-0');
    assert.is(rows[n - 1]?.values.id, `p-${n - 1}`);
    assert.is(rows[n - 1]?.line, n + 1, 'CSV line numbers kept while streaming');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t("a change over the list's capacity is refused (3, the numbers, nothing imported) unless --over-capacity; init --capacity sets it", async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  try {
    const init = await runCli(['central', 'init', '--data', data, '--capacity', '100']);
    assert.is(init.code, 0, show(init));
    assert.match(init.stdout, /capacity 100 credentials/);
    const first = join(dir, 'people-a.csv');
    writeFileSync(first, peopleCsv(90));
    assert.is((await runCli(['central', 'import', '--data', data, first])).code, 0);
    // 20 more: 110 > 100, stopped at the 11th, where the count crossed.
    const more = join(dir, 'people-b.csv');
    writeFileSync(more, peopleCsv(20, 90));
    const refused = await runCli(['central', 'import', '--data', data, more]);
    assert.is(refused.code, 3, show(refused));
    assert.match(refused.stderr, /list 'main' would hold more than its capacity of 100 credentials \(101 at .*people-b\.csv:12, where the import stopped\); nothing imported/);
    let s = await registry(data);
    assert.equal([(await s.registry.counts()).credentials, await s.registry.version(), await s.registry.capacity()], [90, 1, 100], 'nothing imported');
    await s.close();
    const over = await runCli(['central', 'import', '--data', data, more, '--over-capacity', '--json']);
    assert.is(over.code, 0, show(over));
    const j = JSON.parse(over.stdout) as { rows: number; credentials: number; capacity: number; versionAfter: number };
    assert.equal([j.rows, j.credentials, j.capacity, j.versionAfter], [20, 110, 100, 2]);
    const raise = await runCli(['central', 'init', '--data', data, '--capacity', '500']);
    assert.is(raise.code, 0, show(raise));
    assert.match(raise.stdout, /list: main capacity set to 500 credentials \(110 enrolled\)/);
    s = await registry(data);
    assert.is(await s.registry.capacity('main'), 500);
    await s.close();
    const bad = await runCli(['central', 'init', '--data', data, '--capacity', '0']);
    assert.is(bad.code, 2, show(bad));
    assert.match(bad.stderr, /--capacity/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t('1,000,000 people with cards import in one change (977 consecutive versions), streamed, with progress on stderr', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  try {
    const n = 1_000_000;
    const file = join(dir, 'people.csv');
    await writePeople(file, n);
    assert.is((await runCli(['central', 'init', '--data', data])).code, 0);
    const refused = await runCli(['central', 'import', '--data', data, file], { timeoutMs: 300_000 });
    assert.is(refused.code, 3, show(refused));
    assert.match(refused.stderr, /over its capacity of 250000|more than its capacity of 250000 credentials \(250001 at .*people\.csv:250002/);
    const r = await runCli(['central', 'import', '--data', data, file, '--over-capacity', '--json'], { timeoutMs: 600_000 });
    assert.is(r.code, 0, show(r));
    const j = JSON.parse(r.stdout) as { rows: number; counts: Record<string, number>; versionBefore: number; versionAfter: number; credentials: number };
    assert.equal([j.rows, j.counts.people, j.counts['inline credentials'], j.credentials], [n, n, n, n]);
    assert.equal([j.versionBefore, j.versionAfter], [0, Math.ceil(n / 1024)], 'one change: consecutive versions of at most 1,024 records');
    for (const p of [10, 50, 90, 100]) assert.match(r.stderr, new RegExp(`importing: ${p}% \\(\\d+ rows, [\\d.]+ s\\)`), `progress at ${p}%`);
    const s = await registry(data);
    try {
      const reg = s.registry;
      assert.is((await reg.counts()).credentials, n);
      assert.is((await reg.subject(`p-${n - 1}`))?.name, `Person ${n - 1}`);
      assert.is((await reg.deltas('main', (await reg.list('main')).epoch, 1, 2000)).length, Math.ceil(n / 1024));
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
