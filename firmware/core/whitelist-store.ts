// The whitelist on flash: two image slots (A/B), a state log (which slot is
// committed, the newest accepted head) and an overlay log (deltas since the
// base image). Every change is durable before it is reported, and recovery
// after a power cut at any instant yields exactly the old or the new state.
//
//   image install: erase inactive slot (stepwise, background) -> write each
//                  chunk after checking its hash -> COMMIT record (the switch)
//   delta:         check -> append to overlay log (durable) -> apply in RAM
//   head:          checks -> append HEAD record (freshness and time floor)

import type { Crypto } from '../../protocol/crypto.js';
import { bytesEqual } from '../../protocol/hex.js';
import type { BlockStore } from '../ports.js';
import { DEFAULT_OVERLAY_CAPACITY, OverlayIndex, type OverlayApplyError, type OverlayCapacity } from './overlay.js';
import { RecordLog } from './record-log.js';
import { Whitelist } from './whitelist.js';
import { WhitelistImage, type ImageError } from './whitelist-image.js';

export interface WhitelistRegions {
  readonly slotA: BlockStore;
  readonly slotB: BlockStore;
  /** ≥ 2 erase blocks. */
  readonly state: BlockStore;
  /** ≥ 2 erase blocks; each half holds the deltas since the base image. */
  readonly overlay: BlockStore;
}

export interface HeadInfo {
  readonly epoch: number;
  readonly version: number;
  readonly issuedAt: number;
  readonly expires: number;
}

export type StoreError =
  | 'stale_epoch' // head or image of an older epoch
  | 'old_version' // not newer than what we have
  | 'not_newer' // same version, not issued later
  | 'expired' // the head's expiry has passed (trusted clock)
  | 'no_base' // deltas need a base image of their epoch
  | 'wrong_epoch'
  | 'version_gap' // a delta that does not follow the current version
  | 'overlay_full'
  | OverlayApplyError
  | 'no_install' // chunk or commit without beginInstall
  | 'too_large' // image larger than a slot
  | 'chunk_range'
  | 'chunk_hash'
  | 'not_erased' // chunk arrived before its blocks were erased
  | 'write_verify' // read-back differs from what was written
  | 'incomplete'
  | 'image_mismatch' // header disagrees with the head being installed
  | ImageError;

const STATE_KIND = 0x5354_4154; // "STAT"
const OVERLAY_KIND = 0x4f56_4c59; // "OVLY"
const T_COMMIT = 1;
const T_HEAD = 2;
const T_DELTA = 1;
const DELTA_HEADER = 8; // epoch u32, version u32

interface Install {
  slot: number;
  epoch: number;
  version: number;
  size: number;
  chunkSize: number;
  hashes: Uint8Array;
  chunks: number;
  written: Uint8Array;
  writtenCount: number;
  blocksNeeded: number;
  blocksErased: number;
}

export interface RecoveryReport {
  activeSlot: number; // -1 = no image
  imageError: ImageError | 'epoch_or_version_mismatch' | null;
  overlayDeltas: number;
  overlaySkipped: number;
  stateSealed: boolean;
  overlaySealed: boolean;
}

export class WhitelistStore {
  readonly whitelist: Whitelist;
  readonly #slots: [BlockStore, BlockStore];
  readonly #state: RecordLog;
  readonly #overlayLog: RecordLog;
  readonly #crypto: Crypto;
  #active = -1;
  #commit: { slot: number; epoch: number; version: number; size: number } | null = null;
  #head: HeadInfo | null = null;
  #floor = 0;
  #epoch = 0;
  #version = 0;
  #install: Install | null = null;
  #buf = new Uint8Array(64);

  constructor(regions: WhitelistRegions, crypto: Crypto, options: { overlayCapacity?: OverlayCapacity; writeOnce?: boolean } = {}) {
    this.#slots = [regions.slotA, regions.slotB];
    const writeOnce = options.writeOnce === true;
    this.#state = new RecordLog(regions.state, { kind: STATE_KIND, maxPayload: 64, writeOnce });
    this.#overlayLog = new RecordLog(regions.overlay, { kind: OVERLAY_KIND, maxPayload: DELTA_HEADER + 16384, writeOnce });
    this.#crypto = crypto;
    this.whitelist = new Whitelist(null, new OverlayIndex(options.overlayCapacity ?? DEFAULT_OVERLAY_CAPACITY));
  }

