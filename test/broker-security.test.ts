// The locked-down brokers (issue 13), on a real Mosquitto started from the
// configuration `subline broker config` writes, and on the embedded aedes
// with the same rules (host-sim/broker-acl.ts). Attacks come from (a) no
// credentials, (b) gate g-a's certificate acting as other gates and as the
// central, (c) an operator's certificate. Brokers differ in how they refuse
// (Mosquitto acknowledges a denied publish and drops it, aedes closes the
// connection; Mosquitto grants any subscription and filters deliveries), so
// every check is on the receiving side: legitimate subscribers see the
// legitimate traffic and nothing of the attacker's, and an attacker's
// subscription delivers nothing it may not read.
// TLS: another CA, an expired certificate, a revoked one after reload, no
// certificate and plaintext on the TLS port are refused.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { derivePassword, findMosquitto, startEmbeddedBroker, startMosquitto, type SecuredBrokerHandle } from '../host-sim/broker.js';
import { aclOfData, mosquittoPasswordEntry, readBrokerPasswords, writeBrokerConfig } from '../host-sim/broker-config.js';
import type { BrokerAcl } from '../host-sim/broker-acl.js';
import { messageSizeLimit } from '../host-sim/broker-acl.js';
import { openCentralStore, type CentralStore } from '../host-sim/central/store/open-store.js';
import { CENTRAL_IDENTITY, DeploymentPki, operatorIdentity } from '../host-sim/pki/deployment-pki.js';
import { Topics } from '../protocol/topics.js';
import { runCli } from './helpers/cli.js';

