// The wire profile on hand-written bytes (RFC 8949 Appendix A examples where they apply).

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scanStrict, validUtf8 } from '../protocol/cbor/strict-scan.js';
import { fromHex } from '../protocol/hex.js';

const t = suite('protocol CBOR profile');
const accepted = ['00', '17', '1818', '1903e8', '1a000f4240', '1b000000e8d4a51000', '20', '3863', '40', '4401020304', '60', '6161', '62c3bc', '63e6b0b4', '64f0908591', '80', '83010203', 'a0', 'a26161016162820203', 'f4', 'f5'];
for (const hex of accepted) t(`accepts ${hex}`, () => assert.is(scanStrict(fromHex(hex)), null));
const refused: [string, string][] = [
  ['1817', 'not_canonical'], // 23 in two bytes
  ['190017', 'not_canonical'],
  ['1a0000ffff', 'not_canonical'],
  ['1b00000000ffffffff', 'not_canonical'],
  ['5817' + '00'.repeat(23), 'not_canonical'],
  ['5f4101ff', 'indefinite_length'],
  ['9fff', 'indefinite_length'],
  ['bfff', 'indefinite_length'],
  ['c11a514b67b0', 'unsupported_type'], // tag 1 (epoch time)
  ['f93c00', 'unsupported_type'], // half float
  ['fb3ff199999999999a', 'unsupported_type'],
  ['f6', 'unsupported_type'], // null
  ['f7', 'unsupported_type'], // undefined
  ['f0', 'unsupported_type'], // simple(16)
  ['f820', 'unsupported_type'], // simple(32)
  ['a1 0101'.replace(' ', ''), 'unsupported_type'], // integer map key
  ['a2616201616101', 'not_canonical'], // keys "b","a" unsorted
  ['a2616101616102', 'not_canonical'], // duplicate key
  ['a2626161016162 02'.replace(' ', ''), 'not_canonical'], // "aa" before "b": longer encodings sort after shorter
  ['1c', 'not_canonical'], // reserved additional info 28
  ['62c3', 'truncated'],
  ['62c328', 'invalid_utf8'],
  ['62c080', 'invalid_utf8'], // overlong
  ['63eda080', 'invalid_utf8'], // surrogate
  ['64f4908080', 'invalid_utf8'], // above U+10FFFF
  ['0000', 'trailing_bytes'],
  ['', 'truncated'],
  ['83 0102'.replace(' ', ''), 'truncated'],
];
for (const [hex, code] of refused) t(`refuses ${hex} as ${code}`, () => assert.is(scanStrict(fromHex(hex))?.code, code));
t('validUtf8 agrees with a fatal TextDecoder on all 1- and 2-byte sequences', () => {
  const td = new TextDecoder('utf-8', { fatal: true });
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      const s = Uint8Array.from([a, b]);
      let ok = true;
      try {
        td.decode(s);
      } catch {
        ok = false;
      }
      assert.is(validUtf8(s, 0, 2), ok, `bytes ${a.toString(16)} ${b.toString(16)}`);
    }
  }
});
t.run();
