// The gate's small durable facts: boot counter, ack chain, executed nonces,
// lockdown and config survive reboots, compaction and power cuts.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GateState, MAX_NONCES } from '../firmware/core/gate-state.js';
import { NorFlash, PowerCutError } from '../host-sim/flash/nor-flash.js';

const t = suite('gate state');
const nonce = (n: number) => Uint8Array.from({ length: 16 }, (_, i) => (n * 31 + i) & 0xff);
const open = (f: NorFlash, writeOnce = false) => {
  const s = new GateState(f, { writeOnce });
  s.open();
  return s;
};
/** What the maintenance scheduler does between messages: compaction steps while due (bounded). */
const maintain = (s: GateState) => {
  for (let i = 0; i < 64 && s.compactionDue; i++) s.compactStep(1);
  assert.ok(!s.compactionDue, 'compaction finishes');
};

t('everything survives a reboot; the boot counter counts boots', () => {
  const f = new NorFlash({ size: 2 * 4096, blockSize: 4096 });
  const a = open(f);
  assert.is(a.boot, 1);
  a.setAck(7, 120, new Uint8Array(32).fill(9));
  a.markSeen(nonce(1), 2000, 1000);
  a.setLockdown(true);
  a.setConfig(45, 600);
  const b = open(f);
  assert.is(b.boot, 2);
  assert.equal([b.ackEpoch, b.ackSeq, Array.from(b.ackChain.slice(0, 2))], [7, 120, [9, 9]]);
  assert.ok(b.seen(nonce(1), 1500));
  assert.ok(!b.seen(nonce(1), 2001), 'an expired nonce is forgotten');
  assert.ok(!b.seen(nonce(2), 1500));
  assert.equal([b.lockdown, b.passbackSeconds, b.staleAfterSeconds, b.configSet], [true, 45, 600, true]);
});
t('many boots and nonces: compaction keeps the latest facts and a bounded nonce set', () => {
  const f = new NorFlash({ size: 2 * 4096, blockSize: 4096 });
  let s = open(f);
  for (let i = 0; i < 300; i++) {
    assert.ok(s.markSeen(nonce(i), 10_000 + i, 5000), `nonce ${i} durable`);
    maintain(s);
    if (i % 50 === 0) s = open(f);
  }
  assert.ok(s.setAck(1, 999, new Uint8Array(32).fill(1)));
  s = open(f);
  assert.ok(s.boot >= 7);
  assert.is(s.ackSeq, 999);
  for (let i = 300 - MAX_NONCES + 1; i < 300; i++) assert.ok(s.seen(nonce(i), 5000), `recent nonce ${i}`);
});
for (const writeOnce of [false, true]) {
  t(`a power cut at any write never loses what was durable${writeOnce ? ' (write-once flash)' : ''}`, () => {
    // Count the ops of the scenario, then cut at each.
    const scenario = (f: NorFlash, done: string[]) => {
      const s = open(f, writeOnce);
      done.push('boot');
      s.setAck(3, 10, new Uint8Array(32).fill(3));
      done.push('ack');
      s.markSeen(nonce(5), 9999, 0);
      done.push('nonce');
      s.setLockdown(true);
      done.push('lockdown');
      s.setConfig(20, 900);
      done.push('config');
    };
    const count = new NorFlash({ size: 2 * 4096, blockSize: 4096, noRewrite: writeOnce });
    scenario(count, []);
    const ops = count.opCount;
    for (let n = 1; n <= ops; n++) {
      const f = new NorFlash({ size: 2 * 4096, blockSize: 4096, seed: n, noRewrite: writeOnce });
      const done: string[] = [];
      f.cutAfter(n);
      try {
        scenario(f, done);
      } catch (e) {
        if (!(e instanceof PowerCutError)) throw e;
      }
      f.cancelCut();
      f.restore();
      const r = open(f, writeOnce);
      if (done.includes('ack')) assert.is(r.ackSeq, 10, `cut ${n}`);
      if (done.includes('nonce')) assert.ok(r.seen(nonce(5), 1), `cut ${n}: an executed nonce is never forgotten`);
      if (done.includes('lockdown')) assert.ok(r.lockdown, `cut ${n}`);
      if (done.includes('config')) assert.is(r.passbackSeconds, 20, `cut ${n}`);
      assert.ok(r.boot >= 1);
    }
  });
}
t('a full log refuses (nothing changes) and never erases; after compaction the same fact is taken', () => {
  const f = new NorFlash({ size: 2 * 4096, blockSize: 4096 });
  const s = open(f);
  const erases = f.stats.erases;
  let seq = 0;
  while (s.setAck(1, ++seq, new Uint8Array(32).fill(seq & 0xff)));
  assert.is(f.stats.erases, erases, 'setters only append');
  assert.is(s.ackSeq, seq - 1, 'the refused ack changed nothing');
  assert.ok(s.appendsBlocked && s.compactionDue);
  assert.ok(!s.roomFor(2), 'a command would be refused');
  assert.ok(!s.markSeen(nonce(1), 9999, 0));
  assert.ok(!s.seen(nonce(1), 0), 'a nonce that was not durable is not remembered');
  maintain(s);
  assert.is(f.stats.erases - erases, 1, 'one block erased (the other half)');
  assert.ok(s.setAck(1, seq, new Uint8Array(32).fill(seq & 0xff)));
  assert.ok(s.roomFor(2));
  assert.is(open(f).ackSeq, seq);
});
for (const writeOnce of [false, true]) {
  t(`stepwise compaction: a cut at every write and erase, with facts recorded between the steps${writeOnce ? ' (write-once flash)' : ''}`, () => {
    // Fill the log with superseded acks until compaction is due, then interleave
    // single compaction steps with new facts; cut at each op of that script.
    const prep = (s: GateState) => {
      s.markSeen(nonce(9), 99_999, 0);
      for (let i = 1; !s.compactionDue; i++) assert.ok(s.setAck(2, i, new Uint8Array(32).fill(i & 0xff)));
    };
    const script = (s: GateState, done: string[]) => {
      const step = () => {
        if (s.compactionDue) s.compactStep(1);
        done.push('step');
      };
      step();
      if (s.setAck(2, 5000, new Uint8Array(32).fill(7))) done.push('ack');
      step();
      if (s.markSeen(nonce(5), 99_999, 0)) done.push('nonce');
      for (let i = 0; i < 4; i++) step();
      s.setLockdown(true);
      done.push('lockdown');
      for (let i = 0; i < 4; i++) step();
      assert.ok(!s.compactionDue, 'the script finishes the compaction');
    };
    const base = new NorFlash({ size: 2 * 4096, blockSize: 4096, noRewrite: writeOnce });
    open(base, writeOnce);
    const snap = base.snapshot();
    const count = NorFlash.fromSnapshot(snap, { blockSize: 4096, noRewrite: writeOnce });
    const c = open(count, writeOnce);
    prep(c);
    const before = count.opCount;
    const cdone: string[] = [];
    script(c, cdone);
    assert.ok(cdone.includes('ack') && cdone.includes('nonce'), 'the facts fit while compaction runs');
    const ops = count.opCount - before;
    assert.ok(ops >= 4, `${ops} ops`);
    for (let n = 1; n <= ops; n++) {
      const f = NorFlash.fromSnapshot(snap, { blockSize: 4096, seed: n, noRewrite: writeOnce });
      const s = open(f, writeOnce);
      prep(s);
      const done: string[] = [];
      f.cutAfter(n);
      try {
        script(s, done);
      } catch (e) {
        if (!(e instanceof PowerCutError)) throw e;
      }
      f.cancelCut();
      f.restore();
      const r = open(f, writeOnce);
      assert.ok(r.seen(nonce(9), 1), `cut ${n}: a nonce from before the compaction is kept`);
      assert.ok(r.ackSeq >= 1, `cut ${n}: the latest ack survives compaction`);
      if (done.includes('ack')) assert.is(r.ackSeq, 5000, `cut ${n}`);
      if (done.includes('nonce')) assert.ok(r.seen(nonce(5), 1), `cut ${n}: an executed nonce is never forgotten`);
      if (done.includes('lockdown')) assert.ok(r.lockdown, `cut ${n}`);
      maintain(r);
      assert.ok(r.setConfig(1, 2), `cut ${n}: the recovered log takes more`);
    }
  });
}
t.run();
