// The gates the central knows: one row per gate identity (id, site, list,
// line, direction, lane, state, key id), written by `subline provision`
// and `subline central gates --decommission`, read by the central for every
// message a gate sends (gate-authenticator.ts). A decommissioned identity is
// never active again: re-provisioning it is refused. The keys themselves are
// derived from the master key (gate-keys.ts) and not stored here.

import type { SqlDb } from './store/sql-db.js';

export type GateIdentityState = 'active' | 'decommissioned';

export interface GateIdentityInput {
  readonly gate: string;
  readonly site: string;
  readonly list: string;
  readonly line: 'first' | 'second';
  readonly direction: 'in' | 'out';
  readonly lane: 'person' | 'vehicle' | 'goods';
}

export interface GateIdentity extends GateIdentityInput {
  readonly state: GateIdentityState;
  /** The generation of the gate's key (kid); +1 on every re-provisioning. */
  readonly keyId: number;
  readonly provisionedAt: number;
  readonly decommissionedAt: number | null;
}

export class GateRegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GateRegistryError';
  }
}

interface Row {
  gate: string;
  site: string;
  list: string;
  line: 'first' | 'second';
  direction: 'in' | 'out';
  lane: 'person' | 'vehicle' | 'goods';
  state: GateIdentityState;
  key_id: number;
  provisioned_at: number;
  decommissioned_at: number | null;
}

const MAX_KEY_ID = 0xffff;

function identity(r: Row): GateIdentity {
  return { gate: r.gate, site: r.site, list: r.list, line: r.line, direction: r.direction, lane: r.lane, state: r.state, keyId: r.key_id, provisionedAt: r.provisioned_at, decommissionedAt: r.decommissioned_at };
}

export class GateRegistry {
  readonly db: SqlDb;

  /** On an open database of the current schema (store/open-store.ts). */
  constructor(db: SqlDb) {
    this.db = db;
  }

  /**
   * Registers a gate, or re-provisions an active one with the next key id
   * (its previous record's key stops working). Refuses a decommissioned id.
   */
  async register(g: GateIdentityInput, at: number): Promise<GateIdentity> {
    return this.db.transaction(async () => {
      const cur = await this.get(g.gate);
      if (cur === undefined) {
        await this.db.run(`INSERT INTO gate_identities (gate, site, list, line, direction, lane, state, key_id, provisioned_at) VALUES (?, ?, ?, ?, ?, ?, 'active', 1, ?)`, [g.gate, g.site, g.list, g.line, g.direction, g.lane, at]);
      } else if (cur.state === 'decommissioned') throw new GateRegistryError(`gate ${g.gate} was decommissioned${cur.decommissionedAt !== null ? ` at ${new Date(cur.decommissionedAt * 1000).toISOString()}` : ''}: its identity has ended (provision the gate under a new id)`);
      else if (cur.keyId >= MAX_KEY_ID) throw new GateRegistryError(`gate ${g.gate}: no key id left (provisioned ${cur.keyId} times)`);
      else {
        await this.db.run(`UPDATE gate_identities SET site = ?, list = ?, line = ?, direction = ?, lane = ?, key_id = key_id + 1, provisioned_at = ? WHERE gate = ? AND state = 'active'`, [g.site, g.list, g.line, g.direction, g.lane, at, g.gate]);
      }
      return (await this.get(g.gate)) as GateIdentity;
    }, { write: true });
  }

  /** Ends a gate's identity: the central refuses it from its next message. False if it is not an active gate. */
  async decommission(gate: string, at: number): Promise<boolean> {
    return (await this.db.run("UPDATE gate_identities SET state = 'decommissioned', decommissioned_at = ? WHERE gate = ? AND state = 'active'", [at, gate])) === 1;
  }

  async get(gate: string): Promise<GateIdentity | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM gate_identities WHERE gate = ?', [gate]);
    return r === undefined ? undefined : identity(r);
  }

  async all(): Promise<GateIdentity[]> {
    return (await this.db.all<Row>('SELECT * FROM gate_identities ORDER BY gate')).map(identity);
  }

  /** The hot path (every message from a gate): state and key id only, null for an unknown id. */
  async authState(gate: string): Promise<{ readonly state: GateIdentityState; readonly keyId: number } | null> {
    const r = (await this.db.rows('SELECT state, key_id FROM gate_identities WHERE gate = ?', [gate]))[0] as [GateIdentityState, number] | undefined;
    return r === undefined ? null : { state: r[0], keyId: r[1] };
  }
}
