// The CLI as the tests run it, on one store engine: the context (the data directory's
// database, --db added on PostgreSQL), exit-code checks and a populated data directory.
// Shared by the cli*.test.ts suites.


import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toHex } from '../../protocol/hex.js';
import { readKeyFile } from '../../host-sim/central/keys.js';
import { openCentralStore, type CentralStore } from '../../host-sim/central/store/open-store.js';
import { runCli, startCli, tempDir, type CliProcess, type CliResult } from './cli.js';
import { type Engine } from './store-engines.js';

// ---------------------------------------------------------------- helpers

export function show(r: CliResult): string {
  return `exit ${String(r.code)}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** The exit code, optionally a message on stderr, and never a stack trace. */
export function expectExit(r: CliResult, code: number, stderr?: RegExp): void {
  assert.is(r.code, code, show(r));
  if (stderr !== undefined) assert.match(r.stderr, stderr, show(r));
  assert.not.match(r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `no stack trace\n${show(r)}`);
}

/** `subline args...` as given (no data directory involved: usage, --check of a file). */
export async function plainCli(args: readonly string[], code: number, stderr?: RegExp): Promise<CliResult> {
  const r = await runCli(args);
  expectExit(r, code, stderr);
  return r;
}

/** Runs fn over items, n at a time (each CLI run is a process). */
export async function parallel<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x);
    }),
  );
}

export const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export const CARD = (n: number): string => `c000000${n}`;

/** The CLI and the central's data on one engine. */
export interface Ctx {
  readonly engine: Engine;
  readonly pg: boolean;
  /** The central's database of a data directory: DATA/central.db, or its own PostgreSQL database (created when first seen). */
  readonly target: (data: string) => Promise<string>;
  /** `args` with `--db TARGET` after each `--data DIR` (PostgreSQL; unless the args name --db). */
  readonly withDb: (args: readonly string[]) => Promise<string[]>;
  /** Runs `subline args...` (withDb) and checks the exit code, the message and that there is no stack trace. */
  readonly cli: (args: readonly string[], code: number, stderr?: RegExp) => Promise<CliResult>;
  /** Starts a long-running command; on PostgreSQL the database comes from SUBLINE_DB. */
  readonly start: (args: readonly string[]) => Promise<CliProcess>;
  /** The central's stores of a data directory, with its keys (the caller closes them). */
  readonly open: (data: string) => Promise<CentralStore>;
}

export function context(engine: Engine): Ctx {
  const pg = engine.name === 'postgres';
  const databases = new Map<string, Promise<string>>();
  const target = (data: string): Promise<string> => {
    const dir = resolve(data);
    if (!pg) return Promise.resolve(join(dir, 'central.db'));
    let t = databases.get(dir);
    if (t === undefined) {
      t = engine.fresh();
      databases.set(dir, t);
    }
    return t;
  };
  const withDb = async (args: readonly string[]): Promise<string[]> => {
    if (!pg || args.includes('--db')) return [...args];
    const out: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string;
      out.push(a);
      if (a === '--data' && i + 1 < args.length) {
        const dir = args[++i] as string;
        out.push(dir, '--db', await target(dir));
      }
    }
    return out;
  };
  return {
    engine,
    pg,
    target,
    withDb,
    cli: async (args, code, stderr) => {
      const r = await runCli(await withDb(args));
      expectExit(r, code, stderr);
      return r;
    },
    start: async (args) => {
      const at = args.indexOf('--data');
      if (!pg || at < 0) return startCli(args);
      return startCli(args, { env: { SUBLINE_DB: await target(args[at + 1] as string) } });
    },
    open: async (data) => {
      const k = readKeyFile(join(data, 'keys.json'));
      return openCentralStore(await target(data), { registry: { signingKey: k.signingKey, deploymentKey: k.deploymentKey } });
    },
  };
}

/** A data directory after init and an import of 2 industries, 2 institutions, 3 people with cards, 1 vehicle and 3 grants. */
export async function populated(c: Ctx): Promise<string> {
  const data = tempDir();
  const init = await c.cli(['central', 'init', '--data', data], 0);
  if (c.pg) assert.match(init.stdout, new RegExp(`^database: ${escapeRe(await c.target(data))}\\nschema: 4 \\(created\\)$`, 'm'), show(init));
  const f = (name: string, text: string): string => {
    writeFileSync(join(data, name), text);
    return join(data, name);
  };
  const files = [
    f('industries.csv', 'code,name\nai,Artificial intelligence\nbiomed,Biomedicine\n'),
    f('institutions.csv', 'name,industry\nQuantum Science Centre,ai\nFuture Networks Institute,1\n'),
    f('people.csv', `id,name,institution,card\np-1,Li Wei,Quantum Science Centre,${CARD(1)}\np-2,Chan Tai Man,1,${CARD(2)}\np-3,Wong Mei,0,"${CARD(3)};${CARD(4)}"\n`),
    f(
      'more.json',
      JSON.stringify({
        vehicles: [{ id: 'v-1', name: 'Lab van', institution: 0, uhf: ['e2801170000002'] }],
        grants: [{ level: 'institution', target: 'Quantum Science Centre', lines: ['first', 'second'], directions: 'in,out', lanes: ['person', 'vehicle'], validUntil: '2099-12-31' }],
      }),
    ),
    f('grants.csv', 'level,target,lines,directions,lanes\nindividual,p-2,first,in,person\nindustry,biomed,"first,second","in,out",goods\n'),
  ];
  const r = await c.cli(['central', 'import', '--data', data, ...files], 0);
  assert.match(r.stdout, /imported 11 rows: 2 industries, 2 institutions, 3 people, 1 vehicles, 3 grants, 5 inline credentials \(version 1\)/);
  return data;
}

/** Runs fn on the central's stores of a data directory, then closes them. */
export async function withStore<T>(c: Ctx, data: string, fn: (s: CentralStore) => Promise<T>): Promise<T> {
  const s = await c.open(data);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Counts, lists and every table's row count: equal snapshots mean nothing changed. */
export function snapshot(c: Ctx, data: string): Promise<string> {
  return withStore(c, data, async (s) =>
    JSON.stringify({ counts: await s.registry.counts(), lists: await s.registry.lists(), tables: await s.registry.tables() }, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v)),
  );
}

export const version = (c: Ctx, data: string): Promise<number> => withStore(c, data, (s) => s.registry.version());
