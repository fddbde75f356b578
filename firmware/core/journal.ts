// The event journal: every passage gets a durable 16-byte record before the
// lane moves; records survive power cuts at any instant and months offline,
// and space is freed only up to what the central acknowledged. Device code:
// no Node APIs, no allocation on the append path. docs/JOURNAL.md has the
// full description; the decisions taken here are summarised below.
//
// Layout. The store's erase blocks are sectors. All but the last two form the
// ring; the last two hold acknowledgement records (the "ack sectors").
//
//   ring sector: [header 32 B][record 0][record 1] ... [record N-1]   N = (sectorSize - 32) / 16
//   header:      magic "SLJS" u32, epoch u32, generation u32, firstSeq u32,
//                ringSectors u16, format u8, record size u8, 0xFF x 8, CRC-32 of bytes 0..27
//   ack sector:  [header 32 B: magic "SLJA", epoch, ack generation, ringSectors, format, CRC-32]
//                [ack record 16 B: acked u32, epoch u32, ack generation u32, CRC-32 (seeded with the slot)] ...
//
// Generations are ring positions. Generation g lives in ring sector g mod R
// and holds seqs firstSeq(g) = g*N + 1 .. (g+1)*N; seq = firstSeq + slot. A
// seq is therefore never stored, and never reused within an epoch: a slot
// that is torn or skipped keeps its seq, which reads as a gap tombstone. The
// generation advances by one per ring position, so a position that could not
// be opened (header write failed, or garbage found there) is "consumed": its
// generation and its N seqs become gaps (at most MAX_SKIPPED in a row). Seqs
// of consumed positions count as issued (lastSeq) only once recovery would see
// them too: when a later sector opens, or when recovery itself finds a damaged
// header right after a full head. So lastSeq never goes back across a reboot,
// and a seq that may have been uploaded (as a record or a gap) is never reused.
//
// Decisions (see docs/JOURNAL.md for why):
// - append writes one record (a single write), reads it back and compares;
//   only then is the seq returned. A slot whose read-back differs is skipped
//   (up to SLOT_RETRIES more slots per append). A write that throws is
//   treated the same way: the read-back decides (a power loss shows up there).
// - Opening the next sector: it must be erased already (verified by
//   maintain(), or checked inline by reading it); header first, read back,
//   then the record. No erase ever happens in append() or ack().
// - maintain() erases ahead of the write position, keeping `spareSectors`
//   erased, and only sectors whose every seq is <= the *durable* ack. The
//   head sector itself is never erased, so recovery always finds the newest
//   seq.
// - ack(seq) appends a 16-byte record to the active ack sector (no erase);
//   when it is full the next ack goes to the other ack sector (header and
//   record in one write), which maintain() erased beforehand. An ack that
//   cannot be written yet stays pending in RAM and maintain() persists it.
// - Recovery: binary search over sector headers for the head (the newest
//   generation), then a scan of the head sector's slots, then a scan of the
//   active ack sector. O(log R) header reads plus two sector reads.
// - The journal is full when the next sector to open is not erased (it still
//   holds unacknowledged records, or maintain() has not caught up).

import { crc32 } from '../../protocol/crc32.js';
import type { BlockStore } from '../ports.js';
import { RECORD_BYTES, GapReason, checkRecord, createRecord, decodeRecord, encodeRecord, encodeTombstone, getU32, putU32, setTombstone, validateRecord, type EventRecord } from '../../protocol/event-record.js';

const SECTOR_MAGIC = 0x534a_4c53; // "SLJS" little-endian
const ACK_MAGIC = 0x414a_4c53; // "SLJA" little-endian
const HEADER_BYTES = 32;
const FORMAT_VERSION = 1;
/** Ack sectors at the end of the store. */
export const ACK_SECTORS = 2;
/** Ring positions that may be consumed in a row (bounded, so the head search stays logarithmic). */
export const MAX_SKIPPED = 2;
/** Headers a head-search probe reads at most (a hole run plus margin). */
const PROBE_WINDOW = MAX_SKIPPED + 2;
/** Extra slots one append tries after a failed read-back. */
export const SLOT_RETRIES = 4;
/** Bytes read per call when scanning slots. */
const SCAN_CHUNK = 512;
/** Production journal region: 400 sectors of 4096 bytes (1.6 MiB). */
export const DEFAULT_JOURNAL_SECTORS = 400;
export const DEFAULT_SPARE_SECTORS = 2;

// readHeader results other than a generation.
const H_ERASED = -1;
const H_INVALID = -2;
const H_FOREIGN = -3;

export interface JournalOptions {
  /** Journal epoch (u32): changes on reflash/reprovision; records of another epoch are not ours. */
  readonly epoch: number;
  /** Erased sectors maintain() keeps ahead of the write position (default 2; 1 .. ring sectors - 1). */
  readonly spareSectors?: number;
  /** Milliseconds clock, only to time recovery in its report. */
  readonly now?: () => number;
}

