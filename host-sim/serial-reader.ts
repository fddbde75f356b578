// Node only: a USB (or any serial) credential reader on the host, read as the
// gate reads its UART: the bytes of a device path (/dev/ttyUSB0, a pty, a
// FIFO, a plain file) go to the firmware's own frame decoder for the reader
// kind (firmware/drivers/, docs/READERS.md), and a reader that answers only
// when asked (UHF, M100) is polled through the same terminal by the firmware's
// ReaderPoller. The line settings (baud, raw mode) are the device's: set them
// with stty before; the path is opened as it is.
//
// A terminal or a FIFO is opened non-blocking and read through libuv's own
// handles: a blocking read (or a FIFO's open waiting for its writer) would sit
// in the thread pool and hold the process at exit. A FIFO is opened for
// reading and writing, so that it stays open between writers, as a serial line
// does; a plain file is read to its end, which ends the stream.

import { accessSync, closeSync, constants, createReadStream, openSync, statSync, write } from 'node:fs';
import { Socket } from 'node:net';
import { isatty, ReadStream as TtyReadStream } from 'node:tty';
import type { Readable } from 'node:stream';
import { Em4100AsciiDecoder } from '../firmware/drivers/em4100-ascii.js';
import type { FrameDecoder, FrameRejectReason, FrameStats } from '../firmware/drivers/frame.js';
import { ReaderPoller, type PolledReaderKind } from '../firmware/drivers/reader-poll.js';
import { UhfFrameDecoder } from '../firmware/drivers/uhf-frame.js';
import { WiegandUartDecoder } from '../firmware/drivers/wiegand-uart.js';
import type { CredentialRead } from '../firmware/ports.js';
import { nodeTimers } from './adapters/node-timers.js';

export type ReaderKind = PolledReaderKind;
export const READER_KINDS: readonly ReaderKind[] = ['wiegand', 'em4100', 'uhf'];

export class SerialReaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerialReaderError';
  }
}

export interface SerialReaderOptions {
  readonly path: string;
  readonly kind: ReaderKind;
  /** Poll interval for a reader that is polled (UHF; default the kind's, 0 = never). */
  readonly pollIntervalMs?: number;
  /** The lane is busy (a grant waits for its passage): a UHF reader is not polled meanwhile. */
  readonly busy: () => boolean;
  readonly onRead: (read: CredentialRead) => void;
  readonly onReject?: (reason: FrameRejectReason) => void;
  /** The device's stream ended (end of a file, the last writer of a FIFO gone) or failed. */
  readonly onEnd: (error: Error | null) => void;
}

export class SerialReader {
  readonly path: string;
  readonly kind: ReaderKind;
  readonly decoder: FrameDecoder;
  readonly poller: ReaderPoller;
  /** The reader is sent its poll command (a UHF reader on a terminal). */
  readonly polled: boolean;
  readonly #stream: Readable;
  readonly #fd: number | null;
  #writing = false;
  #closed = false;

  /** Opens the device at once (SerialReaderError: missing, not readable, cannot be opened); reads follow as they come. */
  constructor(o: SerialReaderOptions) {
    this.path = o.path;
    this.kind = o.kind;
    let st;
    try {
      st = statSync(o.path);
      accessSync(o.path, constants.R_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SerialReaderError(code === 'ENOENT' ? `--reader ${o.path}: no such device or file` : `--reader ${o.path}: cannot be read (${code ?? String(e)})`);
    }
    if (st.isDirectory()) throw new SerialReaderError(`--reader ${o.path} is a directory, not a device`);
    const now = (): number => performance.now();
    const onReject = o.onReject;
    const opts = { onRead: o.onRead, ...(onReject !== undefined ? { onReject: (reason: FrameRejectReason) => onReject(reason) } : {}) };
    this.decoder = o.kind === 'wiegand' ? new WiegandUartDecoder(opts) : o.kind === 'em4100' ? new Em4100AsciiDecoder(opts) : new UhfFrameDecoder(opts);
    this.poller = new ReaderPoller({
      kind: o.kind,
      ...(o.pollIntervalMs !== undefined ? { intervalMs: o.pollIntervalMs } : {}),
      timers: nodeTimers,
      busy: o.busy,
      write: (bytes) => this.#write(bytes),
    });
    const { stream, fd } = openDevice(o.path, st.isFIFO());
    this.#stream = stream;
    this.#fd = fd;
    // Commands go only to a terminal: a FIFO would hand them back to this reader, a file has no reader behind it.
    this.polled = this.poller.active && fd !== null && isatty(fd);
    if (this.polled) this.poller.start();
    stream.on('data', (chunk: Buffer | string) => {
      if (!this.#closed && typeof chunk !== 'string') this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), now());
    });
    stream.on('end', () => this.#end(null, o.onEnd));
    stream.on('error', (e) => this.#end(new SerialReaderError(`--reader ${o.path}: ${e.message}`), o.onEnd));
  }

  get stats(): FrameStats {
    return this.decoder.stats;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.poller.stop();
    this.decoder.close();
    this.#stream.destroy();
  }

  #end(error: Error | null, onEnd: (error: Error | null) => void): void {
    if (this.#closed) return;
    this.close();
    onEnd(error);
  }

  /** One command at a time, as a UART's TX FIFO: a poll while the last one is still being written is refused (counted by the poller). */
  #write(bytes: Uint8Array): boolean {
    const fd = this.#fd;
    if (this.#closed || this.#writing || fd === null) return false;
    this.#writing = true;
    write(fd, bytes, 0, bytes.length, null, () => {
      // A full output buffer (EAGAIN on the non-blocking terminal) loses this poll; the next one is due in one interval.
      this.#writing = false;
    });
    return true;
  }
}

/** The device as a stream: terminals and FIFOs through libuv handles (non-blocking), anything else as a file. */
function openDevice(path: string, fifo: boolean): { stream: Readable; fd: number | null } {
  const flags = constants.O_NONBLOCK | constants.O_NOCTTY | (fifo ? constants.O_RDWR : constants.O_RDONLY);
  if (fifo) {
    const fd = openFd(path, flags);
    return { stream: new Socket({ fd, readable: true, writable: false }), fd };
  }
  const probe = openFd(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  if (!isatty(probe)) {
    closeSync(probe);
    return { stream: createReadStream(path, { highWaterMark: 256 }), fd: null };
  }
  closeSync(probe);
  // Read and write: the poll commands go out on the same line.
  const fd = openFd(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOCTTY);
  return { stream: new TtyReadStream(fd), fd };
}

function openFd(path: string, flags: number): number {
  try {
    return openSync(path, flags);
  } catch (e) {
    throw new SerialReaderError(`--reader ${path}: cannot be opened (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}
