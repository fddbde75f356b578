// The CLI against a broker, on both store engines: `central serve` with a Node gate provisioned
// by `subline provision` (presence, event export, changes reaching the gate, signed commands
// exactly once, replay, expiry, forgeries), and the same flow on a locked-down broker (TLS
// client certificates, ACL). See cli.test.ts for the context.


import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { CommandCode, createRecord, decodeRecord, EventType, RECORD_BYTES } from '../protocol/event-record.js';
import { encodeEnvelope, KeyRing, openSigned, sealSigned } from '../protocol/envelope.js';
import { nobleCrypto } from '../protocol/crypto-noble.js';
import { bytesEqual, fromHex } from '../protocol/hex.js';
import { Command, CommandResult, Head, encodeCommand, type CommandResultMessage } from '../protocol/messages.js';
import { openMaced } from '../protocol/mac-envelope.js';
import { decodeProvisioning, type ProvisioningRecord } from '../protocol/provisioning.js';
import { Topics } from '../protocol/topics.js';
import { startEmbeddedBroker, type BrokerHandle } from '../host-sim/broker.js';
import { Central } from '../host-sim/central/central.js';
import { DeploymentPki } from '../host-sim/pki/deployment-pki.js';
import { aclOfData } from '../host-sim/broker-config.js';
import { generateKeys, readKeyFile, type CentralKeys } from '../host-sim/central/keys.js';
import { NodeGate } from '../host-sim/node-gate.js';
import { nodeCrypto } from '../host-sim/node-crypto.js';
import { FAST_SYNC, waitFor } from './helpers/fleet.js';
import { tempDir, type CliProcess } from './helpers/cli.js';
import { engines, engineSuites, type Engine } from './helpers/store-engines.js';

import { CARD, context, populated, withStore, type Ctx } from './helpers/cli-context.js';


function journalRecords(g: NodeGate): { type: number; reason: number }[] {
  const j = g.gate.journal;
  const buf = new Uint8Array(RECORD_BYTES * 64);
  const out: { type: number; reason: number }[] = [];
  const rec = createRecord();
  for (let from = 1; from <= j.lastSeq; from += 64) {
    const n = j.readBatch(from, 64, buf).count;
    for (let k = 0; k < n; k++) if (decodeRecord(buf, k * RECORD_BYTES, from + k, j.epoch, rec) === 0) out.push({ type: rec.type, reason: rec.reason });
  }
  return out;
}

const openCommands = (g: NodeGate): number => journalRecords(g).filter((r) => r.type === EventType.command && r.reason === CommandCode.open_once).length;

