// The TLS check program's entry (built by test/sdk/tls-check.ts with mcconfig
// -p x-cli-lin; run by npm run device:tls-check and test/device-tls.test.ts).
// It is a gate's network stack on the SDK's XS: the device's MQTT adapter
// (firmware/moddable/mqtt-net.ts) over the socket that
// firmware/moddable/tls-socket.ts builds from a real provisioning record, on
// the SDK's TLS socket, ssl and lin TCP, against a real Mosquitto.
//
// argv: INPUT.json = { record: hex CBOR provisioning record of gate A,
// host, port, otherGate: id of gate B, wrongCa: hex DER of another CA }.
// Steps, one line each on stdout (the harness reads them as they come):
//   1. TLS with A's certificate, broker verified against the record's CA;
//      CONNACK                                    -> "handshake <ms> ms"
//   2. subscribes to A's ack topic and to B's ack topic; publishes a status
//      sealed with A's key (QoS 1, PUBACK)        -> "status published"
//   3. the harness (as the central) publishes to B's ack, then to A's ack;
//      A receives its own                          -> "ack <hex>"
//      (B's would arrive first, on the same connection: "foreign ack" fails)
//   4. publishes to B's status topic (the broker acks and drops it; the
//      harness checks that nothing is delivered) -> "foreign published"
//   5. a second connection whose record names another CA must fail at the
//      handshake, before CONNACK                    -> "refused at handshake: <code> (<detail>)"
//   -> "memory ..." and "tls-check: ok, handshake N ms", exit 0.
// Any step that does not happen within its time: "tls-check: FAILED at <step>: <why>", exit 1.

import '../../../firmware/moddable/globals.js';
import TCP from 'embedded:io/socket/tcp';
import Modules from 'modules';
import Time from 'time';
import Timer from 'timer';
import { argument, exit, gc, loop, memory, readFile, write } from 'sdk-host';
import { MqttNet } from '../../../firmware/moddable/mqtt-net.js';
import { NetResolver } from '../../../firmware/moddable/net-resolver.js';
import { tlsSocketConfig, type LinkFailureReport } from '../../../firmware/moddable/tls-socket.js';
import { fromHex, toHex } from '../../../protocol/hex.js';
import { sealMaced } from '../../../protocol/mac-envelope.js';
import { GateStatus } from '../../../protocol/messages.js';
import { decodeProvisioning, type ProvisioningRecord } from '../../../protocol/provisioning.js';
import { Topics } from '../../../protocol/topics.js';
import { DigestCrypto } from '../../../firmware/moddable/digest-crypto.js';

interface Input {
  readonly record: string;
  readonly host: string;
  readonly port: number;
  readonly otherGate: string;
  readonly wrongCa: string;
}

// As main.ts takes it (the module has no typings in the SDK's tsconfig).
const TLSSocket = Modules.importNow('embedded:io/socket/tcp/tls');
const path = argument(0);
if (path === undefined) throw new Error('usage: tls-check INPUT.json');
const input = JSON.parse(new TextDecoder().decode(new Uint8Array(readFile(path)))) as Input;
const decoded = decodeProvisioning(fromHex(input.record));
if (!decoded.ok) throw new Error(`the provisioning record does not decode: ${decoded.error.code} at '${decoded.error.field}'`);
const record: ProvisioningRecord = decoded.value;
const topics = new Topics(record.topicRoot);
const crypto = new DigestCrypto();
const line = (s: string): void => write(`${s}\n`);

let step = 'start';
let deadline: Timer | null = null;
function fail(why: string): void {
  line(`tls-check: FAILED at ${step}: ${why}`);
  exit(1);
}
/** The next step must happen within ms. */
function expect(name: string, ms: number): void {
  step = name;
  if (deadline !== null) Timer.clear(deadline);
  deadline = Timer.set(() => fail(`nothing within ${ms} ms`), ms);
}

function netFor(r: ProvisioningRecord, onFailure: (f: LinkFailureReport) => void, onHandshake: (ms: number) => void): MqttNet {
  const socket = tlsSocketConfig({ TLSSocket, TCP, tls: r.tls, serverName: input.host, now: () => Time.ticks, onFailure, onHandshake });
  if (!socket.ok) throw new Error(`no TLS socket: ${socket.failure.code} (${socket.failure.detail})`);
  return new MqttNet({
    host: input.host,
    port: input.port,
    dns: { io: NetResolver },
    socket: socket.socket,
    connectTimeoutMs: 60_000,
    log: (m) => line(`# ${m}`),
  });
}

