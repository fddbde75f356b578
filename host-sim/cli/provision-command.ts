// `subline provision`: registers the gate's identity in the central's
// database (gate-registry.ts; a re-provisioned gate gets the next key id and
// its old record stops working) and writes its provisioning record
// (protocol/provisioning.ts, strict CBOR) with the central's public key as
// the trusted key, the deployment key and the gate's own MAC key (derived
// from the master key: gate-keys.ts); reads it back and decodes it before
// saying it is done. The registration is committed only once the record is
// written.
// `subline provision --check FILE` validates a record and prints it (never
// the deployment key or the password).

import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { extname } from 'node:path';
import { frameProvisioningRecord, PROVISIONING_MAGIC, readProvisioningImage } from '../../firmware/moddable/provisioning-image.js';
import { Option, type Command } from 'commander';
import { DEFAULT_POLICY } from '../../firmware/core/decision.js';
import { bytesEqual, toHex } from '../../protocol/hex.js';
import { decodeProvisioning, encodeProvisioning, type ProvisioningRecord } from '../../protocol/provisioning.js';
import { readKeyFile } from '../central/keys.js';
import { deriveGateKey } from '../central/gate-keys.js';
import { GateRegistryError } from '../central/gate-registry.js';
import type { DeploymentPki, GateCredentials } from '../pki/deployment-pki.js';
import { CliError } from './cli-error.js';
import { addGroup, bad, brokerOption, checkBrokerUrl, checkId, checkTopicRoot, dataOption, dataPaths, dbOption, isoSeconds, listOption, loadKeys, nowSeconds, openStore, out, parseInteger, requireList, topicRootOption } from './common.js';

type Action = ProvisioningRecord['policy']['fresh'];
const ACTIONS: readonly Action[] = ['normal', 'individual_only', 'deny'];
const STATES = ['fresh', 'stale', 'expired', 'unsynced'] as const;

interface ProvisionOptions {
  readonly data: string;
  readonly db?: string;
  readonly check?: string;
  readonly json?: boolean;
  readonly gate?: string;
  readonly site?: string;
  readonly line?: 'first' | 'second';
  readonly direction?: 'in' | 'out';
  readonly lane?: 'person' | 'vehicle' | 'goods';
  readonly list: string;
  readonly broker: string;
  readonly topicRoot: string;
  readonly username?: string;
  readonly password?: string;
  readonly journalEpoch?: string;
  readonly staleAfter?: string;
  readonly policy?: string;
  readonly passback: string;
  readonly out?: string;
  readonly force?: boolean;
}

export function registerProvision(program: Command): void {
  addGroup(program, 'provision', '')
    .description("write a gate's provisioning record (CBOR) with this central's keys, or --check an existing one")
    .option('--gate <id>', 'gate id (1-32 of [a-z0-9_-])')
    .option('--site <site>', 'site, e.g. futian-port (1-32 of [a-z0-9_-])')
    .addOption(new Option('--line <line>', 'sub-line').choices(['first', 'second']))
    .addOption(new Option('--direction <direction>', 'into or out of the supervised area').choices(['in', 'out']))
    .addOption(new Option('--lane <lane>', 'lane kind').choices(['person', 'vehicle', 'goods']))
    .addOption(listOption())
    .addOption(brokerOption('broker URL the gate connects to (mqtt:// or mqtts://host:port)'))
    .addOption(topicRootOption())
    .option('--username <user>', 'MQTT username (printable ASCII, at most 64)')
    .addOption(new Option('--password <password>', 'MQTT password (1-128 bytes; better from the environment than on the command line)').env('SUBLINE_GATE_PASSWORD'))
    .option('--journal-epoch <n>', 'journal epoch, new on every (re)provisioning (default: now, in UTC seconds)')
    .option('--stale-after <seconds>', "whitelist turns stale after this many seconds without a head (60-604800; default: the line's)")
    .option('--policy <state=action,...>', `action per freshness state (${STATES.join(', ')}) among ${ACTIONS.join(', ')}; default: the line's`)
    .option('--passback <seconds>', 'anti-passback window (0-86400; 0 = off)', '0')
    .option('--out <file>', 'where to write the record, mode 0600: FILE.bin is framed for the gate\'s provision partition (parttool), any other name the bare CBOR record')
    .option('--force', 'replace an existing --out file')
    .option('--check <file>', 'validate an existing record and print it (without secrets)')
    .option('--json', 'with --check: print JSON')
    .addOption(dataOption())
    .addOption(dbOption())
    .action((o: ProvisionOptions) => (o.check !== undefined ? check(o.check, o) : provision(o)));
}

