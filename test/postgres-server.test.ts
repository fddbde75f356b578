// The throwaway PostgreSQL server the store suites will run against (issue 18):
// it starts on a free loopback port as an unprivileged user, serves two
// clients at once with the guarantees the event store relies on (INSERT ... ON
// CONFLICT DO NOTHING stores a key once whoever writes it), and close() stops
// it and deletes its data directory. Without the server binaries the suite
// says so and is not run.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync } from 'node:fs';
import pg from 'pg';
import { locatePostgres, startPostgres } from '../host-sim/postgres-server.js';

const where = locatePostgres();
if (!where.ok) {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `postgres suites: not run (${where.reason})\n`);
  else console.log(`postgres suites: not run (${where.reason})`);
} else {
  const t = suite('postgres: the test server');

  t('starts on loopback as an unprivileged user; two writers store a key once; close stops it', async () => {
    const server = await startPostgres();
    const a = new pg.Client({ connectionString: server.url });
    const b = new pg.Client({ connectionString: server.url });
    try {
      await Promise.all([a.connect(), b.connect()]);
      const who = await a.query<{ u: string; superuser: string; addr: string | null }>("SELECT current_user AS u, current_setting('is_superuser') AS superuser, inet_server_addr()::text AS addr");
      assert.equal([who.rows[0]?.u, who.rows[0]?.addr], ['subline', '127.0.0.1/32']);
      await a.query('CREATE TABLE events (gate TEXT, epoch BIGINT, seq BIGINT, record BYTEA, PRIMARY KEY (gate, epoch, seq))');
      // The same 200 keys from both clients, interleaved: each stored once, and each insert says whether it stored.
      const put = (c: pg.Client, i: number) => c.query('INSERT INTO events VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', ['g1', 7, i, Buffer.from([i & 0xff])]);
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => [put(a, i), put(b, i)]).flat());
      assert.is(results.reduce((n, r) => n + (r.rowCount ?? 0), 0), 200, 'one insert per key stored');
      const n = await b.query<{ n: string }>('SELECT COUNT(*) AS n FROM events');
      assert.is(n.rows[0]?.n, '200');
    } finally {
      await Promise.all([a.end(), b.end()]);
      await server.close();
    }
    const late = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 2000 });
    let refused = false;
    try {
      await late.connect();
    } catch {
      refused = true;
    }
    assert.ok(refused, 'nothing listens after close');
  });

  t.run();
}
