// What the registry knows of a credential key, for the central's view of a
// gate's `unknown_credential` event. A gate that installed an image after a
// revocation no longer holds the key (images carry no tombstones: the 250k
// flash budget has no room), so it can only say "unknown"; one that applied
// the delta says `revoked`. The same card, the same story: exports and the
// CLI put next to such an event whether the key was never enrolled, revoked
// (and when), or its holder or institution is suspended. Read-only.

import type { SqlDb } from './store/sql-db.js';
import { fromHex } from '../../protocol/hex.js';

export type CredentialFacts =
  | { readonly enrolled: false }
  | {
      readonly enrolled: true;
      readonly subject: string;
      readonly kind: 'card' | 'uhf';
      readonly revoked: boolean;
      /** UTC seconds; null when revoked before the registry kept the time. */
      readonly revokedAt: number | null;
      readonly subjectSuspended: boolean;
      readonly institutionSuspended: boolean;
    };

interface Row {
  subject: string;
  kind: 'card' | 'uhf';
  revoked: number;
  revoked_at: number | null;
  subject_suspended: number;
  institution_suspended: number;
}

export class CredentialFactsReader {
  readonly #db: SqlDb;
  readonly #cache = new Map<string, CredentialFacts>();

  constructor(db: SqlDb) {
    this.#db = db;
  }

  /** The facts for a key (16 hex digits). */
  async facts(keyHex: string): Promise<CredentialFacts> {
    let f = this.#cache.get(keyHex);
    if (f !== undefined) return f;
    const r = await this.#db.get<Row>(`SELECT c.subject, c.kind, c.revoked, c.revoked_at,
        CASE WHEN EXISTS (SELECT 1 FROM suspensions WHERE level = 'subject' AND target = c.subject AND active = 1) THEN 1 ELSE 0 END AS subject_suspended,
        CASE WHEN EXISTS (SELECT 1 FROM suspensions sp JOIN subjects s ON s.id = c.subject WHERE sp.level = 'institution' AND sp.target = CAST(s.institution AS TEXT) AND sp.active = 1) THEN 1 ELSE 0 END AS institution_suspended
      FROM credentials c WHERE c.key = ?`, [fromHex(keyHex)]);
    f = r === undefined
      ? { enrolled: false }
      : { enrolled: true, subject: r.subject, kind: r.kind, revoked: r.revoked === 1, revokedAt: r.revoked_at, subjectSuspended: r.subject_suspended === 1, institutionSuspended: r.institution_suspended === 1 };
    if (this.#cache.size < 100_000) this.#cache.set(keyHex, f);
    return f;
  }

  /** One phrase: `never enrolled`, `revoked 2026-12-02T10:00:00Z`, `holder suspended`, `institution suspended`, `enrolled`. */
  async describe(keyHex: string): Promise<string> {
    const f = await this.facts(keyHex);
    if (!f.enrolled) return 'never enrolled';
    if (f.revoked) return f.revokedAt === null ? 'revoked' : `revoked ${new Date(f.revokedAt * 1000).toISOString().replace('.000Z', 'Z')}`;
    if (f.subjectSuspended) return 'holder suspended';
    if (f.institutionSuspended) return 'institution suspended';
    return 'enrolled';
  }
}