function policyOf(line: 'first' | 'second', staleAfter: string | undefined, spec: string | undefined): ProvisioningRecord['policy'] {
  const p = { ...DEFAULT_POLICY[line] };
  if (staleAfter !== undefined) p.staleAfterSeconds = parseInteger(staleAfter, '--stale-after', 60, 7 * 86400);
  if (spec !== undefined) {
    const parts = spec.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (parts.length === 0) bad('--policy is empty (expected e.g. fresh=normal,stale=individual_only)');
    for (const part of parts) {
      const m = /^([a-z_]+)=([a-z_]+)$/.exec(part);
      if (m === null) bad(`--policy: '${part}' must be state=action`);
      const [, state, action] = m as unknown as [string, string, string];
      if (!(STATES as readonly string[]).includes(state)) bad(`--policy: '${state}' is not a freshness state (${STATES.join(', ')})`);
      if (!(ACTIONS as readonly string[]).includes(action)) bad(`--policy: ${state}='${action}' is not an action (${ACTIONS.join(', ')})`);
      p[state as (typeof STATES)[number]] = action as Action;
    }
  }
  return p;
}

async function provision(o: ProvisionOptions): Promise<void> {
  for (const [k, flag] of [
    ['gate', '--gate'],
    ['site', '--site'],
    ['line', '--line'],
    ['direction', '--direction'],
    ['lane', '--lane'],
    ['out', '--out'],
  ] as const) {
    if (o[k] === undefined) bad(`${flag} is required (or --check FILE)`);
  }
  if (o.json === true) bad('--json goes with --check');
  const gate = checkId(o.gate as string, '--gate');
  const site = checkId(o.site as string, '--site');
  const list = checkId(o.list, '--list');
  const broker = checkBrokerUrl(o.broker);
  const topicRoot = checkTopicRoot(o.topicRoot);
  if (topicRoot.length > 64) bad('--topic-root is longer than 64 characters');
  const line = o.line as 'first' | 'second';
  if (o.username !== undefined && !/^[\x20-\x7e]{0,64}$/.test(o.username)) bad('--username must be at most 64 printable ASCII characters');
  const password = o.password !== undefined ? new TextEncoder().encode(o.password) : undefined;
  if (password !== undefined && (password.length < 1 || password.length > 128)) bad('--password must be 1-128 bytes');
  if (o.password !== undefined && o.username === undefined) bad('--password needs --username');
  const journalEpoch = o.journalEpoch !== undefined ? parseInteger(o.journalEpoch, '--journal-epoch', 1, 0xffffffff) : nowSeconds();
  const passbackSeconds = parseInteger(o.passback, '--passback', 0, 86400);
  const policy = policyOf(line, o.staleAfter, o.policy);
  const file = o.out as string;
  if (existsSync(file) && o.force !== true) throw new CliError(`--out ${file} already exists (pass --force to replace it)`, 3);
  const paths = dataPaths(o.data, o.db);
  const keys = loadKeys(paths);
  const store = await openStore(paths, keys);
  let issued: GateCredentials | null = null;
  let pki: DeploymentPki | null = null;
  let written = false;
  try {
    await requireList(store.registry, list);
    const identities = store.identities;
    const cur = await identities.get(gate);
    if (cur?.state === 'decommissioned') throw new CliError(`gate ${gate} was decommissioned: its identity has ended (provision the gate under a new id)`, 3);
    const direction = o.direction as 'in' | 'out';
    const lane = o.lane as 'person' | 'vehicle' | 'goods';
    // The TLS client certificate first (signing is asynchronous); revoked again below if the record is not written.
    pki = await openPki(paths.pki);
    issued = await pki.issueGate(gate);
    const tls = { cert: issued.certDer, key: issued.keyDer, ca: issued.caDer };
    // One transaction: the identity is registered only if the record is written.
    await store.db.transaction(async () => {
      let identity;
      try {
        identity = await identities.register({ gate, site, list, line, direction, lane }, nowSeconds());
      } catch (e) {
        if (e instanceof GateRegistryError) throw new CliError(e.message, 3);
        throw e;
      }
      const record: ProvisioningRecord = {
        gate, site, line, direction, lane, list, topicRoot, broker,
        ...(o.username !== undefined ? { username: o.username } : {}),
        ...(password !== undefined ? { password } : {}),
        trustedKeys: [keys.publicKey], deploymentKey: keys.deploymentKey,
        gateKey: deriveGateKey(keys.gateMasterKey, gate, identity.keyId), gateKeyId: identity.keyId, tls,
        journalEpoch, policy, passbackSeconds,
      };
      writeRecord(file, record);
      written = true;
      out(`gate identity: ${gate} ${identity.keyId === 1 ? 'registered' : `re-provisioned (key id ${identity.keyId}; records written before this one no longer work)`}`);
    }, { write: true });
    // A re-provisioned gate's earlier certificates end with its earlier records.
    const old = await pki.revokeOthers(gate, issued.serial);
    out(`TLS client certificate: CN ${gate}, serial ${issued.serial}${old > 0 ? ` (${old} earlier certificate(s) of this gate revoked: reload the broker to apply the CRL)` : ''}`);
  } finally {
    if (!written && issued !== null && pki !== null) await pki.revokeSerial(issued.serial);
    await store.close();
  }
}

