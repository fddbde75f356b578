// Globals that XS (and the Moddable runtime, with the text encoder/decoder
// modules in the manifest) provide to device code. Declared here because the
// device tsconfig has neither DOM nor Node types.

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
