// `central operator add|list|password`: the people who log in to the
// console (host-sim/central/operator-store.ts); and the console's options
// and start-up shared by `central serve --http` and `subline sim` (npm start).
// The console's server (fastify) is imported only when --http asks for it.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Central } from '../central/central.js';
import { OPERATOR_ROLES, OperatorError, OperatorStore } from '../central/operator-store.js';
import type { SqlDb } from '../central/store/sql-db.js';
import type { ConsoleServer } from '../console/console-server.js';
import { CliError } from './cli-error.js';
import { bad, dataOption, dataPaths, dbOption, out, withStore } from './common.js';

/** The first administrator's name (`central init`, the simulator). */
export const FIRST_ADMIN = 'admin';

/** With no operator yet: an administrator with a one-time password, returned (null when there were operators). */
export async function ensureFirstAdmin(db: SqlDb): Promise<string | null> {
  const ops = new OperatorStore(db);
  if ((await ops.count()) > 0) return null;
  return (await ops.add(FIRST_ADMIN, 'admin')).password;
}

async function readPasswordStdin(): Promise<string> {
  if (process.stdin.isTTY) bad('--password-stdin reads the password from standard input: pipe it in (e.g. `printf %s "$PW" | subline central operator add ...`)');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function operatorErrors<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((e: unknown) => {
    if (e instanceof OperatorError) throw new CliError(e.message, 2);
    throw e;
  });
}

interface AddOptions {
  readonly data: string;
  readonly db?: string;
  readonly role: string;
  readonly passwordStdin?: boolean;
  readonly json?: boolean;
}

export function registerOperators(central: Command): void {
  const op = central.command('operator').description("the console's operators: add one, list them, set a password");
  op.command('add')
    .description('add an operator (a one-time password is made and printed unless --password-stdin gives one)')
    .argument('<name>', 'login name: 1-64 letters, digits, . _ -')
    .requiredOption('--role <role>', `one of ${OPERATOR_ROLES.join(', ')}`)
    .option('--password-stdin', 'read the password from standard input (at least 12 characters)')
    .option('--json', 'print {name, role, password} (password: the one-time one, or null when given)')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((name: string, o: AddOptions) =>
      operatorErrors(async () => {
        const given = o.passwordStdin === true ? await readPasswordStdin() : undefined;
        const r = await withStore(dataPaths(o.data, o.db), undefined, (s) => new OperatorStore(s.db).add(name, o.role, given));
        if (o.json === true) out(JSON.stringify({ name: r.operator.name, role: r.operator.role, password: given === undefined ? r.password : null }));
        else out(`operator ${r.operator.name} (${r.operator.role}) added${given === undefined ? `; one-time password: ${r.password}` : ''}`);
      }),
    );
  op.command('list')
    .description('the operators: name, role, created')
    .option('--json', 'print JSON')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: { data: string; db?: string; json?: boolean }) =>
      operatorErrors(async () => {
        const list = await withStore(dataPaths(o.data, o.db), undefined, (s) => new OperatorStore(s.db).list());
        if (o.json === true) return out(JSON.stringify({ operators: list.map((x) => ({ name: x.name, role: x.role, createdAt: new Date(x.createdAt * 1000).toISOString(), disabled: x.disabled })) }));
        if (list.length === 0) return out('no operators (`subline central operator add NAME --role admin`)');
        for (const x of list) out(`${x.name}\t${x.role}\t${new Date(x.createdAt * 1000).toISOString()}${x.disabled ? '\tdisabled' : ''}`);
      }),
    );
  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    op.command(verb)
      .description(disabled ? 'disable an operator: no login, and its console sessions end (within 30 s)' : 'enable a disabled operator again')
      .argument('<name>')
      .option('--json', 'print {name, disabled}')
      .addOption(dataOption())
      .addOption(dbOption())
      .action((name: string, o: { data: string; db?: string; json?: boolean }) =>
        operatorErrors(async () => {
          await withStore(dataPaths(o.data, o.db), undefined, (s) => new OperatorStore(s.db).setDisabled(name, disabled));
          out(o.json === true ? JSON.stringify({ name, disabled }) : `operator ${name} ${disabled ? 'disabled' : 'enabled'}`);
        }),
      );
  }
  op.command('password')
    .description("set an operator's password (a new one-time one unless --password-stdin gives one)")
    .argument('<name>')
    .option('--password-stdin', 'read the password from standard input')
    .option('--json', 'print {name, password}')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((name: string, o: { data: string; db?: string; passwordStdin?: boolean; json?: boolean }) =>
      operatorErrors(async () => {
        const given = o.passwordStdin === true ? await readPasswordStdin() : undefined;
        const pw = await withStore(dataPaths(o.data, o.db), undefined, (s) => new OperatorStore(s.db).setPassword(name, given));
        if (o.json === true) out(JSON.stringify({ name, password: given === undefined ? pw : null }));
        else out(`password of ${name} set${given === undefined ? `; one-time password: ${pw}` : ''}`);
      }),
    );
}

