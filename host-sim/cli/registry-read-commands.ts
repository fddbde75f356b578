// `subline central people|vehicles|consignments|institutions|industries|grants
// list|show` and `central who-has`: reading the registry (issue 19) — who is
// enrolled, under which institution and industry, with which credentials and
// grants, and whether they pass. Read-only: no keys are needed except to hash
// a raw card or UHF id (who-has --card/--uhf), and nothing is written.
// Queries: host-sim/central/registry-reader.ts; printing: registry-read-output.ts.

import { Option, type Command } from 'commander';
import { credentialKey } from '../../protocol/credential-key.js';
import { fromHex, toHex } from '../../protocol/hex.js';
import { RegistryReader, type SubjectState } from '../central/registry-reader.js';
import type { GrantLevel, SubjectKind } from '../central/registry.js';
import { nodeCrypto } from '../node-crypto.js';
import { CliError } from './cli-error.js';
import { bad, dataOption, dataPaths, dbOption, isoSeconds, loadKeys, note, nowSeconds, out, parseHex, parseInteger, requireDatabase } from './common.js';
import {
  GRANT_COLUMNS, grantJsonDetail, grantText, INDUSTRY_COLUMNS, industryJson, industryText, INSTITUTION_COLUMNS, institutionJson, institutionText, renderList, SUBJECT_COLUMNS, subjectJson, subjectText, type ListFormat,
} from './registry-read-output.js';

/** The subject groups as `central import` names them. */
const SUBJECT_GROUPS: readonly { readonly group: string; readonly kind: SubjectKind; readonly one: string }[] = [
  { group: 'people', kind: 'person', one: 'person' },
  { group: 'vehicles', kind: 'vehicle', one: 'vehicle' },
  { group: 'consignments', kind: 'goods', one: 'consignment' },
];
const GROUP_OF: Record<SubjectKind, string> = { person: 'people', vehicle: 'vehicles', goods: 'consignments' };
const ONE_OF: Record<SubjectKind, string> = { person: 'person', vehicle: 'vehicle', goods: 'consignment' };
const DEFAULT_LIMIT = 100;

interface ReadOptions {
  readonly data: string;
  readonly db?: string;
  readonly format?: ListFormat;
  readonly json?: boolean;
}

interface ListOptions extends ReadOptions {
  readonly limit: string;
  readonly offset: string;
  readonly name?: string;
}

