// The bytes of the gate's `provision` flash partition: one provisioning
// record (protocol/provisioning.ts) framed so that an erased, torn or foreign
// partition is told apart from a record that is merely invalid.
//
//   offset 0   4 bytes  magic "SGP1" (0x53 0x47 0x50 0x31)
//   offset 4   4 bytes  n = length of the CBOR record, u32 little-endian (1 .. Provisioning.maxSize, 8192)
//   offset 8   n bytes  the provisioning record, strict CBOR
//   offset 8+n 4 bytes  CRC-32 (IEEE, protocol/crc32.ts) of bytes [0, 8+n), u32 little-endian
//
// The rest of the partition is don't-care (0xFF after the erase that
// `parttool.py write_partition` does), except its last two blocks: the gate's
// format counter (firmware/core/format-log.ts), which survives a wipe of the
// data partition and is reset only by writing the provisioning partition
// again. docs/FLASHING.md has the procedure.
// Pure code: used by the device entry (main.ts) and by host tools that write
// the image, so it imports nothing from Moddable.

import { FORMAT_LOG_BLOCKS } from '../core/format-log.js';
import { Region } from '../core/region.js';
import type { BlockStore } from '../ports.js';
import { crc32 } from '../../protocol/crc32.js';
import { decodeProvisioning, encodeProvisioning, Provisioning, type ProvisioningRecord } from '../../protocol/provisioning.js';

export const PROVISIONING_MAGIC = Uint8Array.of(0x53, 0x47, 0x50, 0x31);
export const PROVISIONING_HEADER_BYTES = 8;
export const PROVISIONING_TRAILER_BYTES = 4;
/** The largest image: header + the largest record + CRC. */
export const PROVISIONING_IMAGE_MAX = PROVISIONING_HEADER_BYTES + Provisioning.maxSize + PROVISIONING_TRAILER_BYTES;

/** Why a partition holds no usable record. Stable strings (printed on the console). */
export type ProvisioningImageError =
  | 'erased' // the partition was never written (all 0xFF header)
  | 'bad_magic' // something else is in the partition
  | 'bad_length' // the length is 0, over the record maximum, or past the end of the partition
  | 'bad_crc' // torn or corrupted write
  | 'invalid_record'; // framing fine, but the strict decoder refused the record (see `detail`)

export type ProvisioningImageResult =
  | { readonly ok: true; readonly value: ProvisioningRecord }
  | { readonly ok: false; readonly error: ProvisioningImageError; readonly detail: string };

/** Frames an already encoded record (e.g. the bytes `subline provision` wrote). */
export function frameProvisioningRecord(record: Uint8Array): Uint8Array {
  if (record.length < 1 || record.length > Provisioning.maxSize) throw new RangeError(`provisioning record of ${record.length} bytes: 1 to ${Provisioning.maxSize}`);
  const out = new Uint8Array(PROVISIONING_HEADER_BYTES + record.length + PROVISIONING_TRAILER_BYTES);
  const v = new DataView(out.buffer);
  out.set(PROVISIONING_MAGIC, 0);
  v.setUint32(4, record.length, true);
  out.set(record, PROVISIONING_HEADER_BYTES);
  v.setUint32(PROVISIONING_HEADER_BYTES + record.length, crc32(out, 0, PROVISIONING_HEADER_BYTES + record.length), true);
  return out;
}

/** Encodes and frames a record. */
export function encodeProvisioningImage(p: ProvisioningRecord): Uint8Array {
  return frameProvisioningRecord(encodeProvisioning(p));
}

/**
 * Reads and checks an image through `read(offset, length)` (a flash partition
 * on the device, a file in tests). `size` is the partition size. Never throws
 * on content; a throwing `read` propagates.
 */
export function readProvisioningImage(read: (offset: number, length: number) => Uint8Array, size: number): ProvisioningImageResult {
  if (size < PROVISIONING_HEADER_BYTES + 1 + PROVISIONING_TRAILER_BYTES) return fail('bad_length', `partition of ${size} bytes is too small`);
  const header = read(0, PROVISIONING_HEADER_BYTES);
  let erased = true;
  for (let i = 0; i < PROVISIONING_HEADER_BYTES; i++) if (header[i] !== 0xff) erased = false;
  if (erased) return fail('erased', 'the provisioning partition is empty (never written)');
  for (let i = 0; i < PROVISIONING_MAGIC.length; i++) {
    if (header[i] !== PROVISIONING_MAGIC[i]) return fail('bad_magic', 'the provisioning partition does not start with "SGP1"');
  }
  const n = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(4, true);
  if (n < 1 || n > Provisioning.maxSize) return fail('bad_length', `record length ${n} is outside 1..${Provisioning.maxSize}`);
  const total = PROVISIONING_HEADER_BYTES + n + PROVISIONING_TRAILER_BYTES;
  if (total > size) return fail('bad_length', `record of ${n} bytes runs past the end of the partition`);
  const image = read(0, total);
  const stored = new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(PROVISIONING_HEADER_BYTES + n, true);
  if (crc32(image, 0, PROVISIONING_HEADER_BYTES + n) !== stored) return fail('bad_crc', 'CRC-32 mismatch: torn or corrupted write');
  const r = decodeProvisioning(image.slice(PROVISIONING_HEADER_BYTES, PROVISIONING_HEADER_BYTES + n));
  if (!r.ok) return fail('invalid_record', r.error.field === '' ? r.error.code : `${r.error.code} at ${r.error.field}`);
  return { ok: true, value: r.value };
}

function fail(error: ProvisioningImageError, detail: string): ProvisioningImageResult {
  return { ok: false, error, detail };
}

/**
 * The format counter's region: the last FORMAT_LOG_BLOCKS blocks of the
 * provisioning partition, past the largest image. Throws when the partition
 * has no room for both (the device then refuses to run).
 */
export function formatLogRegion(partition: BlockStore): Region {
  const bs = partition.blockSize;
  const need = Math.ceil(PROVISIONING_IMAGE_MAX / bs) * bs + FORMAT_LOG_BLOCKS * bs;
  if (partition.size < need) throw new RangeError(`the provisioning partition has ${partition.size} bytes; the record and the format counter need ${need}`);
  return new Region(partition, partition.size - FORMAT_LOG_BLOCKS * bs, FORMAT_LOG_BLOCKS * bs, 'formatLog');
}
