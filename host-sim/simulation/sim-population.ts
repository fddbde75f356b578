// The simulation's registry: a small park (industries, institutions, people
// with cards, grants at every level), registry churn (revocations,
// suspensions, re-grants, new staff), and the reference whitelist of every
// list version, taken from the registry's own tables after each change (the
// registry "at the version a gate holds", decided by the reference model,
// which shares no code with the firmware).

import { createHash } from 'node:crypto';
import { toHex } from '../../protocol/hex.js';
import type { GrantSpec, TableModel } from '../central/image-builder.js';
import type { Registry } from '../central/registry.js';
import { ReferenceWhitelist } from './whitelist-reference.js';
import type { GrantJson, ModelJson } from './whitelist-model.js';


export interface SimPerson {
  readonly subject: string;
  readonly card: Uint8Array;
  readonly institution: number;
  revoked: boolean;
  suspended: boolean;
}

export interface ChurnRecord {
  readonly op: string;
  readonly version: number;
  /** A revocation or suspension: every connected gate must deny it within the bound. */
  readonly denies?: Uint8Array;
}

/** A card id no registry knows (deterministic from the seed and n). */
export function unknownCard(seed: number, n: number): Uint8Array {
  void seed; // each run is a world of its own: the ids need not differ between seeds
  return emCard(0x30, n);
}

/**
 * A 5-byte card id as an EM4100 reader reads it (the XS gates' reader sees
 * the card's frame; the Node gates get the id): a kind byte (0x10 people,
 * 0x20 people added later, 0x30 strangers) and a number, so no two collide.
 */
function emCard(kind: number, n: number): Uint8Array {
  return Uint8Array.of(kind, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

export class SimPopulation {
  readonly people: SimPerson[] = [];
  readonly institutions: number[] = [];
  readonly industries: number[] = [];
  /** Reference whitelists by list version (epoch is fixed: one epoch per run). */
  readonly #references = new Map<number, ReferenceWhitelist>();
  readonly #random: () => number;
  #added = 0;
  /** The list's epoch (one per run: nothing here starts a new one). */
  epoch = 0;
  readonly #suspendedInstitutions = new Set<number>();

  constructor(random: () => number) {
    this.#random = random;
    this.#references.set(0, new ReferenceWhitelist({ epoch: 1, version: 0, industries: [], institutions: [], credentials: [], schedules: [] }));
  }

  /** The reference of a version, or undefined if the registry never had it. */
  reference(version: number): ReferenceWhitelist | undefined {
    return this.#references.get(version);
  }

  get versions(): number {
    return this.#references.size;
  }

  async seed(registry: Registry, nowSeconds: number, size: { institutions: number; people: number }): Promise<void> {
    const r = this.#random;
    const both: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] };
    await registry.bulk(async (reg) => {
      for (let i = 0; i < 3; i++) this.industries.push(await reg.addIndustry({ name: `Industry ${i}`, code: `ind-${i}` }));
      // One industry files for the first line only: its staff without an institution grant pass there on it.
      await reg.grant('industry', this.industries[0]!, { lines: ['first'], directions: ['in', 'out'], lanes: ['person'] });
      for (let i = 0; i < size.institutions; i++) {
        const inst = await reg.addInstitution({ name: `Institution ${i}`, industry: this.industries[i % this.industries.length]! });
        this.institutions.push(inst);
        if (i % 4 === 0) continue; // no institution grant: the industry's, or none
        await reg.grant('institution', inst, i % 4 === 1 ? { ...both, passbackGroup: 1 } : i % 4 === 2 ? { ...both, lines: ['first'] } : { ...both, directions: ['in'] });
      }
      for (let p = 0; p < size.people; p++) {
        const institution = this.institutions[Math.floor(r() * this.institutions.length)]!;
        const subject = `p-${p}`;
        await reg.addSubject({ id: subject, kind: 'person', institution, name: `Person ${p}` });
        const card = emCard(0x10, p);
        await reg.addCredential({ subject, kind: 'card', rawId: card });
        if (p % 11 === 3) await reg.grant('individual', subject, { ...both, passbackGroup: 2, validUntil: nowSeconds + 30 * 86400 });
        else if (p % 17 === 5) await reg.grant('individual', subject, { ...both, validFrom: nowSeconds + 86400 }); // not valid yet
        this.people.push({ subject, card, institution, revoked: false, suspended: false });
      }
    });
    await this.snapshot(registry);
  }

  /** One registry change, chosen by the seed; returns what it did (null if nothing applied). */
  async churn(registry: Registry): Promise<ChurnRecord> {
    const r = this.#random;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const x = r();
    let op: string;
    let denies: Uint8Array | undefined;
    if (x < 0.3) {
      const p = pick(this.people.filter((q) => !q.revoked));
      await registry.revokeCredential({ kind: 'card', rawId: p.card });
      p.revoked = true;
      op = `revoke ${p.subject}`;
      denies = p.card;
    } else if (x < 0.45) {
      const p = pick(this.people.filter((q) => !q.revoked));
      if (p.suspended) await registry.resume('subject', p.subject);
      else {
        await registry.suspend('subject', p.subject);
        denies = p.card;
      }
      p.suspended = !p.suspended;
      op = `${p.suspended ? 'suspend' : 'resume'} ${p.subject}`;
    } else if (x < 0.6) {
      const inst = pick(this.institutions);
      const suspended = this.#suspendedInstitutions.has(inst);
      if (suspended) {
        await registry.resume('institution', inst);
        this.#suspendedInstitutions.delete(inst);
      } else {
        await registry.suspend('institution', inst);
        this.#suspendedInstitutions.add(inst);
      }
      op = `${suspended ? 'resume' : 'suspend'} institution ${inst}`;
    } else if (x < 0.8) {
      const p = pick(this.people);
      const lines: GrantSpec['lines'] = r() < 0.5 ? ['first'] : ['first', 'second'];
      await registry.grant('individual', p.subject, { lines, directions: ['in', 'out'], lanes: ['person'], ...(r() < 0.3 ? { passbackGroup: 2 } : {}) });
      op = `grant ${p.subject} ${lines.join('+')}`;
    } else {
      // An import: a few new staff as one change.
      const count = 1 + Math.floor(r() * 5);
      const added: SimPerson[] = [];
      await registry.bulk(async (reg) => {
        for (let k = 0; k < count; k++) {
          const n = this.#added++;
          const subject = `new-${n}`;
          const institution = pick(this.institutions);
          const card = emCard(0x20, n);
          await reg.addSubject({ id: subject, kind: 'person', institution, name: `New person ${n}` });
          await reg.addCredential({ subject, kind: 'card', rawId: card });
          added.push({ subject, card, institution, revoked: false, suspended: false });
        }
      });
      this.people.push(...added);
      op = `import ${added.map((p) => p.subject).join(',')}`;
    }
    const version = await this.snapshot(registry);
    return { op, version, ...(denies !== undefined ? { denies } : {}) };
  }

  /** Takes the registry's tables as the reference of its current version. */
  async snapshot(registry: Registry): Promise<number> {
    const t = await registry.tables();
    this.epoch = t.epoch;
    this.#references.set(t.version, new ReferenceWhitelist(modelFromTables(t)));
    return t.version;
  }

  /** The credential key of a card (what the reference and the central index). */
  static keyHex(registry: Registry, card: Uint8Array): string {
    return toHex(registry.credentialKey('card', card));
  }
}

