// The one way to read stored events (the CLI's `central events`, the console):
// filters on the decoded columns of schema 3 (event-columns.ts), keyset pages
// in a stable order, and a follower that tails the store as it grows. Every
// value reaches SQL as a parameter; the SQL text is built only from fixed
// fragments chosen by which filters are set.
//
// Orders. `find` returns events by the gate's time (at, then gate, epoch,
// seq): a search over a time range uses the `events_at` index. `follow`
// returns them as they are stored, gate by gate.
//
// Following without missing a row, without an index of its own. Every
// ingest moves its (gate, epoch) head (event_heads: contiguous, max_seq) in
// the transaction that stores the rows, so the follower polls the heads (one
// row per gate and epoch) and reads by the primary key only where a head
// moved: the rows after the contiguous seq it has read through. Rows stored
// above a gap are remembered (bounded by the gap) so that a gap filled later
// is given, and nothing twice.

import { EventType } from '../../protocol/event-record.js';
import { decodeEvent, reasonNameFor, type DecodedEvent } from './event-decode.js';
import { bytes, type SqlDb, type SqlValue } from './store/sql-db.js';

export interface EventFilter {
  /** Gate time from (inclusive), UTC seconds. */
  readonly since?: number;
  /** Gate time until (inclusive), UTC seconds. */
  readonly until?: number;
  readonly gate?: string;
  readonly epoch?: number;
  readonly site?: string;
  readonly line?: string;
  readonly direction?: string;
  readonly subject?: string;
  readonly institution?: number;
  /** The 8-byte credential key. */
  readonly credential?: Uint8Array;
  /** A reason by name as `central events` prints it (e.g. revoked, unknown_credential, lockdown). */
  readonly reason?: string;
  /** An event type by name (e.g. decision_denied, alarm). */
  readonly type?: string;
  /** Only refusals: decision_denied and goods_lot_denied. */
  readonly denied?: boolean;
}

/** A stored event decoded, with where it happened and whose credential it was. */
export interface QueriedEvent extends DecodedEvent {
  readonly site: string;
  readonly line: string;
  readonly direction: string;
  /** The subject holding the key when the event was stored; '' when none. */
  readonly subject: string;
  /** Its institution's id; null when none. */
  readonly institution: number | null;
}

export class EventFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventFilterError';
  }
}

const PAGE = 1000;
const COLUMNS = 'gate, epoch, seq, record, chain, received_at, site, line, direction, subject, institution, at';

type Row = [string, number, number, Uint8Array, Uint8Array, number, string | null, string | null, string | null, string | null, number | null, number];

const TYPE_CODES: ReadonlyMap<string, number> = new Map(Object.entries(EventType));
const DENIED_TYPES = [EventType.decision_denied, EventType.goods_lot_denied];

/** (type, reason codes) pairs whose reason has this name for that type (event-decode.ts names them). */
function reasonPairs(name: string): [number, number[]][] {
  const out: [number, number[]][] = [];
  for (const type of TYPE_CODES.values()) {
    const codes: number[] = [];
    for (let code = 0; code < 256; code++) if (reasonNameFor(type, code) === name) codes.push(code);
    if (codes.length > 0) out.push([type, codes]);
  }
  return out;
}

/** The names `--reason` accepts: every name some type gives a reason byte. */
export function reasonNames(): string[] {
  const names = new Set<string>();
  for (const type of TYPE_CODES.values()) for (let code = 0; code < 256; code++) {
    const n = reasonNameFor(type, code);
    if (!/^\d+$/.test(n)) names.add(n);
  }
  return [...names].sort();
}

export const typeNames = (): string[] => [...TYPE_CODES.keys()].sort();

