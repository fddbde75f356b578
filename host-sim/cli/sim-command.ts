// `subline sim` (= `npm start`): the fleet simulator with a live terminal view.
// The simulator (embedded broker, central, gates) is imported when the command runs.

import { accessSync, constants, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import type { FleetSimulator, SimReport } from '../sim/fleet-simulator.js';
import { addBrokerAuthOptions, checkTopicRoot, type BrokerAuthFlags } from './common.js';
import { randomBytes } from 'node:crypto';
import type { BrokerAuth } from '../broker-auth.js';
import { generateKeys } from '../central/keys.js';
import { Topics } from '../../protocol/topics.js';
import type { SimDeployment } from './sim-deployment.js';
import { SimState } from '../sim/sim-state.js';
import { ensureFirstAdmin, FIRST_ADMIN, startConsole } from './operator-commands.js';
import type { ConsoleServer } from '../console/console-server.js';

interface SimFlags extends BrokerAuthFlags {
  broker?: string;
  topicRoot?: string;
  prepare?: boolean;
  gates: string;
  rate: string;
  seed: string;
  duration?: string;
  report?: string;
  json?: boolean;
  data?: string;
  xs?: string;
  view: boolean;
  console: boolean;
  http?: string;
}

/** The file's directory must exist and be writable (the file itself is written at the end). */
function checkWritable(file: string, flag: string): void {
  const dir = dirname(resolve(file));
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`${flag} ${file}: ${code === 'ENOENT' ? `the directory ${dir} does not exist` : `the directory ${dir} is not writable (${code ?? String(e)})`}`, 2);
  }
}

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer from ${min} to ${max}, got '${v}'`);
  return n;
}

const pad = (s: string | number, n: number) => String(s).padEnd(n).slice(0, n);
const lpad = (s: string | number, n: number) => String(s).padStart(n).slice(-n);

/** The live view's width: a terminal's default. */
export const VIEW_COLUMNS = 80;

/** Word-wraps a line to VIEW_COLUMNS, continuation lines indented by two spaces. */
function wrap(line: string, width = VIEW_COLUMNS): string[] {
  if (line.length <= width) return [line];
  const out: string[] = [];
  let cur = '';
  for (const word of line.split(' ')) {
    const next = cur === '' ? word : `${cur} ${word}`;
    if (next.length <= width || cur.trim() === '') cur = next;
    else {
      out.push(cur);
      cur = `  ${word}`;
    }
    while (cur.length > width) {
      out.push(cur.slice(0, width));
      cur = `  ${cur.slice(width)}`;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** 'next: revoke 15 cards at t=15s', or that the script is done. */
function nextLine(sim: FleetSimulator): string {
  const next = sim.upcoming()[0];
  return next === undefined ? 'next: - (every scripted moment is done)' : `next: ${next.what} at t=${next.at}s`;
}

/** The live view (a terminal of 80 columns): the gate ids carry line, site, direction and lane. */
export function render(sim: FleetSimulator, duration: number | null): string {
  const v = sim.view();
  const lines: string[] = [];
  const t = sim.elapsedSeconds.toFixed(0);
  const rate = sim.rate(v.totals.taps);
  lines.push(`subline-gate fleet simulator  t=${t}s${duration !== null ? `/${duration}s` : ''}  (Ctrl-C to stop)`);
  lines.push(`broker ${sim.broker !== null ? 'embedded' : sim.brokerUrl}  topic root ${sim.topicRoot}  central v${v.totals.version}`);
  lines.push(`${rateLine(rate.asked, rate.sustained, rate.short)}  ${nextLine(sim)}`);
  lines.push('');
  // Widths: the longest id, then 4+7+6+6+7+6+7+7 and 8 separators: 79 columns for the default ids.
  const w = Math.max(4, ...v.gates.map((g) => g.id.length));
  lines.push(`${pad('gate', w)} ${pad('eng', 4)} ${pad('state', 7)} ${lpad('wl ver', 6)} ${lpad('taps/s', 6)} ${lpad('granted', 7)} ${lpad('denied', 6)} ${lpad('backlog', 7)} ${lpad('refused', 7)}`);
  for (const g of v.gates) {
    lines.push(`${pad(g.id, w)} ${pad(g.engine, 4)} ${pad(g.online ? 'online' : 'OFFLINE', 7)} ${lpad(g.version, 6)} ${lpad(g.tapsPerSecond.toFixed(1), 6)} ${lpad(g.granted, 7)} ${lpad(g.denied, 6)} ${lpad(g.backlog, 7)} ${lpad(`${g.refusedAtCentral}/${g.refusedAtGate}`, 7)}`);
  }
  lines.push('gate id: l<line>-<site>-<in|out>-<lane p|v|g><n>; refused: at the central/gate');
  lines.push('');
  lines.push(`fleet: ${v.totals.taps} taps, ${v.totals.granted} granted, ${v.totals.taps - v.totals.granted} denied; events stored at the central: ${v.totals.stored}`);
  const reasons = Object.entries(v.totals.denied).sort((a, b) => b[1] - a[1]);
  lines.push(`denied by reason: ${reasons.length === 0 ? '-' : reasons.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  const refused = Object.entries(v.totals.refusedAtCentral).sort((a, b) => b[1] - a[1]);
  lines.push(`refused at the central: ${refused.length === 0 ? '-' : refused.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (sim.moments.length > 0) lines.push(`moments: ${sim.moments.join('; ')}`);
  return lines.flatMap((l) => wrap(l)).join('\n');
}

/** 'rate: asked 4/s, sustained 4.0/s', and when the process fell short, says so. */
export function rateLine(asked: number, sustained: number, short: boolean): string {
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `rate: asked ${asked}/s, sustained ${fmt(sustained)}/s${short ? ' (more than this machine keeps up with)' : ''}`;
}

function summary(r: SimReport): string {
  return [
    `summary: ${r.gates} gates, ${r.durationSeconds}s, seed ${r.seed}`,
    `  taps ${r.taps}, granted ${r.granted}, denied ${r.taps - r.granted}; ${rateLine(r.rateAsked, r.rateSustained, r.rateShort)}`,
    `  denied by reason: ${Object.entries(r.deniedByReason).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`,
    `  events journaled by the gates ${r.eventsJournaled}, stored at the central ${r.eventsStoredAtCentral} (${r.exactlyOnce ? 'exactly once' : 'MISMATCH'})`,
    `  whitelist version ${r.centralVersion}; moments: ${r.moments.join('; ') || '-'}`,
  ].join('\n');
}

/** Exit 3 when another central's head is retained under the run's topic root on the broker (see shared-broker.ts). */
async function refuseForeignHead(broker: string, topicRoot: string, publicKey: Uint8Array, auth: BrokerAuth | undefined): Promise<void> {
  const { probeRetainedHead } = await import('../sim/shared-broker.js');
  let probe;
  try {
    probe = await probeRetainedHead(broker, topicRoot, publicKey, auth !== undefined ? { auth } : {});
  } catch (e) {
    throw new CliError(`could not start: ${e instanceof Error ? e.message : String(e)}`, 1);
  }
  if (probe.found !== 'other') return;
  throw new CliError(
    `another central's head is retained on ${broker} under '${topicRoot}' (list main, ${probe.kid !== null ? `signed by key id ${probe.kid}` : 'not a signed head'}, not the simulator's key): ` +
      `the simulator would overwrite it and its gates and events would enter that deployment. Use a topic root of its own (the default on a plain broker, or --topic-root) or a broker of its own`,
    3,
  );
}

export function registerSim(program: Command): void {
  const command = program
    .command('sim')
    .description('run the fleet simulator: embedded MQTT broker (locked down), reference central with a demo population, a fleet of gates, live view')
    .option('--broker <url>', 'use this MQTT broker (mqtt:// or mqtts://host:port) instead of the embedded one; a secured one needs --data')
    .option('--topic-root <root>', "topic root of the run (1-4 segments of [A-Za-z0-9._-]); default: 'subline' on the embedded broker and with --data, else one of its own per run (sim-<seed>-<random>), so a central on a shared broker sees nothing of it")
    .option('--gates <n>', 'number of gates', '8')
    .option('--rate <taps>', 'taps per second across the fleet', '4')
    .option('--seed <n>', 'seed: the same seed gives the same population and tap sequence', '1')
    .option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl-C)')
    .option('--report <file>', 'write the summary as JSON to this file on exit')
    .option('--data <dir>', "a central's data directory (made as `subline central init` does if missing): its keys, its central certificate, and a registered identity and certificate for each simulated gate, for a broker made by `subline broker config --data DIR`; the demo database and the gates' flash are kept in DIR/sim/ and continued by the next run (same --seed)")
    .option('--prepare', 'with --data: register the simulated gates and issue their certificates, then exit (run `subline broker config` after it)')
    .option('--xs <n>', 'run n of the gates on the real XS engine (see docs/FLASHING.md)')
    .option('--no-view', 'no live view: one status line every 5 seconds')
    .option('--http <host:port>', "where the operators' console listens (default: 127.0.0.1 on a free port; plain HTTP only on loopback)")
    .option('--no-console', "no operators' console")
    .option('--json', 'for scripts: no live view, status lines on stderr, and on exit the summary as one JSON object on stdout (the --report fields)');
  addBrokerAuthOptions(command)
    .action(async (f: SimFlags) => {
      const gates = int('gates', f.gates, 1, 2000);
      const rate = Number(f.rate);
      if (!Number.isFinite(rate) || rate <= 0 || rate > 10000) throw new CliError(`--rate must be a number of taps per second in (0, 10000], got '${f.rate}'`);
      const seed = int('seed', f.seed, 0, 2 ** 31 - 1);
      const duration = f.duration === undefined ? null : int('duration', f.duration, 1, 7 * 86400);
      const xs = f.xs === undefined ? 0 : int('xs', f.xs, 0, gates);
      if (f.broker !== undefined && !/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/.test(f.broker)) throw new CliError(`--broker must look like mqtt://host:port, got '${f.broker}'`);
      if (f.prepare === true && f.data === undefined) throw new CliError('--prepare needs --data DIR');
      // Output paths are checked before the run: a report that cannot be written must not be found out after ten minutes.
      if (f.report !== undefined) checkWritable(f.report, '--report');
      if (f.topicRoot !== undefined) checkTopicRoot(f.topicRoot);
      // On a broker it may share with a real central, the run keeps to a topic root of its own,
      // unless one is chosen or --data names the deployment whose broker ACL covers 'subline'.
      const topicRoot = f.topicRoot ?? (f.broker !== undefined && f.data === undefined ? `sim-${seed}-${randomBytes(3).toString('hex')}` : 'subline');
      const total = duration ?? 600;
      const { fleetSpecs, FleetSimulator } = await import('../sim/fleet-simulator.js');
      const { initIfMissing, prepareSimDeployment, simStateDir } = await import('./sim-deployment.js');
      let deployment: SimDeployment | undefined;
      if (f.data !== undefined) {
        // The demo population of an earlier run in DIR is continued: the seed must be its seed.
        let saved;
        try {
          saved = SimState.readPopulation(simStateDir(f.data));
        } catch (e) {
          throw new CliError(`--data ${f.data}: ${e instanceof Error ? e.message : String(e)}`, 3);
        }
        if (saved !== null && saved.seed !== seed) throw new CliError(`--data ${f.data}: ${simStateDir(f.data)} holds the demo population of seed ${saved.seed}: run with --seed ${saved.seed}, or remove ${simStateDir(f.data)} for a new one`, 2);
        if (await initIfMissing(f.data)) console.error(`initialised ${f.data} as \`subline central init --data ${f.data}\` does (above)`);
        deployment = await prepareSimDeployment(f.data, fleetSpecs(gates), f.broker, f);
        if (deployment.registered.length > 0 && (f.broker !== undefined || f.prepare === true)) console.error(`${deployment.registered.length} simulated gate(s) registered in ${f.data} with their certificates: run \`subline broker config --data ${f.data} --out ...\` again and reload the broker (SIGHUP) to let them in`);
        if (f.prepare === true) {
          if (f.json === true) console.log(JSON.stringify({ prepared: gates, data: f.data, registered: deployment.registered.length }));
          else console.log(`prepared ${gates} simulated gate(s) in ${f.data} (${deployment.registered.length} new)`);
          return;
        }
      }
      const keys = deployment?.keys ?? generateKeys();
      if (f.broker !== undefined) {
        console.error(`topic root ${topicRoot}${f.topicRoot === undefined && f.data === undefined ? ' (its own for this run; --topic-root to choose one)' : ''}`);
        await refuseForeignHead(f.broker, topicRoot, keys.publicKey, deployment?.centralAuth);
      }
      const sim = new FleetSimulator({
        gates, rate, seed, topicRoot, keys,
        ...(f.data !== undefined ? { dataDir: simStateDir(f.data) } : {}),
        ...(f.broker !== undefined ? { brokerUrl: f.broker } : {}),
        ...(deployment !== undefined ? { deployment } : {}),
        // The script: within the first minute whatever the length (the first at 15 s), earlier for a short run.
        revokeAt: Math.min(15, Math.max(1, Math.round(total / 5))),
        suspendAt: Math.min(30, Math.max(2, Math.round(total / 3))),
        brokerRestartAt: f.broker === undefined ? Math.min(45, Math.max(3, Math.round(total / 2))) : null,
        xs,
      });
      const json = f.json === true;
      const tty = process.stdout.isTTY === true && f.view && !json;
      // With --json stdout holds only the summary object.
      const status = json ? console.error : console.log;
      // Ctrl-C or SIGTERM: the fleet drains, the summary is printed, then the process ends by that
      // same signal (130 or 143 in a shell), as `npm start` does (npm ends by the signal it got).
      let signalled: NodeJS.Signals | null = null;
      let resolveStop: () => void = () => {};
      const stopped = new Promise<void>((r) => (resolveStop = r));
      const unlisten = () => {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
      };
      const reraise = (sig: NodeJS.Signals) => {
        unlisten();
        process.exitCode = 128 + (osConstants.signals[sig] ?? 0);
        process.kill(process.pid, sig);
      };
      function stop(sig: NodeJS.Signals): void {
        if (signalled !== null) {
          // A second Ctrl-C: out at once (the first one is draining the fleet).
          console.error('stopped without draining (second signal)');
          reraise(sig);
          return;
        }
        signalled = sig;
        resolveStop();
      }
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      console.error(`starting: ${gates} gates${xs > 0 ? ` (${xs} on the XS engine)` : ''}, ${rate} taps/s, seed ${seed}${f.broker !== undefined ? `, broker ${f.broker}, topic root ${topicRoot}` : ', embedded broker'} ...`);
      try {
        await sim.start();
      } catch (e) {
        await sim.close();
        unlisten();
        throw new CliError(`could not start: ${e instanceof Error ? e.message : String(e)}`, 1);
      }
      let web: ConsoleServer | null = null;
      let consoleLine = '';
      const timer = setInterval(
        () => {
          if (tty) process.stdout.write(`\x1b[H\x1b[2J${consoleLine !== '' ? `${consoleLine}\n` : ''}${render(sim, duration)}\n`);
          else {
            const v = sim.view();
            const xsView = v.gates.filter((g) => g.engine === 'xs');
            const rate = sim.rate(v.totals.taps);
            status(`t=${sim.elapsedSeconds.toFixed(0)}s online ${v.gates.filter((g) => g.online).length}/${v.gates.length}${xsView.length > 0 ? ` (xs ${xsView.filter((g) => g.online).length}/${xsView.length})` : ''} taps ${v.totals.taps} granted ${v.totals.granted} stored ${v.totals.stored} version ${v.totals.version}; ${rateLine(rate.asked, rate.sustained, rate.short)}; ${nextLine(sim)}${sim.moments.length > 0 ? `; moments: ${sim.moments.join(', ')}` : ''}`);
          }
        },
        tty ? 1000 : 5000,
      );
      // The operators' console on the simulator's central, as locked down as `central serve --http` (a login for every page).
      if (f.console) {
        try {
          const password = await ensureFirstAdmin(sim.central.store.db);
          web = await startConsole(sim.central, { http: f.http ?? '127.0.0.1:0' }, { say: () => undefined });
          if (web !== null) {
            consoleLine = `console: ${web.url} — log in as ${FIRST_ADMIN}${password !== null ? ` with the one-time password ${password}` : " with the password set before (`subline central operator password admin --db ...` sets another)"}`;
            console.error(consoleLine);
          }
        } catch (e) {
          clearInterval(timer);
          await sim.close();
          unlisten();
          throw e;
        }
      }
      let durationTimer: ReturnType<typeof setTimeout> | undefined;
      const until = duration === null ? stopped : Promise.race([stopped, new Promise<void>((r) => (durationTimer = setTimeout(r, duration * 1000)))]);
      await until;
      // A Ctrl-C before the end of --duration: the timer must not keep the process alive.
      clearTimeout(durationTimer);
      clearInterval(timer);
      console.error('stopping: waiting for every journaled event to reach the central ...');
      const drained = await sim.drain(30000);
      const report = await sim.report();
      if (tty) process.stdout.write(`\x1b[H\x1b[2J${render(sim, duration)}\n`);
      console.log(json ? JSON.stringify(report) : summary(report));
      let failure: CliError | null = null;
      try {
        if (f.report !== undefined) writeFileSync(f.report, JSON.stringify(report, null, 2) + '\n');
      } catch (e) {
        failure = new CliError(`--report ${f.report}: cannot be written (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 1);
      } finally {
        // Whatever happens on the way out, the broker, central and gates are closed, so the process can exit.
        await web?.close().catch(() => undefined);
        await sim.close();
      }
      if (f.broker !== undefined && deployment === undefined) {
        // The run's key dies with it: its retained head and statuses would read as another central's to the next run.
        const topics = new Topics(topicRoot);
        try {
          const { clearRetained } = await import('../sim/shared-broker.js');
          await clearRetained(f.broker, [topics.list('main', 'head'), ...sim.specs.map((g) => topics.gate(g.id, 'status'))]);
        } catch (e) {
          console.error(`note: the retained head under '${topicRoot}' could not be cleared (${e instanceof Error ? e.message : String(e)})`);
        }
      }
      if (failure === null && (!drained || !report.exactlyOnce)) failure = new CliError('not every journaled event reached the central within 30 s after stopping', 1);
      if (signalled !== null) {
        // Stopped by a signal: it is the exit status (what npm start reports too); a failure on the way out is still said.
        if (failure !== null) console.error(`subline: ${failure.message}`);
        reraise(signalled);
        return;
      }
      unlisten();
      if (failure !== null) throw failure;
    });
}
