// The device entry (manifest.json: creation.main = "firmware/moddable/main").
// Moddable imports this module after the setup modules and calls its default
// export (xs/platforms/mc/xsHosts.c).
//
//  1. settings from the manifest config (settings.ts);
//  2. the provisioning record from the `provision` partition
//     (provisioning-image.ts: "SGP1", u32 length, CBOR, CRC-32); a missing or
//     invalid record stops here, and says why on the console every 10 s;
//  3. the data partition (FlashBlockStore, memory-mapped), the ports (pins,
//     MQTT, crypto, clock, timers), `new Gate(...)`, open(), start();
//  4. the reader UART -> frame decoder -> gate.onRead; readers that answer only
//     when asked (UHF) are polled through the same UART's write (ReaderPoller);
//  5. Wi-Fi + SNTP in the background (the gate never waits for the network).
//
// Wiegand readers are connected through a Wiegand-to-UART interface
// (docs/decisions/0006-wiegand-through-uart.md): there is no Wiegand pin
// driver here by design.

import './globals.js'; // first: the text codec globals cbor-x looks for when it loads

import TCP from 'embedded:io/socket/tcp';
import config from 'mc/config';
import Modules from 'modules';
import Time from 'time';
import Timer from 'timer';
import { AlarmCode } from '../../protocol/event-record.js';
import { FormatLog } from '../core/format-log.js';
import { FIRMWARE_VERSION, Gate, type BootReport } from '../core/gate.js';
import { partitionBytes } from '../core/partition.js';
import { Em4100AsciiDecoder } from '../drivers/em4100-ascii.js';
import type { FrameDecoder, FrameRejectReason } from '../drivers/frame.js';
import { ReaderPoller } from '../drivers/reader-poll.js';
import { UhfFrameDecoder } from '../drivers/uhf-frame.js';
import { WiegandUartDecoder } from '../drivers/wiegand-uart.js';
import type { CredentialRead } from '../ports.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { DigestCrypto } from './digest-crypto.js';
import { DigitalInputs } from './digital-inputs.js';
import { DigitalOutputs } from './digital-outputs.js';
import { FlashBlockStore } from './flash-block-store.js';
import { ModdableTimers } from './moddable-timers.js';
import { MqttNet } from './mqtt-net.js';
import { NetResolver } from './net-resolver.js';
import { NetworkLink } from './network-link.js';
import { formatLogRegion, readProvisioningImage } from './provisioning-image.js';
import { SerialByteSource } from './serial-byte-source.js';
import { parseBroker, parseSettings, type Broker, type GateSettings, type ReaderSettings } from './settings.js';
import { SystemClock } from './system-clock.js';
import { failingSocket, LinkFailureAlarms, tlsSocketConfig, type LinkFailureReport } from './tls-socket.js';

const TLS_SOCKET = 'embedded:io/socket/tcp/tls';

