// `subline sim`: the fleet simulator end to end, and its bad-input paths.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { findMosquitto, freeLoopbackPorts, startMosquitto, type SecuredBrokerHandle } from '../host-sim/broker.js';

import { FleetSimulator, type SimReport } from '../host-sim/sim/fleet-simulator.js';

import { waitFor } from './helpers/fleet.js';

const bin = fileURLToPath(new URL('../bin/subline.mjs', import.meta.url));
function run(args: string[], timeoutMs = 90000): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: timeoutMs }, (e, stdout, stderr) => {
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, out: stdout, err: stderr });
    });
  });
}

const t = suite('subline sim');
t('sim --duration 10 --seed 1 --report --json: exits 0; the central stored exactly the events the gates journaled; stdout is the summary object', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-sim-test-'));
  try {
    const report = join(dir, 'r.json');
    const r = await run(['sim', '--duration', '10', '--seed', '1', '--report', report, '--no-view', '--json']);
    assert.is(r.code, 0, r.err + r.out);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as SimReport;
    assert.is(rep.gates, 8);
    assert.ok(rep.taps > 10, `taps ${rep.taps}`);
    assert.ok(rep.eventsJournaled > 0);
    assert.is(rep.eventsStoredAtCentral, rep.eventsJournaled);
    assert.ok(rep.exactlyOnce);
    for (const g of rep.perGate) assert.is(g.stored, g.journaled, g.id);
    assert.ok(rep.moments.some((m) => m.includes('broker stopped')) && rep.moments.some((m) => m.includes('suspended')), rep.moments.join('; '));
    assert.equal(JSON.parse(r.out), rep, '--json: stdout holds only the summary object, the --report fields');
    assert.match(r.err, /t=\d+s online/, 'status lines on stderr');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
t('the embedded broker of npm start is locked down: no anonymous client, no guessed password (the ACL itself: broker-security.test.ts); the fleet still syncs', async () => {
  const sim = new FleetSimulator({ gates: 4, rate: 2, seed: 5, population: { institutions: 3, people: 30, vehicles: 3, consignments: 3 }, revokeAt: null, suspendAt: null, brokerRestartAt: null });
  const clients: MqttClient[] = [];
  try {
    await sim.start();
    const url = sim.brokerUrl;
    const refused = async (opts: mqtt.IClientOptions): Promise<string> => {
      const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
      clients.push(c);
      return new Promise((resolve) => {
        c.once('connect', () => resolve('connected'));
        c.once('error', (e) => resolve(`refused: ${e.message}`));
        c.once('close', () => resolve('refused: closed'));
      });
    };
    assert.match(await refused({ clientId: 'anon' }), /^refused/, 'anonymous');
    const gate = sim.specs[0]!.id;
    assert.match(await refused({ clientId: gate, username: gate, password: 'guess' }), /^refused/, 'a guessed password');
    assert.match(await refused({ clientId: 'x', username: 'subline.central', password: 'guess' }), /^refused/, "the central's name with a guessed password");
    await waitFor('every gate online with a whitelist', () => sim.view().gates.every((g) => g.online && g.version > 0), 20000);
    assert.ok(sim.view().gates.every((g) => g.refusedAtCentral === 0), 'the real gates are accepted by the central');
  } finally {
    for (const c of clients) c.end(true);
    await sim.close();
  }
});

t('sim --data DIR --broker mqtts://: against Mosquitto from `subline broker config --data DIR`, with DIR\'s identities (central and gate certificates); exactly once', async () => {
  if (findMosquitto() === null) throw new Error('mosquitto is not installed (apt-get install -y mosquitto)');
  const dir = mkdtempSync(join(tmpdir(), 'subline-sim-dep-'));
  const data = join(dir, 'data');
  let broker: SecuredBrokerHandle | null = null;
  try {
    assert.is((await run(['central', 'init', '--data', data])).code, 0);
    const prep = await run(['sim', '--data', data, '--gates', '4', '--prepare']);
    assert.is(prep.code, 0, prep.err);
    assert.match(prep.err, /4 simulated gate\(s\) registered .*run `subline broker config/);
    assert.match((await run(['sim', '--data', data, '--gates', '4', '--prepare'])).out, /\(0 new\)/, 'a second run reuses the identities');
    const [tlsPort, port] = await freeLoopbackPorts(2);
    const conf = await run(['broker', 'config', '--data', data, '--out', join(dir, 'broker'), '--tls-port', String(tlsPort), '--port', String(port), '--host', '127.0.0.1']);
    assert.is(conf.code, 0, conf.err);
    broker = await startMosquitto({ configDir: join(dir, 'broker') });
    const report = join(dir, 'r.json');
    const r = await run(['sim', '--data', data, '--gates', '4', '--broker', `mqtts://127.0.0.1:${tlsPort}`, '--duration', '8', '--no-view', '--report', report]);
    assert.is(r.code, 0, r.err + r.out);
    const rep = JSON.parse(readFileSync(report, 'utf8')) as SimReport;
    assert.ok(rep.eventsJournaled > 0 && rep.exactlyOnce, r.out);
    assert.ok(rep.perGate.every((g) => g.online), 'every gate was let in by the broker with its certificate');
    // Without --data the simulator has no identity the secured broker knows: its central cannot connect.
    const anon = await run(['sim', '--gates', '2', '--broker', `mqtts://127.0.0.1:${tlsPort}`, '--duration', '3', '--no-view'], 60000);
    assert.not.equal(anon.code, 0);
  } finally {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

t('sim --report into a directory that does not exist: refused before the run (exit 2), not after it', async () => {
  const started = Date.now();
  const r = await run(['sim', '--report', '/nonexistent/dir/r.json', '--duration', '5', '--no-view'], 30000);
  assert.is(r.code, 2, r.err + r.out);
  assert.match(r.err, /--report \/nonexistent\/dir\/r\.json: the directory \/nonexistent\/dir does not exist/);
  assert.not.match(r.out, /summary:/, 'no run happened');
  assert.ok(Date.now() - started < 20000, 'promptly');
});

t('sim refuses bad options with exit 2 and names the option', async () => {
  for (const [args, pattern] of [
    [['--gates', '0'], /--gates must be an integer from 1/],
    [['--rate', 'fast'], /--rate must be a number/],
    [['--seed', '-3'], /--seed must be an integer/],
    [['--duration', '1.5'], /--duration must be an integer/],
    [['--broker', 'http://x'], /--broker must look like mqtt:\/\/host:port/],
  ] as [string[], RegExp][]) {
    const r = await run(['sim', ...args], 20000);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, pattern);
  }
});
t('sim --help describes every option', async () => {
  const r = await run(['sim', '--help'], 20000);
  assert.is(r.code, 0);
  for (const o of ['--broker', '--topic-root', '--gates', '--rate', '--seed', '--duration', '--report', '--data', '--prepare', '--xs', '--no-view']) assert.match(r.out, new RegExp(o));
});
t.run();
