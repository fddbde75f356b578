// The baseline the issue asks for: a naive whitelist as a Map of plain
// objects (hex key -> credential object with nested institution/industry/
// grant objects), built from the same image, deciding the same taps with
// the same rules (freshness and passback left out: both sides are fresh).

import { WhitelistImage } from '../firmware/core/whitelist-image.js';
import { NONE16 } from '../protocol/whitelist-format.js';

interface NGrant {
  lines: string[];
  directions: string[];
  lanes: string[];
  validFrom: number;
  validUntil: number;
}
interface NIndustry {
  suspended: boolean;
  grant: NGrant | null;
}
interface NInstitution {
  suspended: boolean;
  industry: NIndustry | null;
  grant: NGrant | null;
}
interface NCred {
  institution: NInstitution | null;
  grant: NGrant | null;
}

export function buildNaive(image: Uint8Array): Map<string, NCred> {
  const img = WhitelistImage.open(image);
  if (typeof img === 'string') throw new Error(img);
  const grant = (g: number): NGrant | null => {
    if (g === NONE16) return null;
    const m = img.grantMasks(g);
    return {
      lines: [m & 1 ? 'first' : '', m & 2 ? 'second' : ''].filter((x) => x !== ''),
      directions: [m & 4 ? 'in' : '', m & 8 ? 'out' : ''].filter((x) => x !== ''),
      lanes: [m & 16 ? 'person' : '', m & 32 ? 'vehicle' : '', m & 64 ? 'goods' : ''].filter((x) => x !== ''),
      validFrom: img.grantValidFrom(g),
      validUntil: img.grantValidUntil(g),
    };
  };
  const industries = Array.from({ length: img.industryCount }, (_, i) => ({ suspended: img.industrySuspended(i), grant: grant(img.industryGrant(i)) }));
  const institutions = Array.from({ length: img.institutionCount }, (_, i) => {
    const ind = img.institutionIndustry(i);
    return { suspended: img.institutionSuspended(i), industry: ind === NONE16 ? null : (industries[ind] ?? null), grant: grant(img.institutionGrant(i)) };
  });
  const map = new Map<string, NCred>();
  for (let i = 0; i < img.credCount; i++) {
    const inst = img.credInstitution(i);
    const key = img.credKeyHi(i).toString(16).padStart(8, '0') + img.credKeyLo(i).toString(16).padStart(8, '0');
    // A fresh grant object per credential, as a naive loader from JSON would produce.
    map.set(key, { institution: inst === NONE16 ? null : (institutions[inst] ?? null), grant: grant(img.credGrant(i)) });
  }
  return map;
}

function passes(g: NGrant | null, now: number): boolean {
  return g !== null && g.lines.includes('first') && g.directions.includes('in') && g.lanes.includes('person') && now >= g.validFrom && now <= g.validUntil;
}

export function decideNaive(map: Map<string, NCred>, hi: number, lo: number, now: number): boolean {
  const c = map.get(hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0'));
  if (c === undefined) return false;
  if (c.institution?.suspended === true || c.institution?.industry?.suspended === true) return false;
  return passes(c.grant, now) || passes(c.institution?.grant ?? null, now) || passes(c.institution?.industry?.grant ?? null, now);
}
