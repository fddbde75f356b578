// Large import files (issue 17, item 1, first part): reading 130,000 rows
// failed with "Maximum call stack size exceeded" (the rows of a file were
// spread into push()); the reader must handle any row count.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImportFiles } from '../host-sim/cli/import.js';

const t = suite('import: large files');

t('130,000 people with cards in one CSV file are read, every row, in order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-import-large-'));
  try {
    const n = 130_000;
    const lines = ['id,name,institution,card'];
    for (let i = 0; i < n; i++) lines.push(`p-${i},Person ${i},0,${(0x04000000 + i).toString(16).padStart(8, '0')}`);
    const file = join(dir, 'people.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const rows = readImportFiles([file]);
    assert.is(rows.length, n);
    assert.equal(JSON.stringify(rows[0]).includes('p-0'), true);
    assert.equal(JSON.stringify(rows[n - 1]).includes(`p-${n - 1}`), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
