// Golden cases of the reference model's incremental API (ReferenceWhitelist,
// ReferencePassback), one rule each, from docs/DECISIONS.md. The property
// tests (whitelist-model.test.ts) hold the real engine to this model; these
// hold the model to the spec.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Reason, reasonName } from '../protocol/reasons.js';
import { ReferencePassback, ReferenceWhitelist, referenceRun, type GrantJson, type ModelJson, type TapJson, type TapResult } from '../host-sim/simulation/whitelist-reference.js';

const T0 = 1_795_000_000; // 2026-11-18 11:06:40 UTC, a Wednesday
const MONDAY = Date.UTC(2026, 10, 16) / 1000; // 2026-11-16 00:00 UTC = Monday 08:00 at UTC+8

const K1 = '0101010101010101'; // individual grant, passback group 1
const K2 = '0202020202020202'; // institution 0's grant only
const K3 = '0303030303030303'; // institution 1 (no grant): industry 0's grant only
const K4 = '0404040404040404'; // individual grant limited to schedule 0
const K5 = '0505050505050505'; // individual grant for vehicles; institution 2's grant has expired
const K6 = '0606060606060606'; // not in the base image
const K7 = '0707070707070707'; // individual grant valid from T0 to T0 + 100

const ALL: GrantJson = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] };
// Schedule 0: only Monday 08:00-08:30 local time (day 0, slot 16: byte 2, bit 0).
const MONDAY_0800 = Array.from({ length: 48 }, (_, i) => (i === 2 ? '01' : '00')).join('');

const model = (): ModelJson => ({
  epoch: 1,
  version: 10,
  industries: [{ grant: ALL }],
  institutions: [{ industry: 0, grant: ALL }, { industry: 0 }, { grant: { ...ALL, validUntil: T0 - 1 } }],
  credentials: [
    { key: K1, grant: { ...ALL, passbackGroup: 1 } },
    { key: K2, institution: 0 },
    { key: K3, institution: 1 },
    { key: K4, grant: { ...ALL, schedule: 0 } },
    { key: K5, institution: 2, grant: { ...ALL, lanes: ['vehicle'] } },
    { key: K7, grant: { ...ALL, validFrom: T0, validUntil: T0 + 100 } },
  ],
  schedules: [MONDAY_0800],
});

const tap = (over: Partial<TapJson> = {}): TapJson => ({
  key: K1,
  line: 'first',
  direction: 'in',
  lane: 'person',
  passbackSeconds: 60,
  now: T0,
  clockTrusted: true,
  headIssuedAt: T0 - 60,
  headExpires: T0 + 86400,
  mode: 'normal',
  journalFull: false,
  record: true,
  strict: false,
  ...over,
});

const show = (r: TapResult) => `${r.granted ? 'granted' : 'denied'} ${reasonName(r.reason)}/${r.level}`;
const granted = (level: number): TapResult => ({ granted: true, reason: Reason.granted, level });
const denied = (reason: number): TapResult => ({ granted: false, reason, level: 0 });
/** A decision on a gate with no passback history. */
const decide = (list: ReferenceWhitelist, over: Partial<TapJson> = {}) => list.decide(tap(over), new ReferencePassback());
function expect(actual: TapResult, expected: TapResult, what: string): void {
  assert.equal(actual, expected, `${what}: got ${show(actual)}, expected ${show(expected)}`);
}

const t = suite('whitelist reference model (incremental)');

t('the base image grants at the level of the first passing grant', () => {
  const list = new ReferenceWhitelist(model());
  assert.is(list.version, 10);
  expect(decide(list, { key: K1 }), granted(1), 'individual grant');
  expect(decide(list, { key: K2 }), granted(2), 'institution grant');
  expect(decide(list, { key: K3 }), granted(3), "institution's industry grant");
  expect(decide(list, { key: K6 }), denied(Reason.unknown_credential), 'not in the list');
  expect(decide(list, { key: K5, lane: 'vehicle' }), granted(1), 'individual grant on its lane');
  // Individual fails on the lane, institution on validity: the reason of the one that got furthest.
  expect(decide(list, { key: K5 }), denied(Reason.outside_validity), 'furthest failure');
});

