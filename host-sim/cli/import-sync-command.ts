// `subline central import --sync FILE...` from the command line: runs the
// sync (import-sync.ts), asks before a sync that removes more than half of a
// type (an empty or truncated export would otherwise empty the registry),
// and prints the counts. docs/CLI.md has the reference.

import { createInterface } from 'node:readline/promises';
import { CapacityError } from '../central/registry.js';
import { CliError } from './cli-error.js';
import { dataPaths, loadKeys, note, openStore, out } from './common.js';
import { applySync, MassRemovalError, SYNC_TYPES, total, type SyncCounts, type SyncSummary } from './import-sync.js';
import { openImportFiles, type ImportProgress, type ImportType } from './import.js';

export interface SyncFlags {
  readonly data: string;
  readonly db?: string;
  readonly type?: ImportType;
  readonly dryRun?: boolean;
  readonly overCapacity?: boolean;
  readonly json?: boolean;
  readonly yes?: boolean;
}

interface Progress {
  readonly update: (p: ImportProgress) => void;
  readonly stop: () => void;
}

/** "people: 1 added, 2 removed; credentials: 3 removed" — the types with something to say. */
function byType(s: SyncSummary, verbs: readonly [string, string, string]): string {
  const parts: string[] = [];
  for (const t of SYNC_TYPES) {
    const n: [number, string][] = [
      [s.added[t], verbs[0]],
      [s.changed[t], verbs[1]],
      [s.removed[t], verbs[2]],
    ];
    const said = n.filter(([k]) => k > 0).map(([k, v]) => `${k} ${v}`);
    if (said.length > 0) parts.push(`${t}: ${said.join(', ')}`);
  }
  return parts.join('; ');
}

/** "3 of 3 people, 4 of 5 credentials". */
const massWhat = (s: SyncSummary): string => s.massRemovals.map((t) => `${s.removed[t]} of ${s.before[t]} ${t}`).join(', ');

/** Asks on a terminal whether a mass removal is meant; refuses (exit 2) where there is none to ask on. */
async function confirmRemoval(s: SyncSummary): Promise<void> {
  const what = `the sync would remove ${massWhat(s)} (more than half of what the registry holds)`;
  if (!process.stdin.isTTY) throw new CliError(`${what}; add --yes to confirm (no terminal to ask on); nothing imported`, 2);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${what}. Go on? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not confirmed: nothing imported', 1);
  } finally {
    rl.close();
  }
}

function print(s: SyncSummary, dryRun: boolean, list: string, json: { credentials: number; capacity: number } | null): void {
  const changes = total(s.added) + total(s.changed) + total(s.removed);
  const unchanged = changes === 0;
  if (json !== null) {
    const counts = (c: SyncCounts) => ({ ...c });
    out(JSON.stringify({ dryRun, unchanged, list, rows: s.rows, synced: s.synced, added: counts(s.added), changed: counts(s.changed), removed: counts(s.removed), massRemovals: s.massRemovals, versionBefore: s.versionBefore, versionAfter: s.versionAfter, ...json }));
    return;
  }
  const synced = `synced: ${s.synced.join(', ') || 'nothing'}`;
  if (unchanged) {
    out(`${dryRun ? 'sync (dry run): ' : ''}unchanged: the registry already matches the files (${s.rows} rows read; ${synced}); list ${list} stays at version ${s.versionBefore}`);
    return;
  }
  if (dryRun) {
    const types = byType(s, ['to add', 'to change', 'to remove']);
    out(`sync (dry run, nothing imported): would add ${total(s.added)}, change ${total(s.changed)}, remove ${total(s.removed)} (${types}) (list ${list} stays at version ${s.versionBefore})`);
    if (s.massRemovals.length > 0) note(`note: that removes ${massWhat(s)}, more than half: the sync will ask first (or need --yes)`);
    return;
  }
  const types = byType(s, ['added', 'changed', 'removed']);
  out(`sync: added ${total(s.added)}, changed ${total(s.changed)}, removed ${total(s.removed)} (${types}) (version ${s.versionBefore} -> ${s.versionAfter})`);
  note(`list ${list} is now at version ${s.versionAfter}: a running \`central serve\` publishes it within its poll interval, or run \`subline central publish\``);
}

/** `central import --sync`: `progress` makes a fresh progress display for each pass over the files. */
export async function syncFiles(files: readonly string[], o: SyncFlags, progress: () => Progress): Promise<void> {
  const sources = openImportFiles(files, o.type);
  const p = dataPaths(o.data, o.db);
  const store = await openStore(p, loadKeys(p));
  const r = store.registry;
  try {
    r.allowOverCapacity = o.overCapacity === true;
    const dryRun = o.dryRun === true;
    const pass = async (allowMassRemoval: boolean, expect?: SyncSummary): Promise<SyncSummary> => {
      const shown = progress();
      try {
        return await applySync(r, sources, { dryRun, every: 5000, progress: shown.update, allowMassRemoval, expect });
      } finally {
        shown.stop();
      }
    };
    let s: SyncSummary;
    try {
      try {
        s = await pass(o.yes === true);
      } catch (e) {
        if (!(e instanceof MassRemovalError)) throw e;
        // Asked with nothing held: the first pass was rolled back, so the writer lock is free while the operator reads.
        await confirmRemoval(e.summary);
        s = await pass(true, e.summary);
      }
    } catch (e) {
      if (e instanceof CapacityError) throw new CliError(`${e.message}; nothing imported (raise it with \`subline central init --capacity N\`, or import with --over-capacity: gates provisioned for ${e.capacity} credentials cannot hold the list)`, 3);
      throw e;
    }
    const list = (await r.list()).name;
    print(s, dryRun, list, o.json === true ? { credentials: (await r.counts()).credentials, capacity: await r.capacity() } : null);
  } finally {
    await store.close();
  }
}
