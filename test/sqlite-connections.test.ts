// Two SqliteDb connections on one file in one process (the central and
// `broker config` or the simulator's helpers, or two stores in a test): a
// transaction spans awaits, so the second connection must wait for the lock
// without blocking the event loop the first needs to finish. SQLite's own busy
// wait is synchronous; SqliteDb retries asynchronously instead.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCentralStore } from '../host-sim/central/store/open-store.js';
import { generateKeys } from '../host-sim/central/keys.js';

const t = suite('SQLite: two connections in one process');
const keys = generateKeys();

t('concurrent writes on two connections all commit', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'subline-conn-')), 'central.db');
  const a = await openCentralStore(path, { create: true, registry: { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey } });
  const b = await openCentralStore(path, { registry: { signingKey: keys.signingKey, deploymentKey: keys.deploymentKey } });
  try {
    const gate = (i: number) => ({ gate: `g${i}`, site: 'futian', list: 'main', line: 'first' as const, direction: 'in' as const, lane: 'person' as const });
    const results = await Promise.allSettled([
      ...Array.from({ length: 5 }, (_, i) => a.identities.register(gate(i), 1)),
      ...Array.from({ length: 5 }, (_, i) => b.identities.register(gate(10 + i), 1)),
      a.registry.addSubject({ id: 's-a', kind: 'person', name: 'A' }),
      b.registry.addSubject({ id: 's-b', kind: 'person', name: 'B' }),
    ]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    assert.equal(failed, [], 'every write committed');
    assert.is((await a.identities.all()).length, 10);
    assert.is((await b.registry.list()).version, 2, 'two registry changes: two versions');
  } finally {
    await b.close();
    await a.close();
  }
});

t.run();