  /** The version decisions are made against (base + applied deltas); 0 without a base. */
  get version(): number {
    return this.#version;
  }
  get epoch(): number {
    return this.#epoch;
  }
  get head(): HeadInfo | null {
    return this.#head;
  }
  /** Never earlier than the newest accepted head's issue time: a clock below it is not believed. */
  get timeFloor(): number {
    return this.#floor;
  }
  get activeSlot(): number {
    return this.#active;
  }
  get installing(): boolean {
    return this.#install !== null;
  }

  /** Boot: recover the state, open the committed image in place, replay the overlay. */
  open(): RecoveryReport {
    this.#commit = null;
    this.#head = null;
    this.#floor = 0;
    this.#install = null;
    const st = this.#state.open((type, p) => {
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
      if (type === T_COMMIT && p.length >= 16) this.#commit = { slot: v.getUint8(0), epoch: v.getUint32(4, true), version: v.getUint32(8, true), size: v.getUint32(12, true) };
      else if (type === T_HEAD && p.length >= 16) {
        this.#head = { epoch: v.getUint32(0, true), version: v.getUint32(4, true), issuedAt: v.getUint32(8, true), expires: v.getUint32(12, true) };
        if (this.#head.issuedAt > this.#floor) this.#floor = this.#head.issuedAt;
      }
    });
    if (st.sealed) this.#compactState();

