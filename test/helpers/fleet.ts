// Integration harness: a broker (aedes or Mosquitto) on a free loopback port,
// a reference central on a temp SQLite file, and gates running the real
// firmware core on Node (simulated flash, MQTT.js through the Net port).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { startEmbeddedBroker, startMosquitto, type BrokerHandle } from '../../host-sim/broker.js';
import * as assert from 'uvu/assert';
import { Central, type CentralOptions } from '../../host-sim/central/central.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import Database from 'better-sqlite3';
import { deriveGateKey } from '../../host-sim/central/gate-keys.js';
import { GateRegistry } from '../../host-sim/central/gate-registry.js';
import { generateKeys } from '../../host-sim/central/keys.js';
import { NodeGate } from '../../host-sim/node-gate.js';
import type { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { nodeCrypto } from '../../host-sim/node-crypto.js';

export type BrokerKind = 'aedes' | 'mosquitto';

export const FAST_SYNC = { tickMs: 20, requestTimeoutMs: 600, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 800, keepAliveSeconds: 5, statusIntervalMs: 2000 };

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
  readonly #identities = new Map<string, { gateKey: Uint8Array; gateKeyId: number }>();

  constructor(readonly kind: BrokerKind) {}

  get dbPath(): string {
    return join(this.dir, 'central.db');
  }

  async startBroker(): Promise<void> {
    this.broker = this.kind === 'aedes' ? await startEmbeddedBroker({ port: this.#port }) : await startMosquitto({ port: this.#port });
    this.#port = this.broker.port;
  }

  async startCentral(extra: Partial<CentralOptions> = {}): Promise<Central> {
    this.central = new Central({ ...extra, db: this.dbPath, signingKey: this.keys.signingKey, deploymentKey: this.keys.deploymentKey, gateMasterKey: this.keys.gateMasterKey, brokerUrl: this.broker.url, headIntervalSeconds: 1, chunkSize: 1024, ...extra });
    await this.central.start();
    return this.central;
  }

  /** The gate's record; registers it in the central's database the first time (as `subline provision` does). */
  provisioning(gate: string, over: Partial<ProvisioningRecord> = {}): ProvisioningRecord {
    const line = over.line ?? 'first';
    const base = { gate, site: 'futian', line, direction: 'in', lane: 'person', list: 'main', ...over } as const;
    let id = this.#identities.get(gate);
    if (id === undefined) {
      const db = new Database(this.dbPath);
      try {
        const reg = new GateRegistry(db);
        const identity = reg.get(gate) ?? reg.register({ gate, site: base.site, list: base.list, line: base.line, direction: base.direction, lane: base.lane }, 1);
        id = { gateKey: deriveGateKey(this.keys.gateMasterKey, gate, identity.keyId), gateKeyId: identity.keyId };
      } finally {
        db.close();
      }
      this.#identities.set(gate, id);
    }
    return {
      ...base, topicRoot: 'subline', broker: this.broker.url,
      trustedKeys: [this.keys.publicKey], deploymentKey: this.keys.deploymentKey, ...id, journalEpoch: 1, policy: DEFAULT_POLICY[line], passbackSeconds: 0, ...over,
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

/** Every record the gate journaled equals what the central stored, exactly once. */
export function assertEventsExactlyOnce(f: Fleet, g: NodeGate): number {
  const j = g.gate.journal;
  const rows = f.central.events.export(g.gate.id, j.epoch);
  const seqs = new Set(rows.map((r) => r.seq));
  assert.is(seqs.size, rows.length, 'no duplicates');
  assert.is(rows.length, j.lastSeq, `${g.gate.id}: central holds every seq 1..${j.lastSeq}`);
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  const buf = new Uint8Array(RECORD_BYTES * 64);
  let compared = 0;
  for (let from = 1; from <= j.lastSeq; from += 64) {
    const n = j.readBatch(from, 64, buf).count;
    for (let k = 0; k < n; k++) {
      const record = buf.subarray(k * RECORD_BYTES, (k + 1) * RECORD_BYTES);
      if (record[12] === 31) continue; // a sector freed after the ack reads back as tombstones
      assert.is(toHex(bySeq.get(from + k)!.record), toHex(record), `${g.gate.id} seq ${from + k}`);
      compared++;
    }
  }
  assert.ok(compared > 0, 'records compared byte for byte');
  return rows.length;
}

