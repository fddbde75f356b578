// Small durable facts of a gate, in one RecordLog region: the boot counter
// (status messages order births and deaths by it), the central's latest event
// ack with its chain value (the `prev` of the next batch after a reboot), the
// nonces of executed commands (each executes at most once, until it expires),
// and a lockdown ordered remotely (it survives a reboot).

import type { BlockStore } from '../ports.js';
import { bytesEqual } from '../../protocol/hex.js';
import { RecordLog } from './record-log.js';

const KIND = 0x4741_5445; // "GATE"
const T_BOOT = 1;
const T_ACK = 2;
const T_NONCE = 3;
const T_MODE = 4;
const T_CONFIG = 5;

export const MAX_NONCES = 64;

export class GateState {
  readonly #log: RecordLog;
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
    const r = this.#log.open((type, p) => {
      const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
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
    if (r.sealed) this.#compact();
    this.boot += 1;
    this.#v.setUint32(0, this.boot, true);
    this.#append(T_BOOT, 4);
    return this.boot;
  }

  setAck(epoch: number, seq: number, chain: Uint8Array): void {
    this.#v.setUint32(0, epoch, true);
    this.#v.setUint32(4, seq, true);
    this.#buf.set(chain.subarray(0, 32), 8);
    this.#append(T_ACK, 40);
    this.ackEpoch = epoch;
    this.ackSeq = seq;
    this.ackChain = chain.slice(0, 32);
  }

  setLockdown(on: boolean): void {
    this.#buf[0] = on ? 1 : 0;
    this.#append(T_MODE, 1);
    this.lockdown = on;
  }

  setConfig(passbackSeconds: number, staleAfterSeconds: number): void {
    this.#v.setUint32(0, passbackSeconds, true);
    this.#v.setUint32(4, staleAfterSeconds, true);
    this.#append(T_CONFIG, 8);
    this.passbackSeconds = passbackSeconds;
    this.staleAfterSeconds = staleAfterSeconds;
    this.configSet = true;
  }

  /** True if this nonce was executed before (and has not expired by `now`). */
  seen(nonce: Uint8Array, now: number): boolean {
    for (const n of this.#nonces) if (n.expires >= now && bytesEqual(n.nonce, nonce)) return true;
    return false;
  }

  /** Remembers an executed command's nonce durably, before the command acts. */
  markSeen(nonce: Uint8Array, expires: number, now: number): void {
    this.#buf.set(nonce.subarray(0, 16), 0);
    this.#v.setUint32(16, expires, true);
    this.#append(T_NONCE, 20);
    this.#remember(nonce.slice(0, 16), expires, now);
  }

  #remember(nonce: Uint8Array, expires: number, now = 0): void {
    for (let i = this.#nonces.length - 1; i >= 0; i--) if ((this.#nonces[i] as { expires: number }).expires < now) this.#nonces.splice(i, 1);
    if (this.#nonces.length >= MAX_NONCES) this.#nonces.shift(); // bounded: the oldest goes (commands expire within minutes)
    this.#nonces.push({ nonce, expires });
  }

  #append(type: number, len: number): void {
    const payload = this.#buf.slice(0, len);
    if (this.#log.append(type, payload)) return;
    this.#compact();
    if (!this.#log.append(type, payload)) throw new Error('gate state log: append failed after compaction');
  }

  #compact(): void {
    const boot = this.boot;
    const ack = { epoch: this.ackEpoch, seq: this.ackSeq, chain: this.ackChain };
    const nonces = [...this.#nonces];
    const lockdown = this.lockdown;
    const config = this.configSet ? [this.passbackSeconds, this.staleAfterSeconds] : null;
    this.#log.compact((emit) => {
      const b = new Uint8Array(48);
      const v = new DataView(b.buffer);
      v.setUint32(0, boot, true);
      emit(T_BOOT, b.slice(0, 4));
      v.setUint32(0, ack.epoch, true);
      v.setUint32(4, ack.seq, true);
      b.set(ack.chain, 8);
      emit(T_ACK, b.slice(0, 40));
      for (const n of nonces) {
        b.set(n.nonce, 0);
        v.setUint32(16, n.expires, true);
        emit(T_NONCE, b.slice(0, 20));
      }
      b[0] = lockdown ? 1 : 0;
      emit(T_MODE, b.slice(0, 1));
      if (config !== null) {
        v.setUint32(0, config[0] as number, true);
        v.setUint32(4, config[1] as number, true);
        emit(T_CONFIG, b.slice(0, 8));
      }
    });
  }
}
