// Integration harness: a broker (aedes or Mosquitto) on a free loopback port,
// a reference central on a temp SQLite file, and gates running the real
// firmware core on Node (simulated flash, MQTT.js through the Net port).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { derivePassword, freeLoopbackPorts, startEmbeddedBroker, startMosquitto, type BrokerHandle, type EmbeddedBrokerSecurity, type SecuredBrokerHandle } from '../../host-sim/broker.js';
import { BrokerAcl } from '../../host-sim/broker-acl.js';
import { mqttAuthOptions, type BrokerAuth } from '../../host-sim/broker-auth.js';
import type { IClientOptions } from 'mqtt';
import { writeBrokerConfig } from '../../host-sim/broker-config.js';
import { CENTRAL_IDENTITY, DeploymentPki } from '../../host-sim/pki/deployment-pki.js';
import * as assert from 'uvu/assert';
import { Central, type CentralOptions } from '../../host-sim/central/central.js';
import { RECORD_BYTES } from '../../protocol/event-record.js';
import { toHex } from '../../protocol/hex.js';
import { deriveGateKey } from '../../host-sim/central/gate-keys.js';
import { openCentralStore, type CentralStore } from '../../host-sim/central/store/open-store.js';
import type { GateIdentity as StoredIdentity, GateIdentityInput } from '../../host-sim/central/gate-registry.js';
import { generateKeys, writeKeyFile } from '../../host-sim/central/keys.js';
import { NodeGate } from '../../host-sim/node-gate.js';
import type { NorFlash } from '../../host-sim/flash/nor-flash.js';
import { nodeCrypto } from '../../host-sim/node-crypto.js';

export type BrokerKind = 'aedes' | 'mosquitto';

export const FAST_SYNC = { tickMs: 20, requestTimeoutMs: 600, ackTimeoutMs: 1000, reconnectMinMs: 100, reconnectMaxMs: 800, keepAliveSeconds: 5, statusIntervalMs: 2000 };

/** Polls `cond` (which may read the central's asynchronous stores) every 20 ms until it holds. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface FleetOptions {
  /**
   * Lock the broker down as production does (default): aedes with the ACL of
   * host-sim/broker-acl.ts and a derived password per client; Mosquitto from
   * `subline broker config`'s files, TLS with the deployment PKI's
   * certificates (central and gates). false: an anonymous broker (the tests of
   * application-layer authentication, which must hold whatever the broker does).
   */
  readonly secure?: boolean;
}

interface GateIdentity {
  gateKey: Uint8Array;
  gateKeyId: number;
  tls?: ProvisioningRecord['tls'];
  username?: string;
  password?: Uint8Array;
}


export class Fleet {
  broker!: BrokerHandle;
  central!: Central;
  readonly dir = mkdtempSync(join(tmpdir(), 'subline-fleet-'));
  readonly keys = generateKeys();
  readonly gates = new Map<string, NodeGate>();
  readonly secure: boolean;
  #port = 0;
  #passwordPort = 0;
  readonly #identities = new Map<string, GateIdentity>();
  readonly #secret = randomBytes(32);
  #pki: DeploymentPki | null = null;
  #registering: Promise<unknown> = Promise.resolve();

  constructor(
    readonly kind: BrokerKind,
    options: FleetOptions = {},
  ) {
    this.secure = options.secure ?? true;
    writeKeyFile(join(this.dir, 'keys.json'), this.keys);
  }

  get dbPath(): string {
    return join(this.dir, 'central.db');
  }

