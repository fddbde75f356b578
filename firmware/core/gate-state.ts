// Small durable facts of a gate, in one RecordLog region: the boot counter
// (status messages order births and deaths by it), the central's latest event
// ack with its chain value (the `prev` of the next batch after a reboot), the
// nonces of executed commands (each executes at most once, until it expires),
// and a lockdown ordered remotely (it survives a reboot).
//
// Setters only append; the maintenance scheduler compacts the log (this class
// is its CompactionTask). A setter whose append finds no room (the log ran out
// before its compaction finished) returns false and changes nothing durable:
// the caller refuses the message, and it is asked again later.

import type { BlockStore } from '../ports.js';
import { bytesEqual } from '../../protocol/hex.js';
import type { CompactionTask } from './maintenance.js';
import { RecordLog } from './record-log.js';

const KIND = 0x4741_5445; // "GATE"
const T_BOOT = 1;
const T_ACK = 2;
const T_NONCE = 3;
const T_MODE = 4;
const T_CONFIG = 5;

export const MAX_NONCES = 64;
const PAYLOAD = [0, 4, 40, 20, 1, 8]; // payload bytes by type
const ENTRY_MAX = 64; // the largest entry (T_ACK) in the log

export class GateState implements CompactionTask {
  readonly name = 'gate state';
  readonly #log: RecordLog;
  // Seq of the newest entry of each type (0 = none): older ones are dead at compaction.
  readonly #latest = new Uint32Array(6);
  boot = 0;
  ackEpoch = 0;
  ackSeq = 0;
  ackChain: Uint8Array = new Uint8Array(32);
  lockdown = false;
  /** Settings changed by a config command (0 = as provisioned). */
  passbackSeconds = 0;
  staleAfterSeconds = 0;
  configSet = false;
  readonly #nonces: { nonce: Uint8Array; expires: number }[] = [];
  readonly #buf = new Uint8Array(48);
  readonly #v = new DataView(this.#buf.buffer);

  constructor(region: BlockStore, options: { writeOnce?: boolean } = {}) {
    this.#log = new RecordLog(region, { kind: KIND, maxPayload: 48, writeOnce: options.writeOnce === true });
  }