const will = (topic: string) => ({ topic, payload: new Uint8Array([0]), qos: 0 as const, retain: false });
const ownAck = topics.gate(record.gate, 'ack');
const otherAck = topics.gate(input.otherGate, 'ack');
const statusTopic = topics.gate(record.gate, 'status');

let handshakeMs = -1;
const net = netFor(
  record,
  (f) => line(`# tls failure ${f.code}: ${f.detail}`),
  (ms) => (handshakeMs = ms),
);
let statusId = -1;
let foreignId = -1;
net.onConnectionChange((up) => {
  if (step === 'handshake' && up) {
    if (handshakeMs < 0) return fail('CONNACK without a completed TLS handshake');
    line(`handshake ${handshakeMs} ms`);
    expect('status', 30_000);
    net.subscribe([ownAck, otherAck]);
    const status = sealMaced(
      GateStatus,
      { gate: record.gate, state: 'online', journal: record.journalEpoch, boot: 1, conn: 1, at: Math.floor(Date.now() / 1000), firmware: 'tls-check', line: record.line, direction: record.direction, lane: record.lane, lists: [], backlog: 0, refused: [] },
      statusTopic,
      record.gateKey,
      record.gateKeyId,
      crypto,
    );
    statusId = net.publish(statusTopic, status, 1, false);
    if (statusId < 0) fail('the status publish was not taken');
  } else if (!up && step !== 'done' && step !== 'wrong-ca') fail('the connection went down');
});
/** Live XS memory after a full collection. */
function live(): { chunks: number; slots: number } {
  gc();
  const m = memory();
  return { chunks: m.chunks, slots: m.slots };
}
let connectedLive = { chunks: 0, slots: 0 };
net.onPublished((id) => {
  if (id === statusId && step === 'status') {
    connectedLive = live();
    line('status published');
    expect('ack', 30_000);
  } else if (id === foreignId && step === 'foreign') {
    line('foreign published');
    step = 'done';
    net.close();
    wrongCa();
  }
});
net.onMessage((topic, payload) => {
  if (topic === otherAck) return fail(`a message on ${otherAck} (another gate's ack topic) was delivered`);
  if (topic === ownAck && step === 'ack') {
    line(`ack ${toHex(payload)}`);
    expect('foreign', 30_000);
    foreignId = net.publish(topics.gate(input.otherGate, 'status'), new Uint8Array([0xde, 0xad]), 1, false);
    if (foreignId < 0) fail('the foreign publish was not taken');
  }
});

function wrongCa(): void {
  expect('wrong-ca', 60_000);
  const bad: ProvisioningRecord = { ...record, tls: { ...(record.tls as NonNullable<ProvisioningRecord['tls']>), ca: fromHex(input.wrongCa) } };
  const seen: { failure: LinkFailureReport | null; handshaken: boolean } = { failure: null, handshaken: false };
  const n2 = netFor(
    bad,
    (f) => (seen.failure ??= f),
    () => (seen.handshaken = true),
  );
  n2.onConnectionChange((up) => {
    if (up) return fail('connected to the broker with a record that trusts another CA');
    if (seen.handshaken) return fail('the TLS handshake completed with another CA');
    const f = seen.failure;
    if (f === null) return fail('the attempt failed without a TLS failure');
    line(`refused at handshake: ${f.code} (${f.detail})`);
    if (deadline !== null) Timer.clear(deadline);
    const m = memory();
    line(`memory peak ${m.peakChunks} chunk bytes, ${m.peakSlots} slots of ${m.slotBytes} bytes; live before connecting ${idleLive.chunks} chunk bytes ${idleLive.slots} slots, connected ${connectedLive.chunks} chunk bytes ${connectedLive.slots} slots`);
    line(`tls-check: ok, handshake ${handshakeMs} ms`);
    n2.close();
    exit(0);
  });
  n2.connect({ clientId: record.gate, keepAliveSeconds: 60, will: will(statusTopic) });
}

const idleLive = live();
expect('handshake', 90_000);
net.connect({ clientId: record.gate, keepAliveSeconds: 60, will: will(statusTopic) });
loop();
