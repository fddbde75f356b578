// The event record: 16 bytes, fixed width, self-checking. One format from the
// gate's flash to the central's store: the journal writes it (firmware/core/
// journal.ts), event batches carry it byte for byte (protocol/messages.ts,
// `records`), the central stores and decodes it (host-sim/central/). It lives
// in protocol/ because it is a wire format: its size, layout, CRC and codes
// are declared here only. Encoding and decoding work on caller-provided buffers
// and objects, so the tap path (encode, write, read back) allocates nothing.
// Runs on XS and Node: no Node APIs.
//
//   offset size  field
//   0      4     time       u32 LE, UTC seconds (see `clockUntrusted`)
//   4      8     key        credential key (protocol/credential-key.ts); zeros when none
//   12     1     type byte  bits 0-4 event type (EventType), bits 5-6 grant level
//                           (GrantLevel), bit 7 clock untrusted (time came from a
//                           clock that was not synced when the event happened)
//   13     1     reason     decision reason (protocol/reasons.ts) for decisions and
//                           passages; AlarmCode, CommandCode, BootCause or GapReason
//                           for those types
//   14     2     crc        CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), big-endian,
//                           over bytes 0..13, then the record's seq (u32 LE), then the
//                           journal epoch (u32 LE)
//
// The seq is not stored: it is implicit in the record's slot (journal.ts). Folding
// seq and epoch into the CRC makes a record that is read from the wrong slot, or
// left over from an earlier epoch, fail its check. An all-0xFF slot (erased) is
// never a valid record, whatever its CRC says. CRC-16/CCITT has Hamming distance 4
// at this length: every corruption of 1 to 3 bits is detected; a random
// corruption passes with probability 2^-16.
//
// Codes are stable (records on flash and in uploaded batches carry the numbers):
// never renumber, append only.

/** Bytes per record. */
export const RECORD_BYTES = 16;
/** Bytes of the credential key. */
export const RECORD_KEY_BYTES = 8;

/** Event types (bits 0-4 of the type byte). 0 is never written. */
export const EventType = {
  /** The decision engine granted a credential (reason: Reason.granted or the policy's reason). */
  decision_granted: 1,
  /** The decision engine denied a credential (reason: protocol/reasons.ts). */
  decision_denied: 2,
  /** After a grant: the rotation sensor / loop confirmed one passage. */
  passage_completed: 3,
  /** After a grant: nobody passed before the timeout; the lane closed again. */
  passage_not_taken: 4,
  /** More than one passage for one grant. */
  tailgating: 5,
  /** A passage without a grant (turnstile forced, barrier lifted by hand). */
  forced_passage: 6,
  /** Door contact open beyond its limit. */
  door_held_open: 7,
  /** Vehicle presence loop occupied without any credential read. */
  vehicle_without_credential: 8,
  /** Goods portal: a consignment lot denied (reason: protocol/reasons.ts). */
  goods_lot_denied: 9,
  /** A remote command was executed (reason: CommandCode). */
  command: 10,
  /** An alarm raised or cleared (reason: AlarmCode). */
  alarm: 11,
  /** The gate booted (reason: BootCause). */
  boot: 12,
  /** Fire release input changed (reason: 1 on, 0 off); written best-effort. */
  fire_release: 13,
  /** Wall clock set from a trusted source (time: the new time). */
  clock_set: 14,
  /** Gap tombstone: this seq has no readable record (reason: GapReason). Never written to flash. */
  gap: 31,
} as const;
export type EventTypeName = keyof typeof EventType;

/** Grant level (bits 5-6 of the type byte): at which level the matching grant was found. */
export const GrantLevel = { none: 0, individual: 1, institution: 2, industry: 3 } as const;

