// Whitelist store edges: versions move forward only, bad images and chunks
// are refused and never installed, images are read in place.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WhitelistImage } from '../firmware/core/whitelist-image.js';
import { WhitelistStore } from '../firmware/core/whitelist-store.js';
import { nobleCrypto } from '../protocol/index.js';
import { crc32 } from '../protocol/crc32.js';
import { buildImage, chunkImage, encodeDeltaRecords, ImageBuildError, type ImageModel } from '../host-sim/central/image-builder.js';
import { NorFlash } from '../host-sim/flash/nor-flash.js';
import { BLOCK, installImage, makeRegions, regionsBlocks } from './helpers/whitelist-scenario.js';

const k = (n: number) => Uint8Array.from([n, n, n, n, n, n, n, n]);
const model = (version: number, epoch = 1): ImageModel => ({ epoch, version, industries: [], institutions: [], credentials: [{ key: k(1) }, { key: k(2) }], schedules: [] });
function fresh(slotBlocks = 1) {
  const flash = new NorFlash({ size: regionsBlocks(slotBlocks) * BLOCK, blockSize: BLOCK });
  const store = new WhitelistStore(makeRegions(flash, slotBlocks), nobleCrypto);
  store.open();
  return { flash, store };
}
const rev = (n: number) => encodeDeltaRecords([{ op: 'revoke', key: k(n) }]);