export interface RecoveryReport {
  /** Newest seq issued (records, torn slots and consumed positions); 0 when nothing was ever written. Never lower than before the reboot. */
  readonly lastSeq: number;
  /** Durable acknowledged seq. */
  readonly acked: number;
  /** Ring sectors holding unacknowledged seqs. */
  readonly sectorsUsed: number;
  /** Gap seqs found by recovery: unreadable slots in the head sector plus a consumed sector after it. */
  readonly gapsFound: number;
  /** Ring index of the head sector, -1 when the journal is empty. */
  readonly headSector: number;
  /** Sector headers read by the head search. */
  readonly headerReads: number;
  /** True when the head search fell back to reading every header (an empty journal, or an unusually long erased run at index 0). */
  readonly fullHeaderScan: boolean;
  /** Duration of open(), when options.now was given. */
  readonly ms?: number;
}

export interface MaintainReport {
  /** Erases issued (ring and ack sectors). */
  readonly erased: number;
  /** Sectors newly verified erased (by reading) ahead of the write position. */
  readonly verified: number;
  /** Verified erased sectors now ready ahead of the write position. */
  readonly spares: number;
  /** An ack record was written in this call. */
  readonly ackPersisted: boolean;
  /** The newest ack is still only in RAM. */
  readonly ackPending: boolean;
  /** A spare is missing because the next sector still holds unacknowledged records. */
  readonly waitingForAck: boolean;
}

/** Visits one record (or gap tombstone); the object is reused: copy what you keep. Return false to stop. */
export type JournalVisitor = (seq: number, record: EventRecord) => boolean | void;

export interface JournalGeometry {
  readonly sectorSize: number;
  readonly ringSectors: number;
  readonly recordsPerSector: number;
  readonly capacityEvents: number;
  /** Region bytes (ring, headers and ack sectors) per event of capacity. */
  readonly bytesPerEvent: number;
}

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function allFF(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0xff) return false;
  return true;
}

export class Journal {
  readonly store: BlockStore;
  /** Bytes per sector (the store's erase-block size). */
  readonly sectorSize: number;
  /** Sectors in the ring (the store's blocks minus the ack sectors). */
  readonly ringSectors: number;
  /** Record slots per ring sector. */
  readonly recordsPerSector: number;
  readonly spareSectors: number;
  /** Highest generation whose seqs fit in a u32; past it the journal is full for good (new epoch needed). */
  readonly maxGeneration: number;
  readonly #now: (() => number) | undefined;
  readonly #ackRecords: number;

  #epoch: number;
  #opened = false;
  #formatted = false;
  #headGen = -1; // generation of the head sector, -1 when none
  #slot = 0; // next slot in the head sector (recordsPerSector when full)
  #nextGen = 0; // generation the next sector open uses
  #issued = 0; // seqs below firstSeq(#issued) are issued once the head is full (consumed positions count only when recovery will see them too)
  #ready = 0; // generations nextGen .. nextGen + ready - 1 verified erased this session
  #dirtyGen = -1; // a generation >= nextGen whose header write failed: erase it, never trust a blank check
  #skipRun = 0; // positions consumed since the last successful open
  #full = false;
  #acked = 0; // newest ack received (clamped to lastSeq)
  #ackedDurable = 0;
  #ackActive = -1; // 0 or 1, -1 when neither ack sector has our header
  #ackGen = 0;
  #ackSlot = 0;
  #ackCurrent = false; // the active ack sector holds a record of #ackedDurable
  readonly #ackReady = [false, false];
  readonly #ackDirty = [false, false];
  #headerReads = 0;

  // Scratch buffers: nothing is allocated on the append path.
  readonly #rec = new Uint8Array(RECORD_BYTES);
  readonly #check = new Uint8Array(RECORD_BYTES);
  readonly #hdr = new Uint8Array(HEADER_BYTES);
  readonly #hdrCheck = new Uint8Array(HEADER_BYTES);
  readonly #hdrRead = new Uint8Array(HEADER_BYTES);
  readonly #ackBuf = new Uint8Array(HEADER_BYTES + RECORD_BYTES);
  readonly #ackCheck = new Uint8Array(HEADER_BYTES + RECORD_BYTES);
  readonly #ackRec = new Uint8Array(RECORD_BYTES);
  readonly #chunk = new Uint8Array(SCAN_CHUNK);
  readonly #out: EventRecord = createRecord();

