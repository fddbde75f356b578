// The broker's rules (host-sim/broker-acl.ts): who publishes and subscribes
// to what, retain and clearing, conservative wildcard filters (a property
// over random filters: whatever a granted filter can match is readable), and
// the Mosquitto acl_file rendering of the same grants.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { BrokerAcl, BrokerAclError } from '../host-sim/broker-acl.js';
import { CENTRAL_IDENTITY, operatorIdentity } from '../host-sim/pki/deployment-pki.js';
import { throwsKind } from './helpers/assert.js';

const t = suite('broker ACL');
const ROOT = 'park/sz';
const P = `${ROOT}/v1`;
const OP = operatorIdentity('alice');
const acl = new BrokerAcl({ topicRoot: ROOT, gates: [{ id: 'g-a', list: 'main' }, { id: 'g-b', list: 'goods' }], operators: [OP] });
const gate = (g: string, k: string) => `${P}/gates/${g}/${k}`;
const list = (l: string, k: string) => `${P}/lists/${l}/${k}`;

t('roles: the central, operators and active gates; strangers have none', () => {
  assert.is(acl.roleOf(CENTRAL_IDENTITY), 'central');
  assert.is(acl.roleOf(OP), 'operator');
  assert.is(acl.roleOf('g-a'), 'gate');
  for (const s of ['g-c', 'subline.operator.bob', '', null, undefined]) assert.is(acl.roleOf(s), null);
  assert.equal(acl.identities(), [CENTRAL_IDENTITY, OP, 'g-a', 'g-b']);
});

t('a gate publishes only its own uplinks and reads only its own downlinks and its list', () => {
  for (const k of ['events', 'sync', 'cmdres', 'status']) {
    assert.ok(acl.canPublish('g-a', gate('g-a', k)), k);
    assert.not.ok(acl.canPublish('g-a', gate('g-b', k)), `other gate's ${k}`);
  }
  for (const k of ['ack', 'data', 'cmd']) {
    assert.not.ok(acl.canPublish('g-a', gate('g-a', k)), `own ${k} is the central's`);
    assert.ok(acl.canSubscribe('g-a', gate('g-a', k)));
    assert.not.ok(acl.canSubscribe('g-a', gate('g-b', k)));
    assert.not.ok(acl.canSubscribe('g-a', gate('+', k)), 'every gate');
  }
  for (const k of ['head', 'delta']) {
    assert.ok(acl.canSubscribe('g-a', list('main', k)));
    assert.not.ok(acl.canSubscribe('g-a', list('goods', k)), "another list's");
    assert.not.ok(acl.canPublish('g-a', list('main', k)), 'only the central publishes heads and deltas');
  }
  assert.not.ok(acl.canSubscribe('g-a', gate('g-a', 'events')), 'its own uplink is not for it to read');
  assert.not.ok(acl.canSubscribe('g-a', `${P}/gates/g-a/+`), 'a + over kinds includes its uplinks');
  assert.not.ok(acl.canSubscribe('g-a', `${P}/gates/g-a/#`));
});

t('retain: a gate retains only its status, never empty; the central retains heads and alone may clear', () => {
  assert.ok(acl.canPublish('g-a', gate('g-a', 'status'), { retain: true }));
  assert.not.ok(acl.canPublish('g-a', gate('g-a', 'status'), { retain: true, empty: true }), 'a gate cannot clear its status');
  assert.ok(acl.canPublish('g-a', gate('g-a', 'status'), { empty: true }), 'an empty non-retained message clears nothing');
  assert.not.ok(acl.canPublish('g-a', gate('g-a', 'events'), { retain: true }));
  assert.ok(acl.canPublish(CENTRAL_IDENTITY, list('main', 'head'), { retain: true }));
  assert.ok(acl.canPublish(CENTRAL_IDENTITY, list('main', 'head'), { retain: true, empty: true }));
  assert.not.ok(acl.canPublish(CENTRAL_IDENTITY, list('main', 'delta'), { retain: true }));
  assert.ok(acl.canPublish(CENTRAL_IDENTITY, list('main', 'delta'), { retain: true, empty: true }), 'the central may clear a stray retained message');
  assert.not.ok(acl.canPublish(OP, gate('g-a', 'cmd'), { retain: true }));
  assert.not.ok(acl.canPublish(OP, list('main', 'head'), { retain: true, empty: true }));
});

