import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Topics, GATE_DOWN_TOPICS, GATE_UP_TOPICS, LIST_TOPICS } from '../protocol/topics.js';

const t = suite('protocol topics');
const topics = new Topics('park/shenzhen');

t('builds versioned topics under the root', () => {
  assert.is(topics.list('people', 'head'), 'park/shenzhen/v1/lists/people/head');
  assert.is(topics.gate('fl-in-t01', 'events'), 'park/shenzhen/v1/gates/fl-in-t01/events');
  assert.is(topics.allGates('status'), 'park/shenzhen/v1/gates/+/status');
});
t('every built topic parses back to what built it', () => {
  for (const k of LIST_TOPICS) assert.equal(topics.parse(topics.list('goods', k)), { ok: true, value: { scope: 'list', kind: k, list: 'goods' } });
  for (const k of [...GATE_UP_TOPICS, ...GATE_DOWN_TOPICS]) assert.equal(topics.parse(topics.gate('g_7', k)), { ok: true, value: { scope: 'gate', kind: k, gate: 'g_7' } });
});
t('refuses bad roots and ids at build time', () => {
  for (const root of ['', 'a//b', 'a/+', '#', 'a/b/c/d/e', 'x'.repeat(33)]) assert.throws(() => new Topics(root), /invalid topic root/);
  for (const bad of ['', 'Gate', 'g+', 'g#', 'a/b', '-lead', 'x'.repeat(33), 'ümlaut']) {
    assert.throws(() => topics.gate(bad, 'status'), /invalid gate id/);
    assert.throws(() => topics.list(bad, 'head'), /invalid list name/);
  }
});
const cases: [string, string][] = [
  ['park/shenzhen/v1/gates/+/status', 'segment.4'],
  ['park/shenzhen/v1/gates/#/status', 'segment.4'],
  ['park/shenzhen/v1/gates//status', 'segment.4'],
  ['park/shenzhen/v2/gates/g1/status', 'version'],
  ['park/other/v1/gates/g1/status', 'root'],
  ['park/shenzhen/v1/gates/G1/status', 'gate'],
  ['park/shenzhen/v1/lists/people/status', 'kind'],
  ['park/shenzhen/v1/gates/g1/head', 'kind'],
  ['park/shenzhen/v1/things/g1/head', 'scope'],
  ['park/shenzhen/v1/gates/g1', 'topic'],
  ['park/shenzhen/v1/gates/g1/status/extra', 'topic'],
  [`park/shenzhen/v1/gates/${'a'.repeat(300)}/status`, 'topic'],
];
for (const [topic, field] of cases) {
  t(`parse refuses ${topic.slice(0, 60)} (${field})`, () => assert.equal(topics.parse(topic), { ok: false, error: { code: 'bad_topic', field } }));
}
t('parse never throws on arbitrary strings', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void topics.parse(s)), { seed: 7, numRuns: 2000 });
  fc.assert(fc.property(fc.array(fc.constantFrom('park', 'shenzhen', 'v1', 'gates', 'lists', 'g1', '', '+', '#', 'status', 'head'), { maxLength: 9 }), (segs) => void topics.parse(segs.join('/'))), { seed: 7, numRuns: 2000 });
});
t.run();
