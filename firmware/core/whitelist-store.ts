// The whitelist on flash: two image slots (A/B), a state log (which slot is
// committed, the newest accepted head) and an overlay log (deltas since the
// base image). Every change is durable before it is reported, and recovery
// after a power cut at any instant yields exactly the old or the new state.
//
//   image install: erase inactive slot (stepwise, background) -> write each
//                  chunk after checking its hash -> COMMIT record (the switch)
//   delta:         check -> append to overlay log (durable) -> apply in RAM
//   head:          checks -> append HEAD record (freshness and time floor)
//
// Deltas, heads and commits only append (they arrive in message handlers);
// the maintenance scheduler compacts both logs through `overlayCompaction`
// and `stateCompaction`. A log that has no room yet refuses the change with
// 'compacting' (nothing changed; ask again once compaction has made room).

import type { Crypto } from '../../protocol/crypto.js';
import { bytesEqual } from '../../protocol/hex.js';
import type { BlockStore } from '../ports.js';
import type { CompactionTask } from './maintenance.js';
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
  | 'overlay_full' // the live deltas and this one do not fit even after compaction: pull a new base
  | 'compacting' // the log has no room until its compaction (in the background) finishes: ask again later
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
  // Seq of the newest COMMIT and HEAD records (older ones are dead at compaction).
  #latestCommit = 0;
  #latestHead = 0;
  /** Bytes the live deltas (those continuing the base) take in the overlay log. */
  #overlayLive = 0;
  readonly overlayCompaction: CompactionTask;
  readonly stateCompaction: CompactionTask;

  constructor(regions: WhitelistRegions, crypto: Crypto, options: { overlayCapacity?: OverlayCapacity; writeOnce?: boolean } = {}) {
    this.#slots = [regions.slotA, regions.slotB];
    const writeOnce = options.writeOnce === true;
    this.#state = new RecordLog(regions.state, { kind: STATE_KIND, maxPayload: 64, writeOnce });
    this.#overlayLog = new RecordLog(regions.overlay, { kind: OVERLAY_KIND, maxPayload: DELTA_HEADER + 16384, writeOnce });
    this.#crypto = crypto;
    this.whitelist = new Whitelist(null, new OverlayIndex(options.overlayCapacity ?? DEFAULT_OVERLAY_CAPACITY));
    const overlay = this.#overlayLog;
    const state = this.#state;
    const overlayKeep = this.#overlayKeep;
    const stateKeep = this.#stateKeep;
    const overlayLive = (): number => this.#overlayLive;
    const stateLive = (): number => (this.#latestCommit > 0 ? RecordLog.entryBytes(16) : 0) + (this.#latestHead > 0 ? RecordLog.entryBytes(16) : 0);
    this.overlayCompaction = {
      name: 'overlay',
      get compactionDue() {
        return overlay.compactionDue(overlayLive());
      },
      get appendsBlocked() {
        return overlay.blocked;
      },
      compactStep: (budget) => overlay.compactStep(budget, overlayKeep),
    };
    this.stateCompaction = {
      name: 'store state',
      get compactionDue() {
        return state.compactionDue(stateLive());
      },
      get appendsBlocked() {
        return state.blocked;
      },
      compactStep: (budget) => state.compactStep(budget, stateKeep),
    };
  }

  /** Live overlay entries: deltas that continue the current base. */
  readonly #overlayKeep = (type: number, p: Uint8Array): boolean => {
    if (type !== T_DELTA || p.length < DELTA_HEADER + 16 || this.whitelist.base === null) return false;
    const v = new DataView(p.buffer, p.byteOffset, DELTA_HEADER);
    const version = v.getUint32(4, true);
    return v.getUint32(0, true) === this.#epoch && version > this.whitelist.base.version && version <= this.#version;
  };
  /** Live state entries: the newest COMMIT and the newest HEAD. */
  readonly #stateKeep = (type: number, _p: Uint8Array, seq: number): boolean => (type === T_COMMIT ? seq === this.#latestCommit : type === T_HEAD && seq === this.#latestHead);

  /** Deltas are refused ('compacting') until the overlay log's compaction has made room. */
  get overlayBlocked(): boolean {
    return this.#overlayLog.blocked;
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
    this.#latestCommit = 0;
    this.#latestHead = 0;
    const st = this.#state.open((type, p, seq) => {
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
      if (type === T_COMMIT && p.length >= 16) {
        this.#commit = { slot: v.getUint8(0), epoch: v.getUint32(4, true), version: v.getUint32(8, true), size: v.getUint32(12, true) };
        this.#latestCommit = seq;
      } else if (type === T_HEAD && p.length >= 16) {
        this.#head = { epoch: v.getUint32(0, true), version: v.getUint32(4, true), issuedAt: v.getUint32(8, true), expires: v.getUint32(12, true) };
        this.#latestHead = seq;
        if (this.#head.issuedAt > this.#floor) this.#floor = this.#head.issuedAt;
      }
    });
    // Boot may erase (neither a tap nor a handler): a sealed log could take nothing more.
    if (st.sealed) this.#state.compactNow(this.#stateKeep);

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
    this.#replayOverlay(report, true);
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

  /**
   * Rebuilds the RAM overlay from the log: at boot (`atBoot`: recovers the log;
   * a sealed one is compacted at once) or after a commit (reads only).
   */
  #replayOverlay(report: RecoveryReport, atBoot: boolean): void {
    const overlay = this.whitelist.overlay;
    overlay.reset();
    this.#overlayLive = 0;
    const visit = (type: number, p: Uint8Array): void => {
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
      this.#overlayLive += RecordLog.entryBytes(p.length);
      report.overlayDeltas++;
    };
    if (!atBoot) {
      this.#overlayLog.forEach(visit);
      return;
    }
    const r = this.#overlayLog.open(visit);
    report.overlaySealed = r.sealed;
    // Stale deltas (report.overlaySkipped) wait for the scheduler; a sealed log cannot wait.
    if (r.sealed) this.#overlayLog.compactNow(this.#overlayKeep);
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
    if (!this.#appendState(T_HEAD, this.#buf.subarray(0, 16))) return 'compacting';
    this.#head = { epoch: h.epoch, version: h.version, issuedAt: h.issuedAt, expires: h.expires };
    if (h.issuedAt > this.#floor) this.#floor = h.issuedAt;
    return null;
  }

  /** One append; false when the state log has no room until its compaction finishes. */
  #appendState(type: number, payload: Uint8Array): boolean {
    if (!this.#state.append(type, payload)) return false;
    if (type === T_COMMIT) this.#latestCommit = this.#state.lastSeq;
    else this.#latestHead = this.#state.lastSeq;
    return true;
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
      // No erase here (a message handler): either compaction will make room, or nothing can.
      return this.#overlayLive + RecordLog.entryBytes(payload.length) > this.#overlayLog.capacityBytes ? 'overlay_full' : 'compacting';
    }
    overlay.applyChecked(records); // effective now: the record is durable
    this.#version = version;
    this.#overlayLive += RecordLog.entryBytes(payload.length);
    return null;
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
    if (!this.#appendState(T_COMMIT, this.#buf.subarray(0, 16))) return 'compacting'; // the install stays: commit again later
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
    // The deltas before it are now dead in the overlay log: the scheduler compacts them away in time.
    if (previousEpoch === img.epoch && previousVersion > img.version) this.#replayOverlay(report, false);
    else {
      this.whitelist.overlay.reset();
      this.#overlayLive = 0;
    }
    return null;
  }

  abortInstall(): void {
    this.#install = null;
  }
}
