// Clock cases: unsynced after a power cut, a clock set back below the floor,
// an expired head, and a signed head giving time.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decide, Decision, DEFAULT_POLICY, type GateConfig } from '../firmware/core/decision.js';
import { GateTime } from '../firmware/core/gate-time.js';
import { WhitelistStore } from '../firmware/core/whitelist-store.js';
import type { Clock } from '../firmware/ports.js';
import { nobleCrypto } from '../protocol/index.js';
import { Reason, reasonName } from '../protocol/reasons.js';
import { buildImage } from '../host-sim/central/image-builder.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { BLOCK, installImage, makeRegions, regionsBlocks } from './helpers/whitelist-scenario.js';

const T0 = 1_795_000_000;
class VirtualClock implements Clock {
  wall = 0;
  isTrusted = false;
  ms = 0;
  wallSeconds() {
    return this.wall;
  }
  trusted() {
    return this.isTrusted;
  }
  monotonicMs() {
    return this.ms;
  }
}

const key = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const everywhere = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person'] } as const;

function setup() {
  const flash = new NorFlash({ size: regionsBlocks(1) * BLOCK, blockSize: BLOCK });
  const store = new WhitelistStore(makeRegions(flash, 1), nobleCrypto);
  store.open();
  // Individual grant for the key; an institution-level grant for a second key.
  const image = buildImage({ epoch: 1, version: 5, industries: [], institutions: [{ grant: everywhere }], credentials: [{ key, grant: everywhere }, { key: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]), institution: 0 }], schedules: [] });
  assert.is(installImage(store, image, nobleCrypto), null);
  assert.is(store.acceptHead({ epoch: 1, version: 5, issuedAt: T0, expires: T0 + 86400 }, T0, true), null);
  return { flash, store };
}

function tap(store: WhitelistStore, time: GateTime, line: 'first' | 'second', k = key): string {
  const t = time.read();
  const gate: GateConfig = { line, direction: 'in', lane: 'person', policy: DEFAULT_POLICY[line], passbackSeconds: 0 };
  const v = new DataView(k.buffer, k.byteOffset, 8);
  const head = store.head!;
  const d = decide(v.getUint32(0, false), v.getUint32(4, false), gate, { now: t.now, clockTrusted: t.trusted, headIssuedAt: head.issuedAt, headExpires: head.expires, mode: 'normal', journalFull: false }, store.whitelist, null, new Decision());
  return reasonName(d.reason);
}
const other = Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]);

const t = suite('gate time');
t('trusted clock above the floor: fresh decisions', () => {
  const { store } = setup();
  const c = Object.assign(new VirtualClock(), { wall: T0 + 60, isTrusted: true });
  const time = new GateTime(c, () => store.timeFloor);
  assert.is(tap(store, time, 'second'), 'granted');
  assert.is(tap(store, time, 'second', other), 'granted');
  assert.is(time.read().trusted, true);
});
t('unsynced after a power cut: second line refuses, first line grants individuals only', () => {
  const { flash } = setup();
  const store = new WhitelistStore(makeRegions(flash, 1), nobleCrypto); // reboot
  store.open();
  assert.is(store.timeFloor, T0, 'floor survives the reboot');
  const c = Object.assign(new VirtualClock(), { wall: 0, isTrusted: false, ms: 5000 });
  const time = new GateTime(c, () => store.timeFloor);
  assert.equal({ now: time.read().now, trusted: time.trusted }, { now: T0 + 5, trusted: false }, 'estimate = floor + uptime');
  assert.is(tap(store, time, 'second'), 'clock_unsynced');
  assert.is(tap(store, time, 'first'), 'granted');
  assert.is(tap(store, time, 'first', other), 'level_not_allowed');
});
t('a clock set back below the floor is not believed', () => {
  const { store } = setup();
  const c = Object.assign(new VirtualClock(), { wall: T0 - 3600, isTrusted: true, ms: 1000 });
  const time = new GateTime(c, () => store.timeFloor);
  assert.is(time.read().trusted, false);
  assert.is(time.now, T0 + 1);
  assert.is(tap(store, time, 'second'), 'clock_unsynced');
});
t('a signed head gives time when the clock has none', () => {
  const { store } = setup();
  const c = Object.assign(new VirtualClock(), { wall: 0, isTrusted: false, ms: 10_000 });
  const time = new GateTime(c, () => store.timeFloor);
  time.learnSignedTime(T0 + 300);
  c.ms = 70_000;
  assert.equal({ now: time.read().now, trusted: time.trusted }, { now: T0 + 360, trusted: true });
  assert.is(tap(store, time, 'second'), 'granted');
});
t('an expired head: refused when offered; the installed one expiring turns decisions', () => {
  const { store } = setup();
  assert.is(store.acceptHead({ epoch: 1, version: 6, issuedAt: T0 + 10, expires: T0 + 20 }, T0 + 30, true), 'expired');
  const c = Object.assign(new VirtualClock(), { wall: T0 + 86400 + 1, isTrusted: true });
  const time = new GateTime(c, () => store.timeFloor);
  assert.is(tap(store, time, 'second'), 'whitelist_expired');
  assert.is(tap(store, time, 'first'), 'granted');
  assert.is(tap(store, time, 'first', other), 'level_not_allowed');
});
t('stale whitelist: second line falls back to individual grants', () => {
  const { store } = setup();
  const c = Object.assign(new VirtualClock(), { wall: T0 + DEFAULT_POLICY.second.staleAfterSeconds + 1, isTrusted: true });
  const time = new GateTime(c, () => store.timeFloor);
  assert.is(tap(store, time, 'second'), 'granted');
  assert.is(tap(store, time, 'second', other), 'level_not_allowed');
  assert.is(tap(store, time, 'first', other), 'granted');
});
t('heads only move forward', () => {
  const { store } = setup();
  const h = { epoch: 1, version: 5, issuedAt: T0, expires: T0 + 86400 };
  assert.is(store.acceptHead(h, T0, true), 'not_newer');
  assert.is(store.acceptHead({ ...h, version: 4, issuedAt: T0 + 5 }, T0, true), 'old_version');
  assert.is(store.acceptHead({ ...h, epoch: 0, version: 9, issuedAt: T0 + 5 }, T0, true), 'stale_epoch');
  assert.is(store.acceptHead({ ...h, issuedAt: T0 + 60 }, T0 + 60, true), null, 'same version re-signed later: a heartbeat');
  assert.is(store.timeFloor, T0 + 60);
  assert.is(store.acceptHead({ ...h, epoch: 2, version: 1, issuedAt: T0 + 70 }, T0 + 70, true), null, 'a new epoch');
  assert.is(Reason.granted, 0);
});
t.run();