/** The registry's tables as the reference's JSON model (grants inline). */
export function modelFromTables(t: TableModel): ModelJson {
  const grant = (id: number | undefined): GrantJson | undefined => {
    if (id === undefined) return undefined;
    const g = t.grants[id];
    if (g === null || g === undefined) return undefined;
    return {
      lines: g.lines,
      directions: g.directions,
      lanes: g.lanes,
      ...(g.validFrom !== undefined ? { validFrom: g.validFrom } : {}),
      ...(g.validUntil !== undefined ? { validUntil: g.validUntil } : {}),
      ...(g.schedule !== undefined ? { schedule: g.schedule } : {}),
      ...(g.passbackGroup !== undefined ? { passbackGroup: g.passbackGroup } : {}),
    };
  };
  const opt = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> => (v === undefined ? {} : ({ [k]: v } as Record<K, V>));
  return {
    epoch: t.epoch,
    version: t.version,
    industries: t.industries.map((i) => ({ ...opt('suspended', i.suspended), ...opt('grant', grant(i.grant)) })),
    institutions: t.institutions.map((i) => ({ ...opt('industry', i.industry), ...opt('suspended', i.suspended), ...opt('grant', grant(i.grant)) })),
    credentials: t.credentials.map((c) => ({ key: toHex(c.key), ...opt('institution', c.institution), ...opt('grant', grant(c.grant)) })),
    schedules: t.schedules.map((s) => toHex(s)),
  };
}

/** 32 bytes from the seed and a label (keys of a simulated deployment). */
export function seededKey(seed: number, label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`subline-simulation:${seed}:${label}`).digest());
}