/** Alarm codes (reason byte of EventType.alarm). */
export const AlarmCode = {
  tamper: 1,
  reader_fault: 2,
  relay_fault: 3,
  rotation_sensor_fault: 4,
  door_sensor_fault: 5,
  presence_loop_fault: 6,
  journal_full: 7,
  clock_unsynced: 8,
  alarm_cleared: 9,
  /**
   * The gate refused a message (forged or stale head, delta, command, chunk,
   * ack; issue 12). key: the first 8 bytes of SHA-256 of the cause (the
   * status `refused` names the causes and counts them). At most once per
   * cause per 10 minutes, so a flood cannot fill the journal.
   */
  message_refused: 10,
  /**
   * A TLS connection to the broker failed for a reason that retrying alone
   * will not fix (issue 14, firmware/moddable/tls-socket.ts): key[0] is the
   * LinkFailure code (1 no certificate in the record, 2 certificate not DER,
   * 3 broker not trusted, 4 refused by the broker, 5 certificate dates /
   * clock, 6 other handshake failure), the other key bytes 0. At most once
   * per code per 10 minutes; the gate keeps retrying with backoff.
   */
  link_failed: 11,
} as const;

/** Command codes (reason byte of EventType.command). */
export const CommandCode = { open_once: 1, lockdown: 2, release: 3, config: 4, reboot: 5 } as const;

/** Boot causes (reason byte of EventType.boot). */
export const BootCause = { power_on: 0, watchdog: 1, software: 2, brownout: 3, panic: 4, unknown: 255 } as const;

/** Why a seq is a gap tombstone (reason byte of EventType.gap). */
export const GapReason = {
  /** The slot holds bits that do not form a valid record (torn write, corruption). */
  corrupt: 1,
  /** The slot is erased: skipped (dirty slot, consumed sector), never written. */
  blank: 2,
  /** The sector's header is unreadable: nothing in it is trusted. */
  bad_sector: 3,
  /** The seq is older than what the ring still holds (its sector was reused). */
  not_retained: 4,
} as const;

const TYPE_MASK = 0x1f;
const LEVEL_SHIFT = 5;
const UNTRUSTED = 0x80;

/** A decoded record. The journal decodes into one object it reuses: copy what you keep. */
export interface EventRecord {
  /** UTC seconds, u32. */
  time: number;
  /** Credential key, at least 8 bytes (only the first 8 are used); zeros when none. */
  key: Uint8Array;
  /** EventType code, 1..31. */
  type: number;
  /** GrantLevel code, 0..3. */
  level: number;
  /** True when `time` came from a clock that was not trusted at the time. */
  clockUntrusted: boolean;
  /** Reason byte, 0..255. */
  reason: number;
}

/** A fresh record object (type decision_denied, zeros elsewhere), for reuse. */
export function createRecord(): EventRecord {
  return { time: 0, key: new Uint8Array(RECORD_KEY_BYTES), type: EventType.decision_denied, level: 0, clockUntrusted: false, reason: 0 };
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Throws a RangeError if the record cannot be encoded; returns nothing. */
export function validateRecord(r: EventRecord): void {
  if (!isU32(r.time)) throw new RangeError(`record time must be a u32, got ${String(r.time)}`);
  if (!(r.key instanceof Uint8Array) || r.key.length < RECORD_KEY_BYTES) throw new RangeError('record key must be a Uint8Array of at least 8 bytes');
  if (!Number.isInteger(r.type) || r.type < 1 || r.type > TYPE_MASK) throw new RangeError(`record type must be 1..31, got ${String(r.type)}`);
  if (!Number.isInteger(r.level) || r.level < 0 || r.level > 3) throw new RangeError(`record level must be 0..3, got ${String(r.level)}`);
  if (!Number.isInteger(r.reason) || r.reason < 0 || r.reason > 0xff) throw new RangeError(`record reason must be 0..255, got ${String(r.reason)}`);
}

// CRC-16/CCITT-FALSE, table-driven (one table built at load).
const CRC16 = new Uint16Array(256);
for (let n = 0; n < 256; n++) {
  let c = n << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  CRC16[n] = c;
}

/** CRC-16/CCITT-FALSE of bytes[start, end), continuing from `crc` (default: the initial 0xFFFF). */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0xffff): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = ((c << 8) & 0xffff) ^ (CRC16[((c >>> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return c;
}

function crc16U32(c: number, v: number): number {
  for (let s = 0; s < 32; s += 8) c = ((c << 8) & 0xffff) ^ (CRC16[((c >>> 8) ^ (v >>> s)) & 0xff] as number);
  return c;
}

/** The record CRC: bytes at..at+13, then seq and epoch (u32 LE each). */
export function recordCrc(bytes: Uint8Array, at: number, seq: number, epoch: number): number {
  return crc16U32(crc16U32(crc16(bytes, at, at + 14), seq >>> 0), epoch >>> 0);
}

/** Little-endian u32 into bytes (shared with journal.ts). */
export function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}

export function getU32(b: Uint8Array, at: number): number {
  return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16) | ((b[at + 3] as number) << 24)) >>> 0;
}