export function registerRegistryReads(central: Command): void {
  for (const g of SUBJECT_GROUPS) {
    const group = central.command(g.group).description(`the registry's ${g.group} (subjects of kind ${g.kind}): list with filters, or show one`);
    listCommand(group, `${g.group}, ordered by id`, SUBJECT_COLUMNS, (c) =>
      c
        .option('--institution <id|name>', 'only those of this institution (an id, or an exact name: every institution of that name)')
        .option('--industry <id|code>', 'only those whose institution is of this industry')
        .option('--name <text>', 'only those whose name contains this text (case-insensitive)')
        .addOption(new Option('--state <state>', 'only those in this state: revoked = no active credential; suspended = it, its institution or its industry is suspended (and it has an active credential); active = neither').choices(['active', 'suspended', 'revoked'])),
    ).action((o: SubjectListOptions) => listSubjects(g.kind, o));
    showCommand(group, `everything about one ${g.one}: institution, industry, credentials, the grants a gate tries, suspensions and whether it passes`, '<id>', `${g.one} id`).action((id: string, o: ReadOptions) => showSubject(g.kind, g.one, id, o));
  }

  const institutions = central.command('institutions').description("the registry's institutions: list with filters, or show one");
  listCommand(institutions, 'institutions, ordered by id', INSTITUTION_COLUMNS, (c) =>
    c.option('--industry <id|code>', 'only those of this industry').option('--name <text>', 'only those whose name contains this text (case-insensitive)'),
  ).action((o: ListOptions & { industry?: string }) => listInstitutions(o));
  showCommand(institutions, 'one institution: its industry, subjects, grants and suspension', '<id|name>', 'institution id or exact name').action((ref: string, o: ReadOptions) => showInstitution(ref, o));

  const industries = central.command('industries').description("the registry's industries: list with filters, or show one");
  listCommand(industries, 'industries, ordered by id', INDUSTRY_COLUMNS, (c) => c.option('--name <text>', 'only those whose name or code contains this text (case-insensitive)')).action((o: ListOptions) => listIndustries(o));
  showCommand(industries, 'one industry: its institutions, subjects, grant and suspension', '<id|code>', 'industry id or code').action((ref: string, o: ReadOptions) => showIndustry(ref, o));

  const grants = central.command('grants').description('the grants and whom they are assigned to: list with filters, or show one');
  listCommand(grants, 'grant assignments (one row per level and target), ordered by grant id and level', GRANT_COLUMNS, (c) =>
    c
      .addOption(new Option('--level <level>', 'only assignments of this level').choices(['individual', 'institution', 'industry']))
      .option('--target <target>', 'only assignments to this target: a subject id, an institution id or exact name, an industry id or code'),
  ).action((o: ListOptions & { level?: GrantLevel; target?: string }) => listGrants(o));
  showCommand(grants, 'one grant: its rights and every level and target it is assigned to', '<id>', 'grant id').action((id: string, o: ReadOptions) => showGrant(id, o));

  central
    .command('who-has')
    .description("who holds a credential: by raw card id, raw UHF tag id (hashed with the data directory's deployment key) or its 8-byte key; the subject, institution, grants and state")
    .option('--card <hex>', 'raw card id (hex)')
    .option('--uhf <hex>', 'raw UHF tag id (hex)')
    .option('--key <hex>', 'credential key (16 hex digits, as in `central events`)')
    .option('--json', 'print one JSON object (key, kind, state, revokedAt, subject: as `people show --json`)')
    .addOption(dataOption())
    .addOption(dbOption())
    .exitOverride()
    .action((o: WhoHasOptions) => whoHas(o));
}

/** `GROUP list`: the filters first, then paging, format and the data options; the fields in the help. */
function listCommand(group: Command, what: string, fields: readonly { readonly name: string }[], filters: (c: Command) => Command): Command {
  const c = group.command('list').description(`list ${what}`);
  filters(c);
  return c
    .option('--limit <n>', 'at most this many rows (1-1000000; a note on stderr says when there are more)', String(DEFAULT_LIMIT))
    .option('--offset <n>', 'skip this many rows first', '0')
    .addOption(new Option('--format <format>', 'output format (default table)').choices(['table', 'csv', 'json']))
    .option('--json', 'same as --format json')
    .addOption(dataOption())
    .addOption(dbOption())
    .addHelpText('after', `\nFields (JSON keys; the CSV header and table columns are their snake_case):\n  ${fields.map((f) => f.name).join(', ')}`)
    .exitOverride();
}

function showCommand(group: Command, what: string, arg: string, argWhat: string): Command {
  return group
    .command('show')
    .description(what)
    .argument(arg, argWhat)
    .addOption(new Option('--format <format>', 'output format (default table)').choices(['table', 'json']))
    .option('--json', 'same as --format json')
    .addOption(dataOption())
    .addOption(dbOption())
    .exitOverride();
}

// ---------------------------------------------------------------- plumbing

function formatOf(o: ReadOptions): ListFormat {
  if (o.json === true && o.format !== undefined && o.format !== 'json') bad(`--json and --format ${o.format} contradict each other`);
  return o.json === true ? 'json' : (o.format ?? 'table');
}

function page(o: ListOptions): { limit: number; offset: number } {
  return { limit: parseInteger(o.limit, '--limit', 1, 1_000_000), offset: parseInteger(o.offset, '--offset', 0, 2 ** 40) };
}

/** --name: a non-empty text. */
function nameFilter(o: ListOptions): string | undefined {
  if (o.name === undefined) return undefined;
  if (o.name.trim() === '') bad('--name must not be empty');
  return o.name.trim();
}

async function withReader<T>(o: ReadOptions, fn: (r: RegistryReader) => Promise<T>, keys?: ReturnType<typeof loadKeys>): Promise<T> {
  // requireDatabase refuses what `central init` did not make (and, with keys, a database of another key file).
  const db = await requireDatabase(dataPaths(o.data, o.db), keys);
  try {
    return await fn(new RegistryReader(db));
  } finally {
    await db.close();
  }
}