/** WHERE fragments and their parameters for a filter. */
function where(f: EventFilter): { sql: string[]; args: SqlValue[] } {
  const sql: string[] = [];
  const args: SqlValue[] = [];
  const eq = (column: string, v: SqlValue | undefined) => {
    if (v === undefined) return;
    sql.push(`${column} = ?`);
    args.push(v);
  };
  if (f.since !== undefined) {
    sql.push('at >= ?');
    args.push(f.since);
  }
  if (f.until !== undefined) {
    sql.push('at <= ?');
    args.push(f.until);
  }
  eq('gate', f.gate);
  eq('epoch', f.epoch);
  eq('site', f.site);
  eq('line', f.line);
  eq('direction', f.direction);
  if (f.subject !== undefined) {
    // Through the credential index: the keys the subject holds or held.
    sql.push('credential IS NOT NULL AND credential IN (SELECT key FROM credentials WHERE subject = ?) AND subject = ?');
    args.push(f.subject, f.subject);
  }
  eq('institution', f.institution);
  if (f.credential !== undefined) {
    // "IS NOT NULL" spelled out: the index on credential is partial (store/schema.ts).
    sql.push('credential IS NOT NULL AND credential = ?');
    args.push(f.credential);
  }
  if (f.type !== undefined) {
    const code = TYPE_CODES.get(f.type);
    if (code === undefined) throw new EventFilterError(`unknown event type '${f.type}' (one of: ${typeNames().join(', ')})`);
    eq('type', code);
  }
  if (f.denied === true) sql.push(`type IN (${DENIED_TYPES.join(', ')})`);
  if (f.reason !== undefined) {
    const pairs = reasonPairs(f.reason);
    if (pairs.length === 0) throw new EventFilterError(`unknown reason '${f.reason}' (one of: ${reasonNames().join(', ')})`);
    const parts: string[] = [];
    for (const [type, codes] of pairs) {
      parts.push(`(type = ? AND reason IN (${codes.map(() => '?').join(', ')}))`);
      args.push(type, ...codes);
    }
    sql.push(`(${parts.join(' OR ')})`);
  }
  return { sql, args };
}

function toEvent(r: Row): QueriedEvent {
  const [gate, epoch, seq, record, chain, receivedAt, site, line, direction, subject, institution] = r;
  return { ...decodeEvent({ gate, epoch, seq, record: bytes(record), chain: bytes(chain), receivedAt }), site: site ?? '', line: line ?? '', direction: direction ?? '', subject: subject ?? '', institution };
}

export interface FollowOptions {
  /** Where to start: 'now' (only events stored from here on) or 'start' (everything stored, then on). */
  readonly from?: 'now' | 'start';
  /** How often the store is read for new rows. */
  readonly pollMs?: number;
  /** Ends the follower (the generator returns). */
  readonly signal?: AbortSignal;
}

export class EventQuery {
  readonly #db: SqlDb;

  /** On an open database of the current schema, whose lifetime the caller keeps. */
  constructor(db: SqlDb) {
    this.#db = db;
  }

  /** How many stored events match. */
  async count(filter: EventFilter = {}): Promise<number> {
    const w = where(filter);
    const r = await this.#db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM events${w.sql.length > 0 ? ` WHERE ${w.sql.join(' AND ')}` : ''}`, w.args);
    return r?.n ?? 0;
  }

