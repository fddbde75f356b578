// Local typing for Moddable's `crypt` module (modules/crypt/digest/crypt.js:
// class Digest with write/close/reset). The published @moddable/typings
// package this repository pins (5.6.0) has no `crypt` typing; the Moddable SDK
// itself ships typings/crypt.d.ts with this same shape, which is what mcconfig
// uses on a device build. So this file is used ONLY by tsconfig.moddable.json
// (local type checking) and is deliberately not listed in manifest.json: the
// SDK's declaration and this one would both declare module "crypt".
//
// Kept to the SDK's signatures, including write(string | ArrayBuffer): the
// native side (modCrypt.c, xs_crypt_Digest_write -> xsmcGetBufferReadable)
// also takes typed-array views, which the adapter relies on (with a cast).

declare module 'crypt' {
  type DigestType = 'MD5' | 'SHA1' | 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512';

  export class Digest {
    constructor(type: DigestType);
    write(message: string | ArrayBuffer): void;
    close(): ArrayBuffer;
    reset(): void;
    get blockSize(): number;
    get outputSize(): number;
    update(message: string | ArrayBuffer): void;
  }
}