    const report: RecoveryReport = { activeSlot: -1, imageError: null, overlayDeltas: 0, overlaySkipped: 0, stateSealed: st.sealed, overlaySealed: false };
    this.whitelist.base = null;
    this.#active = -1;
    this.#epoch = 0;
    this.#version = 0;
    const c = this.#committed();
    if (c !== null && (c.slot === 0 || c.slot === 1)) {
      const img = this.#openSlot(c.slot, c.size);
      if (typeof img === 'string') report.imageError = img;
      else if (img.epoch !== c.epoch || img.version !== c.version) report.imageError = 'epoch_or_version_mismatch';
      else {
        this.whitelist.base = img;
        this.#active = c.slot;
        this.#epoch = img.epoch;
        this.#version = img.version;
        report.activeSlot = c.slot;
      }
    }
    this.#replayOverlay(report);
    return report;
  }

  // A method, not a field read: open() assigns #commit inside a callback, which narrowing does not see.
  #committed(): { slot: number; epoch: number; version: number; size: number } | null {
    return this.#commit;
  }

  #openSlot(slot: number, size: number): WhitelistImage | ImageError {
    const store = this.#slots[slot] as BlockStore;
    if (size > store.size) return 'too_short';
    const mapped = store.map?.();
    // Without memory-mapped flash the image is copied to RAM once (costs RAM, same speed after).
    const bytes = mapped !== undefined ? mapped.subarray(0, size) : store.read(0, size);
    return WhitelistImage.open(bytes);
  }

  #replayOverlay(report: RecoveryReport): void {
    const overlay = this.whitelist.overlay;
    overlay.reset();
    const applied: Uint8Array[] = []; // the live deltas, kept for a compaction right after (no second scan)
    const r = this.#overlayLog.open((type, p) => {
      if (type !== T_DELTA || p.length < DELTA_HEADER + 16) return;
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const epoch = v.getUint32(0, true);
      const version = v.getUint32(4, true);
      // Only deltas that continue the base, in order: older ones are already in the image.
      if (this.whitelist.base === null || epoch !== this.#epoch || version !== this.#version + 1) {
        report.overlaySkipped++;
        return;
      }
      const records = p.subarray(DELTA_HEADER);
      if (overlay.apply(records) !== null) {
        report.overlaySkipped++;
        return;
      }
      this.#version = version;
      report.overlayDeltas++;
      applied.push(p.slice());
    });
    report.overlaySealed = r.sealed;
    if (r.sealed || report.overlaySkipped > 0) this.#compactOverlayWith(applied);
  }

  // ---- heads ----

  /** Accepts a verified head if it moves forward; durable before it returns null. */
  acceptHead(h: HeadInfo, now: number, clockTrusted: boolean): StoreError | null {
    const cur = this.#head;
    if (cur !== null) {
      if (h.epoch < cur.epoch) return 'stale_epoch';
      if (h.epoch === cur.epoch) {
        if (h.version < cur.version) return 'old_version';
        if (h.version === cur.version && h.issuedAt <= cur.issuedAt) return 'not_newer';
      }
    }
    if (clockTrusted && h.expires <= now) return 'expired';
    const v = new DataView(this.#buf.buffer, 0, 16);
    v.setUint32(0, h.epoch, true);
    v.setUint32(4, h.version, true);
    v.setUint32(8, h.issuedAt, true);
    v.setUint32(12, h.expires, true);
    this.#appendState(T_HEAD, this.#buf.subarray(0, 16));
    this.#head = { epoch: h.epoch, version: h.version, issuedAt: h.issuedAt, expires: h.expires };
    if (h.issuedAt > this.#floor) this.#floor = h.issuedAt;
    return null;
  }

  #appendState(type: number, payload: Uint8Array): void {
    if (this.#state.append(type, payload)) return;
    this.#compactState();
    if (!this.#state.append(type, payload)) throw new Error('state log: append failed after compaction');
  }

  #compactState(): void {
    const commit = this.#commit;
    const head = this.#head;
    const ok = this.#state.compact((emit) => {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      if (commit !== null) {
        v.setUint8(0, commit.slot);
        v.setUint32(4, commit.epoch, true);
        v.setUint32(8, commit.version, true);
        v.setUint32(12, commit.size, true);
        emit(T_COMMIT, b.slice());
      }
      if (head !== null) {
        v.setUint32(0, head.epoch, true);
        v.setUint32(4, head.version, true);
        v.setUint32(8, head.issuedAt, true);
        v.setUint32(12, head.expires, true);
        emit(T_HEAD, b.slice());
      }
    });
    if (!ok) throw new Error('state log: compaction failed');
  }

  // ---- deltas ----

  /** Applies delta `version` (which must follow the current version); durable before it returns null. */
  applyDelta(epoch: number, version: number, records: Uint8Array): StoreError | null {
    if (this.whitelist.base === null) return 'no_base';
    if (epoch !== this.#epoch) return epoch < this.#epoch ? 'stale_epoch' : 'wrong_epoch';
    if (version <= this.#version) return 'old_version';
    if (version !== this.#version + 1) return 'version_gap';
    const overlay = this.whitelist.overlay;
    const error = overlay.check(records);
    if (error !== null) return error;
    const payload = new Uint8Array(DELTA_HEADER + records.length);
    const v = new DataView(payload.buffer);
    v.setUint32(0, epoch, true);
    v.setUint32(4, version, true);
    payload.set(records, DELTA_HEADER);
    if (!this.#overlayLog.append(T_DELTA, payload)) {
      this.compactOverlay();
      if (!this.#overlayLog.append(T_DELTA, payload)) return 'overlay_full';
    }
    overlay.applyChecked(records); // effective now: the record is durable
    this.#version = version;
    return null;
  }

  /**
   * Rewrites the overlay log with only the deltas that continue the current
   * base. Erases: background work, never on the tap path.
   */
  compactOverlay(): boolean {
    const keep: Uint8Array[] = [];
    this.#overlayLog.open((type, p) => {
      if (type !== T_DELTA || p.length < DELTA_HEADER) return;
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const epoch = v.getUint32(0, true);
      const version = v.getUint32(4, true);
      if (this.whitelist.base !== null && epoch === this.#epoch && version > this.whitelist.base.version && version <= this.#version) keep.push(p.slice());
    });
    keep.sort((a, b) => new DataView(a.buffer).getUint32(4, true) - new DataView(b.buffer).getUint32(4, true));
    return this.#compactOverlayWith(keep);
  }

  /** Rewrites the overlay log with exactly these delta payloads, in order. */
  #compactOverlayWith(live: readonly Uint8Array[]): boolean {
    return this.#overlayLog.compact((emit) => {
      for (const p of live) if (!emit(T_DELTA, p)) return;
    });
  }

  /** Fraction of the overlay log half in use (the sync engine pulls a new base when it grows). */
  get overlayFill(): number {
    return this.#overlayLog.usedBytes / this.#overlayLog.halfBytes;
  }

  // ---- image install ----

  /** Starts installing an image into the inactive slot; `hashes` were checked against the signed head. */
  beginInstall(h: { epoch: number; version: number; imageSize: number; chunkSize: number }, hashes: Uint8Array): StoreError | null {
    if (h.epoch < this.#epoch) return 'stale_epoch';
    if (h.epoch === this.#epoch && this.whitelist.base !== null && h.version <= this.#version) return 'old_version';
    const slot = this.#active === 0 ? 1 : 0;
    const store = this.#slots[slot];
    if (h.imageSize > store.size) return 'too_large';
    // Flash encryption programs 16-byte units once: chunks start on 16-byte boundaries.
    if (h.chunkSize % 16 !== 0) return 'chunk_range';
    const chunks = Math.ceil(h.imageSize / h.chunkSize);
    if (chunks === 0 || hashes.length !== chunks * 32) return 'chunk_range';
    this.#install = {
      slot, epoch: h.epoch, version: h.version, size: h.imageSize, chunkSize: h.chunkSize, hashes: hashes.slice(), chunks,
      written: new Uint8Array(chunks), writtenCount: 0, blocksNeeded: Math.ceil(h.imageSize / store.blockSize), blocksErased: 0,
    };
    return null;
  }

  /** Erases the next block of the target slot; true when all are erased. Call from a background timer. */
  eraseStep(): boolean {
    const i = this.#install;
    if (i === null) return true;
    if (i.blocksErased < i.blocksNeeded) {
      (this.#slots[i.slot] as BlockStore).eraseBlock(i.blocksErased);
      i.blocksErased++;
    }
    return i.blocksErased >= i.blocksNeeded;
  }

  writeChunk(index: number, data: Uint8Array): StoreError | null {
    const i = this.#install;
    if (i === null) return 'no_install';
    if (!Number.isInteger(index) || index < 0 || index >= i.chunks) return 'chunk_range';
    const offset = index * i.chunkSize;
    const expected = Math.min(i.chunkSize, i.size - offset);
    if (data.length !== expected) return 'chunk_range';
    if (!bytesEqual(this.#crypto.sha256(data), i.hashes.subarray(index * 32, index * 32 + 32))) return 'chunk_hash';
    if (i.written[index] === 1) return null; // duplicate delivery
    const store = this.#slots[i.slot] as BlockStore;
    if (Math.ceil((offset + data.length) / store.blockSize) > i.blocksErased) return 'not_erased';
    if (data.length % 16 === 0) store.write(offset, data);
    else {
      // The image's last chunk: pad to whole 16-byte units with erased bytes.
      const padded = new Uint8Array((data.length + 15) & ~15).fill(0xff);
      padded.set(data);
      store.write(offset, padded);
    }
    if (!bytesEqual(store.read(offset, data.length), data)) return 'write_verify';
    i.written[index] = 1;
    i.writtenCount++;
    return null;
  }

  /** Chunk indexes still missing (for the sync engine's window). */
  missingChunks(max: number): number[] {
    const out: number[] = [];
    const i = this.#install;
    if (i === null) return out;
    for (let c = 0; c < i.chunks && out.length < max; c++) if (i.written[c] === 0) out.push(c);
    return out;
  }

  /** The switch: one durable COMMIT record. Before it, recovery keeps the old slot. */
  commitInstall(): StoreError | null {
    const i = this.#install;
    if (i === null) return 'no_install';
    if (i.writtenCount !== i.chunks) return 'incomplete';
    const img = this.#openSlot(i.slot, i.size);
    if (typeof img === 'string') return img;
    if (img.epoch !== i.epoch || img.version !== i.version || img.totalBytes !== i.size) return 'image_mismatch';
    const v = new DataView(this.#buf.buffer, 0, 16);
    v.setUint8(0, i.slot);
    v.setUint8(1, 0);
    v.setUint16(2, 0, true);
    v.setUint32(4, i.epoch, true);
    v.setUint32(8, i.version, true);
    v.setUint32(12, i.size, true);
    this.#appendState(T_COMMIT, this.#buf.subarray(0, 16));
    this.#commit = { slot: i.slot, epoch: i.epoch, version: i.version, size: i.size };
    this.#install = null;
    // Switch in RAM: the new base, then the overlay deltas that continue it (if any).
    this.whitelist.base = img;
    this.#active = i.slot;
    const previousVersion = this.#version;
    const previousEpoch = this.#epoch;
    this.#epoch = img.epoch;
    this.#version = img.version;
    const report: RecoveryReport = { activeSlot: i.slot, imageError: null, overlayDeltas: 0, overlaySkipped: 0, stateSealed: false, overlaySealed: false };
    if (previousEpoch === img.epoch && previousVersion > img.version) this.#replayOverlay(report);
    else this.whitelist.overlay.reset();
    return null;
  }

  abortInstall(): void {
    this.#install = null;
  }
}