t('a delta adds a credential, its grant id resolved when it taps (defined by a later delta)', () => {
  const list = new ReferenceWhitelist(model());
  list.apply([{ op: 'add', key: K6, grant: 40 }]);
  assert.is(list.version, 11);
  expect(decide(list, { key: K6 }), denied(Reason.no_grant), 'grant 40 not defined yet');
  list.apply([{ op: 'defineGrant', id: 40, grant: { ...ALL, lines: ['second'] } }]);
  assert.is(list.version, 12);
  expect(decide(list, { key: K6, line: 'second' }), granted(1), 'grant 40 defined');
  expect(decide(list, { key: K6, line: 'first' }), denied(Reason.wrong_line), 'grant 40 is for the second line');
  list.apply([{ op: 'add', key: K6, institution: 0 }]);
  expect(decide(list, { key: K6, line: 'first' }), granted(2), 're-added under institution 0, no own grant');
});

t('a revoke after a grant denies the credential; revoked is checked before suspended', () => {
  const list = new ReferenceWhitelist(model());
  expect(decide(list, { key: K1 }), granted(1), 'before');
  list.apply([{ op: 'revoke', key: K1 }]);
  expect(decide(list, { key: K1 }), denied(Reason.revoked), 'after the revoke');
  expect(decide(list, { key: K2 }), granted(2), 'others unaffected');
  list.apply([{ op: 'suspendSubject', key: K1 }]);
  expect(decide(list, { key: K1 }), denied(Reason.revoked), 'revoked and suspended');
  list.apply([{ op: 'suspendSubject', key: K2 }]);
  expect(decide(list, { key: K2 }), denied(Reason.subject_suspended), 'suspended');
  list.apply([{ op: 'resumeSubject', key: K2 }]);
  expect(decide(list, { key: K2 }), granted(2), 'resumed');
  list.apply([{ op: 'add', key: K1, grant: 0 }]);
  // Re-added: no longer revoked, but the holder's suspension stays.
  expect(decide(list, { key: K1 }), denied(Reason.subject_suspended), 're-added while suspended');
});

t('an institution suspension denies its members; its industry suspension cascades', () => {
  const list = new ReferenceWhitelist(model());
  list.apply([{ op: 'suspendInstitution', institution: 0 }]);
  expect(decide(list, { key: K2 }), denied(Reason.institution_suspended), 'member of the suspended institution');
  expect(decide(list, { key: K3 }), granted(3), 'member of another institution');
  expect(decide(list, { key: K1 }), granted(1), 'no institution');
  list.apply([{ op: 'resumeInstitution', institution: 0 }, { op: 'suspendIndustry', industry: 0 }]);
  expect(decide(list, { key: K2 }), denied(Reason.industry_suspended), "institution 0's industry");
  expect(decide(list, { key: K3 }), denied(Reason.industry_suspended), "institution 1's industry");
  list.apply([{ op: 'resumeIndustry', industry: 0 }]);
  expect(decide(list, { key: K2 }), granted(2), 'all resumed');
  // A suspension in the base image, lifted by a delta.
  const m = model();
  m.institutions[0]!.suspended = true;
  const base = new ReferenceWhitelist(m);
  expect(decide(base, { key: K2 }), denied(Reason.institution_suspended), 'suspended in the base image');
  base.apply([{ op: 'resumeInstitution', institution: 0 }]);
  expect(decide(base, { key: K2 }), granted(2), 'resumed by a delta');
});

t('passback: the same direction within the window is refused, after it (or the other way) granted', () => {
  const list = new ReferenceWhitelist(model());
  const gate = new ReferencePassback();
  expect(list.decide(tap({ now: T0 }), gate), granted(1), 'first passage');
  assert.is(gate.size, 1);
  expect(list.decide(tap({ now: T0 + 59 }), gate), denied(Reason.passback_violation), 'again within the window');
  expect(list.decide(tap({ now: T0 + 60 }), gate), granted(1), 'again once the window is over');
  expect(list.decide(tap({ now: T0 + 61, direction: 'out' }), gate), granted(1), 'the other way within the window');
  expect(list.decide(tap({ now: T0 + 62 }), gate), granted(1), 'in after out: the last passage counts');
  expect(list.decide(tap({ now: T0 + 63, passbackSeconds: 0 }), gate), granted(1), 'no window');
  // Another gate has its own history; a tap that does not record leaves none.
  const other = new ReferencePassback();
  expect(list.decide(tap({ now: T0 + 64, record: false }), other), granted(1), 'other gate, not recorded');
  assert.is(other.size, 0);
  expect(list.decide(tap({ now: T0 + 65 }), other), granted(1), 'other gate, nothing recorded before');
  // A grant without a passback group never records.
  expect(list.decide(tap({ key: K2 }), other), granted(2), 'no group');
  expect(list.decide(tap({ key: K2, now: T0 + 1 }), other), granted(2), 'no group, again');
  assert.is(other.size, 1);
  // A wiped gate forgets.
  expect(list.decide(tap({ now: T0 + 66 }), gate), denied(Reason.passback_violation), 'before the wipe');
  gate.clear();
  assert.is(gate.size, 0);
  expect(list.decide(tap({ now: T0 + 67 }), gate), granted(1), 'after the wipe');
});