const ROOT = 'park';
const T = new Topics(ROOT);
const pem = (der: Uint8Array, label: string) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----\n`;

interface Creds {
  readonly id: string;
  readonly cert: string;
  readonly key: string;
}

interface Deployment {
  readonly data: string;
  readonly pki: DeploymentPki;
  readonly ca: string;
  readonly central: Creds;
  readonly operator: Creds;
  readonly expired: Creds;
  readonly stranger: Creds;
  readonly gates: Record<'g-a' | 'g-b' | 'g-c', Creds>;
  readonly dirs: string[];
}

const dirs: string[] = [];
const temp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

/** The central's database of a data directory (created the first time), as `subline provision` opens it. */
const openData = (data: string): Promise<CentralStore> => openCentralStore(join(data, 'central.db'), { create: true });

/** Registers a gate in the data directory's database (what `subline provision` does to it). */
async function provision(data: string, gate: string, list = 'main'): Promise<void> {
  const store = await openData(data);
  try {
    await store.identities.register({ gate, site: 'sz', list, line: 'first', direction: 'in', lane: 'person' }, 1);
  } finally {
    await store.close();
  }
}

// One deployment for both brokers: gates g-a and g-c on list main, g-b on goods.
let deployment: Promise<Deployment> | null = null;
function deploy(): Promise<Deployment> {
  deployment ??= (async () => {
    const data = temp('subline-broker-data-');
    const pki = await DeploymentPki.create(join(data, 'pki'));
    const gates = {} as Record<'g-a' | 'g-b' | 'g-c', Creds>;
    for (const [id, list] of [['g-a', 'main'], ['g-b', 'goods'], ['g-c', 'main']] as const) {
      await provision(data, id, list);
      const c = await pki.issueGate(id);
      gates[id] = { id, cert: pem(c.certDer, 'CERTIFICATE'), key: pem(c.keyDer, 'PRIVATE KEY') };
    }
    const op = await pki.issueOperator('alice');
    const old = await pki.issueOperator('old', { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const other = await DeploymentPki.create(temp('subline-broker-other-'));
    const s = await other.issueGate('g-a');
    return {
      data,
      pki,
      ca: pki.caPem,
      central: { id: CENTRAL_IDENTITY, cert: readFileSync(join(pki.dir, 'central.crt.pem'), 'utf8'), key: readFileSync(join(pki.dir, 'central.key.pem'), 'utf8') },
      operator: { id: operatorIdentity('alice'), cert: op.cert, key: op.key },
      expired: { id: operatorIdentity('old'), cert: old.cert, key: old.key },
      stranger: { id: 'g-a', cert: pem(s.certDer, 'CERTIFICATE'), key: pem(s.keyDer, 'PRIVATE KEY') },
      gates,
      dirs,
    };
  })();
  return deployment;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(a !== null && typeof a !== 'string' ? a.port : 0));
    });
  });
}

// ---------------------------------------------------------------- the two brokers

interface Broker {
  readonly handle: SecuredBrokerHandle;
  /** After a change in the registry or the PKI: what an operator does (config again + SIGHUP for Mosquitto; reload for aedes). */
  refresh(): Promise<void>;
}

async function mosquittoBroker(d: Deployment): Promise<Broker> {
  if (findMosquitto() === null) throw new Error('mosquitto is not installed: apt-get install -y mosquitto');
  const out = temp('subline-broker-conf-');
  const config = async () => writeBrokerConfig({ data: d.data, out, port: await freePort(), tlsPort: await freePort(), host: '127.0.0.1', topicRoot: ROOT });
  await config();
  const handle = await startMosquitto({ configDir: out });
  const summary = JSON.parse(readFileSync(join(out, 'subline-broker.json'), 'utf8')) as { tls: { port: number }; password: { port: number } };
  return {
    handle,
    async refresh() {
      // Same ports: a reload keeps the listeners.
      await writeBrokerConfig({ data: d.data, out, port: summary.password.port, tlsPort: summary.tls.port, host: '127.0.0.1', topicRoot: ROOT });
      await handle.reload();
    },
  };
}

async function aedesBroker(d: Deployment): Promise<Broker> {
  // Passwords come from broker config (written once, kept on re-runs).
  await writeBrokerConfig({ data: d.data, out: temp('subline-broker-conf-'), port: 1, tlsPort: 2, topicRoot: ROOT });
  const acl: BrokerAcl = await aclOfData(d.data, ROOT);
  const handle = await startEmbeddedBroker({ security: { acl, tls: d.pki.serverFiles(), passwords: readBrokerPasswords(d.data) } });
  return {
    handle,
    async refresh() {
      await handle.reload({ acl: await aclOfData(d.data, ROOT), passwords: readBrokerPasswords(d.data) });
    },
  };
}

// ---------------------------------------------------------------- clients

let seq = 0;
function tlsOptions(d: Deployment, c: Creds | null, extra: IClientOptions = {}): IClientOptions {
  const gate = c !== null && !c.id.includes('.');
  return { ca: d.ca, ...(c !== null ? { cert: c.cert, key: c.key } : {}), clientId: gate ? c.id : `t-${process.pid}-${++seq}`, ...extra };
}

/** Connected, or rejected with why not (5 s at most). */
function connectMqtt(url: string, options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, clean: true, ...options });
    const fail = (why: string) => {
      c.end(true);
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('timeout'), 6000);
    c.once('connect', () => {
      clearTimeout(timer);
      c.on('error', () => undefined);
      resolve(c);
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      fail(`error: ${e.message}`);
    });
    c.once('close', () => {
      clearTimeout(timer);
      fail('closed');
    });
  });
}

async function refusedConnect(url: string, options: IClientOptions, what: string): Promise<void> {
  let c: MqttClient | null = null;
  try {
    c = await connectMqtt(url, options);
  } catch {
    return;
  }
  await c.endAsync(true);
  assert.unreachable(`${what}: the broker accepted the connection`);
}

interface Seen {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
}

/** A subscriber that records what it receives. */
class Watcher {
  readonly seen: Seen[] = [];
  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => this.seen.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }));
  }

  static async open(url: string, options: IClientOptions, filters: readonly string[]): Promise<Watcher> {
    const w = new Watcher(await connectMqtt(url, options));
    await w.client.subscribeAsync([...filters], { qos: 1 });
    return w;
  }

  async waitFor(topic: string, payload: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.seen.some((m) => m.topic === topic && m.payload === payload)) {
      if (Date.now() > deadline) assert.unreachable(`never received ${payload} on ${topic} (saw ${this.seen.map((m) => `${m.topic}=${m.payload}`).join(', ') || 'nothing'})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  evil(): Seen[] {
    return this.seen.filter((m) => m.payload.includes('EVIL') || m.payload === '');
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

/** One publish on a fresh connection (aedes closes it on a denied publish): resolves when acknowledged, refused or closed. */
async function attempt(url: string, options: IClientOptions, topic: string, payload: string, retain = false): Promise<void> {
  let c: MqttClient;
  try {
    c = await connectMqtt(url, options);
  } catch {
    return; // not even connected
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    c.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    c.publish(topic, payload, { qos: 1, retain }, () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await c.endAsync(true);
}

const publish = (c: MqttClient, topic: string, payload: string, retain = false) => c.publishAsync(topic, payload, { qos: 1, retain });

// ---------------------------------------------------------------- the suites

for (const kind of ['mosquitto', 'aedes'] as const) {
  const t = suite(`broker security (${kind})`);
  let d: Deployment;
  let b: Broker;
  // Observers: the central (every uplink, every head), gates g-b and g-c, the operator.
  let central: Watcher;
  let gb: Watcher;
  let gc: Watcher;
  let op: Watcher;

  t.before(async () => {
    d = await deploy();
    b = kind === 'mosquitto' ? await mosquittoBroker(d) : await aedesBroker(d);
    const url = b.handle.tlsUrl as string;
    central = await Watcher.open(url, tlsOptions(d, d.central), [...(['status', 'events', 'sync', 'cmdres'] as const).map((k) => T.allGates(k)), T.allLists('head'), T.allLists('delta')]);
    gb = await Watcher.open(url, tlsOptions(d, d.gates['g-b']), [T.gate('g-b', 'ack'), T.gate('g-b', 'data'), T.gate('g-b', 'cmd'), T.list('goods', 'head'), T.list('goods', 'delta')]);
    gc = await Watcher.open(url, tlsOptions(d, d.gates['g-c']), [T.gate('g-c', 'ack'), T.gate('g-c', 'data'), T.gate('g-c', 'cmd'), T.list('main', 'head'), T.list('main', 'delta')]);
    op = await Watcher.open(url, tlsOptions(d, d.operator), [T.allGates('cmdres'), T.allGates('status')]);
    // What is retained before the attacks: the heads and g-b's status.
    await publish(central.client, T.list('main', 'head'), 'HEAD-main', true);
    await publish(central.client, T.list('goods', 'head'), 'HEAD-goods', true);
    await publish(gb.client, T.gate('g-b', 'status'), 'STATUS-b', true);
    await gc.waitFor(T.list('main', 'head'), 'HEAD-main');
    await gb.waitFor(T.list('goods', 'head'), 'HEAD-goods');
    await central.waitFor(T.gate('g-b', 'status'), 'STATUS-b');
  });

  t.after(async () => {
    for (const w of [central, gb, gc, op]) await w?.close().catch(() => undefined);
    await b?.handle.close();
  });

  /** Legitimate traffic after the attacks, on every observed path; then nothing of the attacker's may have arrived. */
  async function fenceAndCheck(tag: string): Promise<void> {
    const f = `FENCE-${tag}`;
    await publish(central.client, T.gate('g-b', 'cmd'), f);
    await publish(central.client, T.gate('g-c', 'data'), f);
    await publish(central.client, T.list('main', 'delta'), f);
    await publish(central.client, T.list('goods', 'delta'), f);
    await publish(gb.client, T.gate('g-b', 'events'), f);
    await publish(gc.client, T.gate('g-c', 'cmdres'), f);
    await gb.waitFor(T.gate('g-b', 'cmd'), f);
    await gc.waitFor(T.gate('g-c', 'data'), f);
    await gc.waitFor(T.list('main', 'delta'), f);
    await gb.waitFor(T.list('goods', 'delta'), f);
    await central.waitFor(T.gate('g-b', 'events'), f);
    await op.waitFor(T.gate('g-c', 'cmdres'), f);
    for (const [name, w] of [['central', central], ['g-b', gb], ['g-c', gc], ['operator', op]] as const) {
      assert.equal(w.evil(), [], `${tag}: ${name} received the attacker's messages`);
    }
    // The retained messages are intact for a new subscriber (it ignores nothing here: only the real ones may be there).
    const fresh = await Watcher.open(b.handle.tlsUrl as string, tlsOptions(d, d.central), [T.list('main', 'head'), T.list('goods', 'head'), T.gate('g-b', 'status')]);
    try {
      await fresh.waitFor(T.list('main', 'head'), 'HEAD-main');
      await fresh.waitFor(T.list('goods', 'head'), 'HEAD-goods');
      await fresh.waitFor(T.gate('g-b', 'status'), 'STATUS-b');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(fresh.evil(), [], `${tag}: a retained message was replaced or cleared`);
    } finally {
      await fresh.close();
    }
  }

  t('legitimate flows: heads, deltas, acks, data and commands down; status, events, sync and answers up', async () => {
    const url = b.handle.tlsUrl as string;
    const ga = await Watcher.open(url, tlsOptions(d, d.gates['g-a']), [T.gate('g-a', 'ack'), T.gate('g-a', 'data'), T.gate('g-a', 'cmd'), T.list('main', 'head'), T.list('main', 'delta')]);
    try {
      await ga.waitFor(T.list('main', 'head'), 'HEAD-main'); // retained
      for (const k of ['ack', 'data', 'cmd'] as const) await publish(central.client, T.gate('g-a', k), `OK-${k}`);
      await publish(central.client, T.list('main', 'delta'), 'OK-delta');
      await publish(op.client, T.gate('g-a', 'cmd'), 'OK-opcmd');
      for (const k of ['ack', 'data', 'cmd'] as const) await ga.waitFor(T.gate('g-a', k), `OK-${k}`);
      await ga.waitFor(T.list('main', 'delta'), 'OK-delta');
      await ga.waitFor(T.gate('g-a', 'cmd'), 'OK-opcmd');
      for (const k of ['events', 'sync', 'cmdres'] as const) await publish(ga.client, T.gate('g-a', k), `UP-${k}`);
      await publish(ga.client, T.gate('g-a', 'status'), 'UP-status', true);
      for (const k of ['events', 'sync', 'cmdres', 'status'] as const) await central.waitFor(T.gate('g-a', k), `UP-${k}`);
      await op.waitFor(T.gate('g-a', 'cmdres'), 'UP-cmdres');
      await op.waitFor(T.gate('g-a', 'status'), 'UP-status');
    } finally {
      await ga.close();
    }
    // The password listener (loopback): the central and the operator with the generated passwords.
    const pw = readBrokerPasswords(d.data);
    const viaPw = await connectMqtt(b.handle.passwordUrl as string, { username: CENTRAL_IDENTITY, password: pw.get(CENTRAL_IDENTITY), clientId: `t-pw-${++seq}` });
    await publish(viaPw, T.gate('g-b', 'ack'), 'OK-pw');
    await gb.waitFor(T.gate('g-b', 'ack'), 'OK-pw');
    await viaPw.endAsync(true);
    const opPw = await connectMqtt(b.handle.passwordUrl as string, { username: d.operator.id, password: pw.get(d.operator.id), clientId: `t-pw-${++seq}` });
    await opPw.endAsync(true);
  });

  t('(a) no credentials: refused on both listeners', async () => {
    await refusedConnect(b.handle.tlsUrl as string, tlsOptions(d, null), 'TLS without a client certificate');
    const url = b.handle.passwordUrl as string;
    await refusedConnect(url, { clientId: 'anon' }, 'no username');
    await refusedConnect(url, { clientId: 'anon', username: CENTRAL_IDENTITY, password: 'wrong' }, 'a wrong password');
    await refusedConnect(url, { clientId: 'g-b', username: 'g-b', password: 'anything' }, 'a gate on the password listener');
    await refusedConnect(url, { clientId: 'anon', username: 'stranger', password: '' }, 'an unknown user');
    await fenceAndCheck('anonymous');
  });

  t("(b) gate g-a's certificate acting as other gates and as the central: nothing delivered", async () => {
    const url = b.handle.tlsUrl as string;
    const ga = tlsOptions(d, d.gates['g-a']);
    for (const k of ['status', 'events', 'sync', 'cmdres', 'ack', 'data', 'cmd'] as const) await attempt(url, ga, T.gate('g-b', k), `EVIL-${k}`);
    await attempt(url, ga, T.gate('g-c', 'cmd'), 'EVIL-cmd-c');
    for (const l of ['main', 'goods']) {
      await attempt(url, ga, T.list(l, 'head'), `EVIL-head-${l}`, true);
      await attempt(url, ga, T.list(l, 'delta'), `EVIL-delta-${l}`);
      await attempt(url, ga, T.list(l, 'head'), '', true); // clear the head
    }
    await attempt(url, ga, T.gate('g-b', 'status'), '', true); // clear another gate's status
    await fenceAndCheck('gate');
  });

  t("(b) gate g-a subscribing to another gate's cmd and data, another list, wildcards: nothing it may not read", async () => {
    const url = b.handle.tlsUrl as string;
    const spy = new Watcher(await connectMqtt(url, tlsOptions(d, d.gates['g-a'])));
    try {
      for (const f of [T.gate('g-b', 'cmd'), T.gate('g-b', 'data'), T.allGates('cmd'), T.allGates('data'), T.list('goods', 'head'), T.allGates('events'), '#', `${ROOT}/#`]) {
        await spy.client.subscribeAsync(f, { qos: 1 }).catch(() => undefined);
      }
      await publish(central.client, T.gate('g-b', 'cmd'), 'SECRET-cmd');
      await publish(central.client, T.gate('g-b', 'data'), 'SECRET-data');
      await publish(gb.client, T.gate('g-b', 'events'), 'SECRET-events');
      await gb.waitFor(T.gate('g-b', 'cmd'), 'SECRET-cmd');
      await gb.waitFor(T.gate('g-b', 'data'), 'SECRET-data');
      await central.waitFor(T.gate('g-b', 'events'), 'SECRET-events');
      await new Promise((r) => setTimeout(r, 200));
      const acl = await aclOfData(d.data, ROOT);
      assert.equal(spy.seen.filter((m) => !acl.canRead('g-a', m.topic)), [], 'g-a received what it may not read');
      assert.not.ok(spy.seen.some((m) => m.payload.startsWith('SECRET')));
    } finally {
      await spy.close();
    }
  });

  t("(c) an operator's certificate: no heads, acks, data or gate uplinks; commands only", async () => {
    const url = b.handle.tlsUrl as string;
    const o = tlsOptions(d, d.operator);
    for (const k of ['ack', 'data', 'status', 'events', 'sync', 'cmdres'] as const) await attempt(url, o, T.gate('g-b', k), `EVIL-op-${k}`);
    await attempt(url, o, T.list('goods', 'head'), 'EVIL-op-head', true);
    await attempt(url, o, T.list('main', 'delta'), 'EVIL-op-delta');
    await attempt(url, o, T.list('main', 'head'), '', true);
    await attempt(url, o, T.gate('g-b', 'cmd'), 'EVIL-op-retained-cmd', true); // a command, but retained (aedes refuses; Mosquitto cannot tell)
    const spy = new Watcher(await connectMqtt(url, tlsOptions(d, d.operator)));
    try {
      for (const f of [T.gate('g-b', 'cmd'), T.gate('g-b', 'data'), T.list('goods', 'head'), T.allGates('events')]) await spy.client.subscribeAsync(f, { qos: 1 }).catch(() => undefined);
      await publish(central.client, T.gate('g-b', 'data'), 'SECRET-op-data');
      await gb.waitFor(T.gate('g-b', 'data'), 'SECRET-op-data');
      await new Promise((r) => setTimeout(r, 200));
      const acl = await aclOfData(d.data, ROOT);
      assert.equal(spy.seen.filter((m) => !acl.canRead(d.operator.id, m.topic)), [], 'the operator received what it may not read');
    } finally {
      await spy.close();
    }
    if (kind === 'mosquitto') gb.seen.splice(0, gb.seen.length, ...gb.seen.filter((m) => m.payload !== 'EVIL-op-retained-cmd')); // see above: a retained command is delivered on Mosquitto
    await fenceAndCheck('operator');
  });

  t('the message size limit: a larger message is not delivered', async () => {
    const big = 'x'.repeat(messageSizeLimit() + 1);
    await attempt(b.handle.tlsUrl as string, tlsOptions(d, d.central), T.gate('g-b', 'data'), `EVIL${big}`);
    await publish(central.client, T.gate('g-b', 'data'), 'x'.repeat(messageSizeLimit()));
    await gb.waitFor(T.gate('g-b', 'data'), 'x'.repeat(messageSizeLimit()));
    assert.equal(gb.evil(), []);
  });

  t('TLS: another CA, an expired certificate, plaintext on the TLS port: refused', async () => {
    const url = b.handle.tlsUrl as string;
    await refusedConnect(url, tlsOptions(d, d.stranger), "a certificate of another CA (with a gate's name)");
    await refusedConnect(url, tlsOptions(d, d.expired), 'an expired certificate');
    await refusedConnect(url.replace('mqtts://', 'mqtt://'), { clientId: 'plain' }, 'plaintext MQTT on the TLS port');
    await refusedConnect(url, { ...tlsOptions(d, d.central), ca: readFileSync(join(d.pki.dir, 'central.crt.pem'), 'utf8') }, 'a client that does not trust the broker (wrong CA on its side)');
  });

  t('TLS: a revoked certificate is refused after the broker reloads; the others are not', async () => {
    const url = b.handle.tlsUrl as string;
    // A gate of its own per broker (the deployment is shared): provisioned, then revoked.
    const id = `r-${kind}`;
    await provision(d.data, id);
    const issued = await d.pki.issueGate(id);
    const gr = { id, cert: pem(issued.certDer, 'CERTIFICATE'), key: pem(issued.keyDer, 'PRIVATE KEY') };
    await b.refresh();
    (await connectMqtt(url, tlsOptions(d, gr))).end(true);
    assert.is(await d.pki.revoke(id), 1);
    await b.refresh();
    await refusedConnect(url, tlsOptions(d, gr), 'a revoked certificate');
    (await connectMqtt(url, tlsOptions(d, d.gates['g-a']))).end(true);
  });

  if (kind === 'aedes') {
    t("aedes: a gate's client id is its own; nobody takes a gate's session; reload closes a revoked live connection", async () => {
      const url = b.handle.tlsUrl as string;
      await refusedConnect(url, tlsOptions(d, d.gates['g-a'], { clientId: 'g-b' }), "g-a with g-b's client id");
      await refusedConnect(url, tlsOptions(d, d.operator, { clientId: 'g-b' }), "an operator with g-b's client id");
      assert.ok(gb.client.connected, 'g-b is still connected');
      // A gate decommissioned and revoked while connected is cut off at reload.
      await provision(d.data, 'g-live');
      const c = await d.pki.issueGate('g-live');
      await b.refresh();
      const live = await connectMqtt(url, tlsOptions(d, { id: 'g-live', cert: pem(c.certDer, 'CERTIFICATE'), key: pem(c.keyDer, 'PRIVATE KEY') }));
      const closed = new Promise<void>((r) => live.once('close', () => r()));
      const store = await openData(d.data);
      try {
        assert.ok(await store.identities.decommission('g-live', 2));
      } finally {
        await store.close();
      }
      await d.pki.revoke('g-live');
      await b.refresh();
      await closed;
      live.end(true);
    });

    t('aedes with derived passwords (the one-process simulator): the same rules, the identity from the username', async () => {
      const secret = new Uint8Array(32).fill(7);
      const acl = await aclOfData(d.data, ROOT);
      const sim = await startEmbeddedBroker({ security: { acl, passwords: new Map(acl.identities().map((i) => [i, derivePassword(secret, i)])) } });
      try {
        assert.is(sim.url, sim.passwordUrl);
        assert.is(sim.tlsUrl, undefined);
        const as = (id: string, clientId = id) => ({ username: id, password: derivePassword(secret, id), clientId });
        const watch = await Watcher.open(sim.url, as(CENTRAL_IDENTITY, 'central'), [T.allGates('status')]);
        const ga = await connectMqtt(sim.url, as('g-a'));
        await publish(ga, T.gate('g-a', 'status'), 'UP-sim', true);
        await watch.waitFor(T.gate('g-a', 'status'), 'UP-sim');
        await ga.endAsync(true);
        await attempt(sim.url, as('g-a'), T.gate('g-b', 'status'), 'EVIL-sim');
        await refusedConnect(sim.url, { username: 'g-a', password: derivePassword(new Uint8Array(32), 'g-a'), clientId: 'g-a' }, 'a password derived from another secret');
        await refusedConnect(sim.url, { username: 'g-a', password: derivePassword(secret, 'g-b'), clientId: 'g-a' }, "g-b's password for g-a");
        await publish(watch.client, T.gate('g-b', 'ack'), 'x'); // the central may not read acks: nothing comes back
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(watch.evil(), []);
        await watch.close();
      } finally {
        await sim.close();
      }
    });
  }

  t.run();
}

// ---------------------------------------------------------------- subline broker config

const c = suite('subline broker config');

c('writes a complete configuration; keys and passwords 0600; re-running keeps passwords and follows the registry', async () => {
  const d = await deploy();
  const out = temp('subline-broker-cli-');
  const r = await runCli(['broker', 'config', '--data', d.data, '--out', out, '--port', '11883', '--tls-port', '18883', '--topic-root', ROOT, '--json']);
  assert.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { conf: string; gates: number; operators: string[]; tls: { port: number; host: string | null }; password: { port: number }; messageSizeLimit: number; user: string };
  assert.is(s.tls.port, 18883);
  assert.is(s.tls.host, null);
  assert.is(s.password.port, 11883);
  assert.equal(s.operators.sort(), [operatorIdentity('alice'), operatorIdentity('old')]);
  assert.is(s.messageSizeLimit, messageSizeLimit());
  const conf = readFileSync(join(out, 'mosquitto.conf'), 'utf8');
  for (const line of ['per_listener_settings true', 'listener 18883', 'listener 11883 127.0.0.1', 'require_certificate true', 'use_identity_as_username true', 'tls_version tlsv1.2', `crlfile ${join(out, 'crl.pem')}`, `acl_file ${join(out, 'acl')}`, `password_file ${join(out, 'passwords')}`, `message_size_limit ${messageSizeLimit()}`, `user ${s.user}`]) {
    assert.ok(conf.split('\n').includes(line), `mosquitto.conf has '${line}'`);
  }
  assert.is(conf.split('\n').filter((l) => l === 'allow_anonymous false').length, 2, 'no anonymous access on either listener');
  assert.not.ok(/allow_anonymous true/.test(conf));
  for (const f of ['broker.key.pem', 'passwords']) assert.is(statSync(join(out, f)).mode & 0o777, 0o600, f);
  assert.is(statSync(join(d.data, 'pki', 'broker-passwords.json')).mode & 0o777, 0o600);
  const pw = readBrokerPasswords(d.data);
  assert.ok(pw.has(CENTRAL_IDENTITY) && pw.has(operatorIdentity('alice')));

  // Again after provisioning a gate: same passwords, the new gate in the ACL.
  await provision(d.data, 'g-new');
  const again = await runCli(['broker', 'config', '--data', d.data, '--out', out, '--topic-root', ROOT]);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /wrote .*mosquitto\.conf/);
  assert.equal(readBrokerPasswords(d.data), pw, 'passwords are kept');
  assert.ok(readFileSync(join(out, 'acl'), 'utf8').includes(`user g-new\ntopic write ${T.gate('g-new', 'status')}`));
});

c('as root for a folder owned by another user: Mosquitto switches to that user and can read everything', async () => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return; // only meaningful as root
  const d = await deploy();
  const parent = temp('subline-broker-root-');
  chmodSync(parent, 0o755);
  const out = join(parent, 'conf');
  mkdirSync(out);
  chownSync(out, 65534, 65534); // nobody
  await writeBrokerConfig({ data: d.data, out, port: await freePort(), tlsPort: await freePort(), host: '127.0.0.1', topicRoot: ROOT });
  assert.match(readFileSync(join(out, 'mosquitto.conf'), 'utf8'), /^user \S+$/m);
  const m = await startMosquitto({ configDir: out });
  try {
    (await connectMqtt(m.tlsUrl as string, tlsOptions(d, d.central))).end(true);
  } finally {
    await m.close();
  }
});

c('bad input exits 2; a data directory without database or PKI exits 3; --help exits 0', async () => {
  const d = await deploy();
  const empty = temp('subline-broker-empty-');
  const cases: [string[], number, RegExp][] = [
    [['--data', empty, '--out', join(empty, 'o')], 3, /no database/],
    [['--data', d.data, '--out', join(empty, 'o'), '--port', '0'], 2, /--port/],
    [['--data', d.data, '--out', join(empty, 'o'), '--tls-port', 'x'], 2, /--tls-port/],
    [['--data', d.data, '--out', join(empty, 'o'), '--port', '9000', '--tls-port', '9000'], 2, /both 9000/],
    [['--data', d.data, '--out', join(empty, 'o'), '--topic-root', 'a/+'], 2, /--topic-root/],
    [['--data', d.data, '--out', join(empty, 'o'), '--host', 'bad host'], 2, /--host/],
    [['--data', d.data, '--out', d.data], 2, /not empty and was not written/],
    [['--data', d.data], 2, /--out/],
  ];
  for (const [args, code, re] of cases) {
    const r = await runCli(['broker', 'config', ...args]);
    assert.is(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const noPki = temp('subline-broker-nopki-');
  await (await openData(noPki)).close(); // a central's database, no PKI
  const r = await runCli(['broker', 'config', '--data', noPki, '--out', join(noPki, 'o')]);
  assert.is(r.code, 3);
  assert.match(r.stderr, /no deployment PKI/);
  const h = await runCli(['broker', 'config', '--help']);
  assert.is(h.code, 0);
  assert.match(h.stdout, /--tls-port/);
});

c("the password file's $7$ entries are mosquitto_passwd's format (cross-checked with the real tool)", () => {
  const dir = temp('subline-broker-pw-');
  const file = join(dir, 'pw');
  execFileSync('mosquitto_passwd', ['-c', '-b', file, 'subline.central', 's3cret'], { stdio: 'ignore' });
  const line = readFileSync(file, 'utf8').trim();
  const m = /^subline\.central:\$7\$(\d+)\$([^$]+)\$([^$]+)$/.exec(line);
  assert.ok(m !== null, line);
  const salt = Buffer.from(m[2] as string, 'base64');
  assert.is(mosquittoPasswordEntry('subline.central', 's3cret', salt), line);
  assert.is.not(mosquittoPasswordEntry('subline.central', 'other', salt), line);
});

c.after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

c.run();