/** Collects every message on the given topics. */
async function listen(url: string, topics: string[]): Promise<{ client: MqttClient; messages: { topic: string; payload: Uint8Array }[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const messages: { topic: string; payload: Uint8Array }[] = [];
  client.on('message', (topic, payload) => messages.push({ topic, payload: new Uint8Array(payload) }));
  await client.subscribeAsync(topics, { qos: 1 });
  return { client, messages };
}

interface Live {
  data: string;
  broker: BrokerHandle;
  keys: CentralKeys;
  ring: KeyRing;
  serve: CliProcess | null;
  gate: NodeGate | null;
  record: ProvisioningRecord | null;
  watch: { client: MqttClient; messages: { topic: string; payload: Uint8Array }[] } | null;
  opens: number;
  openRecords: number;
  clients: MqttClient[];
}

const GATE = 'fl-in-t01';
const topics = new Topics('subline');

engineSuites('cli central serve, gates, events and gate commands against a broker', (live, engine) => liveSuite(live, context(engine)));

function liveSuite(live: Test, c: Ctx): void {
  const { cli } = c;

  /** Command results on the wire that open with the gate's own key (MACed for their topic). */
  function resultsFor(messages: { topic: string; payload: Uint8Array }[], nonce: Uint8Array): CommandResultMessage[] {
    const out: CommandResultMessage[] = [];
    const rec = L.record;
    if (rec === null) throw new Error('no gate record (an earlier test failed)');
    for (const m of messages) {
      if (!m.topic.endsWith('/cmdres')) continue;
      const r = openMaced(CommandResult, m.payload, m.topic, (kid) => (kid === rec.gateKeyId ? rec.gateKey : null), nodeCrypto);
      if (r.ok && bytesEqual(r.value.nonce, nonce)) out.push(r.value);
    }
    return out;
  }

  const L = {} as Live;
  const gateOf = (): NodeGate => {
    if (L.gate === null) throw new Error('no gate (an earlier test failed)');
    return L.gate;
  };

  live.before(async () => {
    L.data = await populated(c);
    L.broker = await startEmbeddedBroker({ port: 0 });
    L.keys = readKeyFile(join(L.data, 'keys.json'));
    L.ring = new KeyRing(nobleCrypto, [L.keys.publicKey]);
    L.serve = null;
    L.gate = null;
    L.record = null;
    L.watch = null;
    L.opens = 0;
    L.openRecords = 0;
    L.clients = [];
  });

  live.after(async () => {
    L.gate?.stop();
    await L.serve?.stop();
    for (const c of L.clients) await c.endAsync().catch(() => undefined);
    await L.broker?.close();
    if (L.data !== undefined) rmSync(L.data, { recursive: true, force: true });
  });

  live('central publish: the retained head and the pending deltas, once; exit 4 without a broker', async () => {
    const pub = await cli(['central', 'publish', '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(pub.stdout, /version 1\) and 1 delta\(s\)/);
    const probe = await startEmbeddedBroker({ port: 0 });
    await probe.close();
    const [again] = await Promise.all([cli(['central', 'publish', '--data', L.data, '--broker', L.broker.url], 0), cli(['central', 'publish', '--data', L.data, '--broker', probe.url, '--wait', '1'], 4, /no connection/)]);
    assert.match(again.stdout, /and 0 delta\(s\)/, 'nothing left to publish');
    const json = JSON.parse((await cli(['central', 'publish', '--data', L.data, '--broker', L.broker.url, '--json'], 0)).stdout) as Record<string, unknown>;
    assert.equal({ ...json, epoch: typeof json.epoch }, { list: 'main', epoch: 'number', version: 1, deltas: 0, firstDelta: null, broker: L.broker.url }, '--json: one object');
    const heads = await listen(L.broker.url, [topics.list('main', 'head')]);
    L.clients.push(heads.client);
    await waitFor('the retained head', () => heads.messages.length > 0, 5000);
    const head = openSigned(Head, heads.messages[0]!.payload, L.ring);
    assert.ok(head.ok && head.value.version === 1, 'retained head of version 1, signed with the central key');
  });

  live('central serve + a gate provisioned by `subline provision`: central gates lists it online', async () => {
    const recordFile = join(L.data, `${GATE}.cbor`);
    await cli(['provision', '--data', L.data, '--gate', GATE, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--broker', L.broker.url, '--out', recordFile], 0);
    const p = decodeProvisioning(new Uint8Array(readFileSync(recordFile)));
    if (!p.ok) throw new Error('provisioning record does not decode');
    L.record = p.value;
    L.serve = await c.start(['central', 'serve', '--data', L.data, '--broker', L.broker.url, '--head-interval', '2', '--poll', '0.2']);
    await L.serve.waitForOutput(/central: serving list main \(epoch \d+, version 1\)/);
    // Where serve keeps the data: the PostgreSQL database SUBLINE_DB names, or DATA/central.db.
    assert.ok(L.serve.stdout().includes(c.pg ? `from PostgreSQL ${await c.target(L.data)}` : `from ${await c.target(L.data)}`), L.serve.stdout());
    L.gate = new NodeGate({ provisioning: p.value, crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50 });
    L.gate.start();
    const g = L.gate;
    await waitFor('the gate holds version 1', () => g.gate.store.version === 1);
    await withStore(c, L.data, (s) => waitFor('presence stored', async () => (await s.state.gate(GATE))?.status.state === 'online', 10000));
    const [gj, table] = await Promise.all([cli(['central', 'gates', '--data', L.data, '--format', 'json'], 0), cli(['central', 'gates', '--data', L.data], 0)]);
    const listed = (JSON.parse(gj.stdout) as { gates: { gate: string; state: string; line: string; direction: string; lane: string; boot: number; conn: number; identity: { state: string } }[] }).gates;
    assert.is(listed.length, 1);
    assert.equal([listed[0]?.gate, listed[0]?.identity.state, listed[0]?.state, listed[0]?.boot, listed[0]?.conn, listed[0]?.line, listed[0]?.direction, listed[0]?.lane], [GATE, 'active', 'online', 1, 1, 'first', 'in', 'person']);
    assert.match(table.stdout, /^GATE\s+IDENTITY\s+STATE\s+BOOT\s+LINE\s+DIRECTION\s+LANE\s+WHITELIST\s+BACKLOG\s+REFUSED \(CENTRAL\/GATE\)\s+LAST SEEN$/m);
    assert.match(table.stdout, new RegExp(`^${GATE}\\s+active \\(key 1\\)\\s+online\\s+1\\s+first\\s+in\\s+person\\s+(main v\\d+|none)\\s+\\d+\\s+0/0\\s+\\d{4}-`, 'm'));
  });

  live('central events exports the gate\'s events after taps, decoded (JSON and CSV)', async () => {
    const g = gateOf();
    // The taps in a later second than the gate's boot, however fast the commands before ran: the --since filter of the next test needs events of two seconds.
    await new Promise((r) => setTimeout(r, 1010 - (Date.now() % 1000)));
    for (const n of [1, 2, 3, 1]) {
      g.gate.onRead({ kind: 'card', id: fromHex(CARD(n)), atMs: 0 });
      g.inputs.pulse('rotation');
    }
    g.gate.onRead({ kind: 'card', id: fromHex('0bad0bad'), atMs: 0 });
    await waitFor('every event acknowledged', () => g.gate.journal.acked === g.gate.journal.lastSeq && g.gate.journal.lastSeq >= 10);
    const csvFile = join(L.data, 'events.csv');
    const [ev] = await Promise.all([cli(['central', 'events', '--data', L.data, '--gate', GATE, '--format', 'json'], 0), cli(['central', 'events', '--data', L.data, '--format', 'csv', '--out', csvFile], 0)]);
    const events = JSON.parse(ev.stdout) as { gate: string; epoch: number; seq: number; time: string; type: string; reason: string; level: string; key: string; receivedAt: string }[];
    assert.is(events.length, g.gate.journal.lastSeq, 'every journaled record exported');
    assert.equal(events.map((e) => e.seq), events.map((_e, i) => i + 1));
    assert.is(events[0]?.type, 'boot');
    assert.is(events[0]?.epoch, L.record?.journalEpoch);
    const granted = events.filter((e) => e.type === 'decision_granted');
    assert.is(granted.length, 4);
    assert.equal(granted.map((e) => e.level), ['institution', 'individual', 'institution', 'institution']);
    assert.ok(granted.every((e) => /^[0-9a-f]{16}$/.test(e.key) && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(e.time)));
    assert.is(events.filter((e) => e.type === 'passage_completed').length, 4);
    assert.equal(events.filter((e) => e.type === 'decision_denied').map((e) => [e.reason, (e as unknown as { registry: string }).registry]), [['unknown_credential', 'never enrolled']]);
    const lines = readFileSync(csvFile, 'utf8').trim().split('\n');
    assert.is(lines[0], 'gate,epoch,seq,time,type,reason,level,key,clock_untrusted,received_at,registry,site,line,direction,subject,institution');
    assert.is(lines.length, events.length + 1);
    assert.match(lines[1] as string, new RegExp(`^${GATE},${L.record?.journalEpoch},1,[^,]+,boot,power_on,none,,0,[^,]+,,futian,first,in,,$`));
  });

  live('central events filters: by card (derived key), subject, reason, denied, type, site, time; table and JSON lines; bad filters exit 2', async () => {
    const base = ['central', 'events', '--data', L.data];
    const jsonl = async (args: string[]): Promise<{ seq: number; type: string; reason: string; subject: string; institution: number | null; site: string; key: string; time: string }[]> => {
      const r = await cli([...base, ...args, '--format', 'jsonl'], 0);
      return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as never);
    };
    const all = await jsonl([]);
    const [byCard, bySubject, unknown, denied, boots, elsewhere, later] = await Promise.all([
      jsonl(['--card', CARD(1)]), jsonl(['--subject', 'p-1']), jsonl(['--reason', 'unknown_credential']), jsonl(['--denied']), jsonl(['--type', 'boot']), jsonl(['--site', 'luohu']),
      jsonl(['--since', (all[all.length - 1] as { time: string }).time]),
    ]);
    const p1 = all.filter((e) => e.subject === 'p-1');
    assert.is(p1.length, 2, 'card 1 was tapped twice (a passage record carries no key)');
    assert.equal(byCard.map((e) => e.seq), p1.map((e) => e.seq), '--card: the key derived from the raw id');
    assert.equal(bySubject.map((e) => e.seq), p1.map((e) => e.seq));
    assert.ok(p1.every((e) => e.institution === 0), "p-1's institution, resolved at ingest");
    assert.equal(unknown.map((e) => e.type), ['decision_denied']);
    assert.equal(denied.map((e) => e.seq), unknown.map((e) => e.seq));
    assert.ok(boots.length >= 1 && boots.every((e) => e.type === 'boot'));
    assert.equal(elsewhere, [], 'no gate at that site');
    assert.ok(later.length >= 1 && later.length < all.length, '--since cuts by gate time');
    const table = await cli([...base, '--denied', '--format', 'table'], 0);
    assert.match(table.stdout, /^TIME +GATE +SEQ +TYPE +REASON +SUBJECT +KEY +SITE\n\S+ +fl-in-t01 +\d+ +decision_denied +unknown_credential +[0-9a-f]{16} +futian\n$/, table.stdout);
    assert.is((JSON.parse((await cli([...base, '--denied', '--json'], 0)).stdout) as unknown[]).length, 1, '--json is one array');
    assert.is((await jsonl(['--limit', '3'])).length, 3);
    await cli([...base, '--reason', 'nope'], 2, /--reason 'nope' is not a reason \(one of: .*revoked/);
    await cli([...base, '--type', 'nope'], 2, /--type 'nope' is not an event type/);
    await cli([...base, '--since', 'yesterday'], 2, /--since 'yesterday' must be a date/);
    await cli([...base, '--since', '2030-01-02', '--until', '2030-01-01'], 2, /--since is after --until/);
    await cli([...base, '--card', 'zz'], 2, /--card 'zz' must be hex digits/);
    await cli([...base, '--follow', '--format', 'json'], 2, /--format jsonl/);
    await cli([...base, '--limit', '0'], 2, /--limit/);
  });

  live('central events --follow prints events as the gate uploads them, one JSON line each, and ends on Ctrl-C', async () => {
    const g = gateOf();
    const f = await c.start(['central', 'events', '--data', L.data, '--follow', '--format', 'jsonl', '--poll', '0.1', '--gate', GATE]);
    try {
      await f.waitForOutput(/following the events stored in .*; Ctrl-C to stop/, 60000);
      await new Promise((r) => setTimeout(r, 300));
      assert.is(f.stdout(), '', 'nothing stored before it started');
      g.gate.onRead({ kind: 'card', id: fromHex(CARD(2)), atMs: 0 });
      g.inputs.pulse('rotation');
      g.gate.onRead({ kind: 'card', id: fromHex('0bad0bad'), atMs: 0 });
      await f.waitForOutput(/"reason":"unknown_credential"/, 20000);
      const lines = f.stdout().trim().split('\n').map((l) => JSON.parse(l) as { seq: number; type: string; subject: string });
      assert.equal(lines.map((e) => e.type), ['decision_granted', 'passage_completed', 'decision_denied']);
      assert.equal(lines.map((e) => e.subject), ['p-2', '', ''], 'a passage carries no key; an unknown card has no holder');
      assert.equal(lines.map((e) => e.seq), [lines[0]!.seq, lines[0]!.seq + 1, lines[0]!.seq + 2], 'each once, in order');
    } finally {
      f.child.kill('SIGINT');
      await new Promise((r) => f.child.once('close', r));
    }
    assert.is(f.child.exitCode, 0);
    assert.match(f.stderr(), /followed 3 event\(s\)/);
  });

  live('a change committed by the CLI reaches the gate through serve', async () => {
    const g = gateOf();
    await cli(['central', 'revoke', '--data', L.data, '--card', CARD(3)], 0);
    await waitFor('the gate follows the CLI change', () => g.gate.store.version === 2, 10000);
  });

  live('gate open: done, exactly one command record, the lane opens once; the same bytes again: refused/replayed', async () => {
    const g = gateOf();
    L.watch = await listen(L.broker.url, [topics.gate(GATE, 'cmd'), topics.gate(GATE, 'cmdres')]);
    L.clients.push(L.watch.client);
    const watch = L.watch;
    const set = g.outputs.set.bind(g.outputs);
    g.outputs.set = (output, on) => {
      if (output === 'relay' && on && !g.outputs.state.relay) L.opens++;
      return set(output, on);
    };
    L.openRecords = openCommands(g);
    const open = await cli(['gate', 'open', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(open.stdout, new RegExp(`gate ${GATE}: open done: opened \\(nonce [0-9a-f]{32}`));
    assert.is(openCommands(g) - L.openRecords, 1, 'exactly one command record');
    assert.is(L.opens, 1, 'the lane opened once');
    await waitFor('the command seen by the listener', () => watch.messages.some((m) => m.topic.endsWith('/cmd')), 3000);
    const sent = watch.messages.find((m) => m.topic.endsWith('/cmd'))!.payload;
    const cmd = openSigned(Command, sent, L.ring);
    if (!cmd.ok) throw new Error('the CLI sent a command that does not verify');
    assert.is(cmd.value.expires - cmd.value.issuedAt, 60);
    await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(sent), { qos: 1 });
    await waitFor('answer to the replay', () => resultsFor(watch.messages, cmd.value.nonce).length >= 2, 5000);
    assert.equal(resultsFor(watch.messages, cmd.value.nonce).map((r) => [r.status, r.reason]), [['done', 'opened'], ['refused', 'replayed']]);
    assert.is(openCommands(g) - L.openRecords, 1, 'the replay is not executed');
    assert.is(L.opens, 1);
  });

  live('expired commands are refused and reported (exit 3); forged and unsigned ones get no execution and no answer', async () => {
    const g = gateOf();
    const watch = L.watch;
    if (watch === null) throw new Error('no listener (an earlier test failed)');
    await cli(['gate', 'open', GATE, '--data', L.data, '--broker', L.broker.url, '--expires', '-5'], 3, new RegExp(`gate ${GATE} refused open: expired`));
    const seven = new Uint8Array(16).fill(7);
    const stale = sealSigned(Command, { gate: GATE, nonce: seven, issuedAt: 1_700_000_000, expires: 1_700_000_060, op: 'open' }, L.keys.signingKey, nodeCrypto);
    await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(stale), { qos: 1 });
    await waitFor('answer to a hand-made expired command', () => resultsFor(watch.messages, seven).length === 1, 5000);
    assert.equal(resultsFor(watch.messages, seven).map((r) => [r.status, r.reason]), [['refused', 'expired']]);

    const now = Math.floor(Date.now() / 1000);
    const valid = { gate: GATE, issuedAt: now, expires: now + 60, op: 'open' as const };
    const stranger = sealSigned(Command, { ...valid, nonce: new Uint8Array(16).fill(1) }, generateKeys().signingKey, nodeCrypto);
    const payload = encodeCommand({ ...valid, nonce: new Uint8Array(16).fill(2) });
    const tampered = encodeEnvelope({ kid: nodeCrypto.sha256(L.keys.publicKey).subarray(0, 8), sig: new Uint8Array(64).fill(9), payload });
    const unsigned = encodeCommand({ ...valid, nonce: new Uint8Array(16).fill(3) });
    const total = () => Object.values(g.gate.commandsRefused).reduce((a, b) => a + b, 0);
    const refusedBefore = { ...g.gate.commandsRefused };
    const before = total();
    for (const bytes of [stranger, tampered, unsigned]) await watch.client.publishAsync(topics.gate(GATE, 'cmd'), Buffer.from(bytes), { qos: 1 });
    await waitFor('the forgeries counted', () => total() - before >= 3, 5000);
    await new Promise((r) => setTimeout(r, 200));
    assert.is((g.gate.commandsRefused.unknown_key ?? 0) - (refusedBefore.unknown_key ?? 0), 1, 'signed by a stranger');
    assert.is((g.gate.commandsRefused.bad_signature ?? 0) - (refusedBefore.bad_signature ?? 0), 1, 'bad signature');
    for (const n of [1, 2, 3]) assert.is(resultsFor(watch.messages, new Uint8Array(16).fill(n)).length, 0, 'no answer to a stranger');
    assert.is(openCommands(g) - L.openRecords, 1, 'nothing executed');
    assert.is(L.opens, 1);
  });

  live('gate commands: unprovisioned gate refused (3), bad config params refused (3), config applied', async () => {
    await Promise.all([
      cli(['gate', 'open', 'fl-in-t99', '--data', L.data, '--broker', L.broker.url], 3, /unknown gate 'fl-in-t99': not provisioned/),
      cli(['gate', 'config', GATE, '--data', L.data, '--broker', L.broker.url, '--params', '0102'], 3, /refused config: bad_params/),
    ]);
    const configured = await cli(['gate', 'config', GATE, '--data', L.data, '--broker', L.broker.url, '--passback', '30', '--stale-after', '600'], 0);
    assert.match(configured.stdout, /config done: configured/);
    assert.equal([gateOf().gate.config.passbackSeconds, gateOf().gate.config.policy.staleAfterSeconds, gateOf().gate.state.passbackSeconds], [30, 600, 30]);
    assert.is(openCommands(gateOf()) - L.openRecords, 1);
  });

  live('Central.sendCommand and the CLI: lockdown, release, and an expired command refused', async () => {
    const g = gateOf();
    // A second central on another list with the same key (it publishes no head the gate follows).
    // Sharing the data directory's database: it knows the gate's identity, so it can verify the answers.
    const api = await Central.open({ db: await c.target(L.data), signingKey: L.keys.signingKey, deploymentKey: L.keys.deploymentKey, gateMasterKey: L.keys.gateMasterKey, brokerUrl: L.broker.url, list: 'api' });
    try {
      await api.start();
      const down = await api.sendCommand(GATE, 'lockdown', { waitMs: 5000 });
      assert.equal([down.result?.status, down.result?.reason], ['done', 'locked_down']);
      assert.is(g.gate.state.lockdown, true);
      const up = await api.sendCommand(GATE, 'release', { waitMs: 5000 });
      assert.equal([up.result?.status, up.result?.reason], ['done', 'released']);
      assert.is(g.gate.state.lockdown, false);
      const late = await api.sendCommand(GATE, 'open', { expiresInSeconds: 0, waitMs: 5000 });
      assert.equal([late.result?.status, late.result?.reason], ['refused', 'expired']);
    } finally {
      await api.close();
    }
    // The same from the command line.
    const down = await cli(['gate', 'lockdown', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(down.stdout, new RegExp(`gate ${GATE}: lockdown done: locked_down`));
    assert.is(g.gate.state.lockdown, true);
    const up = await cli(['gate', 'release', GATE, '--data', L.data, '--broker', L.broker.url], 0);
    assert.match(up.stdout, new RegExp(`gate ${GATE}: release done: released`));
    assert.is(g.gate.state.lockdown, false);
    assert.is(openCommands(g) - L.openRecords, 1);
  });

  live('central serve stops cleanly on SIGTERM; presence stays readable', async () => {
    const serve = L.serve;
    if (serve === null) throw new Error('serve not running (an earlier test failed)');
    assert.is(await serve.stop(), 0, serve.stderr());
    assert.match(serve.stdout(), /central: stopped/);
    // stdout: the two result lines; every diagnostic on stderr, timestamped (docs/CLI.md).
    assert.equal(serve.stdout().trim().split('\n').map((l) => l.replace(/ .*/, '')), ['central:', 'central:'], serve.stdout());
    const diagnostics = serve.stderr().trim().split('\n').filter((l) => l !== '');
    assert.ok(diagnostics.length > 0 && diagnostics.every((l) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /.test(l)), serve.stderr());
    L.serve = null;
    const after = await cli(['central', 'gates', '--data', L.data, '--format', 'json'], 0);
    assert.is((JSON.parse(after.stdout) as { gates: unknown[] }).gates.length, 1);
  });

  live('an offline gate keeps its last known values and the time of its last message after serve restarts on its retained will', async () => {
    type Row = { gate: string; state: string; whitelist: { version: number } | null; backlog: number | null; lastSeen: string | null; at: string | null };
    const gates = async (): Promise<Row[]> => (JSON.parse((await cli(['central', 'gates', '--data', L.data, '--json'], 0)).stdout) as { gates: Row[] }).gates;
    const g = gateOf();
    assert.is(L.serve, null, 'serve is stopped (the test before)');
    const before = (await gates())[0] as Row;
    assert.equal([before.state, before.whitelist?.version], ['online', g.gate.store.version]);
    assert.type(before.backlog, 'number');
    // The gate drops while no central listens: the broker keeps its will (retained, fixed at CONNECT).
    g.stop();
    L.gate = null;
    await new Promise((r) => setTimeout(r, 2100)); // a wrong LAST SEEN (when serve read the will) would differ by seconds
    L.serve = await c.start(['central', 'serve', '--data', L.data, '--broker', L.broker.url, '--head-interval', '2', '--poll', '0.2']);
    await L.serve.waitForOutput(/central: serving list main/);
    for (let i = 0; (await gates())[0]?.state !== 'offline'; i++) {
      if (i > 50) throw new Error('the retained will was not read within 10 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const after = (await gates())[0] as Row;
    assert.equal([after.state, after.whitelist?.version, after.backlog], ['offline', before.whitelist?.version, before.backlog], 'the last known whitelist and backlog, not those of the will');
    assert.is(after.lastSeen, before.lastSeen, 'last seen: the gate\'s last message, not when serve started');
    const table = (await cli(['central', 'gates', '--data', L.data], 0)).stdout;
    assert.match(table, new RegExp(`^${GATE}\\s+active \\(key 1\\)\\s+offline\\s+\\d+\\s+first\\s+in\\s+person\\s+main v${String(before.whitelist?.version)}\\s+${String(before.backlog)}\\s+\\S+\\s+${String(before.lastSeen)}`, 'm'));
  });

  live('gate status: the retained status decoded and verified with the gate\'s key; a forged one is refused (3), none is exit 4', async () => {
    const st = await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url, '--json'], 0);
    // The broker holds the will: fixed at CONNECT (the lists the gate held then, perhaps none).
    const s = JSON.parse(st.stdout) as { gate: string; state: string; line: string; boot: number; lists: { list: string; version: number }[] };
    assert.equal([s.gate, s.state, s.line, s.boot], [GATE, 'offline', 'first', 1], st.stdout);
    assert.ok(s.lists.every((l) => l.list === 'main'), st.stdout);
    assert.match((await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url], 0)).stdout, new RegExp(`^gate ${GATE}: offline, firmware .*\\n  whitelist: (none|main epoch \\d+ version \\d+); backlog \\d+`));
    const forger = await mqtt.connectAsync(L.broker.url, { clientId: 'forger-status' });
    try {
      await forger.publishAsync(topics.gate(GATE, 'status'), Buffer.from('a status nobody MACed'), { retain: true, qos: 1 });
      await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url], 3, /is not MACed by gate fl-in-t01/);
      await forger.publishAsync(topics.gate(GATE, 'status'), Buffer.alloc(0), { retain: true, qos: 1 }); // cleared
    } finally {
      await forger.endAsync();
    }
    await cli(['gate', 'status', GATE, '--data', L.data, '--broker', L.broker.url, '--wait', '1'], 4, /no retained status of gate fl-in-t01/);
    await cli(['gate', 'status', 'fl-in-t99', '--data', L.data, '--broker', L.broker.url], 3, /unknown gate 'fl-in-t99'/);
  });
}
// ---------------------------------------------------------------- on a locked-down broker

// The suite above runs on an open broker on purpose: it replays and forges commands as a
// stranger, which a secured broker would not even let connect. This one runs the same daily
// flow where nothing is anonymous: TLS client certificates from the data directory's PKI
// (the central's for serve and gate commands, the gate's from its record), the ACL of the
// data directory (broker-acl.ts), on the embedded broker's TLS listener.
// TLS and the ACL do not depend on where the data is: on SQLite only (the broker's ACL from a PostgreSQL database: broker config above).
const locked = suite('cli on a locked-down broker (TLS client certificates, ACL)');
lockedSuite(locked, context(engines()[0] as Engine));
locked.run();

function lockedSuite(locked: Test, c: Ctx): void {
  const { cli } = c;

  locked('provision, serve, gate open and central gates over mqtts:// with the data directory\'s identities; strangers get nothing', async () => {
    const data = await populated(c);
    const pki = await DeploymentPki.load(join(data, 'pki'));
    const broker = await startEmbeddedBroker({ port: 0, tlsPort: 0, security: { acl: await aclOfData(data, 'subline', await c.target(data)), tls: pki.serverFiles() } });
    let serve: CliProcess | null = null;
    let gate: NodeGate | null = null;
    try {
      const url = broker.url;
      assert.match(url, /^mqtts:\/\//);
      const recordFile = join(data, 'gate.cbor');
      await cli(['provision', '--data', data, '--gate', GATE, '--site', 'futian', '--line', 'first', '--direction', 'in', '--lane', 'person', '--broker', url, '--out', recordFile], 0);
      await broker.reload({ acl: await aclOfData(data, 'subline', await c.target(data)) }); // the new gate is in the ACL now (Mosquitto: broker config again + SIGHUP)
      const p = decodeProvisioning(new Uint8Array(readFileSync(recordFile)));
      if (!p.ok) throw new Error('record does not decode');
      serve = await c.start(['central', 'serve', '--data', data, '--broker', url, '--head-interval', '2', '--poll', '0.2']);
      await serve.waitForOutput(/central: serving list main/);
      const g = new NodeGate({ provisioning: p.value, crypto: nodeCrypto, layout: { credentials: 4000, journalSectors: 16 }, sync: FAST_SYNC, maintenanceMs: 50 });
      gate = g;
      g.start();
      await waitFor('the gate (its own certificate) holds version 1', () => g.gate.store.version === 1, 15000);
      const open = await cli(['gate', 'open', GATE, '--data', data, '--broker', url], 0);
      assert.match(open.stdout, /open done: opened/);
      await withStore(c, data, (s) => waitFor('presence stored', async () => (await s.state.gate(GATE))?.status.state === 'online', 10000));
      // No certificate, or another CA's: the TLS listener refuses the connection itself.
      const stranger = await DeploymentPki.create(tempDir());
      const refusedWith = async (opts: mqtt.IClientOptions): Promise<boolean> => {
        const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
        const r = await new Promise<boolean>((resolve) => {
          c.once('connect', () => resolve(false));
          c.once('error', () => resolve(true));
          c.once('close', () => resolve(true));
        });
        c.end(true);
        return r;
      };
      assert.ok(await refusedWith({ ca: pki.caPem }), 'no client certificate');
      const foreign = await stranger.issueOperator('mallory');
      assert.ok(await refusedWith({ ca: pki.caPem, cert: foreign.cert, key: foreign.key }), "another CA's certificate");
      await cli(['gate', 'open', GATE, '--data', data, '--broker', url, '--ca', join(stranger.dir, 'ca.crt.pem'), '--wait', '2'], 4, /cannot connect to the broker|no connection/);
    } finally {
      gate?.stop();
      if (serve !== null) await serve.stop();
      await broker.close();
      rmSync(data, { recursive: true, force: true });
    }
  });
}
