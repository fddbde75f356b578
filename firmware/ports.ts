// The seam between the firmware core and the world. The core imports nothing
// else from outside firmware/ and protocol/: the device implements these with
// Moddable/ECMA-419 (firmware/moddable/), the simulator with Node or with a
// simulated provider inside XS (host-sim/).
//
// Every call here is synchronous except where noted: Moddable's flash, digital
// and serial APIs are synchronous, and a synchronous core is deterministic
// under simulation.

export type { Crypto } from '../protocol/crypto.js';

/** Wall time and whether it can be believed. */
export interface Clock {
  /** UTC seconds since 1970. Meaningless unless trusted() (but never throws). */
  wallSeconds(): number;
  /** True once wall time came from a trusted source since boot (network time, signed head, battery RTC). */
  trusted(): boolean;
  /** Milliseconds since boot; never goes back. */
  monotonicMs(): number;
}

/** setTimeout handles: an object on Node, a number on Moddable. */
export type TimerHandle = object | number;

export interface Timers {
  set(callback: () => void, delayMs: number): TimerHandle;
  repeat(callback: () => void, intervalMs: number): TimerHandle;
  clear(handle: TimerHandle): void;
}

/**
 * A region of NOR flash. Erase sets a block to 0xFF; write only clears bits
 * (writing 1 over 0 leaves 0); a write cut by power loss leaves an arbitrary
 * subset of its intended bits cleared. With flash encryption a written unit
 * cannot be rewritten before erase. Erase is slow (tens to hundreds of ms):
 * never on the tap path.
 */
export interface BlockStore {
  /** Bytes in the region (a multiple of blockSize). */
  readonly size: number;
  /** Erase-block size in bytes (4096 on ESP32 SPI flash). */
  readonly blockSize: number;
  /** Copies `length` bytes at `offset` into `into` (at 0) if given, else into a new array. */
  read(offset: number, length: number, into?: Uint8Array): Uint8Array;
  /** Programs bytes (clears bits only). */
  write(offset: number, data: Uint8Array): void;
  /** Erases one block (index, not offset). */
  eraseBlock(block: number): void;
  /**
   * A read-only view of the whole region that stays current with writes
   * (memory-mapped flash on the device), or undefined if the platform cannot
   * map. Lookups read in place through it, with no copies.
   */
  map?(): Uint8Array | undefined;
}

/** Raw bytes from a reader's serial interface (UART). */
export interface ByteSource {
  onBytes(callback: (bytes: Uint8Array) => void): void;
  /** Sends bytes to the reader (commands, e.g. a UHF inventory poll); false if they were not taken. */
  write(bytes: Uint8Array): boolean;
  close(): void;
}

export type CredentialKind = 'card' | 'uhf';

/** One decoded credential read (after the frame decoder). */
export interface CredentialRead {
  readonly kind: CredentialKind;
  /** Raw credential id (card UID / EPC). Hashed at once; never stored or sent. */
  readonly id: Uint8Array;
  /** Monotonic ms of the read. */
  readonly atMs: number;
}

export type OutputName = 'relay' | 'barrier' | 'lampGreen' | 'lampRed' | 'buzzer';

export interface Outputs {
  /** Drives an output; returns false if the driver reports a fault. */
  set(output: OutputName, on: boolean): boolean;
}

export type InputName = 'rotation' | 'door' | 'presence' | 'fire';

export interface Inputs {
  read(input: InputName): boolean;
  onChange(callback: (input: InputName, value: boolean, atMs: number) => void): void;
}

/** MQTT 3.1.1 semantics only; the core owns reconnection, resubscription and resends. */
export interface NetConnectOptions {
  readonly clientId: string;
  readonly username?: string;
  readonly password?: Uint8Array;
  readonly keepAliveSeconds: number;
  readonly will: { readonly topic: string; readonly payload: Uint8Array; readonly qos: 0 | 1; readonly retain: boolean };
}

export interface Net {
  /** Starts one connection attempt; the outcome arrives through onConnectionChange. */
  connect(options: NetConnectOptions): void;
  /** Publishes; for QoS 1 returns the packet id, whose PUBACK arrives through onPublished. */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1, retain: boolean): number;
  subscribe(filters: readonly string[]): void;
  disconnect(): void;
  onMessage(callback: (topic: string, payload: Uint8Array) => void): void;
  onPublished(callback: (packetId: number) => void): void;
  onConnectionChange(callback: (connected: boolean) => void): void;
}
