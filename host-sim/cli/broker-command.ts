// `subline broker config`: writes a locked-down Mosquitto configuration from
// the data directory's gate registry and PKI (host-sim/broker-config.ts).
// Bad options exit 2; a data directory without a database or PKI exits 3.

import { Option, type Command } from 'commander';
import type * as BrokerConfig from '../broker-config.js';
import { CliError } from './cli-error.js';
import { addGroup, bad, dataOption, dataPaths, dbOption, out, parseInteger, topicRootOption } from './common.js';

// broker-config.ts's defaults, repeated so that the other commands and --help do not load
// it (and the X.509 library with it) before `broker config` runs; the types make tsc check
// that they are the same.
const DEFAULT_PASSWORD_PORT: typeof BrokerConfig.DEFAULT_PASSWORD_PORT = 1883;
const DEFAULT_TLS_PORT: typeof BrokerConfig.DEFAULT_TLS_PORT = 8883;

interface BrokerConfigFlags {
  readonly data: string;
  readonly db?: string;
  readonly out?: string;
  readonly port: string;
  readonly tlsPort: string;
  readonly host?: string;
  readonly topicRoot: string;
  readonly json?: boolean;
}

export function registerBroker(program: Command): void {
  const group = addGroup(program, 'broker', 'the MQTT broker: a locked-down Mosquitto configuration');
  group
    .command('config')
    .description('write mosquitto.conf, its ACL, password file and TLS files from the gate registry and PKI of --data; run again (then SIGHUP mosquitto) after provisioning or decommissioning gates')
    .addOption(dataOption())
    .addOption(dbOption())
    .requiredOption('--out <dir>', 'where to write the configuration (a new or empty directory, or one written by this command)')
    .addOption(new Option('--port <n>', 'password listener, bound to 127.0.0.1 only (labs and host tools)').default(String(DEFAULT_PASSWORD_PORT)))
    .addOption(new Option('--tls-port <n>', 'TLS listener (client certificates required)').default(String(DEFAULT_TLS_PORT)))
    .option('--host <address>', 'bind the TLS listener to this address (default: every interface)')
    .addOption(topicRootOption())
    .option('--json', 'print a JSON summary')
    .action((o: BrokerConfigFlags) => config(o));
}

async function config(o: BrokerConfigFlags): Promise<void> {
  const port = parseInteger(o.port, '--port', 1, 65535);
  const tlsPort = parseInteger(o.tlsPort, '--tls-port', 1, 65535);
  if (o.out === undefined || o.out === '') bad('--out is required');
  const { BrokerConfigError, writeBrokerConfig } = await import('../broker-config.js');
  const { BrokerAclError } = await import('../broker-acl.js');
  let s;
  try {
    s = await writeBrokerConfig({ data: o.data, ...(o.db !== undefined ? { db: dataPaths(o.data, o.db).db } : {}), out: o.out, port, tlsPort, ...(o.host !== undefined ? { host: o.host } : {}), topicRoot: o.topicRoot });
  } catch (e) {
    if (e instanceof BrokerConfigError) throw new CliError(e.message, e.kind === 'missing' ? 3 : e.kind === 'unreachable' ? 4 : 2);
    if (e instanceof BrokerAclError) throw new CliError(`the registry holds an identity the broker cannot take: ${e.message}`, 3);
    throw e;
  }
  if (o.json === true) {
    out(JSON.stringify(s, null, 2));
    return;
  }
  out(`wrote ${s.conf}`);
  out(`  TLS listener ${s.tls.host ?? '(every interface)'}:${s.tls.port}: client certificates of the deployment CA, CN = username, CRL checked`);
  out(`  password listener 127.0.0.1:${s.password.port} (loopback only): the central and ${s.operators.length} operator(s); passwords in ${s.passwords}`);
  out(`  ACL for ${s.gates} active gate(s) under '${s.topicRoot}'; message_size_limit ${s.messageSizeLimit}; runs as user ${s.user}`);
  out(`start: mosquitto -c ${s.conf}   (after provisioning or decommissioning gates: run this again, then kill -HUP the broker)`);
}
