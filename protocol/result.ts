// Results instead of exceptions: a decoder of hostile bytes must never throw
// out of its API, and every refusal carries a stable, documented code.

/** Stable error codes. Documented in docs/PROTOCOL.md; never renumber or rename. */
export type ErrorCode =
  | 'truncated' // the bytes end inside a CBOR item
  | 'trailing_bytes' // bytes left over after the top-level item
  | 'too_large' // message longer than its type's maximum size
  | 'too_deep' // nesting deeper than the profile allows
  | 'indefinite_length' // indefinite-length strings, arrays or maps
  | 'not_canonical' // non-shortest integer/length, or map keys unsorted/duplicated
  | 'unsupported_type' // tags, floats, undefined, simple values, non-text map keys
  | 'invalid_utf8' // a text string that is not valid UTF-8
  | 'wrong_type' // a field has the wrong CBOR major type
  | 'out_of_range' // an integer outside its field's bounds
  | 'too_long' // a string, byte string or array over its field's limit
  | 'too_short' // a byte string or array under its field's minimum
  | 'bad_value' // a value outside its field's enumeration or alphabet
  | 'missing_field'
  | 'unknown_field'
  | 'unknown_version'
  | 'wrong_message_type' // the "t" field names another message type
  | 'bad_signature' // signature does not verify (or is malformed)
  | 'unknown_key' // the envelope names a key id the verifier does not trust
  | 'bad_mac' // a MACed envelope whose MAC is not the sender's for this topic (mac-envelope.ts)
  | 'bad_topic'; // a topic that is not ours, or a segment outside its alphabet

export interface ProtocolError {
  readonly code: ErrorCode;
  /** Dotted path of the offending field, '' for the message as a whole. */
  readonly field: string;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ProtocolError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T>(code: ErrorCode, field = ''): Result<T> {
  return { ok: false, error: { code, field } };
}
