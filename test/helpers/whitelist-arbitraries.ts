// fast-check generators for whitelist scenarios: small populations drawn
// from a shared key pool so taps hit known, unknown, revoked and suspended
// credentials, with times around a fixed epoch so windows and schedules bite.

import fc from 'fast-check';
import type { DeltaOpJson, GrantJson, Scenario, TapJson } from './whitelist-scenario.js';

export const T0 = 1_795_000_000; // 2026-11-18, a Wednesday
const lines = ['first', 'second'] as const;
const dirs = ['in', 'out'] as const;
const lanes = ['person', 'vehicle', 'goods'] as const;

const keyPool = fc.uniqueArray(fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')), { minLength: 12, maxLength: 12 });

function subsetOrAll<T>(all: readonly T[]): fc.Arbitrary<readonly T[]> {
  // Mostly everything, so grants pass often enough to reach the later checks.
  return fc.oneof({ weight: 3, arbitrary: fc.constant([...all]) }, { weight: 1, arbitrary: fc.subarray([...all], { minLength: 0 }) });
}

const grant = (schedules: number): fc.Arbitrary<GrantJson> =>
  fc.record(
    {
      lines: subsetOrAll(lines),
      directions: subsetOrAll(dirs),
      lanes: subsetOrAll(lanes),
      validFrom: fc.integer({ min: T0 - 86400 * 30, max: T0 + 86400 }),
      validUntil: fc.integer({ min: T0, max: T0 + 86400 * 30 }),
      schedule: schedules > 0 ? fc.integer({ min: 0, max: schedules }) : fc.constant(0), // == schedules: dangling
      passbackGroup: fc.integer({ min: 1, max: 2 }),
    },
    { requiredKeys: ['lines', 'directions', 'lanes'] },
  );

export const scheduleHex = fc.uint8Array({ minLength: 48, maxLength: 48 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(''));

export function scenario(): fc.Arbitrary<Scenario> {
  return fc
    .record({ pool: keyPool, schedules: fc.array(scheduleHex, { maxLength: 2 }), nInd: fc.integer({ min: 0, max: 3 }), nInst: fc.integer({ min: 0, max: 5 }) })
    .chain(({ pool, schedules, nInd, nInst }) => {
      const g = grant(schedules.length);
      const industries = fc.array(fc.record({ suspended: fc.boolean(), grant: g }, { requiredKeys: [] }), { minLength: nInd, maxLength: nInd });
      const institutions = fc.array(fc.record({ industry: fc.integer({ min: 0, max: Math.max(0, nInd - 1) }), suspended: fc.boolean(), grant: g }, { requiredKeys: [] }), { minLength: nInst, maxLength: nInst }).map((xs) => (nInd === 0 ? xs.map(({ industry: _i, ...rest }) => rest) : xs));
      const credentials = fc.subarray(pool.slice(0, 10), { minLength: 0 }).chain((keys) =>
        fc.tuple(...keys.map((key) => fc.record({ key: fc.constant(key), institution: fc.integer({ min: 0, max: Math.max(0, nInst - 1) }), grant: g }, { requiredKeys: ['key'] }).map((c) => (nInst === 0 ? { key: c.key, ...(c.grant ? { grant: c.grant } : {}) } : c)))),
      );
      const key = fc.constantFrom(...pool);
      const op: fc.Arbitrary<DeltaOpJson> = fc.oneof(
        fc.record({ op: fc.constant('add' as const), key, institution: fc.integer({ min: 0, max: nInst + 1 }), grant: fc.integer({ min: 0, max: 12 }) }, { requiredKeys: ['op', 'key'] }),
        fc.record({ op: fc.constantFrom('revoke' as const, 'suspendSubject' as const, 'resumeSubject' as const), key }),
        fc.record({ op: fc.constantFrom('suspendInstitution' as const, 'resumeInstitution' as const), institution: fc.integer({ min: 0, max: nInst + 1 }) }),
        fc.record({ op: fc.constantFrom('suspendIndustry' as const, 'resumeIndustry' as const), industry: fc.integer({ min: 0, max: nInd + 1 }) }),
        fc.record({ op: fc.constant('defineGrant' as const), id: fc.integer({ min: 8, max: 12 }), grant: g }),
        fc.record({ op: fc.constant('defineIndustry' as const), industry: fc.integer({ min: 0, max: nInd + 1 }), grant: fc.integer({ min: 0, max: 12 }) }, { requiredKeys: ['op', 'industry'] }),
        fc.constant({ op: 'noop' as const }),
        fc.record({ op: fc.constant('defineInstitution' as const), institution: fc.integer({ min: 0, max: nInst + 1 }), industry: fc.integer({ min: 0, max: nInd }), grant: fc.integer({ min: 0, max: 12 }) }, { requiredKeys: ['op', 'institution'] }),
      );
      const tap: fc.Arbitrary<TapJson> = fc.record({
        key,
        line: fc.constantFrom(...lines),
        direction: fc.constantFrom(...dirs),
        lane: fc.constantFrom(...lanes),
        passbackSeconds: fc.constantFrom(0, 60, 600),
        // Clustered times make repeats inside anti-passback windows likely; wide ones exercise validity and schedules.
        now: fc.oneof(fc.integer({ min: T0 - 86400 * 2, max: T0 + 86400 * 7 }), fc.constantFrom(T0 + 10, T0 + 40, T0 + 300, T0 + 900)),
        clockTrusted: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        strict: fc.boolean(),
        headIssuedAt: fc.constantFrom(0, T0 - 86400 * 3, T0 - 4000, T0 - 1000, T0 - 100),
        headExpires: fc.constantFrom(T0 - 10, T0 + 86400 * 30),
        mode: fc.constantFrom('normal', 'normal', 'normal', 'normal', 'normal', 'normal', 'lockdown', 'emergency'),
        journalFull: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        record: fc.boolean(),
      });
      return fc.record({
        model: fc.record({ epoch: fc.constant(1), version: fc.integer({ min: 1, max: 50 }), industries, institutions, credentials, schedules: fc.constant(schedules) }),
        deltas: fc.array(fc.array(op, { minLength: 1, maxLength: 6 }), { maxLength: 4 }),
        reboot: fc.boolean(),
        // Some taps are repeated a few seconds later at the same gate: the anti-passback case.
        taps: fc.array(fc.tuple(tap, fc.boolean()), { minLength: 1, maxLength: 25 }).map((xs) => xs.flatMap(([t, again]) => (again ? [{ ...t, record: true }, { ...t, now: t.now + 5 }] : [t]))),
      });
    });
}