function log(message: string): void {
  trace(`subline: ${message}\n`);
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The gate does not run. Says why now and every 10 s (for a console attached later). */
function refuse(reason: string): void {
  const line = `NOT RUNNING: ${reason}`;
  log(line);
  Timer.repeat(() => log(line), 10_000);
}

/**
 * The MQTT client's socket: plain TCP, or the SDK's TLS socket configured from
 * the record's tls (tls-socket.ts). A record without a usable certificate
 * still gives a socket, one whose every attempt fails with the reason: the
 * gate runs offline, alarms (link_failed) and retries with backoff.
 */
function socketFor(broker: Broker, record: ProvisioningRecord, link: { onFailure(f: LinkFailureReport): void; onHandshake(ms: number): void }): { io: unknown } & Record<string, unknown> {
  if (!broker.secure) return { io: TCP };
  const c = tlsSocketConfig({ TLSSocket: Modules.importNow(TLS_SOCKET), TCP, tls: record.tls, serverName: broker.host, now: () => Time.ticks, onFailure: (f) => link.onFailure(f), onHandshake: (ms) => link.onHandshake(ms) });
  if (c.ok) return { ...c.socket };
  log(`error: ${record.broker} needs TLS: ${c.failure.detail}; the gate runs offline (docs/FLASHING.md, "TLS")`);
  return failingSocket(c.failure, (f) => link.onFailure(f));
}

function createDecoder(reader: ReaderSettings, onRead: (r: CredentialRead) => void, onReject: (reason: FrameRejectReason) => void): FrameDecoder | null {
  switch (reader.kind) {
    case 'wiegand':
      return new WiegandUartDecoder({ onRead, onReject });
    case 'em4100':
      return new Em4100AsciiDecoder({ onRead, onReject });
    case 'uhf':
      return new UhfFrameDecoder({ onRead, onReject, ...(reader.duplicateWindowMs !== undefined ? { duplicateWindowMs: reader.duplicateWindowMs } : {}) });
    case 'none':
      return null;
  }
}

function describeBoot(p: ProvisioningRecord, b: BootReport): string {
  const s = b.store;
  const image = s.activeSlot < 0 ? 'no whitelist image' : `image in slot ${s.activeSlot === 0 ? 'A' : 'B'}`;
  return (
    `${FIRMWARE_VERSION} gate ${p.gate} (${p.line} line, ${p.direction}, ${p.lane}) boot ${b.boot}: ${image}` +
    `${s.imageError !== null ? ` (refused: ${s.imageError})` : ''}, ${s.overlayDeltas} overlay deltas, journal ${b.journalEpoch}.${b.journalLastSeq} (acked ${b.journalAcked}${b.formatted ? ', new journal: data partition formatted' : ''}), MAC key id ${p.gateKeyId}`
  );
}

/** What is running, kept reachable from the module (and inspectable in xsbug). */
export const running: { gate?: Gate; settings?: GateSettings; poller?: ReaderPoller } = {};

export default function main(): void {
  const settings = parseSettings(config);
  if (!settings.ok) return refuse(`manifest config: ${settings.error}`);
  const s = settings.value;

  // ---- the provisioning record ----
  let record: ProvisioningRecord;
  let formats: FormatLog;
  try {
    // Kept open: the format counter in its last blocks is written when the data partition is found erased.
    const part = new FlashBlockStore({ partition: s.partitions.provisioning, map: false });
    const r = readProvisioningImage((offset, length) => part.read(offset, length), part.size);
    if (!r.ok) {
      part.close();
      return refuse(`provisioning record ${r.error}: ${r.detail} (docs/FLASHING.md, "Provision a gate")`);
    }
    record = r.value;
    formats = new FormatLog(formatLogRegion(part));
  } catch (e) {
    return refuse(`cannot read the "${s.partitions.provisioning}" partition (${describe(e)}); was the partition table flashed?`);
  }
  const broker = parseBroker(record.broker);
  if (typeof broker === 'string') return refuse(`provisioning record: ${broker}`);
  // The default build has TLS (manifest.json); only a build that removed it lacks the module.
  if (broker.secure && !Modules.has(TLS_SOCKET)) return refuse(`the broker is ${record.broker} but this build has no TLS socket (${TLS_SOCKET}); build with the project's manifest.json or provision an mqtt:// broker`);

  const needed = record.lane === 'vehicle' ? 'barrier' : 'relay';
  if (s.outputs[needed] === undefined) return refuse(`a ${record.lane} lane needs subline.outputs.${needed} in the manifest config`);

  // ---- ports ----
  let gate: Gate;
  let clock: SystemClock;
  let timers: ModdableTimers;
  try {
    const flash = new FlashBlockStore({ partition: s.partitions.data });
    const need = partitionBytes(s.layout, flash.blockSize);
    if (need > flash.size) return refuse(`the "${s.partitions.data}" partition has ${flash.size} bytes; the layout for ${s.layout.credentials} credentials needs ${need}`);
    if (flash.map() === undefined) log(`warning: the data partition cannot be memory-mapped (${flash.mapError ?? 'disabled'}); the active image is copied to RAM`);
    // Outputs first: every output is driven off from here on.
    const outputs = new DigitalOutputs({ pins: s.outputs });
    clock = new SystemClock();
    // `fire` is held until the journal is open (see DigitalInputs.hold), then reported.
    const inputs = new DigitalInputs({ pins: s.inputs, clock, hold: ['fire'] });
    timers = new ModdableTimers();
    const crypto = new DigestCrypto();
    // Seconds on the device, so before the lane opens rather than at the first signed message.
    const key = record.trustedKeys[0];
    if (key !== undefined) log(`Ed25519 base-point table built in ${crypto.warmUp(key)} ms`);
    // Link failures are journaled once the gate exists; until then (never in practice: no attempt is made before start()) only logged.
    let alarms: LinkFailureAlarms | null = null;
    const link = {
      onFailure: (f: LinkFailureReport) => {
        log(`tls: ${f.code}: ${f.detail}`);
        alarms?.report(f);
      },
      onHandshake: (ms: number) => log(`tls: handshake with ${broker.host}:${broker.port} in ${ms} ms`),
    };
    const net = new MqttNet({
      host: broker.host,
      port: broker.port,
      ...(record.username !== undefined ? { username: record.username } : {}),
      ...(record.password !== undefined ? { password: record.password } : {}),
      dns: { io: NetResolver },
      socket: socketFor(broker, record, link),
      maxMessageBytes: s.mqtt.maxMessageBytes,
      connectTimeoutMs: s.mqtt.connectTimeoutMs,
      log,
    });
    gate = new Gate({
      provisioning: record,
      flash,
      layout: s.layout,
      clock,
      timers,
      net,
      crypto,
      outputs,
      inputs,
      random: Math.random,
      writeOnce: s.writeOnce,
      formats,
      ...(s.traceEvents ? { onEvent: (type: number, reason: number, seq: number | 'full') => log(`event type ${type} reason ${reason} seq ${seq}`) } : {}),
    });
    const g = gate;
    alarms = new LinkFailureAlarms({ now: () => clock.monotonicMs(), raise: (key) => g.controller.raiseAlarm(AlarmCode.link_failed, key) });
    running.gate = gate;
    running.settings = s;
    const boot = gate.open();
    log(describeBoot(record, boot));
    inputs.release();
    gate.start();
  } catch (e) {
    return refuse(`the gate did not start: ${describe(e)}`);
  }

  // ---- the reader ----
  const rejects: Partial<Record<FrameRejectReason, number>> = {};
  let reads = 0;
  const decoder = createDecoder(
    s.reader,
    (r) => {
      reads++;
      gate.onRead(r);
    },
    (reason) => {
      rejects[reason] = (rejects[reason] ?? 0) + 1;
    },
  );
  if (decoder !== null) {
    try {
      const uart = new SerialByteSource({ port: s.reader.port, receive: s.reader.receive, ...(s.reader.transmit !== undefined ? { transmit: s.reader.transmit } : {}), baud: s.reader.baud });
      uart.onBytes((bytes) => decoder.push(bytes, clock.monotonicMs()));
      log(`reader: ${s.reader.kind} on UART${s.reader.port} RX GPIO ${s.reader.receive} at ${s.reader.baud} baud`);
      if (s.reader.kind !== 'none') {
        // Quiet while a grant waits for its passage (READER_POLL): the passing tag would be read again.
        const poller = new ReaderPoller({
          kind: s.reader.kind,
          ...(s.reader.pollIntervalMs !== undefined ? { intervalMs: s.reader.pollIntervalMs } : {}),
          timers,
          write: (bytes) => uart.write(bytes),
          busy: () => gate.controller.outstandingGrants > 0,
        });
        if (poller.active) {
          poller.start();
          running.poller = poller;
          log(`reader: polled every ${poller.intervalMs} ms on TX GPIO ${String(s.reader.transmit)}`);
        }
      }
    } catch (e) {
      // The lane still answers remote commands and fire release; say so loudly.
      log(`error: the reader UART did not open (${describe(e)}): no credential reads`);
    }
  }

  // ---- network ----
  const link = new NetworkLink({
    ...(s.wifi !== null ? { ssid: s.wifi.ssid, ...(s.wifi.password !== undefined ? { password: s.wifi.password } : {}) } : {}),
    sntp: s.sntp,
    onTime: (seconds) => {
      clock.setWallSeconds(seconds, true);
      log(`time from SNTP: ${new Date(seconds * 1000).toISOString()}`);
    },
    onState: (state) => log(`wifi: ${state}`),
  });
  if (s.wifi === null) log('no wifi_ssid in the config: Wi-Fi is off (offline gate)');

  // ---- status on the console ----
  if (s.statusTraceMs > 0) {
    Timer.repeat(() => {
      const rej = Object.entries(rejects)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      log(
        `status: ${gate.sync.connected ? 'online' : 'offline'}, wifi ${link.hasIP ? 'up' : 'down'}, clock ${clock.trusted() ? 'trusted' : 'untrusted'}, ` +
          `list ${gate.store.epoch}.${gate.store.version}, journal ${gate.journal.lastSeq} backlog ${gate.journal.backlog}, reads ${reads}${rej !== '' ? `, rejected: ${rej}` : ''}`,
      );
    }, s.statusTraceMs);
  }
}
