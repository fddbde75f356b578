// Who may publish and subscribe to what on the broker (issue 13): the one
// owner of these rules. The embedded aedes asks canPublish / canSubscribe /
// canRead on every packet (broker.ts); Mosquitto gets the same grants rendered
// as an acl_file (mosquittoAcl(), written by broker-config.ts).
//
// Identities are what the broker authenticated: a certificate's CN, or the
// username of the loopback password listener.
//   gate <id> (list L):  publishes gates/<id>/{events,sync,cmdres,status}
//                        (status retained, the gate's will), reads
//                        gates/<id>/{ack,data,cmd} and lists/L/{head,delta}.
//   central:             publishes lists/+/{head,delta} (head retained) and
//                        gates/+/{ack,data,cmd}; reads every gate's uplink and
//                        every list's head and delta (to check what it retained).
//   operator:            publishes gates/+/cmd (`subline gate ...`, whose
//                        commands are signed anyway), reads gates/+/{cmdres,status}
//                        (the answers and who is online); nothing else.
//   anyone else:         nothing.
// Retained messages only where the protocol retains them (a gate's status, a
// list's head); an empty retained message (which clears what is retained) only
// from the central. Topics with empty levels or wildcards are never published.
// A subscription filter is granted only if one grant covers every topic it can
// match ('+' and '#' are read conservatively), so '#' is nobody's.

import { CENTRAL_IDENTITY, OPERATOR_PREFIX } from './pki/deployment-pki.js';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';
import { Signed } from '../protocol/envelope.js';
import { Maced } from '../protocol/mac-envelope.js';
import { GATE_DOWN_TOPICS, GATE_UP_TOPICS, isValidId, isValidRoot, LIST_TOPICS, TOPIC_VERSION } from '../protocol/topics.js';

/** The largest message the protocol sends (a signed manifest): the brokers' size limit (Mosquitto's message_size_limit). */
export function messageSizeLimit(): number {
  return SIZE_LIMIT;
}
const SIZE_LIMIT = Math.max(...MESSAGE_SCHEMAS.map((s) => s.maxSize)) + Math.max(Signed.maxSize, Maced.maxSize);

export type AclRole = 'gate' | 'central' | 'operator';

export interface AclGate {
  readonly id: string;
  readonly list: string;
}

export interface BrokerAclOptions {
  /** Topic root (default 'subline'). */
  readonly topicRoot?: string;
  /** The active gates; decommissioned ones are left out and so get nothing. */
  readonly gates: Iterable<AclGate>;
  /** The central's identity (default CENTRAL_IDENTITY). */
  readonly central?: string;
  /** Operators' identities (subline.operator.<name>). */
  readonly operators?: Iterable<string>;
}

export interface PublishFlags {
  readonly retain?: boolean;
  /** The payload is empty (with retain: clears the retained message). */
  readonly empty?: boolean;
  /** The payload's size: more than messageSizeLimit() is refused. */
  readonly bytes?: number;
}

/** One rule: a topic pattern of literal levels and '+' (never '#'). */
export interface AclGrant {
  readonly access: 'read' | 'write';
  readonly topic: string;
  /** Whether a retained publish is allowed here (write only). */
  readonly retain: boolean;
  /** Whether an empty retained publish is allowed here (write only). */
  readonly clear: boolean;
}

interface Compiled extends AclGrant {
  readonly levels: readonly string[];
}

export class BrokerAclError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrokerAclError';
  }
}

export class BrokerAcl {
  readonly topicRoot: string;
  readonly central: string;
  readonly #roles = new Map<string, AclRole>();
  readonly #grants = new Map<string, readonly Compiled[]>();

