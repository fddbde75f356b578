// `subline gate open|lockdown|release|config <gate>`: a remote command,
// signed with the central's key (keys.json in --data), with a fresh nonce and
// an expiry, published on gates/<gate>/cmd (QoS 1); the answer with that
// nonce is awaited on gates/<gate>/cmdres. Exit 0: done; 3: refused or
// failed (the reason is printed); 4: no answer within --wait.

import { existsSync } from 'node:fs';
import { encodeConfigParams } from '../../protocol/messages.js';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { fromHex, toHex } from '../../protocol/hex.js';
import { Topics } from '../../protocol/topics.js';
import { CentralState } from '../central/central-state.js';
import { COMMAND_OPS, sealCommand, sendCommandOver, type CommandOp } from '../central/commands.js';
import { CliError } from './cli-error.js';
import { addGroup, bad, brokerOption, checkBrokerUrl, checkId, checkTopicRoot, connectBroker, dataOption, dataPaths, isoSeconds, loadKeys, note, out, parseHex, parseInteger, topicRootOption, type DataPaths } from './common.js';

interface GateCommandOptions {
  readonly data: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly expires: string;
  readonly wait: string;
  readonly params?: string;
  readonly passback?: string;
  readonly staleAfter?: string;
  readonly force?: boolean;
}

const DESCRIPTIONS: Record<CommandOp, string> = {
  open: 'open the lane once (journaled by the gate as a command)',
  lockdown: 'lock the lane down: every credential is refused until release (persists across reboots)',
  release: 'end a lockdown',
  config: 'change settings the gate keeps across reboots: --passback SECONDS, --stale-after SECONDS (or raw --params HEX)',
};

export function registerGate(program: Command): void {
  const gate = addGroup(program, 'gate', 'signed remote commands to one gate (open, lockdown, release, config)');
  for (const op of COMMAND_OPS) {
    const c = gate
      .command(op)
      .description(DESCRIPTIONS[op])
      .argument('<gate>', 'gate id')
      .option('--expires <seconds>', 'the command expires this many seconds after it is issued (0 or less: already expired, to test a gate)', '60')
      .option('--wait <seconds>', 'how long to wait for the answer', '10')
      .option('--force', 'send even if the central has never heard from this gate');
    if (op === 'config') {
      c.option('--passback <seconds>', 'anti-passback window, 0-86400 s');
      c.option('--stale-after <seconds>', 'whitelist staleness threshold of the freshness policy, 60-604800 s');
      c.option('--params <hex>', 'raw parameters (a CBOR config map, protocol/schema.cddl), 1-256 bytes in hex');
    }
    c.addOption(dataOption())
      .addOption(brokerOption())
      .addOption(topicRootOption())
      .action((g: string, o: GateCommandOptions) => send(op, g, o));
  }
}

/** True when the central's gates table (central serve) knows the gate. */
function knownGate(p: DataPaths, gate: string): boolean {
  if (!existsSync(p.db)) return false;
  const db = new Database(p.db, { fileMustExist: true });
  try {
    return new CentralState(db).gate(gate) !== undefined;
  } finally {
    db.close();
  }
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
  const p = dataPaths(o.data);
  const keys = loadKeys(p);
  if (o.force !== true && !knownGate(p, gate)) throw new CliError(`unknown gate '${gate}': the central (${p.db}) has never heard from it (check the id, run \`subline central gates\`, or pass --force)`, 3);

  const sealed = sealCommand(keys.signingKey, gate, op, { expiresInSeconds: expiresIn, ...(params !== undefined ? { params } : {}) });
  const nonce = toHex(sealed.command.nonce);
  const client = await connectBroker(o.broker, Math.min(waitSeconds, 10) * 1000, 'subline-cmd');
  let result;
  try {
    result = await sendCommandOver(client, topics, sealed, waitSeconds * 1000);
  } finally {
    await client.endAsync().catch(() => undefined);
  }
  if (result === null) {
    const c = sealed.command;
    throw new CliError(`no answer from gate ${gate} within ${waitSeconds} s (nonce ${nonce}); the command stays valid until ${isoSeconds(c.expires)}, so the gate may still run it if it receives it before then`, 4);
  }
  if (result.status !== 'done') throw new CliError(`gate ${gate} ${result.status === 'refused' ? 'refused' : 'failed'} ${op}: ${result.reason} (nonce ${nonce})`, 3);
  out(`gate ${gate}: ${op} done: ${result.reason} (nonce ${nonce}, gate time ${isoSeconds(result.at)})`);
  if (op === 'lockdown') note(`the lockdown stays until \`subline gate release ${gate}\``);
}
