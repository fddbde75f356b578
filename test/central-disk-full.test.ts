// Issue 16 item 3: the central's disk fills up. Batches are refused (no ack:
// the gates keep their records and resend), the log says so at most once per
// cause per minute, and once 1 MB is freed the central stores everything
// again, exactly once, and its write-ahead log is checkpointed and truncated
// (it does not keep the size it reached while the disk was full: the store's
// reclaim()). SQLite only (PostgreSQL manages its own space).
// The disk: a size-limited tmpfs; where mounting one is not possible that
// suite reports "not run" with the reason (scripts/test.mjs) and counts
// nothing. The same refusal and recovery also run everywhere with the
// database held at its size by SQLite's PRAGMA max_page_count (SQLITE_FULL
// without a full disk).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertEventsExactlyOnce, Fleet, waitFor } from './helpers/fleet.js';
import type { NodeGate } from '../host-sim/node-gate.js';
import type { SqliteDb } from '../host-sim/central/store/sqlite-db.js';

const MB = 1024 * 1024;

function tryMount(): string | null {
  const probe = mkdtempSync(join(tmpdir(), 'subline-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return null;
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return `cannot mount a size-limited tmpfs here: ${(err.stderr?.toString() ?? err.message).trim().split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Fills the file system at `dir` with `name`: returns the bytes written (stops at ENOSPC). */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return n;
}

function tap(g: NodeGate, tag: string, i: number): void {
  g.gate.onRead({ kind: 'card', id: new TextEncoder().encode(`${tag}-${i}`), atMs: 0 });
}

const reason = tryMount();
if (reason !== null) {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `central disk full: not run (${reason})\n`);
  else console.log(`central disk full: not run (${reason})`);
} else {
  const t = suite('central: disk full');

  t('refused while full (one log line per cause per minute), recovers with 1 MB freed, WAL truncated, every event stored once', async () => {
    const f = new Fleet('aedes');
    const lines: string[] = [];
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', f.dir], { stdio: 'pipe' });
      mounted = true;
      await f.startBroker();
      const c = await f.startCentral({ log: (l) => lines.push(l) });
      c.publishHead();
      const g = await f.startGate('full-t01');
      const acked = () => g.gate.journal.acked === g.gate.journal.lastSeq;
      for (let i = 0; i < 50; i++) tap(g, 'a', i);
      await waitFor('first events acknowledged', acked);

      // The disk fills up (another process, logs, ...).
      const filler = join(f.dir, 'filler');
      fill(filler);
      const spare = join(f.dir, 'spare');
      fill(spare); // whatever was left after the first file
      const refusedBefore = c.stats.storage.full;
      for (let i = 0; i < 120; i++) {
        tap(g, 'b', i);
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor('batches refused while the disk is full', () => c.stats.storage.full - refusedBefore >= 5, 20000);
      assert.not.ok(acked(), 'nothing acked past what is stored');
      const fullLines = lines.filter((l) => /full/i.test(l));
      assert.ok(fullLines.length >= 1, 'the full disk is logged');
      assert.ok(fullLines.length <= 2, `at most once per cause per minute: ${fullLines.length} lines\n${fullLines.join('\n')}`);
      const walFull = existsSync(`${f.dbPath}-wal`) ? statSync(`${f.dbPath}-wal`).size : 0;

      // 1 MB freed: the central recovers by itself.
      unlinkSync(spare);
      const size = statSync(filler).size;
      execFileSync('truncate', ['-s', String(Math.max(0, size - MB)), filler]);
      await waitFor('every event acknowledged after 1 MB was freed', acked, 30000);
      assert.ok(lines.some((l) => /recovered/.test(l)), lines.join('\n'));
      const walAfter = statSync(`${f.dbPath}-wal`).size;
      if (process.env.SUBLINE_DEBUG !== undefined) console.log({ walFull, walAfter, storage: c.stats.storage, fullLines, lines });
      assert.ok(walFull > 0 && walAfter < walFull / 2, `WAL ${walAfter} bytes after recovery (was ${walFull} while full)`);
      // And it keeps working on what was freed: more events than the WAL used to need.
      for (let i = 0; i < 400; i++) {
        tap(g, 'c', i);
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor('later events acknowledged', () => acked() && g.gate.journal.lastSeq > 560, 30000);
      await assertEventsExactlyOnce(f, g);
      assert.is(await c.events.count(g.gate.id), g.gate.journal.lastSeq);
      assert.ok(c.stats.storage.recoveries >= 1, 'the recovery counted');
    } finally {
      for (const gate of f.gates.values()) gate.stop();
      f.gates.clear();
      await f.central?.close();
      await f.broker?.close();
      if (mounted) execFileSync('umount', [f.dir]);
      await f.close();
    }
  });

  t.run();
}

// The same without a file system to fill: SQLite refuses to grow the database past
// max_page_count (a connection setting of the central's own connection) with SQLITE_FULL.
const p = suite('central: database at its page limit (SQLITE_FULL)');

p('refused at the limit (no ack, logged at most once a minute), recovers when the limit is lifted, every event stored once', async () => {
  const f = new Fleet('aedes');
  const lines: string[] = [];
  try {
    await f.startBroker();
    const c = await f.startCentral({ log: (l) => lines.push(l) });
    assert.is(c.store.db.engine, 'sqlite');
    const raw = (c.store.db as SqliteDb).raw;
    c.publishHead();
    const g = await f.startGate('full-p01');
    const acked = () => g.gate.journal.acked === g.gate.journal.lastSeq;
    for (let i = 0; i < 50; i++) tap(g, 'a', i);
    await waitFor('first events acknowledged', acked);

    // The database may not grow by a page any more.
    const limit = raw.pragma('max_page_count', { simple: true }) as number;
    const pages = raw.pragma('page_count', { simple: true }) as number;
    raw.pragma(`max_page_count = ${pages}`);
    assert.is(raw.pragma('max_page_count', { simple: true }), pages);
    const refusedBefore = c.stats.storage.full;
    for (let i = 0; i < 300; i++) {
      tap(g, 'b', i);
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    await waitFor('batches refused at the page limit', () => c.stats.storage.full - refusedBefore >= 5, 20000);
    assert.not.ok(acked(), 'nothing acked past what is stored');
    const ackedWhileFull = g.gate.journal.acked;
    const fullLines = lines.filter((l) => /full/i.test(l));
    assert.ok(fullLines.length >= 1, 'the full database is logged');
    assert.ok(fullLines.length <= 2, `at most once per cause per minute: ${fullLines.length} lines\n${fullLines.join('\n')}`);
    assert.ok((await c.events.count(g.gate.id)) >= ackedWhileFull, 'every acked event is stored');

    // Room again: the central recovers by itself.
    raw.pragma(`max_page_count = ${limit}`);
    await waitFor('every event acknowledged once the limit is lifted', acked, 30000);
    assert.ok(lines.some((l) => /recovered/.test(l)), lines.join('\n'));
    assert.ok(c.stats.storage.recoveries >= 1, 'the recovery counted');
    for (let i = 0; i < 100; i++) tap(g, 'c', i);
    await waitFor('later events acknowledged', () => acked() && g.gate.journal.lastSeq >= 450, 30000);
    await assertEventsExactlyOnce(f, g);
    assert.is(await c.events.count(g.gate.id), g.gate.journal.lastSeq);
  } finally {
    await f.close();
  }
});

p.run();