  constructor(options: BrokerAclOptions) {
    const root = options.topicRoot ?? 'subline';
    if (!isValidRoot(root)) throw new BrokerAclError(`invalid topic root '${root}'`);
    this.topicRoot = root;
    this.central = options.central ?? CENTRAL_IDENTITY;
    const p = `${root}/${TOPIC_VERSION}`;
    const w = (topic: string, retain = false, clear = false): AclGrant => ({ access: 'write', topic, retain, clear });
    const r = (topic: string): AclGrant => ({ access: 'read', topic, retain: false, clear: false });

    // A dotted identity can never be a gate id, so the roles cannot collide.
    if (!this.central.includes('.')) throw new BrokerAclError(`central identity '${this.central}' must contain a '.' (gate ids never do)`);
    this.#add(this.central, 'central', [
      ...LIST_TOPICS.map((k) => w(`${p}/lists/+/${k}`, k === 'head', true)),
      ...GATE_DOWN_TOPICS.map((k) => w(`${p}/gates/+/${k}`, false, true)),
      ...GATE_UP_TOPICS.map((k) => r(`${p}/gates/+/${k}`)),
      ...LIST_TOPICS.map((k) => r(`${p}/lists/+/${k}`)),
    ]);
    for (const op of options.operators ?? []) {
      if (!op.startsWith(OPERATOR_PREFIX) || !isValidId(op.slice(OPERATOR_PREFIX.length))) throw new BrokerAclError(`operator identity '${op}' must be ${OPERATOR_PREFIX}<name>`);
      this.#add(op, 'operator', [w(`${p}/gates/+/cmd`), r(`${p}/gates/+/cmdres`), r(`${p}/gates/+/status`)]);
    }
    for (const g of options.gates) {
      if (!isValidId(g.id)) throw new BrokerAclError(`gate id '${g.id}' is not a valid id`);
      if (!isValidId(g.list)) throw new BrokerAclError(`gate ${g.id}: list '${g.list}' is not a valid name`);
      this.#add(g.id, 'gate', [
        ...GATE_UP_TOPICS.map((k) => w(`${p}/gates/${g.id}/${k}`, k === 'status')),
        ...GATE_DOWN_TOPICS.map((k) => r(`${p}/gates/${g.id}/${k}`)),
        ...LIST_TOPICS.map((k) => r(`${p}/lists/${g.list}/${k}`)),
      ]);
    }
  }

  /** The role of an identity, or null for a stranger. */
  roleOf(identity: string | null | undefined): AclRole | null {
    return identity === null || identity === undefined ? null : (this.#roles.get(identity) ?? null);
  }

  /** Every identity with grants, central first, then operators and gates in the order given. */
  identities(): string[] {
    return [...this.#roles.keys()];
  }

  /** The grants of one identity (empty for a stranger). */
  grantsOf(identity: string): readonly AclGrant[] {
    return (this.#grants.get(identity) ?? []).map(({ access, topic, retain, clear }) => ({ access, topic, retain, clear }));
  }

  canPublish(identity: string | null | undefined, topic: string, flags: PublishFlags = {}): boolean {
    const levels = topicLevels(topic);
    if (levels === null || identity === null || identity === undefined) return false;
    if (flags.bytes !== undefined && flags.bytes > messageSizeLimit()) return false;
    const retain = flags.retain === true;
    const clear = retain && flags.empty === true;
    return (this.#grants.get(identity) ?? []).some((g) => g.access === 'write' && matches(g.levels, levels) && (!retain || g.retain || clear) && (!clear || g.clear));
  }

  /** Whether a message on `topic` may be delivered to `identity` (a topic, not a filter). */
  canRead(identity: string | null | undefined, topic: string): boolean {
    const levels = topicLevels(topic);
    if (levels === null || identity === null || identity === undefined) return false;
    return (this.#grants.get(identity) ?? []).some((g) => g.access === 'read' && matches(g.levels, levels));
  }

  /** Whether `identity` may subscribe to `filter`: only if every topic the filter can match is readable by one grant. */
  canSubscribe(identity: string | null | undefined, filter: string): boolean {
    const levels = filterLevels(filter);
    if (levels === null || identity === null || identity === undefined) return false;
    return (this.#grants.get(identity) ?? []).some((g) => g.access === 'read' && covers(g.levels, levels));
  }

  /**
   * The same grants as a Mosquitto acl_file: one `user` block per identity,
   * nothing for anonymous clients (the general section is empty). Mosquitto
   * cannot tie retain to a topic, so its acl_file carries only read/write.
   */
  mosquittoAcl(): string {
    const lines = [
      '# Generated by `subline broker config` from the central\'s gate registry and PKI; do not edit.',
      '# Rules: host-sim/broker-acl.ts. Regenerate after provisioning or decommissioning a gate, then SIGHUP the broker.',
      '# Nothing for anonymous clients: no topic line before the first user block.',
      '# Mosquitto cannot restrict retain per topic: receivers ignore unexpected retained copies.',
      '',
    ];
    for (const id of this.#roles.keys()) {
      lines.push(`user ${id}`);
      for (const g of this.#grants.get(id) ?? []) lines.push(`topic ${g.access} ${g.topic}`);
      lines.push('');
    }
    return lines.join('\n');
  }

  #add(identity: string, role: AclRole, grants: readonly AclGrant[]): void {
    if (this.#roles.has(identity)) throw new BrokerAclError(`identity '${identity}' given twice`);
    this.#roles.set(identity, role);
    this.#grants.set(identity, grants.map((g) => ({ ...g, levels: g.topic.split('/') })));
  }
}

/** A topic's levels, or null if it cannot be published (empty, a wildcard, an empty level, '$' topics, too long). */
function topicLevels(topic: string): string[] | null {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > 256 || topic.startsWith('$')) return null;
  const levels = topic.split('/');
  return levels.every((l) => l !== '' && !l.includes('+') && !l.includes('#')) ? levels : null;
}

/** A filter's levels, or null if it is malformed ('#' not alone or not last, '+' not alone, empty levels, '$' topics). */
function filterLevels(filter: string): string[] | null {
  if (typeof filter !== 'string' || filter.length === 0 || filter.length > 256 || filter.startsWith('$')) return null;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i] as string;
    if (l === '') return null;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return null;
    if (l.includes('+') && l !== '+') return null;
  }
  return levels;
}

function matches(pattern: readonly string[], topic: readonly string[]): boolean {
  return pattern.length === topic.length && pattern.every((p, i) => p === '+' || p === topic[i]);
}

/** Every topic `filter` matches is matched by `pattern` (which has no '#'): same depth, and each literal level of the pattern is the filter's. */
function covers(pattern: readonly string[], filter: readonly string[]): boolean {
  if (filter.includes('#')) return false; // '#' matches any depth (and its parent level): never within a fixed-depth pattern
  return pattern.length === filter.length && pattern.every((p, i) => p === '+' || p === filter[i]);
}
