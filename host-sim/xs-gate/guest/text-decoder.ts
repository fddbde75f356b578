// Guest shim for Moddable's `text/decoder`: the XS worker has the TextDecoder global.
declare const globalThis: { TextDecoder: unknown };
export default globalThis.TextDecoder;