t('the central: heads, deltas, acks, data, commands out; every uplink in', () => {
  for (const k of ['head', 'delta']) assert.ok(acl.canPublish(CENTRAL_IDENTITY, list('any', k)));
  for (const k of ['ack', 'data', 'cmd']) assert.ok(acl.canPublish(CENTRAL_IDENTITY, gate('g-z', k)));
  for (const k of ['status', 'events', 'sync', 'cmdres']) {
    assert.ok(acl.canSubscribe(CENTRAL_IDENTITY, gate('+', k)));
    assert.not.ok(acl.canPublish(CENTRAL_IDENTITY, gate('g-a', k)), `the central does not speak for a gate (${k})`);
  }
  assert.not.ok(acl.canSubscribe(CENTRAL_IDENTITY, gate('+', 'cmd')));
  assert.not.ok(acl.canSubscribe(CENTRAL_IDENTITY, '#'));
  assert.not.ok(acl.canSubscribe(CENTRAL_IDENTITY, `${P}/#`));
});

t('operators: commands out, answers and statuses in; nothing else', () => {
  assert.ok(acl.canPublish(OP, gate('g-a', 'cmd')));
  assert.ok(acl.canSubscribe(OP, gate('+', 'cmdres')));
  assert.ok(acl.canSubscribe(OP, gate('g-b', 'status')));
  for (const k of ['ack', 'data']) assert.not.ok(acl.canPublish(OP, gate('g-a', k)));
  assert.not.ok(acl.canPublish(OP, list('main', 'head')));
  for (const k of ['events', 'sync', 'cmd', 'data']) assert.not.ok(acl.canSubscribe(OP, gate('g-a', k)));
});

t('strangers, decommissioned gates and malformed topics get nothing', () => {
  for (const who of ['g-c', 'nobody', '', null]) {
    assert.not.ok(acl.canPublish(who, gate('g-c', 'status')));
    assert.not.ok(acl.canSubscribe(who, gate('g-c', 'cmd')));
  }
  for (const bad of ['', `${P}/gates/+/cmd`, `${P}/gates/#`, `${P}/gates//cmd`, `$SYS/x`, `${P}/gates/g-a/cmd/`, 'x'.repeat(300)]) assert.not.ok(acl.canPublish(CENTRAL_IDENTITY, bad), bad);
  for (const bad of ['', '#', '+/#', `${P}/gates/a+/cmd`, `${P}/gates/#/cmd`, `$share/x/${gate('g-a', 'cmd')}`, `${P}//g-a/cmd`]) assert.not.ok(acl.canSubscribe(CENTRAL_IDENTITY, bad), bad);
});

t('constructor refuses colliding or malformed identities', () => {
  throwsKind(() => new BrokerAcl({ gates: [{ id: 'a.b', list: 'main' }] }), BrokerAclError, /gate id/);
  throwsKind(() => new BrokerAcl({ gates: [{ id: 'ok', list: 'Main' }] }), BrokerAclError, /list/);
  throwsKind(() => new BrokerAcl({ gates: [], operators: ['alice'] }), BrokerAclError, /operator identity/);
  throwsKind(() => new BrokerAcl({ gates: [], central: 'central' }), BrokerAclError, /must contain a '\.'/);
  throwsKind(() => new BrokerAcl({ gates: [{ id: 'a', list: 'm' }, { id: 'a', list: 'm' }] }), BrokerAclError, /twice/);
  throwsKind(() => new BrokerAcl({ gates: [], topicRoot: 'a/+' }), BrokerAclError, /topic root/);
});

