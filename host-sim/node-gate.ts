// A gate on the host, running the same firmware core as the device: its
// data partition is a simulated NOR flash (in memory, or saved to a file),
// its network is MQTT.js through the thin Net port, its lane hardware is
// simulated. Its provisioning partition is a second simulated flash holding
// the framed record and, in its last blocks, the format counter (as on the
// device, firmware/moddable/provisioning-image.ts): erase the data flash and
// keep this one to model a wiped gate. Used by the fleet simulator and the
// integration tests.

import { FormatLog } from '../firmware/core/format-log.js';
import { Gate, type BootReport, type GateOptions } from '../firmware/core/gate.js';
import { encodeProvisioningImage, formatLogRegion } from '../firmware/moddable/provisioning-image.js';
import { partitionBytes, type LayoutOptions } from '../firmware/core/partition.js';
import type { Clock, Net, Timers } from '../firmware/ports.js';
import type { Crypto } from '../protocol/crypto.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { gateBrokerAuth, type BrokerAuth } from './broker-auth.js';
import { MqttNet } from './adapters/mqtt-net.js';
import { nodeTimers, SystemClock } from './adapters/node-timers.js';
import { mulberry32, NorFlash } from './flash/nor-flash.js';
import { SimInputs, SimOutputs } from './sim-io.js';
import type { SyncConfig } from '../firmware/core/sync-engine.js';

export interface NodeGateOptions {
  readonly provisioning: ProvisioningRecord;
  readonly crypto: Crypto;
  /** Broker URL (defaults to the provisioning record's). */
  readonly brokerUrl?: string;
  /** Its identity at the broker (default: the TLS certificate in its provisioning record, if any). */
  readonly brokerAuth?: BrokerAuth;
  readonly layout?: LayoutOptions;
  /** Reuse a flash (after a simulated power cut) instead of a blank one. */
  readonly flash?: NorFlash;
  /** Reuse a provisioning partition (64 KiB, as on the device) instead of a fresh one holding the record. */
  readonly provisioningFlash?: NorFlash;
  readonly clock?: Clock;
  /** The network (default: MQTT.js to brokerUrl); the deterministic simulation gives its seeded broker's. */
  readonly net?: Net;
  readonly timers?: Timers;
  readonly seed?: number;
  readonly sync?: Partial<SyncConfig>;
  readonly maintenanceMs?: number;
  readonly onEvent?: GateOptions['onEvent'];
  readonly onSyncChange?: () => void;
}

export class NodeGate {
  readonly gate: Gate;
  readonly flash: NorFlash;
  readonly provisioningFlash: NorFlash;
  readonly outputs = new SimOutputs();
  readonly inputs: SimInputs;
  readonly net: Net;
  boot: BootReport | null = null;

  constructor(o: NodeGateOptions) {
    const layout = o.layout ?? { credentials: 20000, journalSectors: 64 };
    this.flash = o.flash ?? new NorFlash({ size: partitionBytes(layout), blockSize: 4096, seed: o.seed ?? 1 });
    this.provisioningFlash = o.provisioningFlash ?? NodeGate.provisioningPartition(o.provisioning, o.seed ?? 1);
    const clock = o.clock ?? new SystemClock(true);
    this.inputs = new SimInputs(() => clock.monotonicMs());
    this.net = o.net ?? new MqttNet(o.brokerUrl ?? o.provisioning.broker, o.brokerAuth ?? gateBrokerAuth(o.provisioning));
    this.gate = new Gate({
      provisioning: o.provisioning,
      flash: this.flash,
      layout,
      clock,
      timers: o.timers ?? nodeTimers,
      net: this.net,
      crypto: o.crypto,
      outputs: this.outputs,
      inputs: this.inputs,
      random: mulberry32(o.seed ?? 1),
      formats: new FormatLog(formatLogRegion(this.provisioningFlash)),
      ...(o.sync !== undefined ? { sync: o.sync } : {}),
      ...(o.maintenanceMs !== undefined ? { maintenanceMs: o.maintenanceMs } : {}),
      ...(o.onSyncChange !== undefined ? { onSyncChange: o.onSyncChange } : {}),
      ...(o.onEvent !== undefined ? { onEvent: o.onEvent } : {}),
    });
  }

  /** A fresh provisioning partition (64 KiB, 4 KiB blocks) holding the framed record, the format counter erased. */
  static provisioningPartition(p: ProvisioningRecord, seed = 1): NorFlash {
    const initial = new Uint8Array(0x10000).fill(0xff);
    initial.set(encodeProvisioningImage(p));
    return new NorFlash({ size: initial.length, blockSize: 4096, seed: seed + 7, initial });
  }

  start(): BootReport {
    this.boot = this.gate.open();
    this.gate.start();
    return this.boot;
  }

  stop(): void {
    this.gate.close();
  }
}