function sealCrc(out: Uint8Array, at: number, seq: number, epoch: number): void {
  const c = recordCrc(out, at, seq, epoch);
  out[at + 14] = c >>> 8;
  out[at + 15] = c & 0xff;
}

/**
 * Encodes `r` as the record for `seq` of `epoch` into out[at, at+16).
 * Does not validate (call validateRecord once first): no throw, no allocation.
 */
export function encodeRecord(r: EventRecord, seq: number, epoch: number, out: Uint8Array, at = 0): void {
  putU32(out, at, r.time);
  const k = r.key;
  for (let i = 0; i < RECORD_KEY_BYTES; i++) out[at + 4 + i] = k[i] as number;
  out[at + 12] = (r.type & TYPE_MASK) | ((r.level & 3) << LEVEL_SHIFT) | (r.clockUntrusted ? UNTRUSTED : 0);
  out[at + 13] = r.reason & 0xff;
  sealCrc(out, at, seq, epoch);
}

/** Encodes the gap tombstone for `seq`: time 0, key zeros, type gap, reason = why; a valid CRC. */
export function encodeTombstone(seq: number, epoch: number, reason: number, out: Uint8Array, at = 0): void {
  for (let i = 0; i < 12; i++) out[at + i] = 0;
  out[at + 12] = EventType.gap;
  out[at + 13] = reason & 0xff;
  sealCrc(out, at, seq, epoch);
}

/** 0 if bytes[at, at+16) is a valid record for (seq, epoch), else the GapReason (blank or corrupt). */
export function checkRecord(bytes: Uint8Array, at: number, seq: number, epoch: number): number {
  let ff = true;
  for (let i = 0; i < RECORD_BYTES; i++) {
    if (bytes[at + i] !== 0xff) {
      ff = false;
      break;
    }
  }
  if (ff) return GapReason.blank;
  const stored = ((bytes[at + 14] as number) << 8) | (bytes[at + 15] as number);
  return stored === recordCrc(bytes, at, seq, epoch) ? 0 : GapReason.corrupt;
}

/**
 * Decodes bytes[at, at+16) as the record for (seq, epoch) into `into` (its key
 * array is overwritten in place). Returns 0 when valid; otherwise the GapReason
 * and `into` is left unchanged.
 */
export function decodeRecord(bytes: Uint8Array, at: number, seq: number, epoch: number, into: EventRecord): number {
  const status = checkRecord(bytes, at, seq, epoch);
  if (status !== 0) return status;
  into.time = getU32(bytes, at);
  const k = into.key;
  for (let i = 0; i < RECORD_KEY_BYTES; i++) k[i] = bytes[at + 4 + i] as number;
  const t = bytes[at + 12] as number;
  into.type = t & TYPE_MASK;
  into.level = (t >>> LEVEL_SHIFT) & 3;
  into.clockUntrusted = (t & UNTRUSTED) !== 0;
  into.reason = bytes[at + 13] as number;
  return 0;
}

/** Sets `into` to the gap tombstone content (key zeroed in place). */
export function setTombstone(into: EventRecord, reason: number): void {
  into.time = 0;
  into.key.fill(0, 0, RECORD_KEY_BYTES);
  into.type = EventType.gap;
  into.level = 0;
  into.clockUntrusted = false;
  into.reason = reason;
}

const TYPE_NAMES: string[] = [];
for (const [name, code] of Object.entries(EventType)) TYPE_NAMES[code] = name;

/** The name of an event type code, or 'unknown'. */
export function eventTypeName(code: number): EventTypeName | 'unknown' {
  return (TYPE_NAMES[code] as EventTypeName | undefined) ?? 'unknown';
}
