// The module "cbor-x" on the device (manifest.json maps the specifier here).
// protocol/cbor/codec.ts imports { Decoder, Encoder } from 'cbor-x'. cbor-x's
// own index.js re-exports './encode.js' and './decode.js'; XS resolves those
// relative to the importing module's specifier, so from a module named
// "cbor-x" they would become the top-level modules "encode" and "decode".
// Importing the files through "cbor-x/encode" and "cbor-x/decode" instead
// keeps cbor-x's internal imports inside the "cbor-x/" namespace
// ("cbor-x/encode" -> "./decode.js" -> "cbor-x/decode") and leaves out the
// iterator and stream helpers the gate does not use.

export { Encoder } from 'cbor-x/encode';
export { Decoder } from 'cbor-x/decode';
