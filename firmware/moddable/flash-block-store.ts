// BlockStore on one ESP32 flash partition, through Moddable's classic `flash`
// module (modules/files/flash/esp32/flash.c: esp_partition_read / _write /
// _erase_range, and map() = esp_partition_mmap of the whole partition).
//
// Why not ECMA-419 `embedded:storage/flash`: the current SDK has it for ESP32
// (modules/io/flash/esp32/flash-esp32.js: open/read/write/eraseBlock/status)
// but it has no map(), and the whitelist lookups must read the image in place
// from memory-mapped flash rather than copy 3 MB into RAM.
//
// Partitions: `new Flash(name)` finds the first partition of type `data` with
// that label (any subtype). Blocks are SPI_FLASH_SEC_SIZE (4096) bytes;
// erase(n) erases block n.
//
// map(): a read-only host buffer over the mapped partition, wrapped in a
// Uint8Array. The port requires the view to stay current with writes:
// ESP-IDF's esp_flash write/erase flush the cache lines of the range they
// touch (assumed from ESP-IDF, not verifiable here). Mapping can fail: the
// original ESP32 has a 4 MB data window, less than the 8 MiB data partition;
// then map() returns undefined and the store copies the active image to RAM.

import Flash from 'flash';
import type { BlockStore } from '../ports.js';

export interface FlashBlockStoreOptions {
  /** Partition label in the partition table (type data). */
  readonly partition: string;
  /** Offer the memory-mapped view (default true). */
  readonly map?: boolean;
}

export class FlashBlockStore implements BlockStore {
  readonly size: number;
  readonly blockSize: number;
  readonly partition: string;
  #flash: Flash | null;
  #mapWanted: boolean;
  #mapTried = false;
  #map: Uint8Array | undefined;
  /** Why mapping failed, for the console. */
  mapError: string | null = null;

  constructor(options: FlashBlockStoreOptions) {
    this.partition = options.partition;
    this.#mapWanted = options.map !== false;
    // Throws "can't find partition" when the table has no such data partition.
    const flash = new Flash(options.partition);
    this.#flash = flash;
    this.size = flash.byteLength;
    this.blockSize = flash.blockSize;
  }

  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    const flash = this.#open();
    if (length === 0) return into ?? new Uint8Array(0);
    // Returns a fresh ArrayBuffer (esp_partition_read: the authoritative path, also for encrypted partitions).
    const bytes = new Uint8Array(flash.read(offset, length));
    if (into === undefined) return bytes;
    into.set(bytes);
    return into;
  }

  write(offset: number, data: Uint8Array): void {
    const flash = this.#open();
    if (data.length === 0) return; // the native write refuses byteLength <= 0
    // The source may be a view of the mapped partition (copying between slots):
    // the cache is off while flash is written, so copy it to RAM first.
    const src = this.#map !== undefined && data.buffer === this.#map.buffer ? data.slice() : data;
    flash.write(offset, src.length, src);
  }

  eraseBlock(block: number): void {
    this.#open().erase(block);
  }

  map(): Uint8Array | undefined {
    if (this.#mapTried || !this.#mapWanted) return this.#map;
    this.#mapTried = true;
    try {
      this.#map = new Uint8Array(this.#open().map());
    } catch (e) {
      this.mapError = e instanceof Error ? e.message : String(e);
      this.#map = undefined;
    }
    return this.#map;
  }

  /**
   * Drops the instance. The classic module has no close(); the native
   * destructor unmaps when the object is collected (the host buffer from map()
   * keeps it alive while views exist).
   */
  close(): void {
    this.#flash = null;
    this.#map = undefined;
    this.#mapTried = true;
    this.#mapWanted = false;
  }

  #open(): Flash {
    if (this.#flash === null) throw new Error(`flash partition "${this.partition}" is closed`);
    return this.#flash;
  }
}
