// `npm start` and `subline sim` end with the same status for the same end
// (issue 17, item 3): Ctrl-C, the end of --duration, a failure, bad input.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freeLoopbackPorts } from '../host-sim/broker.js';
import { bin, startGroup, type Ended } from './helpers/sim-cli.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const t = suite('npm start = subline sim: exit status');

const status = (e: Ended) => (e.signal !== null ? `signal ${e.signal}` : `code ${e.code}`);

async function both(args: string[], o: { ready?: RegExp; interrupt?: NodeJS.Signals } = {}): Promise<{ direct: Ended; npm: Ended }> {
  const [direct, viaNpm] = await Promise.all([startGroup(process.execPath, [bin, 'sim', ...args], { ...o, timeoutMs: 90000 }), startGroup(npm, ['start', '--', ...args], { ...o, timeoutMs: 90000 })]);
  return { direct, npm: viaNpm };
}

t('Ctrl-C (SIGINT to the foreground process group, after the first status line): both drain, print the summary and end by SIGINT (130 in a shell)', async () => {
  const r = await both(['--no-view', '--gates', '4'], { ready: /t=5s /, interrupt: 'SIGINT' });
  assert.is(status(r.direct), 'signal SIGINT', r.direct.out);
  assert.is(status(r.npm), status(r.direct), r.npm.out);
  assert.match(r.direct.out, /summary: 4 gates/);
  assert.match(r.npm.out, /summary: 4 gates/);
});

t('SIGTERM: both end by SIGTERM (143)', async () => {
  const r = await both(['--no-view', '--gates', '2'], { ready: /t=5s /, interrupt: 'SIGTERM' });
  assert.is(status(r.direct), 'signal SIGTERM', r.direct.out);
  assert.is(status(r.npm), status(r.direct), r.npm.out);
});

t('--duration ends the run: both exit 0', async () => {
  const r = await both(['--no-view', '--gates', '2', '--duration', '3']);
  assert.is(status(r.direct), 'code 0', r.direct.out);
  assert.is(status(r.npm), status(r.direct), r.npm.out);
});

t('a failure (no broker at --broker) and bad input: the same code from both (1 and 2)', async () => {
  const [port] = await freeLoopbackPorts(1);
  const fail = await both(['--no-view', '--gates', '2', '--duration', '3', '--broker', `mqtt://127.0.0.1:${port}`]);
  assert.is(status(fail.direct), 'code 1', fail.direct.out);
  assert.is(status(fail.npm), status(fail.direct), fail.npm.out);
  const badInput = await both(['--rate', 'fast']);
  assert.is(status(badInput.direct), 'code 2', badInput.direct.out);
  assert.is(status(badInput.npm), status(badInput.direct), badInput.npm.out);
});

t.run();