// ---------------------------------------------------------------- the console in `central serve`

export interface ConsoleFlags {
  readonly http?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

export function addConsoleOptions(cmd: Command): Command {
  return cmd
    .option('--http <host:port>', 'serve the operators\' console here (off unless given; plain HTTP only on loopback, e.g. 127.0.0.1:8080; port 0: a free one)')
    .option('--tls-cert <file>', 'the console\'s TLS certificate chain (PEM): required with --http off loopback')
    .option('--tls-key <file>', 'its private key (PEM)');
}

/** host:port, [v6]:port. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) bad(`--http '${v}' must be HOST:PORT (e.g. 127.0.0.1:8080)`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Starts the console when --http asks for it; says where (`say`, default stdout). Null without --http. */
export async function startConsole(central: Central, f: ConsoleFlags, o: { readonly log?: (line: string) => void; readonly say?: (line: string) => void; readonly pkiDir?: string } = {}): Promise<ConsoleServer | null> {
  const log = o.log;
  if (f.http === undefined) {
    if (f.tlsCert !== undefined || f.tlsKey !== undefined) bad('--tls-cert and --tls-key go with --http');
    return null;
  }
  const { host, port } = parseListen(f.http);
  const { ConsoleError, ConsoleServer, isLoopback } = await import('../console/console-server.js');
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) bad('give both --tls-cert and --tls-key');
  if (f.tlsCert === undefined && !isLoopback(host)) bad(`--http ${f.http}: plain HTTP only on loopback (127.0.0.1, ::1); give --tls-cert and --tls-key to serve on ${host}`);
  let tls: { cert: Buffer; key: Buffer; ca?: Buffer; crl?: Buffer } | undefined;
  try {
    if (f.tlsCert !== undefined && f.tlsKey !== undefined) {
      tls = { cert: readFileSync(f.tlsCert), key: readFileSync(f.tlsKey) };
      // The deployment CA: operators' client certificates log in too (POST /api/login/certificate), checked against its CRL.
      const pki = o.pkiDir;
      if (pki !== undefined && existsSync(join(pki, 'ca.crt.pem'))) tls = { ...tls, ca: readFileSync(join(pki, 'ca.crt.pem')), ...(existsSync(join(pki, 'crl.pem')) ? { crl: readFileSync(join(pki, 'crl.pem')) } : {}) };
    }
  } catch (e) {
    throw new CliError(`cannot read the console's TLS files: ${e instanceof Error ? e.message : String(e)}`, 2);
  }
  try {
    const server = await ConsoleServer.start({ central, host, port, ...(tls !== undefined ? { tls } : {}), ...(log !== undefined ? { log } : {}) });
    (o.say ?? out)(`console: ${server.url}`);
    return server;
  } catch (e) {
    if (e instanceof ConsoleError) throw new CliError(e.message, 2);
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new CliError(`--http ${f.http}: cannot listen there (${code})`, 4);
    throw e;
  }
}
