// MQTT topic scheme: <root>/v1/lists/<list>/{head,delta}
//                    <root>/v1/gates/<gate>/{status,events,sync,cmdres}   (gate publishes)
//                    <root>/v1/gates/<gate>/{ack,data,cmd}               (gate subscribes)
// Everything a gate may publish or receive privately lies under its own
// gates/<gate>/ subtree, so a broker ACL can confine each gate with one pattern.

import { ID_PATTERN } from './schema.js';
import { fail, ok, type Result } from './result.js';

export const TOPIC_VERSION = 'v1';
/** Root segments: 1-4 segments of 1-32 characters from [A-Za-z0-9._-]. */
const ROOT_SEGMENT = /^[A-Za-z0-9._-]{1,32}$/;
const MAX_ROOT_SEGMENTS = 4;
/** Gate ids and list names: 1-32 characters of [a-z0-9_-], starting with a letter or digit. */
export const MAX_ID_LENGTH = 32;

export const LIST_TOPICS = ['head', 'delta'] as const;
export const GATE_UP_TOPICS = ['status', 'events', 'sync', 'cmdres'] as const;
export const GATE_DOWN_TOPICS = ['ack', 'data', 'cmd'] as const;

export type ListTopicKind = (typeof LIST_TOPICS)[number];
export type GateTopicKind = (typeof GATE_UP_TOPICS)[number] | (typeof GATE_DOWN_TOPICS)[number];

export type ParsedTopic = { readonly scope: 'list'; readonly kind: ListTopicKind; readonly list: string } | { readonly scope: 'gate'; readonly kind: GateTopicKind; readonly gate: string };

export function isValidId(s: string): boolean {
  return s.length >= 1 && s.length <= MAX_ID_LENGTH && ID_PATTERN.test(s);
}

export function isValidRoot(root: string): boolean {
  const segs = root.split('/');
  return segs.length >= 1 && segs.length <= MAX_ROOT_SEGMENTS && segs.every((s) => ROOT_SEGMENT.test(s));
}

/** Builds and parses topics under one root. Construction throws on a bad root (configuration error). */
export class Topics {
  readonly root: string;
  readonly #prefix: string;
  readonly #rootSegments: number;

  constructor(root = 'subline') {
    if (!isValidRoot(root)) throw new Error(`invalid topic root '${root}': 1-4 segments of [A-Za-z0-9._-], each 1-32 long`);
    this.root = root;
    this.#prefix = `${root}/${TOPIC_VERSION}/`;
    this.#rootSegments = root.split('/').length;
  }

  list(list: string, kind: ListTopicKind): string {
    if (!isValidId(list)) throw new Error(`invalid list name '${list}'`);
    return `${this.#prefix}lists/${list}/${kind}`;
  }

  gate(gate: string, kind: GateTopicKind): string {
    if (!isValidId(gate)) throw new Error(`invalid gate id '${gate}'`);
    return `${this.#prefix}gates/${gate}/${kind}`;
  }

  /** Subscription filters (the only place '+' appears): every list's head or delta, every gate's uplink of one kind. */
  allLists(kind: ListTopicKind): string {
    return `${this.#prefix}lists/+/${kind}`;
  }
  allGates(kind: GateTopicKind): string {
    return `${this.#prefix}gates/+/${kind}`;
  }

  /** Validates every segment of a received topic. Never throws. */
  parse(topic: string): Result<ParsedTopic> {
    if (typeof topic !== 'string' || topic.length > 256) return fail('bad_topic', 'topic');
    const segs = topic.split('/');
    const n = this.#rootSegments;
    if (segs.length !== n + 4) return fail('bad_topic', 'topic');
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i] as string;
      if (s.length === 0 || s.includes('+') || s.includes('#')) return fail('bad_topic', `segment.${i}`);
    }
    if (segs.slice(0, n).join('/') !== this.root) return fail('bad_topic', 'root');
    if (segs[n] !== TOPIC_VERSION) return fail('bad_topic', 'version');
    const scope = segs[n + 1] as string;
    const name = segs[n + 2] as string;
    const kind = segs[n + 3] as string;
    if (!isValidId(name)) return fail('bad_topic', scope === 'lists' ? 'list' : 'gate');
    if (scope === 'lists') {
      if (!(LIST_TOPICS as readonly string[]).includes(kind)) return fail('bad_topic', 'kind');
      return ok({ scope: 'list', kind: kind as ListTopicKind, list: name });
    }
    if (scope === 'gates') {
      if (!(GATE_UP_TOPICS as readonly string[]).includes(kind) && !(GATE_DOWN_TOPICS as readonly string[]).includes(kind)) return fail('bad_topic', 'kind');
      return ok({ scope: 'gate', kind: kind as GateTopicKind, gate: name });
    }
    return fail('bad_topic', 'scope');
  }
}