function printList(text: string, shown: number, more: boolean, p: { limit: number; offset: number }, what: string): void {
  out(text);
  if (more) note(`(${shown} ${what} shown, from offset ${p.offset}; there are more: --offset ${p.offset + p.limit} shows the next ones, or raise --limit)`);
  else if (shown === 0) note(`(no ${what} match${p.offset > 0 ? ` at offset ${p.offset}` : ''})`);
}

/** Not in the registry: exit 3, as for an unknown gate. */
function notFound(message: string): never {
  throw new CliError(message, 3);
}

// ---------------------------------------------------------------- lists

interface SubjectListOptions extends ListOptions {
  readonly institution?: string;
  readonly industry?: string;
  readonly state?: SubjectState;
}

async function industryRef(r: RegistryReader, ref: string, what: string): Promise<number> {
  const id = await r.industryId(ref);
  if (id === undefined) bad(`${what}: no industry '${ref}' (give its id or code; \`subline central industries list\`)`);
  return id;
}

async function listSubjects(kind: SubjectKind, o: SubjectListOptions): Promise<void> {
  const format = formatOf(o);
  const p = page(o);
  const name = nameFilter(o);
  await withReader(o, async (r) => {
    let institutions: number[] | undefined;
    if (o.institution !== undefined) {
      institutions = await r.institutionIds(o.institution);
      if (institutions.length === 0) bad(`--institution: no institution '${o.institution}' (give its id or exact name; \`subline central institutions list\`)`);
    }
    const industry = o.industry !== undefined ? await industryRef(r, o.industry, '--industry') : undefined;
    const { rows, more } = await r.subjects({ kind, ...p, ...(institutions !== undefined ? { institutions } : {}), ...(industry !== undefined ? { industry } : {}), ...(name !== undefined ? { name } : {}), ...(o.state !== undefined ? { state: o.state } : {}) });
    printList(renderList(SUBJECT_COLUMNS, rows, format), rows.length, more, p, GROUP_OF[kind]);
  });
}

async function listInstitutions(o: ListOptions & { industry?: string }): Promise<void> {
  const format = formatOf(o);
  const p = page(o);
  const name = nameFilter(o);
  await withReader(o, async (r) => {
    const industry = o.industry !== undefined ? await industryRef(r, o.industry, '--industry') : undefined;
    const { rows, more } = await r.institutions({ ...p, ...(industry !== undefined ? { industry } : {}), ...(name !== undefined ? { name } : {}) });
    printList(renderList(INSTITUTION_COLUMNS, rows, format), rows.length, more, p, 'institutions');
  });
}

async function listIndustries(o: ListOptions): Promise<void> {
  const format = formatOf(o);
  const p = page(o);
  const name = nameFilter(o);
  await withReader(o, async (r) => {
    const { rows, more } = await r.industries({ ...p, ...(name !== undefined ? { name } : {}) });
    printList(renderList(INDUSTRY_COLUMNS, rows, format), rows.length, more, p, 'industries');
  });
}

async function listGrants(o: ListOptions & { level?: GrantLevel; target?: string }): Promise<void> {
  const format = formatOf(o);
  const p = page(o);
  if (o.target !== undefined && o.target.trim() === '') bad('--target must not be empty');
  await withReader(o, async (r) => {
    const { rows, more } = await r.grants({ ...p, ...(o.level !== undefined ? { level: o.level } : {}), ...(o.target !== undefined ? { target: o.target.trim() } : {}) });
    printList(renderList(GRANT_COLUMNS, rows, format), rows.length, more, p, 'grant assignments');
  });
}

// ---------------------------------------------------------------- show

function showFormat(o: ReadOptions): 'table' | 'json' {
  return formatOf(o) === 'json' ? 'json' : 'table';
}

