// `subline sim --data DIR`: the simulator's gates as gates of a real
// deployment, for a secured broker made by `subline broker config --data DIR`.
// Each simulated gate is registered in DIR's gate registry (so the broker's
// ACL, generated from it, lets it in) and gets a TLS client certificate from
// DIR's PKI, kept in DIR/sim-gates/<id>.json (mode 0600) and reused by later
// runs; the simulator's central presents DIR's central certificate. Its
// registry, events and gates' flash are kept in DIR/sim/ (sim-state.ts), in
// files of their own, and reused by the next run: the demo population never
// enters DIR's central.db. A missing DIR is made by `central init`.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, toHex } from '../../protocol/hex.js';
import type { ProvisioningRecord } from '../../protocol/provisioning.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { BrokerAuth } from '../broker-auth.js';
import type { CentralKeys } from '../central/keys.js';
import type { GateSpec } from '../sim/fleet-simulator.js';
import { Command } from 'commander';
import { CliError } from './cli-error.js';
import { registerCentral } from './central-commands.js';
import { dataPaths, loadKeys, openStore, resolveBrokerAuth, type BrokerAuthFlags } from './common.js';

type GateTls = NonNullable<ProvisioningRecord['tls']>;

export interface SimDeployment {
  readonly keys: CentralKeys;
  readonly centralAuth?: BrokerAuth;
  readonly gateTls: ReadonlyMap<string, GateTls>;
  /** Gates registered by this call: the broker's configuration must be written again for them. */
  readonly registered: readonly string[];
}

/** The simulator's own state in DIR (demo database, population, gates' flash): DIR/sim/ (host-sim/sim/sim-state.ts). */
export const simStateDir = (data: string): string => join(dataPaths(data).dir, 'sim');

/**
 * A missing (or empty) DIR is initialised by `subline central init --data
 * DIR` itself: the command runs in this process, through the same code.
 * Returns whether it was.
 */
export async function initIfMissing(data: string): Promise<boolean> {
  const p = dataPaths(data);
  if (existsSync(p.dir) && (readdirSync(p.dir).length > 0 || !statSync(p.dir).isDirectory())) return false;
  const program = new Command('subline').exitOverride();
  registerCentral(program);
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  await program.parseAsync(['central', 'init', '--data', p.dir], { from: 'user' });
  return true;
}

export async function prepareSimDeployment(data: string, specs: readonly GateSpec[], broker: string | undefined, flags: BrokerAuthFlags): Promise<SimDeployment> {
  const p = dataPaths(data);
  const keys = loadKeys(p);
  const store = await openStore(p, keys);
  const { DeploymentPki } = await import('../pki/deployment-pki.js');
  if (!DeploymentPki.exists(p.pki)) throw new CliError(`no deployment PKI in ${p.pki}: run \`subline central init --data ${p.dir}\``, 3);
  const pki = await DeploymentPki.load(p.pki);
  const dir = join(p.dir, 'sim-gates');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const registered: string[] = [];
  const gateTls = new Map<string, GateTls>();
  try {
    const reg = store.identities;
    for (const s of specs) {
      const known = await reg.get(s.id);
      if (known === undefined) {
        await reg.register({ gate: s.id, site: s.site, list: 'main', line: s.line, direction: s.direction, lane: s.lane }, Math.floor(Date.now() / 1000));
        registered.push(s.id);
      } else if (known.state !== 'active') throw new CliError(`${s.id} is decommissioned in ${p.db}: the simulator cannot use that id`, 3);
      const file = join(dir, `${s.id}.json`);
      if (existsSync(file)) {
        const v = JSON.parse(readFileSync(file, 'utf8')) as { cert: string; key: string; ca: string };
        gateTls.set(s.id, { cert: fromHex(v.cert), key: fromHex(v.key), ca: fromHex(v.ca) });
        continue;
      }
      const c = await pki.issueGate(s.id);
      writeFileAtomic(file, new TextEncoder().encode(`${JSON.stringify({ cert: toHex(c.certDer), key: toHex(c.keyDer), ca: toHex(c.caDer) })}\n`), { mode: 0o600 });
      gateTls.set(s.id, { cert: c.certDer, key: c.keyDer, ca: c.caDer });
    }
  } finally {
    await store.close();
  }
  const centralAuth = broker !== undefined ? resolveBrokerAuth(flags, broker, p) : undefined;
  return { keys, ...(centralAuth !== undefined ? { centralAuth } : {}), gateTls, registered };
}
