// `central import --sync` (issue 19, item 4): the files are the truth for the
// types they hold. One change (one version) adds, changes and removes; the
// registry then holds what the files say; a removed person's cards are revoked
// (out of the image, a revoke record in the delta); types the files do not
// hold are untouched; --dry-run and a bad row change nothing; removing more
// than half of a type needs --yes; a sync that changes nothing makes no
// version. On SQLite and PostgreSQL, through the CLI.

import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../protocol/hex.js';
import { DELTA_RECORD_BYTES, DeltaOp } from '../protocol/whitelist-format.js';
import type { GrantSpec } from '../host-sim/central/image-builder.js';
import type { Registry } from '../host-sim/central/registry.js';
import { openImportFiles } from '../host-sim/cli/import.js';
import { applySync, type SyncCounts } from '../host-sim/cli/import-sync.js';
import { CARD, context, parallel, populated, snapshot, version, withStore, type Ctx } from './helpers/cli-context.js';
import { engineSuites } from './helpers/store-engines.js';

const file = (data: string, name: string, text: string): string => {
  writeFileSync(join(data, name), text);
  return join(data, name);
};

/** The people as the registry holds them: name, institution, active cards (raw ids) and individual grant. */
async function people(r: Registry, cards: readonly string[]): Promise<Record<string, unknown>> {
  const byKey = new Map(cards.map((raw) => [toHex(r.credentialKey('card', raw)), raw]));
  const out: Record<string, unknown> = {};
  for (const [id, kind] of await r.allSubjects()) {
    if (kind !== 'person') continue;
    const s = await r.subject(id);
    const active = (await r.credentials(id)).filter((x) => !x.revoked).map((x) => byKey.get(toHex(x.key)) ?? toHex(x.key));
    const grant = s?.grant === undefined || s.grant === null ? null : await r.grantSpec(s.grant);
    out[id] = { name: s?.name, institution: s?.institution, cards: active.sort(), grant };
  }
  return out;
}

const counts = (o: Partial<SyncCounts>): SyncCounts => ({ industries: 0, institutions: 0, people: 0, vehicles: 0, consignments: 0, credentials: 0, grants: 0, ...o });

const rights = (lines: GrantSpec['lines'], directions: GrantSpec['directions'], lanes: GrantSpec['lanes']): GrantSpec => ({ lines, directions, lanes });