/** The deployment PKI of the data directory (exit 3 when there is none). */
async function openPki(dir: string): Promise<DeploymentPki> {
  const { DeploymentPki } = await import('../pki/deployment-pki.js');
  if (!DeploymentPki.exists(dir)) throw new CliError(`no deployment PKI in ${dir}: run \`subline central init\` on this data directory (it creates the CA and keeps the existing keys)`, 3);
  try {
    return await DeploymentPki.load(dir);
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e), 3);
  }
}

function writeRecord(file: string, record: ProvisioningRecord): void {
  const { gate, site, line, list, journalEpoch } = record;
  let bytes: Uint8Array;
  try {
    bytes = encodeProvisioning(record);
  } catch (e) {
    throw new CliError(`the record cannot be encoded: ${e instanceof Error ? e.message : String(e)}`, 2);
  }
  // Check it the way the gate will, before writing anything.
  const decoded = decodeProvisioning(bytes);
  if (!decoded.ok) bad(`the record does not validate: ${decoded.error.code} at '${decoded.error.field}'`);

  // FILE.bin: framed for the gate's `provision` partition (docs/FLASHING.md), ready for parttool.
  const framed = extname(file).toLowerCase() === '.bin';
  const content = framed ? frameProvisioningRecord(bytes) : bytes;
  try {
    // 0600 either way: the record holds the deployment key and the gate's key.
    writeFileAtomic(file, content, {
      mode: 0o600,
      verify: (tmp) => {
        const back = readRecordFile(new Uint8Array(readFileSync(tmp)));
        if (!back.ok || !bytesEqual(encodeProvisioning(back.value), bytes)) throw new CliError(`${file}: the record read back does not decode to what was written`, 1);
      },
    });
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`--out ${file}: cannot be written (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 2);
  }
  out(`wrote ${file} (${content.length} bytes${framed ? ', framed for the provision partition' : ''}): gate ${gate} at ${site}, ${line} line, ${record.direction}, ${record.lane} lane, list ${list}, journal epoch ${journalEpoch}`);
  out(`trusted key: ${toHex(record.trustedKeys[0] as Uint8Array)}; gate key id ${record.gateKeyId}`);
}

function isFramed(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && PROVISIONING_MAGIC.every((b, i) => bytes[i] === b);
}

/** A bare record (CBOR), or a framed one: a .bin image or a dump of the partition read back from a gate. */
function readRecordFile(bytes: Uint8Array): { ok: true; value: ProvisioningRecord } | { ok: false; detail: string } {
  if (isFramed(bytes)) {
    const r = readProvisioningImage((offset, length) => bytes.slice(offset, offset + length), bytes.length);
    return r.ok ? r : { ok: false, detail: `${r.error} (${r.detail})` };
  }
  const r = decodeProvisioning(bytes);
  return r.ok ? r : { ok: false, detail: `${r.error.code}${r.error.field !== '' ? ` at field '${r.error.field}'` : ''}` };
}

/** The record without its secrets, for printing. */
async function describe(p: ProvisioningRecord, centralKey: Uint8Array | undefined): Promise<Record<string, unknown>> {
  const { commonName } = await import('../pki/deployment-pki.js');
  return {
    gate: p.gate,
    site: p.site,
    line: p.line,
    direction: p.direction,
    lane: p.lane,
    list: p.list,
    topicRoot: p.topicRoot,
    broker: p.broker,
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: `(${p.password.length} bytes, not shown)` } : {}),
    trustedKeys: p.trustedKeys.map((k) => `${toHex(k)}${centralKey !== undefined && bytesEqual(k, centralKey) ? ' (this central)' : ''}`),
    deploymentKey: '(32 bytes, not shown)',
    gateKey: '(32 bytes, not shown)',
    gateKeyId: p.gateKeyId,
    tls: p.tls === undefined ? 'none (plain MQTT only)' : `client certificate ${commonName(p.tls.cert) ?? '(unreadable)'} (${p.tls.cert.length} bytes), key (${p.tls.key.length} bytes, not shown), CA ${commonName(p.tls.ca) ?? '(unreadable)'}`,
    journalEpoch: p.journalEpoch,
    policy: p.policy,
    passbackSeconds: p.passbackSeconds,
  };
}

async function check(file: string, o: ProvisionOptions): Promise<void> {
  for (const f of ['gate', 'site', 'line', 'direction', 'lane', 'out', 'username', 'password', 'journalEpoch', 'staleAfter', 'policy'] as const) {
    if (o[f] !== undefined) bad(`--check takes no --${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return bad(code === 'ENOENT' ? `--check ${file}: no such file` : `--check ${file}: cannot be read (${code ?? String(e)})`);
  }
  const r = readRecordFile(bytes);
  if (!r.ok) throw new CliError(`${file}: not a valid provisioning record: ${r.detail}`, 2);
  let centralKey: Uint8Array | undefined;
  try {
    centralKey = readKeyFile(dataPaths(o.data).keys).publicKey;
  } catch {
    centralKey = undefined; // no key file here: nothing to compare with
  }
  const d = await describe(r.value, centralKey);
  if (o.json === true) {
    out(JSON.stringify(d, null, 2));
    return;
  }
  out(`${file}: valid provisioning record (${bytes.length} bytes${isFramed(bytes) ? ', framed: a partition image' : ''})`);
  for (const [k, v] of Object.entries(d)) {
    if (k === 'trustedKeys') (v as string[]).forEach((key, i) => out(`  trusted key ${i + 1}: ${key}`));
    else if (k === 'policy') {
      const p = v as ProvisioningRecord['policy'];
      out(`  policy: stale after ${p.staleAfterSeconds} s; fresh=${p.fresh}, stale=${p.stale}, expired=${p.expired}, unsynced=${p.unsynced}`);
    } else if (k === 'journalEpoch') out(`  journalEpoch: ${String(v)}${(v as number) > 1_000_000_000 ? ` (${isoSeconds(v as number)})` : ''}`);
    else out(`  ${k}: ${String(v)}`);
  }
  if (centralKey !== undefined && !r.value.trustedKeys.some((k) => bytesEqual(k, centralKey))) out(`  note: the central key in ${dataPaths(o.data).keys} is NOT among the trusted keys`);
}
