// The bridge's wire format between Node and the XS gate (both directions, one
// frame per XsWorker command and per reply): a small JSON header plus binary
// blobs, so payloads (MQTT messages, UART bytes, flash partitions) cross the
// pipe as bytes, never as base64 or number arrays.
//
//   u32 LE  n = byte length of the JSON header
//   n bytes the header, UTF-8 JSON; its `blobs` array lists the blob lengths
//   ...     the blobs, back to back, in that order
//
// Fields of the header refer to blobs by index. Runs on Node and inside XS
// (guest/runtime.ts): no Node APIs.

export interface FrameHeader {
  blobs?: number[];
}

const te = new TextEncoder();
const td = new TextDecoder();

/** Collects blobs while a header is built; `add` returns the blob's index. */
export class BlobList {
  readonly items: Uint8Array[] = [];
  add(bytes: Uint8Array): number {
    this.items.push(bytes);
    return this.items.length - 1;
  }
}

export function encodeFrame(header: Record<string, unknown>, blobs: readonly Uint8Array[] = []): Uint8Array {
  const json = te.encode(JSON.stringify({ ...header, blobs: blobs.map((b) => b.length) }));
  let total = 4 + json.length;
  for (const b of blobs) total += b.length;
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  let at = 4 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** The header and views of the blobs (no copies: copy what must outlive `bytes`). */
export function decodeFrame<T = FrameHeader>(bytes: Uint8Array): { header: T; blobs: Uint8Array[] } {
  if (bytes.length < 4) throw new RangeError(`bridge frame of ${bytes.length} bytes`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + n > bytes.length) throw new RangeError(`bridge frame header of ${n} bytes in a frame of ${bytes.length}`);
  const header = JSON.parse(td.decode(bytes.subarray(4, 4 + n))) as T & FrameHeader;
  const blobs: Uint8Array[] = [];
  let at = 4 + n;
  for (const len of header.blobs ?? []) {
    if (at + len > bytes.length) throw new RangeError('bridge frame: blob past the end');
    blobs.push(bytes.subarray(at, at + len));
    at += len;
  }
  return { header, blobs };
}

/** An ArrayBuffer holding exactly these bytes (what the worker's command channel takes and returns). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer;
}
