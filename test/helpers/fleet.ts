// Integration harness: a broker (aedes or Mosquitto) on a free loopback port,
// a reference central on a temp SQLite file, and gates running the real
// firmware core on Node (simulated flash, MQTT.js through the Net port).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { startEmbeddedBroker, startMosquitto, type BrokerHandle } from '../../host-sim/broker.js';
import { Central } from '../../host-sim/central/central.js';
import { generateKeys } from '../../host-sim/central/keys.js';
import { NodeGate } from '../../host-sim/node-gate.js';
import type { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { nodeCrypto } from '../../host-sim/node-crypto.js';

export type BrokerKind = 'aedes' | 'mosquitto';

export const FAST_SYNC = { tickMs: 20, requestTimeoutMs: 600, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 800, keepAliveSeconds: 5 };

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class Fleet {
  broker!: BrokerHandle;
  central!: Central;
  readonly dir = mkdtempSync(join(tmpdir(), 'subline-fleet-'));
  readonly keys = generateKeys();
  readonly gates = new Map<string, NodeGate>();
  #port = 0;

  constructor(readonly kind: BrokerKind) {}

  get dbPath(): string {
    return join(this.dir, 'central.db');
  }

  async startBroker(): Promise<void> {
    this.broker = this.kind === 'aedes' ? await startEmbeddedBroker({ port: this.#port }) : await startMosquitto({ port: this.#port });
    this.#port = this.broker.port;
  }

  async startCentral(): Promise<Central> {
    this.central = new Central({ db: this.dbPath, signingKey: this.keys.signingKey, deploymentKey: this.keys.deploymentKey, brokerUrl: this.broker.url, headIntervalSeconds: 1, chunkSize: 1024 });
    await this.central.start();
    return this.central;
  }

  provisioning(gate: string, over: Partial<ProvisioningRecord> = {}): ProvisioningRecord {
    const line = over.line ?? 'first';
    return {
      gate, site: 'futian', line, direction: 'in', lane: 'person', list: 'main', topicRoot: 'subline', broker: this.broker.url,
      trustedKeys: [this.keys.publicKey], deploymentKey: this.keys.deploymentKey, journalEpoch: 1, policy: DEFAULT_POLICY[line], passbackSeconds: 0, ...over,
    };
  }

  startGate(gate: string, over: Partial<ProvisioningRecord> = {}, flash?: NorFlash): NodeGate {
    const g = new NodeGate({ provisioning: this.provisioning(gate, over), crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50, ...(flash !== undefined ? { flash } : {}) });
    g.start();
    this.gates.set(gate, g);
    return g;
  }

  /** A power cut: the gate stops at once; its flash keeps what was written. */
  cutGate(gate: string): NorFlash {
    const g = this.gates.get(gate)!;
    g.stop();
    this.gates.delete(gate);
    return g.flash;
  }

  async close(): Promise<void> {
    for (const g of this.gates.values()) g.stop();
    this.gates.clear();
    await this.central?.close();
    await this.broker?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
