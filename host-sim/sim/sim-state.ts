// What `subline sim --data DIR` keeps between runs, in DIR/sim/ (never in
// DIR's own central.db: the demo population does not enter the real
// registry):
//   central.db            the simulator's central: demo registry, events, gate identities
//   population.json       the seed and size of the demo population and what the script uses
//   gates/<id>.flash      a Node gate's data flash (whitelist, journal), saved when the run ends
//   gates/<id>.prov.flash its provisioning partition (the format counter behind its journal epoch)
//   gates/<id>.json       its journal epoch base and key id
// The next run opens the same database and flashes: the population is not
// seeded again and every gate's journal continues (same epoch, next seq).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, toHex } from '../../protocol/hex.js';
import { writeFileAtomic } from '../atomic-file.js';
import { loadFlash, saveFlash } from '../flash/flash-file.js';
import type { NorFlash } from '../flash/nor-flash.js';
import type { Population, PopulationSize } from './demo-population.js';

const FORMAT = 1;

export interface SavedPopulation {
  readonly seed: number;
  readonly size: PopulationSize;
  readonly population: Population;
  /** Subjects of the cards the script revokes (to reinstate them at the start of a later run). */
  readonly revokedSubjects: readonly string[];
  /** Whether the reader-format twins of the XS gates are enrolled. */
  readonly xsTwins: boolean;
}

export interface SavedGate {
  readonly journalEpoch: number;
  readonly gateKeyId: number;
  readonly flash: NorFlash;
  readonly provisioningFlash: NorFlash;
}

export class SimStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimStateError';
  }
}

const enc = (xs: readonly Uint8Array[]) => xs.map((x) => toHex(x));
const dec = (xs: readonly string[]) => xs.map((x) => fromHex(x));

export class SimState {
  readonly dir: string;
  readonly db: string;

  constructor(dir: string) {
    this.dir = dir;
    this.db = join(dir, 'central.db');
    mkdirSync(join(dir, 'gates'), { recursive: true, mode: 0o700 });
  }

  get #populationFile(): string {
    return join(this.dir, 'population.json');
  }

  /** The demo population an earlier run seeded (null: none yet). */
  population(): SavedPopulation | null {
    return SimState.readPopulation(this.dir);
  }

  /** Reads DIR/sim/population.json without creating anything (for a check before the run). */
  static readPopulation(dir: string): SavedPopulation | null {
    const file = join(dir, 'population.json');
    if (!existsSync(file)) return null;
    let v: {
      format: number; seed: number; size: PopulationSize; xsTwins: boolean; revokedSubjects: string[];
      people: { id: string; institution: number; scheduled: boolean; passback: boolean }[]; vehicles: string[]; consignments: string[]; suspendLater: number; revoked: string[]; institutions: number;
    };
    try {
      v = JSON.parse(readFileSync(file, 'utf8')) as typeof v;
    } catch (e) {
      throw new SimStateError(`${file}: not readable JSON (${e instanceof Error ? e.message : String(e)}); remove ${dir} to start the demo afresh`);
    }
    if (v.format !== FORMAT) throw new SimStateError(`${file}: format ${v.format}, expected ${FORMAT}; remove ${dir} to start the demo afresh`);
    return {
      seed: v.seed, size: v.size, xsTwins: v.xsTwins, revokedSubjects: v.revokedSubjects,
      population: { people: v.people.map((p) => ({ ...p, id: fromHex(p.id) })), vehicles: dec(v.vehicles), consignments: dec(v.consignments), suspendLater: v.suspendLater, revoked: dec(v.revoked), institutions: v.institutions },
    };
  }

  savePopulation(s: SavedPopulation): void {
    const p = s.population;
    const v = {
      format: FORMAT, seed: s.seed, size: s.size, xsTwins: s.xsTwins, revokedSubjects: s.revokedSubjects,
      people: p.people.map((x) => ({ ...x, id: toHex(x.id) })), vehicles: enc(p.vehicles), consignments: enc(p.consignments), suspendLater: p.suspendLater, revoked: enc(p.revoked), institutions: p.institutions,
    };
    writeFileAtomic(this.#populationFile, new TextEncoder().encode(`${JSON.stringify(v)}\n`));
  }

  #gate(id: string): { json: string; flash: string; prov: string } {
    const base = join(this.dir, 'gates', id);
    return { json: `${base}.json`, flash: `${base}.flash`, prov: `${base}.prov.flash` };
  }

  /** A gate saved by an earlier run (null: none, or incomplete). */
  gate(id: string, seed: number): SavedGate | null {
    const f = this.#gate(id);
    if (!existsSync(f.json) || !existsSync(f.flash) || !existsSync(f.prov)) return null;
    const v = JSON.parse(readFileSync(f.json, 'utf8')) as { journalEpoch: number; gateKeyId: number };
    return { journalEpoch: v.journalEpoch, gateKeyId: v.gateKeyId, flash: loadFlash(f.flash, { seed }), provisioningFlash: loadFlash(f.prov, { seed }) };
  }

  saveGate(id: string, g: { journalEpoch: number; gateKeyId: number; flash: NorFlash; provisioningFlash: NorFlash }): void {
    const f = this.#gate(id);
    saveFlash(g.flash, f.flash);
    saveFlash(g.provisioningFlash, f.prov);
    writeFileAtomic(f.json, new TextEncoder().encode(`${JSON.stringify({ journalEpoch: g.journalEpoch, gateKeyId: g.gateKeyId })}\n`));
  }
}
