// XS side of the MAC tests: HMAC-SHA256 vectors and MACed envelopes on XS.
import { fromHex, nobleCrypto, toHex } from '../../protocol/index.js';
import { EventAck } from '../../protocol/messages.js';
import { openMaced, sealMaced } from '../../protocol/mac-envelope.js';
import { HMAC_SHA256_VECTORS } from '../../protocol/hmac-vectors.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';

serveJson((req: { key: string; topic: string }) => {
  const macs = HMAC_SHA256_VECTORS.map((v) => toHex(nobleCrypto.hmacSha256(fromHex(v.keyHex), fromHex(v.dataHex))));
  const key = fromHex(req.key);
  const sealed = sealMaced(EventAck, { gate: 'g-1', epoch: 7, seq: 42, chain: new Uint8Array(32).fill(5) }, req.topic, key, 3, nobleCrypto);
  const opened = openMaced(EventAck, sealed, req.topic, (kid) => (kid === 3 ? key : null), nobleCrypto);
  const otherTopic = openMaced(EventAck, sealed, `${req.topic}x`, (kid) => (kid === 3 ? key : null), nobleCrypto);
  return { macs, sealed: toHex(sealed), opened: opened.ok ? opened.value.seq : opened.error.code, otherTopic: otherTopic.ok ? 'accepted' : otherTopic.error.code };
});