  constructor(store: BlockStore, options: JournalOptions) {
    const g = Journal.geometry(store.size, store.blockSize);
    if (!isU32(options.epoch)) throw new RangeError(`journal epoch must be a u32, got ${String(options.epoch)}`);
    const spares = options.spareSectors ?? Math.min(DEFAULT_SPARE_SECTORS, g.ringSectors - 1);
    if (!Number.isInteger(spares) || spares < 1 || spares > g.ringSectors - 1) {
      throw new RangeError(`spareSectors must be 1..${g.ringSectors - 1} for ${g.ringSectors} ring sectors, got ${String(options.spareSectors)}`);
    }
    this.store = store;
    this.#epoch = options.epoch;
    this.sectorSize = g.sectorSize;
    this.ringSectors = g.ringSectors;
    this.recordsPerSector = g.recordsPerSector;
    this.spareSectors = spares;
    this.maxGeneration = Math.floor(0xffffffff / g.recordsPerSector) - 1;
    this.#ackRecords = g.recordsPerSector;
    this.#now = options.now;
  }

  /** Geometry of a journal in a store of `size` bytes with `blockSize`-byte erase blocks; throws if it cannot hold one. */
  static geometry(size: number, blockSize: number): JournalGeometry {
    if (!Number.isInteger(blockSize) || blockSize < HEADER_BYTES + 2 * RECORD_BYTES || blockSize % RECORD_BYTES !== 0) {
      throw new RangeError(`journal sectors must be a multiple of ${RECORD_BYTES} bytes and at least ${HEADER_BYTES + 2 * RECORD_BYTES}, got ${String(blockSize)}`);
    }
    const blocks = Math.floor(size / blockSize);
    const ringSectors = blocks - ACK_SECTORS;
    if (ringSectors < 2 || ringSectors > 0xffff) throw new RangeError(`a journal needs ${ACK_SECTORS + 2}..${0xffff + ACK_SECTORS} erase blocks, got ${blocks}`);
    const recordsPerSector = (blockSize - HEADER_BYTES) / RECORD_BYTES;
    const capacityEvents = ringSectors * recordsPerSector;
    return { sectorSize: blockSize, ringSectors, recordsPerSector, capacityEvents, bytesPerEvent: (blocks * blockSize) / capacityEvents };
  }

  // ------------------------------------------------------------------ state

  /** Journal epoch (u32): records of another epoch are not ours. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * The last open() found a sector or ack header of this epoch: a journal of
   * this epoch was started on this flash. False on an erased partition (or one
   * that holds only another epoch's journal).
   */
  get formatted(): boolean {
    return this.#formatted;
  }

  /**
   * Changes the epoch before the journal is used: only while it is not open,
   * or open with nothing of its epoch on flash (formatted false). Call open()
   * again afterwards. The gate does this on a format (docs/JOURNAL.md "Epochs").
   */
  setEpoch(epoch: number): void {
    if (!isU32(epoch)) throw new RangeError(`journal epoch must be a u32, got ${String(epoch)}`);
    if (this.#opened && this.#formatted) throw new Error('journal: the epoch of a started journal cannot change');
    this.#epoch = epoch;
    this.#opened = false;
  }

  /** Newest seq issued (0 when none): records, and gaps that will read as tombstones. */
  get lastSeq(): number {
    if (this.#headGen >= 0 && this.#slot < this.recordsPerSector) return this.#headGen * this.recordsPerSector + this.#slot;
    return this.#issued * this.recordsPerSector;
  }
  /** Highest seq acknowledged by the central (may not be durable yet, see ackedDurable). */
  get acked(): number {
    return this.#acked;
  }
  /** Highest acknowledged seq that is on flash. Space is freed only up to this. */
  get ackedDurable(): number {
    return this.#ackedDurable;
  }
  /** Seqs issued and not yet acknowledged. */
  get backlog(): number {
    return Math.max(0, this.lastSeq - this.#acked);
  }
  /** The last append returned 'full' and nothing freed space since. */
  get isFull(): boolean {
    return this.#full;
  }
  /** Records the ring holds when nothing is acknowledged. */
  get capacityEvents(): number {
    return this.ringSectors * this.recordsPerSector;
  }
  /** Erased sectors verified ready ahead of the write position. */
  get sparesReady(): number {
    return this.#ready;
  }
  /** Ring index of the head sector (-1 when empty). */
  get headSector(): number {
    return this.#headGen < 0 ? -1 : this.#headGen % this.ringSectors;
  }
  get isOpen(): boolean {
    return this.#opened;
  }

  #firstSeq(gen: number): number {
    return gen * this.recordsPerSector + 1;
  }
  #genOf(seq: number): number {
    return Math.floor((seq - 1) / this.recordsPerSector);
  }
  #mustBeOpen(): void {
    if (!this.#opened) throw new Error('journal: call open() first');
  }

  // ------------------------------------------------------------------- flash

  /** Writes `data` at `at`, reads it back into `check` and compares. A write that throws counts as a failed write. */
  #program(at: number, data: Uint8Array, check: Uint8Array): boolean {
    try {
      this.store.write(at, data);
    } catch {
      // Refused or failed (e.g. a unit that cannot be programmed twice under
      // flash encryption): the read-back below decides. A power loss throws
      // again there and propagates.
    }
    this.store.read(at, data.length, check);
    for (let i = 0; i < data.length; i++) if (check[i] !== data[i]) return false;
    return true;
  }

