// `subline central people|vehicles|consignments|institutions|industries|grants
// list|show` and `central who-has` (issue 19) on SQLite and PostgreSQL: one
// populated data directory per engine (2 industries, 2 institutions, p-1..p-3
// with cards, v-1 with a UHF tag, 3 grants), then institution 1 suspended,
// p-1's only card revoked and a consignment g-1 without credentials added —
// so every state shows. Each list filter alone, show of each kind, who-has by
// card, UHF tag and key (the key computed here from keys.json, not by the
// CLI), not found (exit 3), bad input (exit 2, engine-independent: SQLite only).

import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { credentialKey } from '../protocol/credential-key.js';
import { fromHex, toHex } from '../protocol/hex.js';
import { readKeyFile } from '../host-sim/central/keys.js';
import { RegistryReader } from '../host-sim/central/registry-reader.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { CARD, context, parallel, populated, show, withStore, type Ctx } from './helpers/cli-context.js';
import type { CliResult } from './helpers/cli.js';
import { engineSuites } from './helpers/store-engines.js';

interface Run {
  /** Also on PostgreSQL (the rest checks wiring and printing, which do not depend on the engine). */
  readonly everywhere?: true;
  readonly args: readonly string[];
  readonly code: number;
  readonly stderr?: RegExp;
  readonly check?: (r: CliResult) => void;
}

/** Runs `subline central ... --data DATA` of `runs` (on PostgreSQL those marked `everywhere`), three at a time, each with its checks. */
async function runAll(c: Ctx, data: string, runs: readonly Run[]): Promise<void> {
  await parallel(c.pg ? runs.filter((x) => x.everywhere === true) : runs, 3, async (x) => {
    const r = await c.cli(['central', ...x.args, '--data', data], x.code, x.stderr);
    x.check?.(r);
  });
}

