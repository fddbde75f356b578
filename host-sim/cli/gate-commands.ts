// `subline gate open|lockdown|release|config <gate>`: a remote command,
// signed with the central's key (keys.json in --data), with a fresh nonce and
// an expiry, published on gates/<gate>/cmd (QoS 1); the answer with that
// nonce is awaited on gates/<gate>/cmdres and taken only when it is MACed by
// that gate (its key derived from keys.json's master key). Exit 0: done; 3:
// refused or failed (the reason is printed), or the gate is not provisioned
// or decommissioned; 4: no verified answer within --wait (forged answers are
// reported as such).

import { encodeConfigParams } from '../../protocol/messages.js';
import type { Command } from 'commander';
import { fromHex, toHex } from '../../protocol/hex.js';
import { Topics } from '../../protocol/topics.js';
import { CommandResult, GateStatus } from '../../protocol/messages.js';
import type { CentralKeys } from '../central/keys.js';
import { nodeCrypto } from '../node-crypto.js';
import { COMMAND_OPS, sealCommand, sendCommandOver, type CommandOp } from '../central/commands.js';
import { GateAuthenticator } from '../central/gate-authenticator.js';
import { CliError } from './cli-error.js';
import { registerGateRun } from './gate-run-command.js';
import { addBrokerAuthOptions, addGroup, bad, brokerOption, checkBrokerUrl, checkId, checkTopicRoot, connectBroker, dataOption, dataPaths, dbName, dbOption, isoSeconds, loadKeys, note, out, parseHex, parseInteger, resolveBrokerAuth, topicRootOption, withStore, type BrokerAuthFlags, type DataPaths } from './common.js';

interface GateCommandOptions extends BrokerAuthFlags {
  readonly data: string;
  readonly db?: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly expires: string;
  readonly wait: string;
  readonly params?: string;
  readonly passback?: string;
  readonly staleAfter?: string;
  readonly json?: boolean;
}

const DESCRIPTIONS: Record<CommandOp, string> = {
  open: 'open the lane once (journaled by the gate as a command)',
  lockdown: 'lock the lane down: every credential is refused until release (persists across reboots)',
  release: 'end a lockdown',
  config: 'change settings the gate keeps across reboots: --passback SECONDS, --stale-after SECONDS (or raw --params HEX)',
};

export function registerGate(program: Command): void {
  const gate = addGroup(program, 'gate', "signed remote commands to one gate (open, lockdown, release, config) and its status");
  for (const op of COMMAND_OPS) {
    const c = gate
      .command(op)
      .description(DESCRIPTIONS[op])
      .argument('<gate>', 'gate id')
      .option('--expires <seconds>', 'the command expires this many seconds after it is issued (0 or less: already expired, to test a gate)', '60')
      .option('--wait <seconds>', 'how long to wait for the answer', '10')
      .option('--json', 'print the outcome as JSON');
    if (op === 'config') {
      c.option('--passback <seconds>', 'anti-passback window, 0-86400 s');
      c.option('--stale-after <seconds>', 'whitelist staleness threshold of the freshness policy, 60-604800 s');
      c.option('--params <hex>', 'raw parameters (a CBOR config map, protocol/schema.cddl), 1-256 bytes in hex');
    }
    addBrokerAuthOptions(c.addOption(dataOption()).addOption(dbOption()).addOption(brokerOption()).addOption(topicRootOption()))
      .action((g: string, o: GateCommandOptions) => send(op, g, o));
  }
  addBrokerAuthOptions(
    gate
      .command('status')
      .description("read a gate's retained status from the broker, check its MAC and print it decoded (what a technician checks after flashing)")
      .argument('<gate>', 'gate id')
      .option('--wait <seconds>', 'how long to wait for the retained status', '5')
      .option('--json', 'print the status as JSON')
      .addOption(dataOption()).addOption(dbOption())
      .addOption(brokerOption())
      .addOption(topicRootOption()),
  ).action((g: string, o: GateCommandOptions) => status(g, o));
  registerGateRun(gate);
}

/**
 * The authenticator for one provisioned, active gate: its identity is read
 * once from the database (closed again at once: a command waits seconds for
 * its answer, and holds no connection meanwhile).
 */
async function gateAuthenticator(p: DataPaths, gate: string, keys: CentralKeys): Promise<GateAuthenticator> {
  const g = await withStore(p, keys, (s) => s.identities.get(gate));
  if (g === undefined || g.state !== 'active') {
    throw new CliError(g === undefined ? `unknown gate '${gate}': not provisioned in ${dbName(p)} (check the id with \`subline central gates\`)` : `gate '${gate}' is decommissioned: no answer from it could be verified`, 3);
  }
  const state = { state: g.state, keyId: g.keyId };
  return new GateAuthenticator({ gates: { authState: (id) => Promise.resolve(id === gate ? state : null) }, masterKey: keys.gateMasterKey, crypto: nodeCrypto });
}

