// Guest shim for `embedded:provider/builtin` (ECMA-419 host provider): the
// gate uses device.io.Digital and device.io.Serial. Both are views of the
// simulated pins and UARTs of runtime.ts, which Node drives.
//
// Digital: one instance per pin (a second open throws, as on the device).
// Inputs read the level Node set (at power-up: the level XsGate derives from
// the wiring, else the pull); with `edge`, a level change queues ONE
// onReadable on the next turn, and further edges before it runs coalesce into
// it (modules/io/digital/esp32/digitalbank.c does the same). Outputs record
// every write for Node; a pin Node marked as faulted throws on write.
//
// Serial: the RX side of a UART. Bytes Node feeds go into a receive buffer;
// onReadable(count) runs on the next turn; read() returns up to 128 bytes
// (one hardware FIFO) as an ArrayBuffer, undefined when empty. If bytes are
// left after onReadable returns, another onReadable follows on the next turn.
// write() records nothing and never blocks (no reader module listens).

import { later, pin, recordPinWrite, transmit, uart, type Pin, type Uart, type VTimer } from './runtime.js';

const INPUT = 0;
const INPUT_PULL_UP = 1;
const INPUT_PULL_DOWN = 2;
const INPUT_PULL_UP_DOWN = 3;
const OUTPUT = 8;
const OUTPUT_OPEN_DRAIN = 9;
const RISING = 1;
const FALLING = 2;
const FIFO = 128;

interface DigitalOptions {
  readonly pin: number;
  readonly mode: number;
  readonly edge?: number;
  readonly onReadable?: (this: Digital) => void;
}

class Digital {
  static readonly Input = INPUT;
  static readonly InputPullUp = INPUT_PULL_UP;
  static readonly InputPullDown = INPUT_PULL_DOWN;
  static readonly InputPullUpDown = INPUT_PULL_UP_DOWN;
  static readonly Output = OUTPUT;
  static readonly OutputOpenDrain = OUTPUT_OPEN_DRAIN;
  static readonly Rising = RISING;
  static readonly Falling = FALLING;

  #pin: Pin | null;
  readonly #n: number;
  readonly #output: boolean;
  readonly #edge: number;
  readonly #onReadable: ((this: Digital) => void) | undefined;
  #pending: VTimer | null = null;

  constructor(o: DigitalOptions) {
    if (typeof o.pin !== 'number') throw new Error('invalid pin');
    if (![INPUT, INPUT_PULL_UP, INPUT_PULL_DOWN, INPUT_PULL_UP_DOWN, OUTPUT, OUTPUT_OPEN_DRAIN].includes(o.mode)) throw new RangeError('invalid mode');
    const p = pin(o.pin);
    if (p.owner !== null) throw new Error('in use');
    this.#n = o.pin;
    this.#output = o.mode === OUTPUT || o.mode === OUTPUT_OPEN_DRAIN;
    this.#edge = o.edge ?? 0;
    this.#onReadable = o.onReadable;
    if (!this.#output && this.#edge !== 0 && this.#onReadable === undefined) throw new Error('onReadable required with edge');
    p.output = this.#output;
    p.owner = {
      levelChanged: (from, to) => {
        if (this.#output || this.#onReadable === undefined) return;
        const wanted = (to === 1 && from === 0 && (this.#edge & RISING) !== 0) || (to === 0 && from === 1 && (this.#edge & FALLING) !== 0);
        if (!wanted || this.#pending !== null) return;
        this.#pending = later('digital onReadable', () => {
          this.#pending = null;
          if (this.#pin !== null) this.#onReadable?.call(this);
        });
      },
    };
    this.#pin = p;
  }

  read(): 0 | 1 {
    return this.#open().level;
  }

  write(value: number): void {
    const p = this.#open();
    if (!this.#output) throw new Error('not an output');
    if (p.fault) throw new Error(`GPIO ${this.#n}: simulated driver fault`);
    const level = value ? 1 : 0;
    p.level = level;
    recordPinWrite(this.#n, level);
  }

  close(): void {
    const p = this.#pin;
    if (p === null) return;
    p.owner = null;
    p.output = false;
    this.#pin = null;
  }

  get format(): string {
    return 'number';
  }
  set format(v: string) {
    if (v !== 'number') throw new RangeError('invalid format');
  }

  #open(): Pin {
    if (this.#pin === null) throw new Error('closed');
    return this.#pin;
  }
}

interface SerialOptions {
  readonly port: number;
  readonly receive?: number;
  readonly transmit?: number;
  readonly baud: number;
  readonly format?: 'number' | 'buffer';
  readonly onReadable?: (this: Serial, count: number) => void;
}

class Serial {
  #u: Uart | null;
  #format: 'number' | 'buffer';
  readonly #onReadable: ((this: Serial, count: number) => void) | undefined;
  #pending: VTimer | null = null;
  readonly #port: number;
  /** Bytes written by the gate (for tests). */
  readonly transmitted: number[] = [];

  constructor(o: SerialOptions) {
    if (typeof o.port !== 'number' || o.port < 0 || o.port > 2) throw new RangeError('invalid port');
    if (typeof o.baud !== 'number' || o.baud <= 0) throw new RangeError('invalid baud');
    const u = uart(o.port);
    if (u.owner !== null) throw new Error('in use');
    for (const n of [o.receive, o.transmit]) if (n !== undefined && pin(n).owner !== null) throw new Error(`GPIO ${n} in use`);
    this.#format = o.format ?? 'buffer';
    this.#port = o.port;
    this.#onReadable = o.onReadable;
    u.rx.length = 0;
    u.owner = { received: () => this.#schedule() };
    this.#u = u;
  }

  read(): ArrayBuffer | number | undefined {
    const u = this.#open();
    if (u.rx.length === 0) return undefined;
    if (this.#format === 'number') return u.rx.shift();
    const n = Math.min(FIFO, u.rx.length);
    const b = new Uint8Array(u.rx.splice(0, n));
    return b.buffer;
  }

  write(value: number | ArrayBuffer | ArrayBufferView): void {
    this.#open();
    const b = typeof value === 'number' ? Uint8Array.of(value & 0xff) : value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    for (const x of b) this.transmitted.push(x);
    if (this.transmitted.length > 4096) this.transmitted.splice(0, this.transmitted.length - 4096);
    // On the wire: Node sees it (Reply.uartOut) and the simulated reader on this UART hears it.
    transmit(this.#port, b);
  }

  flush(): void {
    this.#open().rx.length = 0;
  }

  close(): void {
    const u = this.#u;
    if (u === null) return;
    u.owner = null;
    u.rx.length = 0;
    this.#u = null;
  }

  get format(): 'number' | 'buffer' {
    return this.#format;
  }
  set format(v: 'number' | 'buffer') {
    if (v !== 'number' && v !== 'buffer') throw new RangeError('invalid format');
    this.#format = v;
  }

  #schedule(): void {
    if (this.#pending !== null || this.#onReadable === undefined) return;
    this.#pending = later('serial onReadable', () => {
      this.#pending = null;
      const u = this.#u;
      if (u === null || u.rx.length === 0) return;
      this.#onReadable?.call(this, u.rx.length);
      if (this.#u !== null && this.#u.rx.length > 0) this.#schedule();
    });
  }

  #open(): Uart {
    if (this.#u === null) throw new Error('closed');
    return this.#u;
  }
}

const device = {
  io: { Digital, Serial },
  pin: {},
};

export default device;
