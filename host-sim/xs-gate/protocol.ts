// The messages between XsGate (Node, xs-gate.ts) and the simulated provider
// inside the XS worker (guest/runtime.ts). Each XsWorker command carries one
// request frame (frame.ts) and gets one reply frame back; nothing else
// crosses, so the guest never waits on Node (no issueCommand).
//
// Direction Node -> guest: everything that happened outside the device since
// the last command (MQTT packets from the broker, pin levels, UART bytes) is
// batched into the next `advance` and delivered at the guest's current
// virtual time, before its clock moves on. Direction guest -> Node: what the
// device did during the command (MQTT connect / publish / subscribe / close,
// DNS lookups, output pin writes, console lines) comes back in the reply.

/** A pin level or a UART chunk, delivered `delayMs` after the start of the advance (virtual time). */
export type InEvent =
  | { readonly ev: 'pin'; readonly pin: number; readonly level: 0 | 1; readonly delayMs?: number }
  | { readonly ev: 'fault'; readonly pin: number; readonly on: boolean }
  /** `probe`: the gate's decision inputs are read just before the bytes arrive (TapProbe in the reply). */
  | { readonly ev: 'uart'; readonly port: number; readonly blob: number; readonly delayMs?: number; readonly probe?: boolean }
  /** A UHF tag (EPC in the blob) enters the field of the simulated reader on `port` for dwellMs; reported only when polled. */
  | { readonly ev: 'tag'; readonly port: number; readonly blob: number; readonly dwellMs: number; readonly delayMs?: number }
  | { readonly ev: 'wifi'; readonly up: boolean }
  | { readonly ev: 'resolved'; readonly req: number; readonly address: string | null }
  | NetEvent;

/** What the broker side did to one simulated MQTT connection (`conn`: the guest client's number). */
export type NetEvent =
  | { readonly ev: 'connack'; readonly conn: number; readonly ok: boolean }
  | { readonly ev: 'message'; readonly conn: number; readonly topic: string; readonly qos: number; readonly blob: number }
  | { readonly ev: 'puback'; readonly conn: number; readonly id: number }
  | { readonly ev: 'suback'; readonly conn: number; readonly id: number; readonly codes: number[] }
  | { readonly ev: 'lost'; readonly conn: number; readonly why: string };

/** What the guest asked of the network during a command. */
export type OutOp =
  | {
      readonly op: 'connect';
      readonly conn: number;
      readonly host: string;
      readonly port: number;
      readonly clientId: string;
      readonly clean: boolean;
      readonly keepAliveMs: number;
      readonly user?: string;
      readonly password?: number;
      readonly will?: { readonly topic: string; readonly message: number; readonly qos: number; readonly retain: boolean };
    }
  | { readonly op: 'publish'; readonly conn: number; readonly topic: string; readonly blob: number; readonly qos: number; readonly retain: boolean; readonly id: number }
  | { readonly op: 'subscribe'; readonly conn: number; readonly id: number; readonly items: { readonly topic: string; readonly qos: number }[] }
  | { readonly op: 'close'; readonly conn: number }
  | { readonly op: 'resolve'; readonly req: number; readonly host: string };

export interface PartitionSpec {
  readonly name: string;
  readonly size: number;
  /** Initial contents (blob index); absent: erased (all 0xFF). */
  readonly blob?: number;
}

export interface InitRequest {
  readonly op: 'init';
  /** The manifest config with overrides: what `mc/config` exports. */
  readonly config: unknown;
  readonly partitions: readonly PartitionSpec[];
  /** The device's wall clock at boot, ms since 1970 (no battery RTC: 0). */
  readonly rtcMs: number;
  /** Network (SNTP) time at virtual 0, ms since 1970. */
  readonly ntpMs: number;
  /** Seeds Math.random and the flash's torn-write PRNG. */
  readonly seed: number;
  /** Input pin levels at power-up. */
  readonly pins: readonly { readonly pin: number; readonly level: 0 | 1 }[];
  /** Output pins that fail when written (from the start). */
  readonly faults?: readonly number[];
  /** Wi-Fi reachable at boot (default true). */
  readonly wifi?: boolean;
}