async function showSubject(kind: SubjectKind, one: string, id: string, o: ReadOptions): Promise<void> {
  const format = showFormat(o);
  await withReader(o, async (r) => {
    const s = await r.subject(id, nowSeconds());
    if (s === undefined) notFound(`no ${one} '${id}' in the registry (\`subline central ${GROUP_OF[kind]} list\` lists them)`);
    if (s.kind !== kind) notFound(`'${id}' is a ${ONE_OF[s.kind]}, not a ${one}: \`subline central ${GROUP_OF[s.kind]} show ${id}\``);
    out(format === 'json' ? JSON.stringify(subjectJson(s), null, 2) : subjectText(s));
  });
}

async function showInstitution(ref: string, o: ReadOptions): Promise<void> {
  const format = showFormat(o);
  await withReader(o, async (r) => {
    const ids = await r.institutionIds(ref);
    if (ids.length > 1) bad(`institution name '${ref}' is ambiguous (ids ${ids.join(', ')}): give the id`);
    const i = ids[0] === undefined ? undefined : await r.institution(ids[0]);
    if (i === undefined) notFound(`no institution '${ref}' in the registry (\`subline central institutions list\` lists them)`);
    out(format === 'json' ? JSON.stringify(institutionJson(i), null, 2) : institutionText(i));
  });
}

async function showIndustry(ref: string, o: ReadOptions): Promise<void> {
  const format = showFormat(o);
  await withReader(o, async (r) => {
    const id = await r.industryId(ref);
    const d = id === undefined ? undefined : await r.industry(id);
    if (d === undefined) notFound(`no industry '${ref}' in the registry (\`subline central industries list\` lists them)`);
    out(format === 'json' ? JSON.stringify(industryJson(d), null, 2) : industryText(d));
  });
}

async function showGrant(ref: string, o: ReadOptions): Promise<void> {
  const format = showFormat(o);
  const id = parseInteger(ref, 'grant id', 0, 0xfffe);
  await withReader(o, async (r) => {
    const g = await r.grant(id);
    if (g === undefined) notFound(`no grant ${id} in the registry (\`subline central grants list\` lists them)`);
    out(format === 'json' ? JSON.stringify(grantJsonDetail(g), null, 2) : grantText(g));
  });
}

// ---------------------------------------------------------------- who-has

interface WhoHasOptions {
  readonly data: string;
  readonly db?: string;
  readonly card?: string;
  readonly uhf?: string;
  readonly key?: string;
  readonly json?: boolean;
}

async function whoHas(o: WhoHasOptions): Promise<void> {
  const given = (['card', 'uhf', 'key'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) bad('give exactly one of --card, --uhf or --key');
  const k = given[0] as 'card' | 'uhf' | 'key';
  let key: Uint8Array;
  let keys;
  if (k === 'key') key = fromHex(parseHex(o.key as string, '--key', 8, 8));
  else {
    const raw = fromHex(parseHex(o[k] as string, `--${k}`, 1, 64));
    keys = loadKeys(dataPaths(o.data, o.db));
    key = credentialKey(nodeCrypto, keys.deploymentKey, k === 'card' ? 1 : 2, raw);
  }
  await withReader(
    o,
    async (r) => {
      const c = await r.credential(key);
      if (c === undefined) notFound(`no credential ${k === 'key' ? `with key ${o.key}` : `for --${k} ${o[k]}`} is enrolled${k === 'key' ? '' : ` (its key would be ${toHex(key)})`}`);
      const s = await r.subject(c.subject, nowSeconds());
      if (s === undefined) throw new CliError(`credential ${c.key} refers to subject '${c.subject}', which is not in the registry`, 1);
      if (o.json === true) {
        out(JSON.stringify({ key: c.key, kind: c.kind, state: c.revoked ? 'revoked' : 'active', revokedAt: c.revokedAt === null ? null : isoSeconds(c.revokedAt), subject: subjectJson(s) }, null, 2));
        return;
      }
      out(`credential ${c.key} (${c.kind}) ${c.revoked ? `revoked${c.revokedAt === null ? '' : ` ${isoSeconds(c.revokedAt)}`}` : 'active'}, held by ${ONE_OF[s.kind]} '${s.id}'`);
      out(subjectText(s));
    },
    keys,
  );
}