engineSuites('cli: central import --sync', (test, engine) => {
  let c: Ctx;
  let data: string;
  test.before(async () => {
    c = context(engine);
    data = await populated(c);
  });

  test('industries: a new code added, a new name changed, an absent one loses its grant; institutions naming it are not synced and keep it', async () => {
    const industries = file(data, 'industries.csv', 'code,name\nai,AI\nquantum,Quantum science\n');
    const r = await c.cli(['central', 'import', '--data', data, '--sync', industries], 0);
    assert.match(r.stdout, /^sync: added 1, changed 1, removed 2 \(industries: 1 added, 1 changed, 1 removed; grants: 1 removed\) \(version 1 -> 2\)$/m);
    await withStore(c, data, async ({ registry: reg }) => {
      assert.equal((await reg.allIndustries()).map((i) => [i.id, i.code, i.name]), [[0, 'ai', 'AI'], [1, 'biomed', 'Biomedicine'], [2, 'quantum', 'Quantum science']], 'kept for history; ids never reused');
      assert.is(await reg.assignedGrant('industry', 1), null, "biomed's grant removed");
      assert.is((await reg.institution(1))?.industry, 1, 'institutions were not in the files');
      assert.ok((await reg.assignedGrant('institution', 0)) !== null, 'other grants untouched');
    });
  });

  test('people and grants: additions, changes and removals in one version; the registry holds the files; the removed person is refused; vehicles untouched', async () => {
    const v = await version(c, data);
    const peopleCsv = file(data, 'people.csv', `id,name,institution,card\np-1,Li Wei (Dr),Future Networks Institute,${CARD(1)}\np-2,Chan Tai Man,1,"${CARD(2)};${CARD(5)}"\np-4,Ho Ka Yan,0,${CARD(6)}\n`);
    // QSC's institution grant is absent (removed), p-2's changes, p-4's is new.
    const grantsCsv = file(data, 'grants.csv', 'level,target,lines,directions,lanes\nindividual,p-2,"first,second",in,person\nindividual,p-4,first,"in,out",person\n');
    const args = ['central', 'import', '--data', data, '--sync', peopleCsv, grantsCsv];
    const before = await snapshot(c, data);

    const dry = JSON.parse((await c.cli([...args, '--dry-run', '--json'], 0)).stdout) as Record<string, unknown>;
    assert.equal(
      { ...dry, list: undefined },
      {
        dryRun: true, unchanged: false, list: undefined, rows: 5, synced: ['people', 'credentials', 'grants'],
        added: counts({ people: 1, credentials: 2, grants: 1 }), changed: counts({ people: 1, grants: 1 }), removed: counts({ people: 1, credentials: 2, grants: 1 }),
        massRemovals: [], versionBefore: v, versionAfter: v, credentials: 5, capacity: 250000,
      },
    );
    assert.is(await snapshot(c, data), before, 'a dry run changes nothing');

    const run = await c.cli(args, 0);
    assert.match(run.stdout, new RegExp(`^sync: added 4, changed 2, removed 4 \\(people: 1 added, 1 changed, 1 removed; credentials: 2 added, 2 removed; grants: 1 added, 1 changed, 1 removed\\) \\(version ${v} -> ${v + 1}\\)$`, 'm'));

    await withStore(c, data, async ({ registry: r }) => {
      assert.is(await r.version(), v + 1, 'one version');
      const cards = [1, 2, 3, 4, 5, 6].map(CARD);
      assert.equal(await people(r, cards), {
        'p-1': { name: 'Li Wei (Dr)', institution: 1, cards: [CARD(1)], grant: null },
        'p-2': { name: 'Chan Tai Man', institution: 1, cards: [CARD(2), CARD(5)], grant: rights(['first', 'second'], ['in'], ['person']) },
        // Kept for history, granting nothing.
        'p-3': { name: 'Wong Mei', institution: 0, cards: [], grant: null },
        'p-4': { name: 'Ho Ka Yan', institution: 0, cards: [CARD(6)], grant: rights(['first'], ['in', 'out'], ['person']) },
      });
      assert.equal((await r.grantAssignments()).map((a) => `${a.level}:${a.target}`), ['individual:p-2', 'individual:p-4'], 'the grants are the files’');
      // p-3's cards: revoked, out of the image, and the delta tells the gates.
      const gone = [CARD(3), CARD(4)].map((raw) => r.credentialKey('card', raw));
      for (const key of gone) assert.ok((await r.credential({ key }))?.revoked, 'revoked');
      const image = new Set((await r.tables()).credentials.map((x) => toHex(x.key)));
      assert.not.ok(gone.some((k) => image.has(toHex(k))), 'not in the image');
      assert.ok(image.has(toHex(r.credentialKey('card', CARD(6)))), "p-4's card is");
      const records = (await r.delta('main', v + 1))?.records ?? new Uint8Array();
      const revoked = new Set<string>();
      for (let at = 0; at < records.length; at += DELTA_RECORD_BYTES) if (records[at] === DeltaOp.revokeCredential) revoked.add(toHex(records.subarray(at + 4, at + 12)));
      assert.ok(gone.every((k) => revoked.has(toHex(k))), 'the delta revokes them');
      // Not in the files: the vehicle and its tag, institutions.
      assert.equal((await r.subject('v-1'))?.name, 'Lab van');
      assert.ok((await r.credentials('v-1')).every((x) => !x.revoked));
      assert.equal((await r.allInstitutions()).map((i) => i.name), ['Quantum Science Centre', 'Future Networks Institute']);
    });

    // The same files again: unchanged, no version.
    assert.match((await c.cli(args, 0)).stdout, new RegExp(`^unchanged: the registry already matches the files \\(5 rows read; synced: people, credentials, grants\\); list main stays at version ${v + 1}$`, 'm'));
    assert.is(await version(c, data), v + 1);
  });

  test('a bad row, a kind that would change, a reference to what the sync removes: exit 2 naming the row, nothing committed', async () => {
    const before = await snapshot(c, data);
    const cases: [string, string, RegExp][] = [
      ['people-bad.csv', 'id,name,institution\np-1,Li Wei,1\np-9,Bad Row,Nowhere Institute\n', /people-bad\.csv:3: field 'institution': institution 'Nowhere Institute' does not exist; nothing imported/],
      ['people-kind.csv', 'id,name\np-1,Li Wei\nv-1,Lab van\n', /people-kind\.csv:3: field 'id': 'v-1' is a vehicle in the registry, and a subject's kind does not change; nothing imported/],
      ['sync.json', JSON.stringify({ people: [{ id: 'p-1', name: 'Li Wei' }], grants: [{ level: 'individual', target: 'p-2', lines: 'first', directions: 'in', lanes: 'person' }] }), /sync\.json: grants\[0\]\.target: subject 'p-2' is not among the people in the files \(the sync removes it\); nothing imported/],
    ];
    await parallel(cases, 3, async ([name, text, re]) => {
      await c.cli(['central', 'import', '--data', data, '--sync', '--yes', file(data, name, text)], 2, re);
    });
    assert.is(await snapshot(c, data), before, 'nothing committed');
  });

  test('removing more than half of a type: refused without --yes (no terminal), shown by --dry-run, done with --yes', async () => {
    const empty = file(data, 'people-empty.csv', 'id,name,card\n');
    const args = ['central', 'import', '--data', data, '--sync', empty];
    const before = await snapshot(c, data);
    const v = await version(c, data);
    const [, dry] = await Promise.all([
      c.cli(args, 2, /the sync would remove 3 of 4 people, 4 of 5 credentials, 2 of 2 grants \(more than half of what the registry holds\); add --yes to confirm \(no terminal to ask on\); nothing imported/),
      c.cli([...args, '--dry-run'], 0, /note: that removes 3 of 4 people, 4 of 5 credentials, 2 of 2 grants, more than half/),
    ]);
    assert.match(dry.stdout, /^sync \(dry run, nothing imported\): would add 0, change 0, remove 9 \(people: 3 to remove; credentials: 4 to remove; grants: 2 to remove\)/m);
    assert.is(await snapshot(c, data), before, 'nothing committed');
    assert.match((await c.cli([...args, '--yes'], 0)).stdout, new RegExp(`^sync: added 0, changed 0, removed 9 .* \\(version ${v} -> ${v + 1}\\)$`, 'm'));
    await withStore(c, data, async ({ registry: r }) => {
      const active = (await r.allActiveCredentials()).map(([, subject]) => subject);
      assert.equal(active, ['v-1'], "only the vehicle's tag is left");
      assert.equal(await r.grantAssignments(), [], "the people's grants went with them");
    });
  });

  test('in process: an institution changes industry (a defineInstitution record) or loses its grant; an empty JSON array syncs its type; a removed person comes back; a card moves', async () => {
    await withStore(c, data, async ({ registry: r }) => {
      const sync = async (name: string, doc: unknown, allowMassRemoval = false) => applySync(r, openImportFiles([file(data, name, JSON.stringify(doc))]), { allowMassRemoval });
      const v = await r.version();
      const both = [{ name: 'Quantum Science Centre', industry: 'quantum' }, { name: 'Future Networks Institute', industry: 'biomed' }];
      const fniGrant = { level: 'institution', target: 'Future Networks Institute', lines: 'first', directions: 'in', lanes: 'person' };
      let s = await sync('a.json', { institutions: both, grants: [fniGrant] });
      assert.equal([s.changed, s.added], [counts({ institutions: 1 }), counts({ grants: 1 })]);
      assert.is((await r.institution(0))?.industry, 2);
      const records = (await r.delta('main', v + 1))?.records ?? new Uint8Array();
      assert.ok(records[0] === DeltaOp.defineInstitution && records[2] === 0 && records[12] === 2, 'the gates learn the new industry');

      s = await sync('b.json', { institutions: [both[0]], grants: [] }, true);
      assert.equal([s.removed, s.massRemovals], [counts({ institutions: 1, grants: 1 }), ['grants']]);
      assert.is(await r.assignedGrant('institution', 1), null);
      assert.is((await r.institution(1))?.name, 'Future Networks Institute', 'kept');

      // Vehicles named by an empty array: v-1 goes (its tag revoked); p-1 comes back with two cards.
      s = await sync('c.json', { vehicles: [], people: [{ id: 'p-1', name: 'Li Wei (Dr)', institution: 0, card: [CARD(1), CARD(2)] }] }, true);
      assert.equal([s.added, s.changed, s.removed], [counts({ credentials: 2 }), counts({ people: 1 }), counts({ vehicles: 1, credentials: 1 })]);
      assert.equal(s.synced, ['people', 'vehicles', 'credentials']);
      assert.ok((await r.credentials('v-1')).every((x) => x.revoked));
      // A card given to another person moves: one change, active on p-2 only, in the image with p-2's institution.
      s = await sync('d.json', { people: [{ id: 'p-1', name: 'Li Wei (Dr)', institution: 0, card: CARD(1) }, { id: 'p-2', name: 'Chan Tai Man', institution: 1, card: CARD(2) }] });
      assert.equal([s.added, s.changed, s.removed], [counts({}), counts({ credentials: 1 }), counts({})]);
      const key = r.credentialKey('card', CARD(2));
      assert.equal(await r.credential({ key }), { key, subject: 'p-2', kind: 'card', revoked: false });
      assert.is((await r.tables()).credentials.find((x) => toHex(x.key) === toHex(key))?.institution, 1);
      assert.is(await r.version(), v + 4, 'one version per sync');
    });
  });
});