const t = suite('whitelist store');
t('deltas: only the next version of the current epoch, and only on a base', () => {
  const { store } = fresh();
  assert.is(store.applyDelta(1, 2, rev(1)), 'no_base');
  assert.is(installImage(store, buildImage(model(10)), nobleCrypto), null);
  assert.is(store.applyDelta(1, 10, rev(1)), 'old_version');
  assert.is(store.applyDelta(1, 12, rev(1)), 'version_gap');
  assert.is(store.applyDelta(2, 11, rev(1)), 'wrong_epoch');
  assert.is(store.applyDelta(0, 11, rev(1)), 'stale_epoch');
  assert.is(store.applyDelta(1, 11, new Uint8Array(15)), 'bad_length');
  assert.is(store.applyDelta(1, 11, Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 99 : 0))), 'bad_op');
  assert.is(store.version, 10, 'refused deltas change nothing');
  assert.is(store.applyDelta(1, 11, rev(1)), null);
  assert.is(store.version, 11);
});
t('images: older or equal versions refused; a new epoch accepted', () => {
  const { store } = fresh();
  assert.is(installImage(store, buildImage(model(10)), nobleCrypto), null);
  assert.is(installImage(store, buildImage(model(10)), nobleCrypto), 'old_version');
  assert.is(installImage(store, buildImage(model(9)), nobleCrypto), 'old_version');
  assert.is(installImage(store, buildImage(model(3, 0)), nobleCrypto), 'stale_epoch');
  assert.is(installImage(store, buildImage(model(1, 2)), nobleCrypto), null);
  assert.equal([store.epoch, store.version], [2, 1]);
});
t('chunks: wrong hash, wrong size, out of range, before erase, incomplete: refused', () => {
  const { store } = fresh();
  const img = buildImage(model(10));
  const ci = chunkImage(img, 64, nobleCrypto);
  assert.is(store.writeChunk(0, ci.chunks[0]!), 'no_install');
  assert.is(store.beginInstall({ epoch: 1, version: 10, imageSize: img.length, chunkSize: 60 }, ci.hashes), 'chunk_range', 'chunk size not a multiple of 16');
  assert.is(store.beginInstall({ epoch: 1, version: 10, imageSize: img.length, chunkSize: 64 }, ci.hashes.subarray(32)), 'chunk_range');
  assert.is(store.beginInstall({ epoch: 1, version: 10, imageSize: 1 << 20, chunkSize: 64 }, ci.hashes), 'too_large');
  assert.is(store.beginInstall({ epoch: 1, version: 10, imageSize: img.length, chunkSize: 64 }, ci.hashes), null);
  assert.is(store.writeChunk(0, ci.chunks[0]!), 'not_erased');
  while (!store.eraseStep());
  const forged = ci.chunks[0]!.slice();
  forged[5]! ^= 1;
  assert.is(store.writeChunk(0, forged), 'chunk_hash');
  assert.is(store.writeChunk(0, ci.chunks[0]!.subarray(1)), 'chunk_range');
  assert.is(store.writeChunk(ci.chunks.length, ci.chunks[0]!), 'chunk_range');
  assert.is(store.writeChunk(0, ci.chunks[0]!), null);
  assert.is(store.writeChunk(0, ci.chunks[0]!), null, 'a duplicate delivery is harmless');
  assert.is(store.commitInstall(), 'incomplete');
  assert.equal(store.missingChunks(100), Array.from({ length: ci.chunks.length - 1 }, (_, i) => i + 1));
  for (let i = 1; i < ci.chunks.length; i++) assert.is(store.writeChunk(i, ci.chunks[i]!), null);
  assert.is(store.commitInstall(), null);
  assert.is(store.version, 10);
});
t('an image whose header disagrees with its head is not committed', () => {
  const { store } = fresh();
  const img = buildImage(model(10));
  const ci = chunkImage(img, 64, nobleCrypto);
  assert.is(store.beginInstall({ epoch: 1, version: 11, imageSize: img.length, chunkSize: 64 }, ci.hashes), null);
  while (!store.eraseStep());
  ci.chunks.forEach((c, i) => assert.is(store.writeChunk(i, c), null));
  assert.is(store.commitInstall(), 'image_mismatch');
  assert.is(store.activeSlot, -1);
});
t('image headers: bad magic, format, CRC and layout are refused', () => {
  const img = buildImage(model(10));
  assert.instance(WhitelistImage.open(img), WhitelistImage);
  assert.is(WhitelistImage.open(img.subarray(0, 10)), 'too_short');
  const bad = (mutate: (b: Uint8Array, v: DataView) => void, fixCrc = true) => {
    const b = img.slice();
    const v = new DataView(b.buffer);
    mutate(b, v);
    if (fixCrc) v.setUint32(60, crc32(b, 0, 60), true);
    return WhitelistImage.open(b);
  };
  assert.is(bad((b) => (b[0] = 0)), 'bad_magic');
  assert.is(bad((_, v) => v.setUint16(4, 2, true)), 'bad_format');
  assert.is(bad((b) => (b[20] = 1), false), 'bad_header_crc');
  assert.is(bad((_, v) => v.setUint32(16, 1000, true)), 'bad_layout');
  assert.is(bad((_, v) => v.setUint32(56, img.length + 100, true)), 'too_short');
});
t('the builder refuses duplicate keys and dangling references', () => {
  assert.throws(() => buildImage({ ...model(1), credentials: [{ key: k(1) }, { key: k(1) }] }), (e: unknown) => e instanceof ImageBuildError && /duplicate credential key/.test(e.message));
  assert.throws(() => buildImage({ ...model(1), credentials: [{ key: k(1), institution: 3 }] }), /unknown institution/);
  assert.throws(() => buildImage({ ...model(1), institutions: [{ industry: 0 }] }), /unknown industry/);
});
t('the image is read in place from mapped flash, not copied', () => {
  const { flash, store } = fresh();
  assert.is(installImage(store, buildImage(model(10)), nobleCrypto), null);
  const before = flash.stats.reads;
  const kv = new DataView(k(2).buffer);
  for (let i = 0; i < 1000; i++) store.whitelist.base!.findCredential(kv.getUint32(0, false), kv.getUint32(4, false));
  assert.is(flash.stats.reads, before, 'lookups go through map(), no read() calls');
  assert.ok(store.whitelist.base!.findCredential(kv.getUint32(0, false), kv.getUint32(4, false)) >= 0);
});
t.run();
