// The store suites on both engines (issue 18): `engineSuites(title, define)`
// registers one uvu suite per engine — SQLite on a temp file, PostgreSQL on a
// server this process starts once (host-sim/postgres-server.ts, Debian's
// binaries, a free loopback port) and stops at exit. Each `engine.fresh()` is
// a new empty database: a SQLite path, or a PostgreSQL database created for
// it. Without PostgreSQL binaries the PostgreSQL suites say "not run" (never
// counted as passed).

import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite, type Test } from 'uvu';
import pg from 'pg';
import { locatePostgres, startPostgres, type PostgresHandle } from '../../host-sim/postgres-server.js';
import { openCentralStore, type CentralStore, type OpenStoreOptions } from '../../host-sim/central/store/open-store.js';

export type EngineName = 'sqlite' | 'postgres';

export interface Engine {
  readonly name: EngineName;
  /** A new, empty database: a SQLite file path or a postgres:// URL. */
  fresh(): Promise<string>;
  /** A new database with the central's schema and stores open on it (closed by the caller). */
  store(options?: OpenStoreOptions): Promise<CentralStore>;
}

const dirs: string[] = [];
let server: Promise<PostgresHandle> | null = null;
let serverDir: string | null = null;
let databases = 0;

process.once('exit', () => {
  // The server process itself is killed by trackChild's exit hook; its files go here.
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (serverDir !== null) rmSync(serverDir, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'subline-store-'));
  dirs.push(d);
  return d;
}

/** The shared PostgreSQL server of this test process (started on first use). */
export function postgresServer(): Promise<PostgresHandle> {
  server ??= startPostgres({ background: true }).then((h) => {
    serverDir = h.dir;
    return h;
  });
  return server;
}

async function freshPostgres(): Promise<string> {
  const s = await postgresServer();
  const name = `t${process.pid}_${++databases}`;
  const c = new pg.Client({ connectionString: s.url });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  return s.url.replace(/\/subline$/, `/${name}`);
}

const sqlite: Engine = {
  name: 'sqlite',
  fresh: () => Promise.resolve(join(tempDir(), 'central.db')),
  async store(options = {}) {
    return openCentralStore(await this.fresh(), { ...options, create: true });
  },
};

const postgres: Engine = {
  name: 'postgres',
  fresh: freshPostgres,
  async store(options = {}) {
    return openCentralStore(await this.fresh(), { ...options, create: true });
  },
};

/** Why PostgreSQL suites cannot run here, or null when they can. */
export function postgresMissing(): string | null {
  const w = locatePostgres();
  return w.ok ? null : w.reason;
}

/** Says (once per title) that a suite was not run, the way the test runner counts it. */
export function notRun(what: string, reason: string): void {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `${what}: not run (${reason})\n`);
  else console.log(`${what}: not run (${reason})`);
}

/** The engines available here (SQLite always). */
export function engines(): Engine[] {
  return postgresMissing() === null ? [sqlite, postgres] : [sqlite];
}

/**
 * One suite per engine: `${title} [sqlite]`, `${title} [postgres]`. `define`
 * adds the tests; the same tests run on both.
 */
export function engineSuites(title: string, define: (test: Test, engine: Engine) => void): void {
  for (const engine of [sqlite, postgres]) {
    if (engine.name === 'postgres') {
      const missing = postgresMissing();
      if (missing !== null) {
        notRun(`${title} [postgres]`, missing);
        continue;
      }
    }
    const t = suite(`${title} [${engine.name}]`);
    define(t, engine);
    t.run();
  }
}