  /** The fleet's database opened beside the central (as `subline provision` does), created the first time. */
  #openStore(): Promise<CentralStore> {
    return openCentralStore(this.dbPath, { create: true });
  }

  get #brokerDir(): string {
    return join(this.dir, 'broker');
  }

  #gateList(): { id: string; list: string }[] {
    return [...this.#identities.keys()].map((id) => ({ id, list: 'main' }));
  }

  #security(): EmbeddedBrokerSecurity {
    const ids = [CENTRAL_IDENTITY, ...this.#identities.keys()];
    return { acl: new BrokerAcl({ gates: this.#gateList() }), passwords: new Map(ids.map((id) => [id, derivePassword(this.#secret, id)])) };
  }

  async #ensurePki(): Promise<DeploymentPki> {
    this.#pki ??= await DeploymentPki.create(join(this.dir, 'pki'));
    return this.#pki;
  }

  /** Writes Mosquitto's files from the fleet's data directory (the gates registered so far). */
  async #writeMosquittoConfig(): Promise<void> {
    await this.#ensurePki();
    await (await this.#openStore()).close(); // the database (and its gate table) exists even before the first gate
    if (this.#port === 0) {
      const [tls, password] = await freeLoopbackPorts(2);
      this.#port = tls as number;
      this.#passwordPort = password as number;
    }
    await writeBrokerConfig({ data: this.dir, out: this.#brokerDir, port: this.#passwordPort, tlsPort: this.#port, host: '127.0.0.1' });
  }

  async startBroker(): Promise<void> {
    if (!this.secure) {
      this.broker = this.kind === 'aedes' ? await startEmbeddedBroker({ port: this.#port }) : await startMosquitto({ port: this.#port });
      this.#port = this.broker.port;
      return;
    }
    if (this.kind === 'aedes') {
      this.broker = await startEmbeddedBroker({ port: this.#port, security: this.#security() });
      this.#port = this.broker.port;
      return;
    }
    await this.#writeMosquittoConfig();
    this.broker = await startMosquitto({ configDir: this.#brokerDir });
  }

  /** The central's identity at the broker. */
  #centralAuth(): BrokerAuth | undefined {
    if (!this.secure) return undefined;
    if (this.kind === 'aedes') return { username: CENTRAL_IDENTITY, password: derivePassword(this.#secret, CENTRAL_IDENTITY) };
    const pki = join(this.dir, 'pki');
    return { ca: readFileSync(join(pki, 'ca.crt.pem'), 'utf8'), cert: readFileSync(join(pki, 'central.crt.pem'), 'utf8'), key: readFileSync(join(pki, 'central.key.pem'), 'utf8') };
  }

  /** MQTT.js options for a test client that acts with the central's identity (on a secured broker nobody else may publish deltas). */
  centralClientOptions(): IClientOptions {
    return { reconnectPeriod: 0, clientId: `test-central-${Math.random().toString(16).slice(2)}`, ...mqttAuthOptions(this.#centralAuth(), this.broker.url) };
  }

  async startCentral(extra: Partial<CentralOptions> = {}): Promise<Central> {
    const auth = this.#centralAuth();
    this.central = await Central.open({ ...extra, db: this.dbPath, signingKey: this.keys.signingKey, deploymentKey: this.keys.deploymentKey, gateMasterKey: this.keys.gateMasterKey, brokerUrl: this.broker.url, headIntervalSeconds: 1, chunkSize: 1024, ...(auth !== undefined ? { brokerAuth: auth } : {}), ...extra });
    await this.central.start();
    return this.central;
  }

  /**
   * The gate's identity in the central's database, registered if it has none.
   * While the central runs, on its connection; otherwise on a connection of
   * its own, one registration at a time: two SQLite connections of one process
   * must not both be in a transaction (a transaction spans awaits, and the
   * second BEGIN IMMEDIATE waits synchronously, the event loop blocked, for
   * the first to end).
   */
  async #register(g: GateIdentityInput): Promise<StoredIdentity> {
    const run = this.#registering.then(async () => {
      const live = this.central !== undefined && this.central.store.db.open ? this.central.store : null;
      const store = live ?? (await this.#openStore());
      try {
        return (await store.identities.get(g.gate)) ?? (await store.identities.register(g, 1));
      } finally {
        if (live === null) await store.close();
      }
    });
    this.#registering = run.catch(() => undefined);
    return run;
  }

  /** The gate's record; registers it in the central's database the first time (as `subline provision` does) and lets it onto the broker. */
  async provisioning(gate: string, over: Partial<ProvisioningRecord> = {}): Promise<ProvisioningRecord> {
    const line = over.line ?? 'first';
    const base = { gate, site: 'futian', line, direction: 'in', lane: 'person', list: 'main', ...over } as const;
    let id = this.#identities.get(gate);
    if (id === undefined) {
      const identity = await this.#register({ gate, site: base.site, list: base.list, line: base.line, direction: base.direction, lane: base.lane });
      id = { gateKey: deriveGateKey(this.keys.gateMasterKey, gate, identity.keyId), gateKeyId: identity.keyId };
      if (this.secure && this.kind === 'mosquitto') {
        const c = await (await this.#ensurePki()).issueGate(gate);
        id.tls = { cert: c.certDer, key: c.keyDer, ca: c.caDer };
      } else if (this.secure) {
        id.username = gate;
        id.password = new TextEncoder().encode(derivePassword(this.#secret, gate));
      }
      this.#identities.set(gate, id);
      // The broker learns the new gate (Mosquitto: its files rewritten and SIGHUP; aedes: the new ACL and passwords).
      if (this.secure && this.broker !== undefined) {
        const b = this.broker as SecuredBrokerHandle;
        if (this.kind === 'mosquitto') await this.#writeMosquittoConfig();
        await b.reload(this.kind === 'aedes' ? this.#security() : undefined);
      }
    }
    return {
      ...base, topicRoot: 'subline', broker: this.broker.url,
      trustedKeys: [this.keys.publicKey], deploymentKey: this.keys.deploymentKey, ...id, journalEpoch: 1, policy: DEFAULT_POLICY[line], passbackSeconds: 0, ...over,
    };
  }

  async startGate(gate: string, over: Partial<ProvisioningRecord> = {}, flash?: NorFlash): Promise<NodeGate> {
    const g = new NodeGate({ provisioning: await this.provisioning(gate, over), crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50, ...(flash !== undefined ? { flash } : {}) });
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
export async function assertEventsExactlyOnce(f: Fleet, g: NodeGate): Promise<number> {
  const j = g.gate.journal;
  const rows = await f.central.events.export(g.gate.id, j.epoch);
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