// Random filters over the levels that matter (and some that do not): a granted
// filter never matches a topic its subscriber may not read.
const LEVELS = ['park', 'sz', 'v1', 'v2', 'gates', 'lists', 'g-a', 'g-b', 'main', 'goods', 'head', 'delta', 'status', 'events', 'sync', 'cmdres', 'ack', 'data', 'cmd', 'zz'];
const WHO = [CENTRAL_IDENTITY, OP, 'g-a', 'g-b', 'g-c'];
const topicArb = fc.array(fc.constantFrom(...LEVELS), { minLength: 1, maxLength: 7 }).map((l) => l.join('/'));
// Shaped like the scheme half of the time (so that many are granted), random otherwise.
const shaped = fc
  .tuple(fc.constantFrom('gates', 'lists', '+', 'zz'), fc.constantFrom('g-a', 'g-b', 'main', 'goods', '+', 'zz'), fc.constantFrom('head', 'delta', 'status', 'events', 'cmdres', 'ack', 'data', 'cmd', '+', '#', 'zz'), fc.constantFrom([], ['+'], ['#'], ['zz']))
  .map(([scope, name, kind, tail]) => [P, scope, name, kind, ...(kind === '#' ? [] : tail)].join('/'));
const random = fc
  .tuple(fc.array(fc.constantFrom(...LEVELS, '+', '+'), { minLength: 1, maxLength: 7 }), fc.boolean())
  .map(([l, hash]) => [...l, ...(hash ? ['#'] : [])].join('/'));
const filterArb = fc.oneof(shaped, random);
function mqttMatch(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const tp = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= tp.length || (f[i] !== '+' && f[i] !== tp[i])) return false;
  }
  return f.length === tp.length;
}

t('property: a granted filter only ever matches readable topics', () => {
  let granted = 0;
  fc.assert(
    fc.property(fc.constantFrom(...WHO), filterArb, fc.array(topicArb, { minLength: 1, maxLength: 30 }), (who, filter, topics) => {
      if (!acl.canSubscribe(who, filter)) return;
      granted++;
      // the concrete topics the filter names by itself (its '+' filled in) and random ones
      const filled = filter.replace(/\+/g, 'zz');
      for (const topic of [filled, ...topics]) if (mqttMatch(filter, topic)) assert.ok(acl.canRead(who, topic), `${who} granted ${filter} but cannot read ${topic}`);
    }),
    { numRuns: 5000 },
  );
  assert.ok(granted >= 5, `only ${granted} random filters were granted: the property tested little`);
});

t('property: publishing implies a write grant of the same topic, and the roles never overlap', () => {
  fc.assert(
    fc.property(fc.constantFrom(...WHO), topicArb, fc.boolean(), fc.boolean(), (who, topic, retain, empty) => {
      const full = topic.startsWith('park/') ? topic : `${P}/${topic}`;
      if (!acl.canPublish(who, full, { retain, empty })) return;
      assert.ok(acl.canPublish(who, full), 'retain only narrows');
      if (retain && empty) assert.is(acl.roleOf(who), 'central');
      if (acl.roleOf(who) === 'gate') assert.ok(full.startsWith(`${P}/gates/${who}/`));
    }),
    { numRuns: 3000 },
  );
});

t('mosquittoAcl: one user block per identity, nothing anonymous, the same grants', () => {
  const text = acl.mosquittoAcl();
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.ok(lines[0]?.startsWith('user '), 'no topic line before the first user block (that would be for anonymous clients)');
  assert.equal(lines.filter((l) => l.startsWith('user ')), acl.identities().map((i) => `user ${i}`));
  const block = (who: string) => {
    const start = lines.indexOf(`user ${who}`);
    const end = lines.findIndex((l, i) => i > start && l.startsWith('user '));
    return lines.slice(start + 1, end === -1 ? undefined : end);
  };
  assert.equal(block('g-a'), acl.grantsOf('g-a').map((g) => `topic ${g.access} ${g.topic}`));
  assert.ok(block('g-a').includes(`topic write ${gate('g-a', 'status')}`));
  assert.ok(block('g-a').includes(`topic read ${list('main', 'head')}`));
  assert.not.ok(text.includes('#\n') || / #$/m.test(text), 'no # grant');
  assert.ok(block(OP).includes(`topic write ${P}/gates/+/cmd`));
});

t.run();
