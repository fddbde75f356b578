// The lane controller as a bounded state machine, on Node and on XS:
//  - repeat taps of a pending key are refused and journaled (passback_violation
//    in a passback group, already_pending otherwise), outstanding grants are
//    bounded (lane_busy beyond MAX_OUTSTANDING_GRANTS), passback is checked
//    against pending grants as well as completed passages, and later taps do
//    not extend the pass timer (docs/LANES.md);
//  - "no pass without a record" as an order: in one trace of journal appends
//    and output changes, every opening of the relay or barrier follows a
//    durable grant (fire release excepted), for every lane scenario.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_OUTSTANDING_GRANTS } from '../firmware/core/gate-controller.js';
import { nobleCrypto } from '../protocol/index.js';
import { Reason } from '../protocol/reasons.js';
import { CONTROLLER_EXPECTED, CONTROLLER_SCENARIOS, LANE_SCENARIOS, recordBeforeRelay, runLaneScenario, type LaneResult, type LaneScenario } from './helpers/lane-scenario.js';
import { startXs } from './helpers/xs.js';

const t = suite('lane controller: bounded lane, record before relay');

t('reason codes of the lane controller are stable', () => {
  assert.is(Reason.already_pending, 21);
  assert.is(Reason.lane_busy, 22);
  assert.is(MAX_OUTSTANDING_GRANTS, 2);
});

for (const s of CONTROLLER_SCENARIOS) {
  t(`node: ${s.name}`, () => {
    const r = runLaneScenario(s, nobleCrypto);
    assert.equal(r.events, CONTROLLER_EXPECTED[s.name], `trace: ${r.trace.join(' | ')}`);
    assert.equal(recordBeforeRelay(s, r), []);
  });
}

t('node: the measured bypass is closed (3 taps of one passback card: 1 grant, 1 passage, the extra rotations are tailgating)', () => {
  const s = CONTROLLER_SCENARIOS[0]!;
  const r = runLaneScenario(s, nobleCrypto);
  const count = (p: string) => r.events.filter((e) => e.startsWith(p)).length;
  assert.is(count('decision_granted'), 1);
  assert.is(count('passage_completed'), 1);
  assert.is(count('tailgating'), 2);
});

t('node: no pass without a record, as an order, in every lane scenario', () => {
  for (const s of [...LANE_SCENARIOS, ...CONTROLLER_SCENARIOS]) assert.equal(recordBeforeRelay(s, runLaneScenario(s, nobleCrypto)), []);
});

t('the order check catches a relay that moves before the append', () => {
  // The checker itself: the same trace with the first grant's append moved after its relay.
  const s: LaneScenario = LANE_SCENARIOS[0]!;
  const r = runLaneScenario(s, nobleCrypto);
  const i = r.trace.findIndex((e) => e.startsWith('append decision_granted'));
  const j = r.trace.indexOf('out relay=1', i);
  assert.ok(i >= 0 && j > i, r.trace.join(' | '));
  const swapped = [...r.trace];
  const [grant] = swapped.splice(i, 1);
  swapped.splice(j, 0, grant!);
  assert.equal(recordBeforeRelay(s, r), []);
  const broken = recordBeforeRelay(s, { ...r, trace: swapped });
  assert.ok(broken.length >= 1 && /without a durable grant before it/.test(broken[0]!), broken.join('\n'));
});

let xs: Promise<{ lanes: LaneResult[]; controller: LaneResult[] }> | null = null;
const onXs = () =>
  (xs ??= (async () => {
    const runner = await startXs('lane-controller.entry.ts');
    try {
      return (await runner.call<{ lanes: LaneResult[]; controller: LaneResult[] }>({})).value;
    } finally {
      await runner.close();
    }
  })());

for (const [i, s] of CONTROLLER_SCENARIOS.entries()) {
  t(`xs: ${s.name}`, async () => {
    const r = (await onXs()).controller[i]!;
    assert.equal(r.events, CONTROLLER_EXPECTED[s.name], `trace: ${r.trace.join(' | ')}`);
    assert.equal(r, runLaneScenario(s, nobleCrypto), 'XS and Node give the same trace');
    assert.equal(recordBeforeRelay(s, r), []);
  });
}
t('xs: no pass without a record, as an order, in every lane scenario', async () => {
  const { lanes } = await onXs();
  for (const [i, s] of LANE_SCENARIOS.entries()) assert.equal(recordBeforeRelay(s, lanes[i]!), []);
});

t.run();
