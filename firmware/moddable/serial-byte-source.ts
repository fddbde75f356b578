// The reader's UART as a ByteSource, on ECMA-419 Serial (`device.io.Serial`;
// modules/io/serial/esp32/serial.c). onReadable fires from the UART's
// RX-FIFO-full / RX-timeout interrupt; read() with no argument returns an
// ArrayBuffer with everything in the hardware FIFO (undefined when empty).
// (read(n) is avoided: the ESP32 driver does not clamp n to what is
// available.) Each chunk goes to the frame decoder as it is; decoders accept
// any split (docs/READERS.md).

import device from 'embedded:provider/builtin';
import type Serial from 'embedded:io/serial';
import type { ByteSource } from '../ports.js';

export interface SerialByteSourceOptions {
  /** UART number (1 or 2; 0 is the console). */
  readonly port: number;
  readonly receive: number;
  /** Needed only to send commands to the reader (UHF inventory). */
  readonly transmit?: number;
  readonly baud: number;
}

/** Reads per onReadable before yielding to the event loop (each read drains the 128-byte FIFO). */
const MAX_READS = 16;

export class SerialByteSource implements ByteSource {
  #serial: Serial | null;
  #onBytes: ((bytes: Uint8Array) => void) | null = null;
  /** Bytes received, and writes refused because the TX FIFO was full. */
  readonly stats = { bytes: 0, writeOverflows: 0 };

  constructor(options: SerialByteSourceOptions) {
    this.#serial = new device.io.Serial({
      port: options.port,
      receive: options.receive,
      ...(options.transmit !== undefined ? { transmit: options.transmit } : {}),
      baud: options.baud,
      format: 'buffer',
      onReadable: () => this.#drain(),
    });
  }

  onBytes(callback: (bytes: Uint8Array) => void): void {
    this.#onBytes = callback;
  }

  /** Sends bytes to the reader; false if the UART's transmit FIFO was full. */
  write(bytes: Uint8Array): boolean {
    const s = this.#serial;
    if (s === null) return false;
    try {
      s.write(bytes);
      return true;
    } catch {
      this.stats.writeOverflows++;
      return false;
    }
  }

  close(): void {
    const s = this.#serial;
    this.#serial = null;
    this.#onBytes = null;
    s?.close();
  }

  #drain(): void {
    for (let i = 0; i < MAX_READS; i++) {
      const s = this.#serial;
      if (s === null) return;
      const chunk = s.read();
      if (chunk === undefined || typeof chunk === 'number') return;
      const bytes = new Uint8Array(chunk);
      this.stats.bytes += bytes.length;
      this.#onBytes?.(bytes);
    }
  }
}