async function send(op: CommandOp, gateArg: string, o: GateCommandOptions): Promise<void> {
  const gate = checkId(gateArg, 'gate');
  const expiresIn = parseInteger(o.expires, '--expires', -86400, 30 * 86400);
  const waitSeconds = parseInteger(o.wait, '--wait', 1, 600);
  let params = o.params !== undefined ? fromHex(parseHex(o.params, '--params', 1, 256)) : undefined;
  if (op === 'config' && (o.passback !== undefined || o.staleAfter !== undefined)) {
    if (params !== undefined) bad('give either --params or --passback/--stale-after, not both');
    params = encodeConfigParams({
      ...(o.passback !== undefined ? { passbackSeconds: parseInteger(o.passback, '--passback', 0, 86400) } : {}),
      ...(o.staleAfter !== undefined ? { staleAfterSeconds: parseInteger(o.staleAfter, '--stale-after', 60, 7 * 86400) } : {}),
    });
  }
  if (op === 'config' && params === undefined) bad('config needs --passback, --stale-after or --params');
  checkBrokerUrl(o.broker);
  const topics = new Topics(checkTopicRoot(o.topicRoot));
  const p = dataPaths(o.data, o.db);
  const keys = loadKeys(p);
  const auth = await gateAuthenticator(p, gate, keys);
  {
    const sealed = sealCommand(keys.signingKey, gate, op, { expiresInSeconds: expiresIn, ...(params !== undefined ? { params } : {}) });
    const nonce = toHex(sealed.command.nonce);
    const client = await connectBroker(o.broker, Math.min(waitSeconds, 10) * 1000, 'subline-cmd', resolveBrokerAuth(o, o.broker, p));
    let answer;
    try {
      answer = await sendCommandOver(client, topics, sealed, waitSeconds * 1000, (topic, bytes) => auth.open(gate, topic, CommandResult, bytes));
    } finally {
      await client.endAsync().catch(() => undefined);
    }
    const { result, refused } = answer;
    const forged = Object.entries(refused).map(([c, n]) => `${n} ${c}`).join(', ');
    if (forged !== '') note(`refused ${Object.values(refused).reduce((a, b) => a + b, 0)} answer(s) for this nonce that were not MACed by gate ${gate} (${forged}): forged, ignored`);
    const report = (status: string, extra: Record<string, unknown>) => {
      if (o.json === true) out(JSON.stringify({ gate, op, nonce, status, refusedAnswers: refused, ...extra }, null, 2));
    };
    if (result === null) {
      const c = sealed.command;
      report('unanswered', { validUntil: isoSeconds(c.expires) });
      throw new CliError(`no ${forged !== '' ? 'verified ' : ''}answer from gate ${gate} within ${waitSeconds} s (nonce ${nonce}): the command is unanswered; it stays valid until ${isoSeconds(c.expires)}, so the gate may still run it if it receives it before then`, 4);
    }
    report(result.status, { reason: result.reason, gateTime: isoSeconds(result.at) });
    if (result.status !== 'done') throw new CliError(`gate ${gate} ${result.status === 'refused' ? 'refused' : 'failed'} ${op}: ${result.reason} (nonce ${nonce})`, 3);
    if (o.json !== true) out(`gate ${gate}: ${op} done: ${result.reason} (nonce ${nonce}, gate time ${isoSeconds(result.at)})`);
    if (op === 'lockdown') note(`the lockdown stays until \`subline gate release ${gate}\``);
  }
}

/** `gate status G`: the retained status on gates/G/status, verified with G's key. Exit 3: not verified; 4: none within --wait. */
async function status(gateArg: string, o: GateCommandOptions): Promise<void> {
  const gate = checkId(gateArg, 'gate');
  const waitSeconds = parseInteger(o.wait, '--wait', 1, 600);
  checkBrokerUrl(o.broker);
  const topics = new Topics(checkTopicRoot(o.topicRoot));
  const p = dataPaths(o.data, o.db);
  const keys = loadKeys(p);
  const auth = await gateAuthenticator(p, gate, keys);
  {
    const topic = topics.gate(gate, 'status');
    const client = await connectBroker(o.broker, Math.min(waitSeconds, 10) * 1000, 'subline-status', resolveBrokerAuth(o, o.broker, p));
    let payload: Uint8Array | null = null;
    try {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitSeconds * 1000);
        client.on('message', (t, b) => {
          if (t !== topic) return;
          payload = new Uint8Array(b);
          clearTimeout(timer);
          resolve();
        });
        client.subscribe(topic, { qos: 1 });
      });
    } finally {
      await client.endAsync().catch(() => undefined);
    }
    if (payload === null || (payload as Uint8Array).length === 0) throw new CliError(`no retained status of gate ${gate} on ${o.broker} within ${waitSeconds} s (topic ${topic}): the gate has not connected to this broker, or under another --topic-root`, 4);
    const r = await auth.open(gate, topic, GateStatus, payload);
    if (!r.ok) throw new CliError(`the status on ${topic} is not MACed by gate ${gate} (${r.cause}): forged, or from an earlier provisioning`, 3);
    const s = r.value;
    if (o.json === true) {
      out(JSON.stringify({ ...s, at: isoSeconds(s.at) }, null, 2));
      return;
    }
    out(`gate ${s.gate}: ${s.state}, firmware ${s.firmware}, ${s.line} line, ${s.direction}, ${s.lane} lane; journal epoch ${s.journal}, boot ${s.boot}, connection ${s.conn}; at ${isoSeconds(s.at)} (gate clock)`);
    out(`  whitelist: ${s.lists.length === 0 ? 'none' : s.lists.map((l) => `${l.list} epoch ${l.epoch} version ${l.version}`).join(', ')}; backlog ${s.backlog} event(s) not yet acknowledged`);
    if (s.refused.length > 0) out(`  refused by the gate: ${s.refused.map((x) => `${x.cause} ${x.count}`).join(', ')}`);
  }
}