  /** True if the whole sector reads 0xFF. */
  #isBlank(sector: number): boolean {
    const base = sector * this.sectorSize;
    for (let off = 0; off < this.sectorSize; off += SCAN_CHUNK) {
      const n = Math.min(SCAN_CHUNK, this.sectorSize - off);
      if (!allFF(this.store.read(base + off, n, this.#chunk), 0, n)) return false;
    }
    return true;
  }

  #encodeSectorHeader(gen: number, h: Uint8Array): void {
    h.fill(0xff, 0, HEADER_BYTES);
    putU32(h, 0, SECTOR_MAGIC);
    putU32(h, 4, this.#epoch);
    putU32(h, 8, gen);
    putU32(h, 12, this.#firstSeq(gen));
    h[16] = this.ringSectors & 0xff;
    h[17] = this.ringSectors >>> 8;
    h[18] = FORMAT_VERSION;
    h[19] = RECORD_BYTES;
    putU32(h, 28, crc32(h, 0, 28));
  }

  /** The generation in ring sector `idx`'s header, or H_ERASED / H_INVALID / H_FOREIGN. */
  #readHeader(idx: number): number {
    this.#headerReads++;
    const h = this.store.read(idx * this.sectorSize, HEADER_BYTES, this.#hdrRead);
    if (allFF(h, 0, HEADER_BYTES)) return H_ERASED;
    if (getU32(h, 0) !== SECTOR_MAGIC || getU32(h, 28) !== crc32(h, 0, 28)) return H_INVALID;
    const gen = getU32(h, 8);
    const ring = (h[16] as number) | ((h[17] as number) << 8);
    if (getU32(h, 4) !== this.#epoch || ring !== this.ringSectors || h[18] !== FORMAT_VERSION || h[19] !== RECORD_BYTES) return H_FOREIGN;
    if (gen > this.maxGeneration || gen % this.ringSectors !== idx || getU32(h, 12) !== this.#firstSeq(gen)) return H_FOREIGN;
    return gen;
  }

  // ------------------------------------------------------------------ recovery

  /**
   * Recovers the journal from flash: finds the head sector by binary search
   * over headers, scans the head sector for the next free slot, and reads the
   * durable ack. Reads only; never writes or erases. Call maintain() soon
   * after (it verifies or erases the spare sectors).
   */
  open(): RecoveryReport {
    const t0 = this.#now?.();
    this.#headerReads = 0;
    this.#headGen = -1;
    this.#slot = this.recordsPerSector;
    this.#nextGen = 0;
    this.#issued = 0;
    this.#ready = 0;
    this.#dirtyGen = -1;
    this.#skipRun = 0;
    this.#full = false;
    const N = this.recordsPerSector;
    const R = this.ringSectors;

    const { gen, fullScan } = this.#findHead();
    let gaps = 0;
    if (gen >= 0) {
      const idx = gen % R;
      const scan = this.#scanHead(idx, gen);
      this.#headGen = gen;
      this.#slot = scan.last + 1;
      this.#nextGen = gen + 1;
      this.#issued = gen + 1;
      gaps += scan.gaps;
      if (this.#slot >= N && this.#readHeader((gen + 1) % R) === H_INVALID) {
        // The head is full and the sector after it holds a damaged header: a
        // torn open, a failed open, or a newer head whose header decayed. Its
        // generation is never reused (its seqs may have been reported).
        this.#nextGen = gen + 2;
        this.#issued = gen + 2;
        this.#skipRun = 1;
        gaps += N;
      }
    }
    this.#recoverAck();
    if (this.#ackedDurable > this.lastSeq) {
      // Only after corruption: the central acknowledged seqs we cannot see. Never reissue them.
      this.#slot = N;
      this.#issued = Math.max(this.#issued, this.#genOf(this.#ackedDurable) + 1);
      this.#nextGen = Math.max(this.#nextGen, this.#issued);
    }
    this.#acked = this.#ackedDurable;
    this.#formatted = gen >= 0 || this.#ackActive >= 0;
    this.#opened = true;
    const lastSeq = this.lastSeq;
    const acked = this.#ackedDurable;
    const sectorsUsed = lastSeq > acked ? this.#genOf(lastSeq) - this.#genOf(acked + 1) + 1 : 0;
    const report: RecoveryReport = { lastSeq, acked, sectorsUsed, gapsFound: gaps, headSector: this.headSector, headerReads: this.#headerReads, fullHeaderScan: fullScan };
    return t0 === undefined || this.#now === undefined ? report : { ...report, ms: this.#now() - t0 };
  }

  /**
   * The head search. Valid headers hold generation g in sector g mod R, so
   * by ring index the cycles (floor(g / R)) of valid sectors never increase:
   * indices 0..h hold the current cycle C, later indices the previous cycle
   * or erased/garbage sectors. The first valid sector from index 0 has cycle
   * C (the erased run ahead of the head is short: spareSectors plus a torn
   * erase). Then a binary search for the last index whose cycle is C; a probe
   * that lands on an erased or damaged sector looks at up to PROBE_WINDOW
   * sectors to its right, because consumed positions before the head come in
   * runs of at most MAX_SKIPPED. Worst case: (spareSectors + MAX_SKIPPED + 3)
   * + PROBE_WINDOW * ceil(log2 R) header reads; R header reads only when no
   * valid sector is near index 0 (an empty journal).
   */
  #findHead(): { gen: number; fullScan: boolean } {
    const R = this.ringSectors;
    const w0 = Math.min(R, this.spareSectors + MAX_SKIPPED + 3);
    let first = -1;
    let firstGen = -1;
    let fullScan = false;
    for (let i = 0; i < R; i++) {
      if (i === w0) fullScan = true;
      const g = this.#readHeader(i);
      if (g >= 0) {
        first = i;
        firstGen = g;
        break;
      }
    }
    if (first < 0) return { gen: -1, fullScan };
    const cycle = Math.floor(firstGen / R);
    let lo = first;
    let loGen = firstGen;
    let hi = R; // indices >= hi are known to be past the head
    while (hi - lo > 1) {
      const mid = lo + ((hi - lo) >>> 1);
      const end = Math.min(hi, mid + PROBE_WINDOW);
      let found = -1;
      for (let j = mid; j < end; j++) {
        const g = this.#readHeader(j);
        if (g >= 0) {
          if (Math.floor(g / R) === cycle) {
            found = j;
            loGen = g;
          }
          break;
        }
      }
      if (found >= 0) lo = found;
      else hi = mid;
    }
    return { gen: loGen, fullScan };
  }

  /** Scans the head sector: index of the last slot that is not erased, and how many slots up to it are not valid records. */
  #scanHead(idx: number, gen: number): { last: number; gaps: number } {
    const N = this.recordsPerSector;
    const base = idx * this.sectorSize + HEADER_BYTES;
    const perChunk = SCAN_CHUNK / RECORD_BYTES;
    let last = -1;
    let valid = 0;
    for (let s0 = 0; s0 < N; s0 += perChunk) {
      const n = Math.min(perChunk, N - s0);
      const b = this.store.read(base + s0 * RECORD_BYTES, n * RECORD_BYTES, this.#chunk);
      for (let i = 0; i < n; i++) {
        const st = checkRecord(b, i * RECORD_BYTES, this.#firstSeq(gen) + s0 + i, this.#epoch);
        if (st !== GapReason.blank) last = s0 + i;
        if (st === 0) valid++;
      }
    }
    return { last, gaps: last + 1 - valid };
  }

  #readAckHeader(k: number): number {
    const h = this.store.read((this.ringSectors + k) * this.sectorSize, HEADER_BYTES, this.#hdrRead);
    if (allFF(h, 0, HEADER_BYTES)) return H_ERASED;
    if (getU32(h, 0) !== ACK_MAGIC || getU32(h, 28) !== crc32(h, 0, 28)) return H_INVALID;
    const ring = (h[12] as number) | ((h[13] as number) << 8);
    if (getU32(h, 4) !== this.#epoch || ring !== this.ringSectors || h[14] !== FORMAT_VERSION) return H_FOREIGN;
    return getU32(h, 8);
  }

  /** Scans ack sector k (header generation ackGen): last non-erased slot and the highest valid acked value (-1 if none). */
  #scanAck(k: number, ackGen: number): { last: number; best: number } {
    const base = (this.ringSectors + k) * this.sectorSize + HEADER_BYTES;
    const perChunk = SCAN_CHUNK / RECORD_BYTES;
    let last = -1;
    let best = -1;
    for (let s0 = 0; s0 < this.#ackRecords; s0 += perChunk) {
      const n = Math.min(perChunk, this.#ackRecords - s0);
      const b = this.store.read(base + s0 * RECORD_BYTES, n * RECORD_BYTES, this.#chunk);
      for (let i = 0; i < n; i++) {
        const at = i * RECORD_BYTES;
        if (allFF(b, at, at + RECORD_BYTES)) continue;
        last = s0 + i;
        if (getU32(b, at + 12) !== crc32(b, at, at + 12, s0 + i) || getU32(b, at + 4) !== this.#epoch || getU32(b, at + 8) !== ackGen) continue;
        best = Math.max(best, getU32(b, at));
      }
    }
    return { last, best };
  }

  #recoverAck(): void {
    const g0 = this.#readAckHeader(0);
    const g1 = this.#readAckHeader(1);
    this.#ackReady[0] = this.#ackReady[1] = false;
    this.#ackDirty[0] = this.#ackDirty[1] = false;
    this.#ackActive = -1;
    this.#ackGen = 0;
    this.#ackSlot = 0;
    this.#ackCurrent = false;
    this.#ackedDurable = 0;
    // A sector whose header is not erased must be erased before it is used again.
    this.#ackDirty[0] = g0 !== H_ERASED;
    this.#ackDirty[1] = g1 !== H_ERASED;
    if (g0 < 0 && g1 < 0) return;
    const newer = g1 > g0 ? 1 : 0;
    const newerGen = newer === 1 ? g1 : g0;
    const older = 1 - newer;
    const olderGen = newer === 1 ? g0 : g1;
    this.#ackActive = newer;
    this.#ackDirty[newer] = false;
    this.#ackGen = newerGen;
    const a = this.#scanAck(newer, newerGen);
    this.#ackSlot = a.last + 1;
    if (a.best >= 0) {
      this.#ackedDurable = a.best;
      this.#ackCurrent = true;
      return;
    }
    // The newer sector's first record was torn: the durable ack is in the older one.
    if (olderGen >= 0) this.#ackedDurable = Math.max(0, this.#scanAck(older, olderGen).best);
  }

  // -------------------------------------------------------------------- append

  /**
   * Appends one record durably: returns its seq once the record is on flash
   * and read back equal, or 'full' when no erased sector is available for it
   * (also after SLOT_RETRIES failed slots, or at the end of the epoch's seq
   * space). Throws RangeError for a malformed record, before writing anything.
   */
  append(record: EventRecord): number | 'full' {
    this.#mustBeOpen();
    validateRecord(record);
    const N = this.recordsPerSector;
    for (let attempt = 0; attempt <= SLOT_RETRIES; attempt++) {
      if (this.#headGen < 0 || this.#slot >= N) {
        if (!this.#openNext()) {
          this.#full = true;
          return 'full';
        }
      }
      const slot = this.#slot++;
      const seq = this.#headGen * N + 1 + slot;
      encodeRecord(record, seq, this.#epoch, this.#rec, 0);
      const at = (this.#headGen % this.ringSectors) * this.sectorSize + HEADER_BYTES + slot * RECORD_BYTES;
      if (this.#program(at, this.#rec, this.#check)) {
        this.#full = false;
        return seq;
      }
      // Dirty slot: its seq stays a gap; try the next one.
    }
    return 'full';
  }

  #advance(gen: number): void {
    this.#ready = Math.max(0, this.#ready - (gen - this.#nextGen));
    this.#nextGen = gen;
    if (this.#dirtyGen < gen) this.#dirtyGen = -1;
  }

  /** Opens the next ring position (header written and verified). False when none can be opened now. */
  #openNext(): boolean {
    const R = this.ringSectors;
    for (let tries = 0; tries < 2; tries++) {
      const p = this.#nextGen;
      if (p > this.maxGeneration) return false;
      if (this.#headGen >= 0 && p - this.#headGen >= R) return false; // would be the head's own sector
      const idx = p % R;
      const dirty = p === this.#dirtyGen;
      if (!dirty && (this.#ready > 0 || this.#isBlank(idx))) {
        this.#encodeSectorHeader(p, this.#hdr);
        if (this.#program(idx * this.sectorSize, this.#hdr, this.#hdrCheck)) {
          this.#headGen = p;
          this.#slot = 0;
          this.#skipRun = 0;
          this.#issued = p + 1;
          this.#advance(p + 1);
          return true;
        }
        this.#dirtyGen = p;
        this.#ready = 0;
      } else if (!dirty && this.#readHeader(idx) >= 0) {
        return false; // still holds records of ours: not freed yet
      }
      // Position p cannot be used: consume its generation (bounded), or give up for now.
      if (this.#headGen < 0 || this.#skipRun >= MAX_SKIPPED) return false;
      this.#skipRun++;
      this.#advance(p + 1);
    }
    return false;
  }

  // ----------------------------------------------------------------------- ack

  /**
   * The central acknowledged every seq <= `seq` (highest contiguous). Clamped
   * to lastSeq; never goes back. Returns true when the ack is durable (on
   * flash); false when it is held in RAM until maintain() can persist it.
   * Never erases.
   */
  ack(seq: number): boolean {
    this.#mustBeOpen();
    if (typeof seq !== 'number' || !Number.isFinite(seq)) throw new RangeError(`ack: seq must be a number, got ${String(seq)}`);
    const v = Math.min(Math.floor(seq), this.lastSeq);
    if (v > this.#acked) this.#acked = v;
    return this.#persistAck(this.#acked);
  }

  #encodeAckRecord(value: number, ackGen: number, slot: number, out: Uint8Array, at: number): void {
    putU32(out, at, value);
    putU32(out, at + 4, this.#epoch);
    putU32(out, at + 8, ackGen);
    putU32(out, at + 12, crc32(out, at, at + 12, slot));
  }

  #persistAck(value: number): boolean {
    if (value <= this.#ackedDurable && this.#ackCurrent) return true;
    const R = this.ringSectors;
    const S = this.sectorSize;
    const active = this.#ackActive;
    if (active >= 0) {
      for (let tries = 0; tries <= SLOT_RETRIES && this.#ackSlot < this.#ackRecords; tries++) {
        const slot = this.#ackSlot++;
        this.#encodeAckRecord(value, this.#ackGen, slot, this.#ackRec, 0);
        if (this.#program((R + active) * S + HEADER_BYTES + slot * RECORD_BYTES, this.#ackRec, this.#check)) {
          this.#ackedDurable = value;
          this.#ackCurrent = true;
          return true;
        }
      }
    }
    // Switch to the other ack sector: header and first record in one write.
    let target = -1;
    for (const k of active >= 0 ? [1 - active] : [0, 1]) {
      if (this.#ackDirty[k]) continue;
      if (!this.#ackReady[k]) this.#ackReady[k] = this.#isBlank(R + k);
      if (this.#ackReady[k]) {
        target = k;
        break;
      }
    }
    if (target < 0) return false;
    const gen = this.#ackGen + 1;
    const b = this.#ackBuf;
    b.fill(0xff, 0, HEADER_BYTES);
    putU32(b, 0, ACK_MAGIC);
    putU32(b, 4, this.#epoch);
    putU32(b, 8, gen);
    b[12] = R & 0xff;
    b[13] = R >>> 8;
    b[14] = FORMAT_VERSION;
    putU32(b, 28, crc32(b, 0, 28));
    this.#encodeAckRecord(value, gen, 0, b, HEADER_BYTES);
    this.#ackReady[target] = false;
    if (this.#program((R + target) * S, b, this.#ackCheck)) {
      if (active >= 0) {
        this.#ackReady[active] = false;
        this.#ackDirty[active] = true; // holds older acks: erase before reuse
      }
      this.#ackActive = target;
      this.#ackGen = gen;
      this.#ackSlot = 1;
      this.#ackedDurable = value;
      this.#ackCurrent = true;
      return true;
    }
    this.#ackDirty[target] = true;
    return false;
  }

  // ------------------------------------------------------------------ maintain

  /** May ring position `gen` (>= nextGen) be erased? Only if every seq it last held is durably acknowledged. */
  #erasable(gen: number): boolean {
    const old = gen - this.ringSectors;
    return old < 0 || (old + 1) * this.recordsPerSector <= this.#ackedDurable;
  }

  /** Makes the ack sector that is not active erased (ready); false if out of erase budget or it cannot be. */
  #prepareAckSector(budget: { left: number; erased: number }): boolean {
    const R = this.ringSectors;
    // The inactive sector may hold the only durable copy of the ack: keep it until the active one does.
    if (this.#ackActive >= 0 && !this.#ackCurrent) return false;
    for (const k of this.#ackActive >= 0 ? [1 - this.#ackActive] : [0, 1]) {
      if (this.#ackReady[k]) return true;
      if (!this.#ackDirty[k] && this.#isBlank(R + k)) {
        this.#ackReady[k] = true;
        return true;
      }
      if (budget.left <= 0) return false;
      budget.left--;
      budget.erased++;
      this.store.eraseBlock(R + k);
      this.#ackDirty[k] = false;
      this.#ackReady[k] = this.#isBlank(R + k);
      if (this.#ackReady[k]) return true;
    }
    return false;
  }

  /**
   * Background work, off the tap path: persists a pending ack, then verifies
   * or erases up to `maxErases` sectors so that `spareSectors` erased sectors
   * are ready ahead of the write position (a sector is erased only when every
   * seq it holds is durably acknowledged), then prepares the spare ack sector.
   */
  maintain(maxErases = 1): MaintainReport {
    this.#mustBeOpen();
    const budget = { left: Math.max(0, Math.floor(maxErases)), erased: 0 };
    let ackPersisted = false;
    if (this.#acked > this.#ackedDurable || (this.#ackedDurable > 0 && !this.#ackCurrent)) {
      ackPersisted = this.#persistAck(this.#acked);
      if (!ackPersisted && this.#prepareAckSector(budget)) ackPersisted = this.#persistAck(this.#acked);
    }
    const R = this.ringSectors;
    const target = this.spareSectors;
    const base = this.#headGen >= 0 ? this.#headGen : this.#nextGen - 1;
    let verified = 0;
    let waitingForAck = false;
    while (this.#ready < target) {
      const p = this.#nextGen + this.#ready;
      if (p - base >= R || p > this.maxGeneration) break; // never the head's own sector
      const idx = p % R;
      if (p !== this.#dirtyGen && this.#isBlank(idx)) {
        this.#ready++;
        verified++;
        continue;
      }
      if (!this.#erasable(p)) {
        waitingForAck = true;
        break;
      }
      if (budget.left <= 0) break;
      budget.left--;
      budget.erased++;
      this.store.eraseBlock(idx);
      if (p === this.#dirtyGen) this.#dirtyGen = -1;
      if (!this.#isBlank(idx)) break; // a block that does not erase: try again next time
      this.#ready++;
      verified++;
    }
    if (this.#ready > 0) this.#full = false;
    if (budget.left > 0 && this.#ackCurrent) this.#prepareAckSector(budget);
    return {
      erased: budget.erased,
      verified,
      spares: this.#ready,
      ackPersisted,
      ackPending: this.#acked > this.#ackedDurable,
      waitingForAck,
    };
  }

  // ---------------------------------------------------------------------- read

  /** 0 when ring sector of `gen` holds that generation, else the GapReason for all its slots. */
  #sectorState(gen: number): number {
    if (gen > this.#headGen) return GapReason.blank; // consumed positions after the head
    if (this.#headGen - gen >= this.ringSectors) return GapReason.not_retained;
    const g = this.#readHeader(gen % this.ringSectors);
    if (g === gen) return 0;
    if (g >= 0 || g === H_FOREIGN) return GapReason.not_retained;
    return g === H_ERASED ? GapReason.blank : GapReason.bad_sector;
  }

  /**
   * Visits records fromSeq, fromSeq+1, ... (at most maxCount, up to lastSeq)
   * in seq order. A seq whose record is torn, corrupt, skipped or no longer
   * held is visited as a gap tombstone (type gap, reason GapReason). Returns
   * the number visited.
   */
  read(fromSeq: number, maxCount: number, visit: JournalVisitor): number {
    this.#mustBeOpen();
    const last = this.lastSeq;
    const N = this.recordsPerSector;
    let seq = Math.max(1, Math.floor(fromSeq));
    let n = 0;
    while (n < maxCount && seq <= last) {
      const gen = this.#genOf(seq);
      const slot0 = seq - this.#firstSeq(gen);
      const take = Math.min(maxCount - n, last - seq + 1, N - slot0, SCAN_CHUNK / RECORD_BYTES);
      const state = this.#sectorState(gen);
      if (state === 0) this.store.read((gen % this.ringSectors) * this.sectorSize + HEADER_BYTES + slot0 * RECORD_BYTES, take * RECORD_BYTES, this.#chunk);
      for (let i = 0; i < take; i++) {
        const s = seq + i;
        const status = state !== 0 ? state : decodeRecord(this.#chunk, i * RECORD_BYTES, s, this.#epoch, this.#out);
        if (status !== 0) setTombstone(this.#out, status);
        n++;
        if (visit(s, this.#out) === false) return n;
      }
      seq += take;
    }
    return n;
  }

  /**
   * Copies records fromSeq .. into `out` (16 bytes each; at most maxCount and
   * out.length / 16, up to lastSeq): the bytes as on flash, or a gap
   * tombstone (with a valid CRC for its seq) where the slot is unreadable.
   * out[0, count * 16) is exactly what an event batch carries and hashes.
   */
  readBatch(fromSeq: number, maxCount: number, out: Uint8Array): { first: number; count: number } {
    this.#mustBeOpen();
    const last = this.lastSeq;
    const N = this.recordsPerSector;
    const cap = Math.min(maxCount, Math.floor(out.length / RECORD_BYTES));
    const first = Math.max(1, Math.floor(fromSeq));
    let seq = first;
    let n = 0;
    while (n < cap && seq <= last) {
      const gen = this.#genOf(seq);
      const slot0 = seq - this.#firstSeq(gen);
      const take = Math.min(cap - n, last - seq + 1, N - slot0, SCAN_CHUNK / RECORD_BYTES);
      const state = this.#sectorState(gen);
      if (state === 0) this.store.read((gen % this.ringSectors) * this.sectorSize + HEADER_BYTES + slot0 * RECORD_BYTES, take * RECORD_BYTES, this.#chunk);
      for (let i = 0; i < take; i++) {
        const s = seq + i;
        const at = n * RECORD_BYTES;
        const status = state !== 0 ? state : checkRecord(this.#chunk, i * RECORD_BYTES, s, this.#epoch);
        if (status === 0) out.set(this.#chunk.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES), at);
        else encodeTombstone(s, this.#epoch, status, out, at);
        n++;
      }
      seq += take;
    }
    return { first, count: n };
  }
}
