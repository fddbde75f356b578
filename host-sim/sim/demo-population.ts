// The simulator's demo population, at the scale ../shared/DOMAIN.md gives for
// the Shenzhen park of the Hetao cooperation zone: ~40 institutions across
// the focus industries, ~3,000 research staff, a few hundred vehicles and a
// few hundred consignments of research materials. Seeded: the same seed gives
// the same population.

import { buildSchedule, type GrantSpec } from '../central/image-builder.js';
import type { Registry } from '../central/registry.js';
import { mulberry32 } from '../flash/nor-flash.js';

export const INDUSTRIES = [
  { code: 'next-gen-it', name: 'Next-generation information technology' },
  { code: 'biomedicine', name: 'Biomedicine' },
  { code: 'ai', name: 'Artificial intelligence' },
  { code: 'digital-economy', name: 'Digital economy' },
  { code: 'quantum', name: 'Quantum science' },
  { code: 'materials', name: 'Materials' },
  { code: 'life-science', name: 'Life science' },
] as const;

const INSTITUTION_KINDS = ['Research Institute', 'Lab (HK University platform)', 'R&D Centre', 'Innovation Hub', 'Platform'];
const te = new TextEncoder();

export interface Population {
  /** Raw card ids of enrolled people (index = person). */
  readonly people: { id: Uint8Array; institution: number; scheduled: boolean; passback: boolean }[];
  readonly vehicles: Uint8Array[];
  readonly consignments: Uint8Array[];
  /** Institution suspended by the script during the run. */
  readonly suspendLater: number;
  /** Cards the script revokes during the run (taps on them are then denied `revoked`). */
  readonly revoked: Uint8Array[];
  readonly institutions: number;
}

export interface PopulationSize {
  readonly institutions: number;
  readonly people: number;
  readonly vehicles: number;
  readonly consignments: number;
}

export const DEMO_SIZE: PopulationSize = { institutions: 40, people: 3000, vehicles: 300, consignments: 300 };

/**
 * A weekly schedule (UTC+8) that is closed during the current half-hour and
 * the next two hours, open otherwise: taps of its holders are denied
 * `outside_schedule` while the simulation runs, whatever the time of day.
 */
function closedNowSchedule(nowSeconds: number): Uint8Array {
  const local = nowSeconds + 8 * 3600;
  const days = Math.floor(local / 86400);
  const day = (days + 3) % 7;
  const slot = Math.floor((local - days * 86400) / 1800);
  const open: [number, number, number][] = [];
  for (let d = 0; d < 7; d++) open.push([d, 0, 48]);
  const s = buildSchedule(open);
  for (let k = 0; k < 5; k++) {
    const at = slot + k;
    const dd = (day + Math.floor(at / 48)) % 7;
    const ss = at % 48;
    s[dd * 6 + (ss >> 3)]! &= ~(1 << (ss & 7));
  }
  return s;
}

export async function seedPopulation(r: Registry, seed: number, size: PopulationSize = DEMO_SIZE, nowSeconds = Math.floor(Date.now() / 1000)): Promise<Population> {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const all: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] };
  return r.bulk(async (reg) => {
    const industries: number[] = [];
    for (const i of INDUSTRIES) industries.push(await reg.addIndustry({ name: i.name, code: i.code }));
    // Industry-level filings for two focus industries: their staff pass the first line on the industry's filing.
    await reg.grant('industry', industries[2]!, { lines: ['first'], directions: ['in', 'out'], lanes: ['person'] });
    await reg.grant('industry', industries[4]!, { lines: ['first'], directions: ['in', 'out'], lanes: ['person'] });
    const schedule = await reg.addSchedule(closedNowSchedule(nowSeconds));
    const institutions: number[] = [];
    for (let i = 0; i < size.institutions; i++) {
      const ind = industries[i % industries.length]!;
      const inst = await reg.addInstitution({ name: `${INDUSTRIES[i % INDUSTRIES.length]!.name} ${pick(INSTITUTION_KINDS)} ${i + 1}`, industry: ind });
      institutions.push(inst);
      // Most institutions hold an institution-level filing for people on both lines; some only the first line.
      if (i % 5 !== 4) await reg.grant('institution', inst, i % 7 === 3 ? { ...all, lines: ['first'] } : { ...all, passbackGroup: 1 });
    }
    const people: Population['people'] = [];
    for (let p = 0; p < size.people; p++) {
      const inst = institutions[Math.floor(rnd() * institutions.length)]!;
      const id = `p-${p}`;
      await reg.addSubject({ id, kind: 'person', institution: inst, name: `Researcher ${p}` });
      const card = te.encode(`card-${seed}-${p}`);
      await reg.addCredential({ subject: id, kind: 'card', rawId: card });
      const scheduled = p % 97 === 5;
      // A few individual filings: a schedule that is closed right now, or visiting staff with a short validity.
      if (scheduled) await reg.grant('individual', id, { ...all, schedule });
      else if (p % 53 === 7) await reg.grant('individual', id, { ...all, validUntil: nowSeconds + 30 * 86400 });
      people.push({ id: card, institution: inst, scheduled, passback: true });
    }
    const vehicles: Uint8Array[] = [];
    for (let v = 0; v < size.vehicles; v++) {
      const id = `v-${v}`;
      await reg.addSubject({ id, kind: 'vehicle', institution: institutions[v % institutions.length]!, name: `Vehicle ${v}` });
      const tag = te.encode(`epc-veh-${seed}-${v}`);
      await reg.addCredential({ subject: id, kind: 'uhf', rawId: tag });
      await reg.grant('individual', id, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['vehicle'] });
      vehicles.push(tag);
    }
    const consignments: Uint8Array[] = [];
    for (let c = 0; c < size.consignments; c++) {
      const id = `g-${c}`;
      await reg.addSubject({ id, kind: 'goods', institution: institutions[c % institutions.length]!, name: `Consignment ${c} (research samples)` });
      const tag = te.encode(`epc-goods-${seed}-${c}`);
      await reg.addCredential({ subject: id, kind: 'uhf', rawId: tag });
      await reg.grant('individual', id, { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['goods'] });
      consignments.push(tag);
    }
    const revoked = people.filter((_, i) => i % 211 === 13).map((p) => p.id);
    // One institution is suspended from the start (its staff are denied) and another during the run.
    await reg.suspend('institution', institutions[institutions.length - 1]!);
    return { people, vehicles, consignments, suspendLater: institutions[1]!, revoked, institutions: institutions.length };
  });
}
