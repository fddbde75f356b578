// Lane scenarios for each lane kind and outcome, on Node and on XS: the same
// events in the same order, equal to what the spec says.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { nobleCrypto } from '../protocol/index.js';
import { EXPECTED, LANE_SCENARIOS, recordBeforeRelay, runLaneScenario, type LaneResult } from './helpers/lane-scenario.js';
import { startXs } from './helpers/xs.js';

const t = suite('gate controller: lanes');
const nodeResults = new Map<string, LaneResult>();
for (const s of LANE_SCENARIOS) {
  t(`node: ${s.name}`, () => {
    const r = runLaneScenario(s, nobleCrypto);
    nodeResults.set(s.name, r);
    assert.equal(r.events, EXPECTED[s.name], `outputs: ${r.outputs.join(' ')}`);
  });
}
t('no pass without a record: every opening follows its durable grant in the ordered trace (test/lane-controller.test.ts has the XS side)', () => {
  for (const s of LANE_SCENARIOS) assert.equal(recordBeforeRelay(s, nodeResults.get(s.name)!), []);
});
let xsResults: Promise<LaneResult[]> | null = null;
for (const [i, s] of LANE_SCENARIOS.entries()) {
  t(`xs: ${s.name}`, async () => {
    xsResults ??= (async () => {
      const xs = await startXs('lanes.entry.ts');
      try {
        return (await xs.call<LaneResult[]>({})).value;
      } finally {
        await xs.close();
      }
    })();
    const r = (await xsResults)[i]!;
    assert.equal(r, runLaneScenario(s, nobleCrypto));
  });
}
t.run();