t('a clone is not affected by a later apply, nor the original by the clone', () => {
  const v10 = new ReferenceWhitelist(model());
  const v11 = v10.clone();
  v11.apply([{ op: 'revoke', key: K1 }, { op: 'suspendInstitution', institution: 0 }, { op: 'suspendIndustry', industry: 0 }, { op: 'add', key: K6, grant: 40 }, { op: 'defineGrant', id: 40, grant: ALL }]);
  assert.is(v10.version, 10);
  assert.is(v11.version, 11);
  expect(decide(v10, { key: K1 }), granted(1), 'v10: not revoked');
  expect(decide(v10, { key: K2 }), granted(2), 'v10: institution not suspended');
  expect(decide(v10, { key: K3 }), granted(3), 'v10: industry not suspended');
  expect(decide(v10, { key: K6 }), denied(Reason.unknown_credential), 'v10: not added');
  expect(decide(v11, { key: K1 }), denied(Reason.revoked), 'v11: revoked');
  expect(decide(v11, { key: K2 }), denied(Reason.institution_suspended), 'v11: institution suspended');
  expect(decide(v11, { key: K3 }), denied(Reason.industry_suspended), 'v11: industry suspended');
  expect(decide(v11, { key: K6 }), granted(1), 'v11: added');
  // The other way: a delta on the original, after the clone.
  const v12 = v11.clone();
  v11.apply([{ op: 'defineGrant', id: 41, grant: ALL }, { op: 'add', key: K2, grant: 41 }, { op: 'resumeIndustry', industry: 0 }]);
  assert.is(v12.version, 11);
  expect(decide(v12, { key: K2 }), denied(Reason.institution_suspended), 'v12: K2 still in institution 0');
  expect(decide(v12, { key: K3 }), denied(Reason.industry_suspended), 'v12: industry still suspended');
  v12.apply([{ op: 'add', key: K2, grant: 41 }]);
  expect(decide(v12, { key: K2 }), denied(Reason.no_grant), 'v12: grant 41 was defined in v11 only');
});

t('freshness per line profile: stale, expired and unsynced', () => {
  const list = new ReferenceWhitelist(model());
  const at = (line: 'first' | 'second', strict: boolean, key: string, state: 'fresh' | 'fresh-edge' | 'stale' | 'expired' | 'no-head' | 'unsynced') => {
    const staleAfter = strict || line === 'second' ? 900 : 3600;
    const head =
      state === 'fresh' ? { headIssuedAt: T0 - 60 }
      : state === 'fresh-edge' ? { headIssuedAt: T0 - staleAfter }
      : state === 'stale' ? { headIssuedAt: T0 - staleAfter - 1 }
      : state === 'expired' ? { headIssuedAt: T0 - 60, headExpires: T0 }
      : state === 'no-head' ? { headIssuedAt: 0, headExpires: T0 + 86400 } // no head: expired whatever the expiry says
      : { clockTrusted: false };
    return decide(list, { line, strict, key, ...head });
  };
  const cases: [line: 'first' | 'second', strict: boolean, state: Parameters<typeof at>[3], individual: TapResult, institution: TapResult][] = [
    // first line (a port): stale still normal, expired/unsynced individual grants only
    ['first', false, 'fresh-edge', granted(1), granted(2)],
    ['first', false, 'stale', granted(1), granted(2)],
    ['first', false, 'expired', granted(1), denied(Reason.level_not_allowed)],
    ['first', false, 'no-head', granted(1), denied(Reason.level_not_allowed)],
    ['first', false, 'unsynced', granted(1), denied(Reason.level_not_allowed)],
    // second line (a channel): stale individual only, expired/unsynced closed
    ['second', false, 'fresh-edge', granted(1), granted(2)],
    ['second', false, 'stale', granted(1), denied(Reason.level_not_allowed)],
    ['second', false, 'expired', denied(Reason.whitelist_expired), denied(Reason.whitelist_expired)],
    ['second', false, 'no-head', denied(Reason.whitelist_expired), denied(Reason.whitelist_expired)],
    ['second', false, 'unsynced', denied(Reason.clock_unsynced), denied(Reason.clock_unsynced)],
    // strict profile: only fresh data and a trusted clock
    ['first', true, 'fresh', granted(1), granted(2)],
    ['first', true, 'fresh-edge', granted(1), granted(2)],
    ['first', true, 'stale', denied(Reason.whitelist_stale), denied(Reason.whitelist_stale)],
    ['first', true, 'expired', denied(Reason.whitelist_expired), denied(Reason.whitelist_expired)],
    ['first', true, 'unsynced', denied(Reason.clock_unsynced), denied(Reason.clock_unsynced)],
  ];
  for (const [line, strict, state, individual, institution] of cases) {
    const name = `${strict ? 'strict' : line} ${state}`;
    expect(at(line, strict, K1, state), individual, `${name}, individual grant`);
    expect(at(line, strict, K2, state), institution, `${name}, institution grant`);
  }
  // Individual only: with no grant at all it is still no_grant, not level_not_allowed.
  list.apply([{ op: 'add', key: K6 }]);
  expect(at('first', false, K6, 'unsynced'), denied(Reason.no_grant), 'first unsynced, no grant at all');
});

