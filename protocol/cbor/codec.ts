// CBOR through cbor-x, configured for plain RFC 8949 data: no record
// extension, no structured clone, no tag around byte strings. Values go in as
// Maps (cbor-x writes plain objects with a non-shortest map header) and come
// back as Maps, so a hostile "__proto__" key is just a string.

import { Decoder, Encoder } from 'cbor-x';
import { scanStrict, type ScanError } from './strict-scan.js';

const encoder = new Encoder({
  useRecords: false,
  structuredClone: false,
  tagUint8Array: false,
  mapsAsObjects: false,
  pack: false,
});

const decoder = new Decoder({
  useRecords: false,
  structuredClone: false,
  mapsAsObjects: false,
});

export type CborValue = number | bigint | string | boolean | Uint8Array | CborValue[] | Map<string, CborValue>;

/** Encodes to a fresh Uint8Array (cbor-x hands back a view of a reused buffer). */
export function encodeCbor(value: CborValue): Uint8Array {
  const view = encoder.encode(value);
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

export type DecodeOutcome = { ok: true; value: CborValue } | { ok: false; error: ScanError };

/** Profile check first, then cbor-x; never throws. */
export function decodeCbor(bytes: Uint8Array): DecodeOutcome {
  const error = scanStrict(bytes);
  if (error !== null) return { ok: false, error };
  try {
    return { ok: true, value: decoder.decode(bytes) as CborValue };
  } catch {
    // The scan accepted it, so this would be a cbor-x disagreement; refuse rather than guess.
    return { ok: false, error: { code: 'unsupported_type', offset: 0 } };
  }
}
