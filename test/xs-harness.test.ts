// The XS harness itself: the engine is built, scripts run inside it, errors
// and the compute meter come back, and host queries work in both directions.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { findXsEngine, XsWorker } from '../host-sim/xs/xs-worker.js';

const t = suite('xs harness');
const td = new TextDecoder();

t('the XS engine is installed (npm install builds it)', () => {
  const bin = findXsEngine();
  assert.ok(!(bin instanceof Error), bin instanceof Error ? bin.message : '');
});
t('runs a script in XS, not in Node', async () => {
  const w = await XsWorker.start();
  try {
    // `print` and `issueCommand` exist only in xsnap; `process` exists only in Node.
    const r = await w.evaluate('const s = [typeof print, typeof issueCommand, typeof process].join(","); new TextEncoder().encode(s).buffer');
    assert.is(td.decode(r.reply), 'function,function,undefined');
    assert.ok(r.meter.compute > 0, 'compute meter reported');
  } finally {
    await w.close();
  }
});
t('an exception in the worker rejects with its message', async () => {
  const w = await XsWorker.start();
  try {
    await w.evaluate('throw new RangeError("boom")');
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match(String(e), /boom/);
  } finally {
    await w.close();
  }
});
t('the worker can query the host synchronously', async () => {
  const w = await XsWorker.start({ onQuery: (q) => Uint8Array.from(q, (b) => b + 1) });
  try {
    const r = await w.evaluate('const a = new Uint8Array(issueCommand(new Uint8Array([1, 2, 3]).buffer)); a.buffer');
    assert.equal(Array.from(r.reply), [2, 3, 4]);
  } finally {
    await w.close();
  }
});
t('a killed worker fails pending work instead of hanging', async () => {
  const w = await XsWorker.start();
  await w.close();
  try {
    await w.evaluate('1');
    assert.unreachable('should have failed');
  } catch (e) {
    assert.match(String(e), /exited/);
  }
});
t.run();
