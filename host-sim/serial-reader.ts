// Node only: a USB (or any serial) credential reader on the host, read as the
// gate reads its UART: the bytes of a device path (/dev/ttyUSB0, a FIFO, a
// pty, a plain file) go to the firmware's own frame decoder for the reader
// kind (firmware/drivers/, docs/READERS.md), and a reader that answers only
// when asked (UHF, M100) is polled through the same path by the firmware's
// ReaderPoller. The line settings (baud, raw mode) are the device's: set them
// with stty before, as the device path is opened as a plain file.

import { accessSync, constants, createReadStream, statSync, write, type ReadStream } from 'node:fs';
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
  readonly #stream: ReadStream;
  #fd: number | null = null;
  #writing = false;
  #closed = false;

  /** Checks the path at once (SerialReaderError: missing, not readable); the device itself is opened in the background (a FIFO waits for its writer). */
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
    // Polled: the same path carries the commands, so it is opened for reading and writing.
    this.#stream = createReadStream(o.path, { flags: this.poller.active ? 'r+' : 'r', highWaterMark: 256 });
    this.#stream.on('open', (fd: number) => {
      this.#fd = fd;
      this.poller.start();
    });
    this.#stream.on('data', (chunk) => {
      if (!this.#closed && typeof chunk !== 'string') this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), now());
    });
    this.#stream.on('end', () => this.#end(null, o.onEnd));
    this.#stream.on('error', (e) => this.#end(new SerialReaderError(`--reader ${o.path}: ${e.message}`), o.onEnd));
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
      this.#writing = false;
    });
    return true;
  }
}