  /** Matching events by gate time, a page at a time; at most `limit` of them. */
  async *find(filter: EventFilter = {}, limit = Number.MAX_SAFE_INTEGER): AsyncGenerator<QueriedEvent> {
    const w = where(filter);
    let after: [number, string, number, number] | null = null;
    let left = limit;
    while (left > 0) {
      const sql = [...w.sql];
      const args = [...w.args];
      if (after !== null) {
        sql.push('(at, gate, epoch, seq) > (?, ?, ?, ?)');
        args.push(...after);
      }
      const n = Math.min(PAGE, left);
      const page = (await this.#db.rows(`SELECT ${COLUMNS} FROM events${sql.length > 0 ? ` WHERE ${sql.join(' AND ')}` : ''} ORDER BY at, gate, epoch, seq LIMIT ${n}`, args)) as Row[];
      for (const r of page) yield toEvent(r);
      left -= page.length;
      if (page.length < n) return;
      const last = page[page.length - 1] as Row;
      after = [last[11], last[0], last[1], last[2]];
    }
  }

  /** The newest `n` matching events by gate time, newest first (one indexed read). */
  async latest(filter: EventFilter, n: number): Promise<QueriedEvent[]> {
    const w = where(filter);
    const limit = Math.max(0, Math.min(Math.floor(n), PAGE));
    const page = (await this.#db.rows(`SELECT ${COLUMNS} FROM events${w.sql.length > 0 ? ` WHERE ${w.sql.join(' AND ')}` : ''} ORDER BY at DESC, gate DESC, epoch DESC, seq DESC LIMIT ${limit}`, w.args)) as Row[];
    return page.map(toEvent);
  }

  /** Matching events as they are stored, until the signal ends it (see the file comment). */
  async *follow(filter: EventFilter = {}, options: FollowOptions = {}): AsyncGenerator<QueriedEvent> {
    const w = where(filter);
    const pollMs = options.pollMs ?? 500;
    const signal = options.signal;
    const stopped = (): boolean => signal?.aborted === true;
    const heads = new Map<string, FollowedHead>();
    const headsNow = async (): Promise<[string, number, number, number][]> =>
      (await this.#db.rows(`SELECT gate, epoch, contiguous, max_seq FROM event_heads${filter.gate !== undefined ? ' WHERE gate = ?' : ''}`, filter.gate !== undefined ? [filter.gate] : [])) as [string, number, number, number][];
    if (options.from !== 'start') {
      // What is stored now is not news: every head is read through, rows above a gap remembered.
      for (const [gate, epoch, contiguous, maxSeq] of await headsNow()) {
        const h: FollowedHead = { through: contiguous, above: new Set(), contiguous, maxSeq };
        if (maxSeq > contiguous) for (const [seq] of (await this.#db.rows('SELECT seq FROM events WHERE gate = ? AND epoch = ? AND seq > ?', [gate, epoch, contiguous])) as [number][]) h.above.add(seq);
        heads.set(`${gate}\u0000${epoch}`, h);
      }
    }
    while (!stopped()) {
      for (const [gate, epoch, contiguous, maxSeq] of await headsNow()) {
        const id = `${gate}\u0000${epoch}`;
        let h = heads.get(id);
        if (h === undefined) {
          h = { through: 0, above: new Set(), contiguous: -1, maxSeq: -1 };
          heads.set(id, h);
        }
        if (h.contiguous === contiguous && h.maxSeq === maxSeq) continue;
        let after = h.through;
        for (;;) {
          const page = (await this.#db.rows(
            `SELECT ${COLUMNS} FROM events WHERE gate = ? AND epoch = ? AND seq > ?${w.sql.length > 0 ? ` AND ${w.sql.join(' AND ')}` : ''} ORDER BY seq LIMIT ${PAGE}`,
            [gate, epoch, after, ...w.args],
          )) as Row[];
          for (const r of page) {
            if (h.above.has(r[2])) continue;
            h.above.add(r[2]);
            yield toEvent(r);
          }
          if (page.length < PAGE || stopped()) break;
          after = (page[page.length - 1] as Row)[2];
        }
        // Everything up to the head's contiguous seq has now been read; remember only what lies above it.
        h.through = Math.max(h.through, contiguous);
        for (const seq of h.above) if (seq <= h.through) h.above.delete(seq);
        h.contiguous = contiguous;
        h.maxSeq = maxSeq;
      }
      await sleep(pollMs, signal);
    }
  }
}

/** What a follower has given of one (gate, epoch). */
interface FollowedHead {
  /** Every row up to this seq has been read. */
  through: number;
  /** Rows above `through` already given (stored above a gap). */
  readonly above: Set<number>;
  /** The head as last seen. */
  contiguous: number;
  maxSeq: number;
}

/** Resolves after ms, or at once when the signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