type Obj = Record<string, unknown>;
const json = (r: CliResult): unknown => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON\n${show(r)}`);
  }
};
const ids = (r: CliResult): unknown[] => (json(r) as Obj[]).map((x) => x.id);
const idsAre = (expected: string[]) => (r: CliResult) => assert.equal(ids(r), expected, show(r));

engineSuites('cli registry read-outs', (test, engine) => {
  const c = context(engine);
  let data = '';
  const keyOf = (kind: 1 | 2, raw: string): string => toHex(credentialKey(nodeCrypto, readKeyFile(join(data, 'keys.json')).deploymentKey, kind, fromHex(raw)));

  test.before(async () => {
    data = await populated(c);
    await withStore(c, data, async (s) => {
      await s.registry.suspend('institution', 1);
      await s.registry.revokeCredential({ kind: 'card', rawId: CARD(1) });
      await s.registry.addSubject({ id: 'g-1', kind: 'goods', name: 'Reagents 40' });
    });
  });

  // The queries themselves, in this process (fast): every filter and view on this engine.
  test('reader: every filter, paging and view on this engine', async () => {
    await withStore(c, data, async (s) => {
      const r = new RegistryReader(s.db);
      const page = { limit: 100, offset: 0 };
      const people = async (f: Partial<Parameters<RegistryReader['subjects']>[0]> = {}) => (await r.subjects({ kind: 'person', ...page, ...f })).rows.map((x) => x.id);
      assert.equal(await people(), ['p-1', 'p-2', 'p-3']);
      assert.equal(await people({ institutions: await r.institutionIds('Quantum Science Centre') }), ['p-1', 'p-3']);
      assert.equal(await people({ institutions: [1] }), ['p-2']);
      assert.equal(await people({ industry: await r.industryId('biomed') }), ['p-2']);
      assert.equal(await people({ name: 'wEI' }), ['p-1']);
      assert.equal(await people({ name: '%' }), [], 'LIKE wildcards are literal');
      assert.equal(await people({ state: 'suspended' }), ['p-2']);
      assert.equal(await people({ state: 'revoked' }), ['p-1']);
      assert.equal(await people({ state: 'active' }), ['p-3']);
      assert.equal(await people({ state: 'active', institutions: [1] }), []);
      const mid = await r.subjects({ kind: 'person', limit: 1, offset: 1 });
      assert.equal([mid.rows.map((x) => x.id), mid.more], [['p-2'], true]);
      assert.is((await r.subjects({ kind: 'person', limit: 2, offset: 1 })).more, false);
      assert.equal((await r.subjects({ kind: 'goods', ...page })).rows.map((x) => [x.id, x.state, x.institution]), [['g-1', 'revoked', null]]);
      assert.equal((await r.institutions({ ...page, industry: 1 })).rows.map((x) => [x.id, x.suspended, x.state]), [[1, ['institution'], 'suspended']]);
      assert.equal((await r.institutions({ ...page, name: 'NETWORK' })).rows.map((x) => x.id), [1]);
      assert.equal((await r.industries({ ...page, name: 'bio' })).rows.map((x) => [x.code, x.institutions, x.subjects, x.grant]), [['biomed', 1, 1, 2]]);
      assert.equal((await r.industries({ ...page, name: 'AI' })).rows.map((x) => x.code), ['ai'], 'the code matches too');
      assert.equal((await r.grants(page)).rows.map((x) => [x.grant, x.level, x.target]), [[0, 'institution', '0'], [1, 'individual', 'p-2'], [2, 'industry', '1']]);
      assert.equal((await r.grants({ ...page, level: 'industry' })).rows.map((x) => x.grant), [2]);
      assert.equal((await r.grants({ ...page, target: 'biomed' })).rows.map((x) => x.grant), [2], 'an industry by code');
      assert.equal((await r.grants({ ...page, target: 'p-2' })).rows.map((x) => x.grant), [1]);

      const now = Math.floor(Date.now() / 1000);
      const p2 = await r.subject('p-2', now);
      assert.equal([p2?.suspended, p2?.grantDetails.map((g) => g.level), p2?.effective], [['institution'], ['individual', 'industry'], { passes: false, reason: 'institution_suspended' }]);
      const p1 = await r.subject('p-1', now);
      assert.equal([p1?.credentials.map((x) => [x.key, x.revoked]), p1?.effective.reason], [[[keyOf(1, CARD(1)), true]], 'revoked']);
      assert.ok((p1?.credentials[0]?.revokedAt ?? 0) >= now - 600, 'revoked_at kept');
      assert.equal((await r.subject('p-3', now))?.effective, { passes: true, reason: 'granted' });
      assert.equal((await r.subject('p-3', Date.UTC(2100, 0, 1) / 1000))?.effective, { passes: false, reason: 'outside_validity' }, 'its one grant ends 2099-12-31');
      assert.is(await r.subject('nobody', now), undefined);
      assert.equal([(await r.institution(1))?.subjectsByKind, (await r.institution(0))?.grantDetails.map((g) => g.grant)], [{ person: 1, vehicle: 0, goods: 0 }, [0]]);
      assert.equal([(await r.industry(0))?.activeCredentials, (await r.industry(1))?.grantDetail?.grant], [3, 2]);
      assert.equal((await r.grant(0))?.assignments.map((a) => [a.level, a.targetName]), [['institution', 'Quantum Science Centre']]);
      assert.is(await r.grant(99), undefined);
      assert.equal(await r.credential(fromHex(keyOf(2, 'e2801170000002'))), { key: keyOf(2, 'e2801170000002'), subject: 'v-1', kind: 'uhf', revoked: false, revokedAt: null });
      assert.is(await r.credential(new Uint8Array(8)), undefined);
    });
  });

  // Through the CLI: each option reaches its query (the states themselves: the reader test above).
  test('people list: each filter alone, paging, table and CSV', async () => {
    await runAll(c, data, [
      {
        args: ['people', 'list'],
        code: 0,
        check: (r) => {
          const lines = r.stdout.trimEnd().split('\n');
          assert.match(lines[0] ?? '', /^ID\s+KIND\s+NAME\s+INSTITUTION\s+INSTITUTION NAME\s+INDUSTRY\s+INDUSTRY CODE\s+ACTIVE CREDENTIALS\s+REVOKED CREDENTIALS\s+GRANTS\s+SUSPENDED\s+STATE$/, show(r));
          assert.is(lines.length, 5, show(r)); // header, rule, p-1..p-3 (not v-1, not g-1)
          assert.match(r.stdout, /^p-2\s+person\s+Chan Tai Man\s+1\s+Future Networks Institute\s+1\s+biomed\s+1\s+0\s+individual 1, industry 2\s+institution\s+suspended$/m, show(r));
        },
      },
      { args: ['people', 'list', '--institution', 'Quantum Science Centre', '--json'], code: 0, check: idsAre(['p-1', 'p-3']) },
      {
        args: ['people', 'list', '--industry', 'biomed', '--format', 'csv'],
        code: 0,
        check: (r) => assert.is(r.stdout, 'id,kind,name,institution,institution_name,industry,industry_code,active_credentials,revoked_credentials,grants,suspended,state\np-2,person,Chan Tai Man,1,Future Networks Institute,1,biomed,1,0,"individual 1, industry 2",institution,suspended\n', show(r)),
      },
      { args: ['people', 'list', '--name', 'wEI', '--json'], code: 0, check: idsAre(['p-1']) },
      { everywhere: true, args: ['people', 'list', '--state', 'suspended', '--json'], code: 0, check: idsAre(['p-2']) },
      // A page in the middle: one row, and the note that there are more.
      { args: ['people', 'list', '--limit', '1', '--offset', '1', '--json'], code: 0, stderr: /there are more: --offset 2 shows the next ones/, check: idsAre(['p-2']) },
    ]);
  });

  test('vehicles, consignments, institutions, industries and grants lists', async () => {
    await runAll(c, data, [
      {
        args: ['vehicles', 'list', '--json'],
        code: 0,
        check: (r) =>
          assert.equal(json(r), [{ id: 'v-1', kind: 'vehicle', name: 'Lab van', institution: 0, institutionName: 'Quantum Science Centre', industry: 0, industryCode: 'ai', activeCredentials: 1, revokedCredentials: 0, grants: [{ level: 'institution', grant: 0 }], suspended: [], state: 'active' }], show(r)),
      },
      // No credential at all counts as revoked; no institution leaves its columns null.
      { args: ['consignments', 'list', '--json'], code: 0, check: (r) => assert.equal((json(r) as Obj[]).map((x) => [x.id, x.institution, x.state]), [['g-1', null, 'revoked']], show(r)) },
      {
        args: ['institutions', 'list', '--industry', 'biomed', '--json'],
        code: 0,
        check: (r) => assert.equal(json(r), [{ id: 1, name: 'Future Networks Institute', industry: 1, industryCode: 'biomed', subjects: 1, grant: null, suspended: ['institution'], state: 'suspended' }], show(r)),
      },
      { args: ['institutions', 'list', '--name', 'quantum', '--json'], code: 0, check: (r) => assert.equal((json(r) as Obj[]).map((x) => [x.id, x.grant, x.state]), [[0, 0, 'active']], show(r)) },
      { args: ['industries', 'list', '--name', 'BIO', '--json'], code: 0, check: (r) => assert.equal(json(r), [{ id: 1, code: 'biomed', name: 'Biomedicine', institutions: 1, subjects: 1, grant: 2, state: 'active' }], show(r)) },
      {
        args: ['grants', 'list', '--level', 'individual', '--json'],
        code: 0,
        check: (r) => assert.equal(json(r), [{ grant: 1, level: 'individual', target: 'p-2', targetName: 'Chan Tai Man', lines: ['first'], directions: ['in'], lanes: ['person'], validFrom: null, validUntil: null, schedule: null, passbackGroup: null }], show(r)),
      },
      // An institution by its exact name, as `central grant --target` takes it.
      { args: ['grants', 'list', '--target', 'Quantum Science Centre', '--format', 'csv'], code: 0, check: (r) => assert.match(r.stdout, /^grant,level,target,target_name,lines,directions,lanes,valid_from,valid_until,schedule,passback_group\n0,institution,0,Quantum Science Centre,"first,second","in,out","person,vehicle",,2099-12-31T23:59:59Z,,\n$/, show(r)) },
    ]);
  });

  test('show: a person of a suspended institution, an active one, a vehicle, a consignment, an institution, an industry, a grant', async () => {
    await runAll(c, data, [
      {
        everywhere: true,
        args: ['people', 'show', 'p-2', '--json'],
        code: 0,
        check: (r) => {
          const s = json(r) as Obj;
          assert.equal([s.kind, s.institution, s.industryCode, s.industryName, s.state], ['person', 1, 'biomed', 'Biomedicine', 'suspended'], show(r));
          assert.equal(s.credentials, [{ key: keyOf(1, CARD(2)), kind: 'card', state: 'active', revokedAt: null }], show(r));
          // In the order a gate tries them: individual, then (no institution grant) industry.
          assert.equal((s.grants as Obj[]).map((g) => [g.level, g.grant, g.lanes]), [['individual', 1, ['person']], ['industry', 2, ['goods']]], show(r));
          assert.equal(s.suspensions, [{ level: 'institution', target: '1', name: 'Future Networks Institute' }], show(r));
          assert.equal(s.effective, { passes: false, reason: 'institution_suspended' }, show(r));
        },
      },
      {
        args: ['people', 'show', 'p-3'],
        code: 0,
        check: (r) => {
          assert.match(r.stdout, /^institution\s+0 \(Quantum Science Centre\)$/m, show(r));
          assert.match(r.stdout, /^effective\s+passes where a grant allows it/m, show(r));
          for (const raw of [CARD(3), CARD(4)]) assert.match(r.stdout, new RegExp(`^  ${keyOf(1, raw)}\\s+card\\s+active\\s+-$`, 'm'), show(r));
          assert.match(r.stdout, /^ {2}institution\s+0 \(Quantum Science Centre\)\s+0\s+first,second\s+in,out\s+person,vehicle\s+-\s+2099-12-31T23:59:59Z/m, show(r));
        },
      },
      { args: ['vehicles', 'show', 'v-1', '--json'], code: 0, check: (r) => assert.equal((json(r) as Obj).credentials, [{ key: keyOf(2, 'e2801170000002'), kind: 'uhf', state: 'active', revokedAt: null }], show(r)) },
      { args: ['consignments', 'show', 'g-1', '--json'], code: 0, check: (r) => assert.equal([(json(r) as Obj).credentials, (json(r) as Obj).grants, (json(r) as Obj).effective], [[], [], { passes: false, reason: 'unknown_credential' }], show(r)) },
      {
        args: ['institutions', 'show', 'Future Networks Institute', '--json'],
        code: 0,
        check: (r) => {
          const i = json(r) as Obj;
          assert.equal([i.id, i.industryName, i.subjects, i.subjectsByKind, i.activeCredentials, i.grant, i.suspended, i.state], [1, 'Biomedicine', 1, { person: 1, vehicle: 0, goods: 0 }, 1, null, ['institution'], 'suspended'], show(r));
          assert.equal((i.grants as Obj[]).map((g) => [g.level, g.grant]), [['industry', 2]], show(r));
        },
      },
      { args: ['industries', 'show', 'ai', '--json'], code: 0, check: (r) => assert.equal(json(r), { id: 0, code: 'ai', name: 'Artificial intelligence', institutions: 1, subjects: 3, activeCredentials: 3, grant: null, state: 'active' }, show(r)) },
      { args: ['grants', 'show', '2', '--json'], code: 0, check: (r) => assert.equal(json(r), { id: 2, retired: false, lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['goods'], validFrom: null, validUntil: null, schedule: null, passbackGroup: null, assignments: [{ level: 'industry', target: '1', targetName: 'Biomedicine' }] }, show(r)) },
    ]);
  });

  test('who-has: by card, UHF tag and key; a revoked card', async () => {
    await runAll(c, data, [
      {
        args: ['who-has', '--card', CARD(3).toUpperCase()],
        code: 0,
        check: (r) => {
          assert.match(r.stdout, new RegExp(`^credential ${keyOf(1, CARD(3))} \\(card\\) active, held by person 'p-3'\\n`), show(r));
          assert.match(r.stdout, /^name\s+Wong Mei$/m, show(r));
        },
      },
      { args: ['who-has', '--uhf', 'e2801170000002', '--json'], code: 0, check: (r) => assert.equal([(json(r) as Obj).kind, ((json(r) as Obj).subject as Obj).id], ['uhf', 'v-1'], show(r)) },
      {
        args: ['who-has', '--key', keyOf(1, CARD(2)), '--json'],
        code: 0,
        check: (r) => {
          const w = json(r) as { key: string; state: string; subject: Obj };
          assert.equal([w.key, w.state, w.subject.id, w.subject.institutionName, w.subject.state, w.subject.effective], [keyOf(1, CARD(2)), 'active', 'p-2', 'Future Networks Institute', 'suspended', { passes: false, reason: 'institution_suspended' }], show(r));
        },
      },
      {
        everywhere: true,
        args: ['who-has', '--card', CARD(1), '--json'],
        code: 0,
        check: (r) => {
          const w = json(r) as { state: string; revokedAt: string | null; subject: Obj };
          assert.is(w.state, 'revoked', show(r));
          assert.match(w.revokedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, show(r));
          assert.equal([w.subject.id, w.subject.state, w.subject.effective], ['p-1', 'revoked', { passes: false, reason: 'revoked' }], show(r));
        },
      },
    ]);
  });

  test('not found: exit 3', async () => {
    await runAll(c, data, [
      { everywhere: true, args: ['who-has', '--card', 'ff'], code: 3, stderr: /no credential for --card ff is enrolled/ },
      { args: ['people', 'show', 'nobody'], code: 3, stderr: /no person 'nobody' in the registry/ },
      { args: ['people', 'show', 'v-1'], code: 3, stderr: /'v-1' is a vehicle, not a person: `subline central vehicles show v-1`/ },
      { args: ['industries', 'show', 'chem'], code: 3, stderr: /no industry 'chem'/ },
    ]);
  });

  if (engine.name === 'sqlite')
    test('bad input: exit 2, naming the option', async () => {
      await runAll(c, data, [
        { args: ['people', 'list', '--limit', '0'], code: 2, stderr: /--limit must be in 1\.\.1000000 \(got 0\)/ },
        { args: ['people', 'list', '--bogus'], code: 2, stderr: /unknown option '--bogus'/ },
        { args: ['people', 'list', '--state', 'away'], code: 2, stderr: /--state <state>' argument 'away' is invalid/ },
        { args: ['people', 'list', '--institution', 'Nowhere'], code: 2, stderr: /--institution: no institution 'Nowhere'/ },
        { args: ['who-has', '--card', 'xyz'], code: 2, stderr: /--card 'xyz' must be hex digits/ },
        { args: ['who-has', '--key', '0102'], code: 2, stderr: /--key must be 8 bytes \(got 2\)/ },
      ]);
    });
});