t('mode and journal come first: emergency grants, lockdown and a full journal deny', () => {
  const list = new ReferenceWhitelist(model());
  list.apply([{ op: 'revoke', key: K1 }]);
  expect(decide(list, { mode: 'emergency', journalFull: true, clockTrusted: false, line: 'second', key: K6 }), { granted: true, reason: Reason.emergency_release, level: 4 }, 'emergency');
  expect(decide(list, { mode: 'lockdown', journalFull: true, key: K2 }), denied(Reason.lockdown), 'lockdown');
  expect(decide(list, { journalFull: true, clockTrusted: false, line: 'second', key: K2 }), denied(Reason.journal_full), 'journal full');
  expect(decide(list, { clockTrusted: false, line: 'second', key: K6 }), denied(Reason.clock_unsynced), 'freshness before the credential');
});

t('validity windows are inclusive at both ends', () => {
  const list = new ReferenceWhitelist(model());
  expect(decide(list, { key: K7, now: T0 - 1 }), denied(Reason.outside_validity), 'before validFrom');
  expect(decide(list, { key: K7, now: T0 }), granted(1), 'at validFrom');
  expect(decide(list, { key: K7, now: T0 + 100 }), granted(1), 'at validUntil');
  expect(decide(list, { key: K7, now: T0 + 101 }), denied(Reason.outside_validity), 'after validUntil');
  expect(decide(list, { key: K5, now: T0 - 1 }), granted(2), "at the institution grant's validUntil");
});

t('schedules are read in local time (UTC+8), half-hour slots', () => {
  const list = new ReferenceWhitelist(model());
  expect(decide(list, { key: K4, now: MONDAY + 60 }), granted(1), 'Monday 08:01 local');
  expect(decide(list, { key: K4, now: MONDAY + 1799 }), granted(1), 'Monday 08:29:59 local');
  expect(decide(list, { key: K4, now: MONDAY + 1800 }), denied(Reason.outside_schedule), 'Monday 08:30 local');
  expect(decide(list, { key: K4, now: MONDAY - 1 }), denied(Reason.outside_schedule), 'Monday 07:59:59 local');
  expect(decide(list, { key: K4, now: MONDAY + 86400 * 7 + 60 }), granted(1), 'a week later');
});

t('referenceRun replays a scenario through the incremental API', () => {
  const r = referenceRun({
    model: model(),
    deltas: [[{ op: 'revoke', key: K2 }], [{ op: 'noop' }]],
    reboot: false,
    taps: [tap({ key: K1 }), tap({ key: K1, now: T0 + 1 }), tap({ key: K2 })],
  });
  assert.equal(r, { deltaErrors: [null, null], version: 12, taps: [granted(1), denied(Reason.passback_violation), denied(Reason.revoked)] });
});

t.run();