export type Request =
  | InitRequest
  | { readonly op: 'start' }
  /**
   * `watch`: the reply carries what was journaled since the last watched reply (read after every
   * timer callback, so a power cut later in the advance does not hide it). `inputsAtEnd`: the
   * events arrive at the end of the advance (after the timers due until then), not at its start.
   */
  | { readonly op: 'advance'; readonly ms: number; readonly events: readonly InEvent[]; readonly watch?: boolean; readonly inputsAtEnd?: boolean }
  | { readonly op: 'snapshot'; readonly partition: string }
  | { readonly op: 'cut'; readonly partition: string; readonly afterOps: number; readonly mode?: 'write' | 'erase' | 'any' }
  | { readonly op: 'gc' }
  | { readonly op: 'memory' };

export interface GuestStatus {
  /** The sync engine's refusals by reason, and requests sent (diagnostics). */
  readonly syncRejected: Readonly<Record<string, number>>;
  readonly syncRequests: number;
  /** main() has been called. */
  readonly started: boolean;
  /** main() returned with the gate running. */
  readonly running: boolean;
  /** The reason of the last "NOT RUNNING" line, if main refused. */
  readonly refused: string | null;
  /** An exception escaped device code (main, a timer, an I/O callback): what a device would crash on. */
  readonly faults: readonly string[];
  readonly online: boolean;
  readonly listEpoch: number;
  readonly version: number;
  /** issuedAt of the head the store holds (0: none). */
  readonly headIssuedAt: number;
  readonly taps: number;
  readonly granted: number;
  readonly denied: number;
  readonly byReason: readonly number[];
  readonly passages: number;
  readonly alarms: number;
  readonly journal: { readonly epoch: number; readonly lastSeq: number; readonly acked: number; readonly backlog: number };
  readonly boot: number;
  readonly clockTrusted: boolean;
  /** The last Time.set: at which virtual ms, to which UTC seconds. */
  readonly timeSet: { readonly atMs: number; readonly seconds: number } | null;
  /** Virtual ms since boot. */
  readonly nowMs: number;
  /** The data partition's flash lost power (an armed cut fired). */
  readonly poweredOff: boolean;
  /** The lane controller's mode ('normal', 'lockdown', 'emergency', ...; '' before the gate runs). */
  readonly mode: string;
  /** The journal's capacity in records and whether it is full (0 / false before the gate runs). */
  readonly journalCapacity: number;
  readonly journalFull: boolean;
  /** Timers waiting in the device (bounded-memory check). */
  readonly timers: number;
  /** Virtual ms of the next timer due (null: none): Node need not advance before it unless something arrives. */
  readonly nextDueMs: number | null;
}

/** The decision inputs of a gate read at the moment a probed credential arrived (the reference model's inputs). */
export interface TapProbe {
  readonly atMs: number;
  readonly now: number;
  readonly trusted: boolean;
  readonly version: number;
  readonly headIssuedAt: number;
  readonly headExpires: number;
  readonly mode: string;
  readonly journalFull: boolean;
}

/** Records journaled since the last watched reply, read back from the flash (RECORD_BYTES each, seqs first..first+count-1). */
export interface JournalRead {
  readonly epoch: number;
  readonly first: number;
  readonly count: number;
  readonly blob: number;
}

export interface PinWrite {
  readonly pin: number;
  readonly level: 0 | 1;
  /** Virtual ms of the write. */
  readonly atMs: number;
  /** performance.now() inside the worker at the write (for latency measurements). */
  readonly perf: number;
  /** The journal's last seq at the write (orders writes against journaled records). */
  readonly seq: number;
  /** The lane controller's mode at the write ('' before the gate runs). */
  readonly mode: string;
}

export interface UartWrite {
  readonly port: number;
  readonly atMs: number;
  readonly hex: string;
}

export interface Reply {
  readonly ok: boolean;
  readonly error?: string;
  readonly ops: readonly OutOp[];
  readonly pins: readonly PinWrite[];
  /** performance.now() inside the worker when UART bytes were put into the RX FIFO, in order. */
  readonly uartIn: readonly number[];
  /** What the firmware wrote to its UARTs during the command (virtual ms, hex), in order. */
  readonly uartOut: readonly UartWrite[];
  readonly lines: readonly string[];
  readonly status: GuestStatus;
  /** Extra values of some requests (memory). */
  readonly value?: unknown;
  /** Probed credentials' decision inputs, in order (advance). */
  readonly probes: readonly TapProbe[];
  /** What was journaled since the last watched advance (advance with `watch`), in seq order. */
  readonly journaled?: readonly JournalRead[];
}
