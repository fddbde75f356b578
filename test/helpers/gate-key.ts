// The fixed MAC key of the gates in firmware-side unit tests (issue 12), and
// the central's half of the MACed envelope as the tests play it: seal an ack
// for a gate, open what a gate published.

import { openMaced, sealMaced } from '../../protocol/mac-envelope.js';
import { EventAck, type EventAckMessage } from '../../protocol/messages.js';
import { nobleCrypto } from '../../protocol/crypto-noble.js';
import type { Crypto } from '../../protocol/crypto.js';
import type { Result } from '../../protocol/result.js';
import type { MessageOf, MessageSchema } from '../../protocol/schema.js';
import type { Topics } from '../../protocol/topics.js';

export const TEST_GATE_KEY: Uint8Array = new Uint8Array(32).fill(0x5a);
export const TEST_GATE_KEY_ID = 1;
/** The two provisioning fields, to spread into a test record. */
export const TEST_GATE_KEYS = { gateKey: TEST_GATE_KEY, gateKeyId: TEST_GATE_KEY_ID } as const;

/** An ack as the central sends it: MACed with the gate's key for gates/<gate>/ack. */
export function sealAck(topics: Topics, ack: EventAckMessage, key: Uint8Array = TEST_GATE_KEY, kid: number = TEST_GATE_KEY_ID, crypto: Crypto = nobleCrypto): Uint8Array {
  return sealMaced(EventAck, ack, topics.gate(ack.gate, 'ack'), key, kid, crypto);
}

/** Opens one message a gate published on `topic`, under the test key. */
export function openUp<M extends MessageSchema>(schema: M, topic: string, payload: Uint8Array, key: Uint8Array = TEST_GATE_KEY, crypto: Crypto = nobleCrypto): Result<MessageOf<M>> {
  return openMaced(schema, payload, topic, (kid) => (kid === TEST_GATE_KEY_ID ? key : null), crypto);
}