  /** Recovers, then counts this boot (durably). Returns the new boot counter. */
  open(): number {
    this.#nonces.length = 0;
    this.#latest.fill(0);
    const r = this.#log.open((type, p, seq) => {
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
      if (type > 0 && type < this.#latest.length && p.length >= (PAYLOAD[type] as number)) this.#latest[type] = seq;
      if (type === T_BOOT && p.length >= 4) this.boot = v.getUint32(0, true);
      else if (type === T_ACK && p.length >= 40) {
        this.ackEpoch = v.getUint32(0, true);
        this.ackSeq = v.getUint32(4, true);
        this.ackChain = p.slice(8, 40);
      } else if (type === T_NONCE && p.length >= 20) this.#remember(p.slice(0, 16), v.getUint32(16, true));
      else if (type === T_MODE && p.length >= 1) this.lockdown = p[0] === 1;
      else if (type === T_CONFIG && p.length >= 8) {
        this.passbackSeconds = v.getUint32(0, true);
        this.staleAfterSeconds = v.getUint32(4, true);
        this.configSet = true;
      }
    });
    // Boot may erase (neither a tap nor a handler): the boot record must go somewhere.
    if (r.sealed || !this.#log.fits(ENTRY_MAX)) this.#log.compactNow(this.#keep);
    this.boot += 1;
    this.#v.setUint32(0, this.boot, true);
    if (!this.#append(T_BOOT, 4)) throw new Error('gate state log: no room for the boot record after compaction');
    return this.boot;
  }

  /** True if `entries` more facts can be recorded now (a command records its nonce, then its effect). */
  roomFor(entries: number): boolean {
    if (!this.#log.sealed && this.#log.freeBytes >= ENTRY_MAX * entries) return true;
    this.#log.markBlocked(); // a refusal like a refused append: compaction goes first
    return false;
  }

  /** Durable ack and chain; false (nothing changed) when the log has no room yet. */
  setAck(epoch: number, seq: number, chain: Uint8Array): boolean {
    this.#v.setUint32(0, epoch, true);
    this.#v.setUint32(4, seq, true);
    this.#buf.set(chain.subarray(0, 32), 8);
    if (!this.#append(T_ACK, 40)) return false;
    this.ackEpoch = epoch;
    this.ackSeq = seq;
    this.ackChain = chain.slice(0, 32);
    return true;
  }

  /** Takes effect at once; returns whether it is durable (check roomFor first). */
  setLockdown(on: boolean): boolean {
    this.#buf[0] = on ? 1 : 0;
    this.lockdown = on;
    return this.#append(T_MODE, 1);
  }

  /** Takes effect at once; returns whether it is durable (check roomFor first). */
  setConfig(passbackSeconds: number, staleAfterSeconds: number): boolean {
    this.#v.setUint32(0, passbackSeconds, true);
    this.#v.setUint32(4, staleAfterSeconds, true);
    this.passbackSeconds = passbackSeconds;
    this.staleAfterSeconds = staleAfterSeconds;
    this.configSet = true;
    return this.#append(T_CONFIG, 8);
  }

  /** True if this nonce was executed before (and has not expired by `now`). */
  seen(nonce: Uint8Array, now: number): boolean {
    for (const n of this.#nonces) if (n.expires >= now && bytesEqual(n.nonce, nonce)) return true;
    return false;
  }

  /** Remembers an executed command's nonce durably, before the command acts; false (not remembered) when the log has no room yet. */
  markSeen(nonce: Uint8Array, expires: number, now: number): boolean {
    this.#buf.set(nonce.subarray(0, 16), 0);
    this.#v.setUint32(16, expires, true);
    if (!this.#append(T_NONCE, 20)) return false;
    this.#remember(nonce.slice(0, 16), expires, now);
    return true;
  }

  #remember(nonce: Uint8Array, expires: number, now = 0): void {
    for (let i = this.#nonces.length - 1; i >= 0; i--) if ((this.#nonces[i] as { expires: number }).expires < now) this.#nonces.splice(i, 1);
    if (this.#nonces.length >= MAX_NONCES) this.#nonces.shift(); // bounded: the oldest goes (commands expire within minutes)
    this.#nonces.push({ nonce, expires });
  }

  #append(type: number, len: number): boolean {
    if (!this.#log.append(type, this.#buf.subarray(0, len))) return false;
    this.#latest[type] = this.#log.lastSeq;
    return true;
  }

  // ---- compaction (the maintenance scheduler) ----

  /** Live: the newest entry of each fact, and the nonces still remembered. */
  readonly #keep = (type: number, p: Uint8Array, seq: number): boolean => {
    if (type === T_NONCE) {
      if (p.length < 20) return false;
      const expires = new DataView(p.buffer, p.byteOffset, 20).getUint32(16, true);
      for (const n of this.#nonces) if (n.expires === expires && bytesEqual(n.nonce, p.subarray(0, 16))) return true;
      return false;
    }
    return type > 0 && type < this.#latest.length && seq === this.#latest[type];
  };

  get compactionDue(): boolean {
    let live = this.#nonces.length * RecordLog.entryBytes(PAYLOAD[T_NONCE] as number);
    for (let t = 1; t < this.#latest.length; t++) if (t !== T_NONCE && this.#latest[t] !== 0) live += RecordLog.entryBytes(PAYLOAD[t] as number);
    return this.#log.compactionDue(live);
  }
  get appendsBlocked(): boolean {
    return this.#log.blocked;
  }
  compactStep(budget: number): number {
    return this.#log.compactStep(budget, this.#keep);
  }
}
