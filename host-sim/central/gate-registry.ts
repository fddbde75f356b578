// The gates the central knows: one row per gate identity (id, site, list,
// line, direction, lane, state, key id), written by `subline provision`
// and `subline central gates --decommission`, read by the central for every
// message a gate sends (gate-authenticator.ts). A decommissioned identity is
// never active again: re-provisioning it is refused. The keys themselves are
// derived from the master key (gate-keys.ts) and not stored here.

import type Database from 'better-sqlite3';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS gate_identities (
  gate TEXT PRIMARY KEY,
  site TEXT NOT NULL,
  list TEXT NOT NULL,
  line TEXT NOT NULL,
  direction TEXT NOT NULL,
  lane TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'decommissioned')),
  key_id INTEGER NOT NULL,
  provisioned_at INTEGER NOT NULL,
  decommissioned_at INTEGER) WITHOUT ROWID;
`;

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
  readonly db: Database.Database;
  readonly #get: Database.Statement;
  readonly #all: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #reprovision: Database.Statement;
  readonly #decommission: Database.Statement;
  readonly #auth: Database.Statement;

  /** On an open database (the registry's); creates the table if missing. */
  constructor(db: Database.Database) {
    this.db = db;
    db.exec(SCHEMA);
    this.#get = db.prepare('SELECT * FROM gate_identities WHERE gate = ?');
    this.#all = db.prepare('SELECT * FROM gate_identities ORDER BY gate');
    this.#insert = db.prepare(`INSERT INTO gate_identities (gate, site, list, line, direction, lane, state, key_id, provisioned_at)
      VALUES (@gate, @site, @list, @line, @direction, @lane, 'active', 1, @at)`);
    this.#reprovision = db.prepare(`UPDATE gate_identities SET site = @site, list = @list, line = @line, direction = @direction, lane = @lane,
      key_id = key_id + 1, provisioned_at = @at WHERE gate = @gate AND state = 'active'`);
    this.#decommission = db.prepare("UPDATE gate_identities SET state = 'decommissioned', decommissioned_at = ? WHERE gate = ? AND state = 'active'");
    this.#auth = db.prepare('SELECT state, key_id FROM gate_identities WHERE gate = ?').raw(true);
  }

  /**
   * Registers a gate, or re-provisions an active one with the next key id
   * (its previous record's key stops working). Refuses a decommissioned id.
   */
  register(g: GateIdentityInput, at: number): GateIdentity {
    return this.db.transaction(() => {
      const cur = this.get(g.gate);
      const row = { gate: g.gate, site: g.site, list: g.list, line: g.line, direction: g.direction, lane: g.lane, at };
      if (cur === undefined) this.#insert.run(row);
      else if (cur.state === 'decommissioned') throw new GateRegistryError(`gate ${g.gate} was decommissioned${cur.decommissionedAt !== null ? ` at ${new Date(cur.decommissionedAt * 1000).toISOString()}` : ''}: its identity has ended (provision the gate under a new id)`);
      else if (cur.keyId >= MAX_KEY_ID) throw new GateRegistryError(`gate ${g.gate}: no key id left (provisioned ${cur.keyId} times)`);
      else this.#reprovision.run(row);
      return this.get(g.gate) as GateIdentity;
    })();
  }

  /** Ends a gate's identity: the central refuses it from its next message. False if it is not an active gate. */
  decommission(gate: string, at: number): boolean {
    return this.#decommission.run(at, gate).changes === 1;
  }

  get(gate: string): GateIdentity | undefined {
    const r = this.#get.get(gate) as Row | undefined;
    return r === undefined ? undefined : identity(r);
  }

  all(): GateIdentity[] {
    return (this.#all.all() as Row[]).map(identity);
  }

  /** The hot path (every message from a gate): state and key id only, null for an unknown id. */
  authState(gate: string): { readonly state: GateIdentityState; readonly keyId: number } | null {
    const r = this.#auth.get(gate) as [GateIdentityState, number] | undefined;
    return r === undefined ? null : { state: r[0], keyId: r[1] };
  }
}
