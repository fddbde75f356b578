// Guest shim for Moddable's `text/encoder`: the XS worker has the TextEncoder global.
declare const globalThis: { TextEncoder: unknown };
export default globalThis.TextEncoder;
