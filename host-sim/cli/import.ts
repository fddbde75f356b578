// `subline central import`: industries, institutions, subjects (people,
// vehicles, consignments), credentials and grants from CSV and JSON files
// (formats in docs/CLI.md), applied in ONE registry transaction. The first
// bad value stops the import with its file, line (or JSON path) and field,
// and nothing is imported.
//
// CSV files are streamed (csv-parse's stream parser, row by row into the open
// transaction: Registry.bulk), so a million rows need no more memory than
// a few: only each file's header is read before the import starts. JSON files
// are read whole (they are for small, structured imports).
//
// Order of application, whatever the order of the files: industries,
// institutions, subjects (with their inline card/uhf credentials),
// credentials, grants — so any row may refer to anything defined in the
// same import.

import { closeSync, createReadStream, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parse as parseCsvStream } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import { MAX_RAW_ID_BYTES } from '../../protocol/credential-key.js';
import type { Direction, LaneKind, Line } from '../../protocol/whitelist-format.js';
import type { GrantSpec } from '../central/image-builder.js';
import { CapacityError, RegistryError, type GrantLevel, type Registry, type SubjectKind } from '../central/registry.js';
import { CliError } from './cli-error.js';

export const IMPORT_TYPES = ['industries', 'institutions', 'people', 'vehicles', 'consignments', 'subjects', 'credentials', 'grants'] as const;
export type ImportType = (typeof IMPORT_TYPES)[number];

interface TypeSpec {
  readonly required: readonly string[];
  readonly optional: readonly string[];
}

const SUBJECT_OPTIONAL = ['institution', 'card', 'uhf'];
const COLUMNS: Record<ImportType, TypeSpec> = {
  industries: { required: ['code', 'name'], optional: [] },
  institutions: { required: ['name'], optional: ['industry'] },
  people: { required: ['id', 'name'], optional: ['kind', ...SUBJECT_OPTIONAL] },
  vehicles: { required: ['id', 'name'], optional: ['kind', ...SUBJECT_OPTIONAL] },
  consignments: { required: ['id', 'name'], optional: ['kind', ...SUBJECT_OPTIONAL] },
  subjects: { required: ['id', 'kind', 'name'], optional: SUBJECT_OPTIONAL },
  credentials: { required: ['subject', 'kind', 'raw_id'], optional: [] },
  grants: { required: ['level', 'target', 'lines', 'directions', 'lanes'], optional: ['valid_from', 'valid_until', 'passback_group'] },
};

export const IMPLIED_KIND: Partial<Record<ImportType, SubjectKind>> = { people: 'person', vehicles: 'vehicle', consignments: 'goods' };
const NAME_HINTS: Record<string, ImportType> = {
  industries: 'industries', industry: 'industries',
  institutions: 'institutions', institution: 'institutions',
  people: 'people', persons: 'people', person: 'people',
  vehicles: 'vehicles', vehicle: 'vehicles',
  consignments: 'consignments', consignment: 'consignments', goods: 'consignments',
  subjects: 'subjects', subject: 'subjects',
  credentials: 'credentials', credential: 'credentials',
  grants: 'grants', grant: 'grants',
};
/** Application order. */
export const ORDER: readonly ImportType[] = ['industries', 'institutions', 'people', 'vehicles', 'consignments', 'subjects', 'credentials', 'grants'];

/** One row of one file: values by (normalised) column name, and where it came from. */
export interface ImportRow {
  readonly type: ImportType;
  readonly file: string;
  /** CSV: the line number; JSON: undefined. */
  readonly line?: number;
  /** JSON: e.g. people[3]. */
  readonly path?: string;
  readonly values: Readonly<Record<string, unknown>>;
}

export interface ImportSummary {
  readonly rows: number;
  readonly counts: Record<ImportType | 'inline credentials', number>;
  readonly versionBefore: number;
  readonly versionAfter: number;
}

// ---------------------------------------------------------------- errors

export function where(row: ImportRow, field?: string): string {
  if (row.line !== undefined) return `${row.file}:${row.line}${field !== undefined ? `: field '${field}'` : ''}`;
  return `${row.file}: ${row.path ?? ''}${field !== undefined ? `.${field}` : ''}`;
}

export class RowError extends Error {
  constructor(
    readonly row: ImportRow,
    readonly field: string | undefined,
    problem: string,
  ) {
    super(problem);
  }
}

export function rowFail(row: ImportRow, field: string | undefined, problem: string): never {
  throw new RowError(row, field, problem);
}

/** Names a registry field by the column it came from; strips the "op: field " prefix of its message. */
function fromRegistry(row: ImportRow, e: RegistryError, columns: Readonly<Record<string, string>>): never {
  const field = columns[e.field] ?? columns[e.field.split('.')[0] ?? ''] ?? e.field;
  const m = /^[A-Za-z]+: (\S+) (.*)$/s.exec(e.message);
  const problem = m !== null && m[1] === e.field ? (m[2] ?? e.message) : e.message;
  rowFail(row, field, problem);
}

// ---------------------------------------------------------------- reading files

function normaliseColumn(c: string): string {
  return c
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

function detectCsvType(columns: readonly string[], file: string): ImportType | undefined {
  const has = (c: string) => columns.includes(c);
  if (has('level') && has('target')) return 'grants';
  if (has('raw_id')) return 'credentials';
  if (has('code')) return 'industries';
  if (has('id') && has('kind')) return 'subjects';
  const stem = basename(file, extname(file)).toLowerCase();
  const hint = Object.entries(NAME_HINTS).find(([word]) => stem.startsWith(word))?.[1];
  if (has('id')) return hint !== undefined && IMPLIED_KIND[hint] !== undefined ? hint : undefined;
  if (has('name')) return 'institutions';
  return undefined;
}

function checkColumns(type: ImportType, columns: readonly string[], file: string, at: (c: string) => string): void {
  const spec = COLUMNS[type];
  for (const c of columns) if (!spec.required.includes(c) && !spec.optional.includes(c)) throw new CliError(`${at(c)}: unknown column '${c}' for ${type} (columns: ${[...spec.required, ...spec.optional].join(', ')}); nothing imported`, 2);
  for (const c of spec.required) if (!columns.includes(c)) throw new CliError(`${file}:1: missing column '${c}' for ${type} (required: ${spec.required.join(', ')}); nothing imported`, 2);
}

/** How a CSV file is read: its type (from --type, its header or its name) and its normalised header. */
export interface CsvSource {
  readonly file: string;
  readonly bytes: number;
  readonly type: ImportType;
  readonly header: readonly string[];
}

/** What an import reads: CSV files (streamed when applied) and JSON files (read whole now). */
export interface ImportSource {
  readonly file: string;
  readonly bytes: number;
  readonly csv?: CsvSource;
  readonly json?: readonly ImportRow[];
  /** JSON: the types the file names, an empty array too (what `--sync` makes the registry match). */
  readonly jsonTypes?: readonly ImportType[];
}

const HEADER_PROBE_BYTES = 1 << 20;

function csvError(file: string, e: unknown): CliError {
  const err = e as { lines?: number; message?: string };
  return new CliError(`${file}:${err.lines ?? '?'}: not valid CSV: ${err.message ?? String(e)}; nothing imported`, 2);
}

const RECORD_OPTIONS = { bom: true, columns: (h: string[]) => h.map(normaliseColumn), skip_empty_lines: true, trim: true, info: true } as const;

/** The header (first record) of a CSV text, normalised, checked and typed. */
function csvHeader(file: string, head: string, bytes: number, forced?: ImportType): CsvSource {
  let first: string[][];
  try {
    const records: unknown = parseCsv(head, { bom: true, skip_empty_lines: true, trim: true, to_line: 1 });
    first = records as string[][];
  } catch (e) {
    throw csvError(file, e);
  }
  const header = (first[0] ?? []).map(normaliseColumn);
  if (header.length === 0) throw new CliError(`${file}: empty (no header line); nothing imported`, 2);
  const dup = header.find((c, i) => header.indexOf(c) !== i);
  if (dup !== undefined) throw new CliError(`${file}:1: column '${dup}' appears twice; nothing imported`, 2);
  const type = forced ?? detectCsvType(header, file);
  if (type === undefined) throw new CliError(`${file}: cannot tell what this CSV holds from its header (${header.join(',')}): start the file name with people, vehicles or consignments, or pass --type (docs/CLI.md lists the columns of each type); nothing imported`, 2);
  checkColumns(type, header, file, () => `${file}:1`);
  return { file, bytes, type, header };
}

function csvRow(source: CsvSource, record: Record<string, string>, line: number): ImportRow {
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (v !== '') values[k] = v;
  return { type: source.type, file: source.file, line, values };
}

/** Every row of a CSV text at once (small files, tests). */
export function readCsv(file: string, text: string, forced?: ImportType): ImportRow[] {
  const source = csvHeader(file, text, text.length, forced);
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv<{ record: Record<string, string>; info: { lines: number } }>(text, RECORD_OPTIONS);
  } catch (e) {
    throw csvError(file, e);
  }
  return records.map(({ record, info }) => csvRow(source, record, info.lines));
}

/** The rows of a CSV file, streamed; `onBytes` hears of every chunk read. */
export async function* streamCsv(source: CsvSource, onBytes?: (n: number) => void): AsyncGenerator<ImportRow> {
  const input = createReadStream(source.file);
  if (onBytes !== undefined) input.on('data', (chunk) => onBytes(chunk.length));
  const parser = parseCsvStream(RECORD_OPTIONS);
  input.on('error', (e) => parser.destroy(e));
  input.pipe(parser);
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) yield csvRow(source, record, info.lines);
  } catch (e) {
    if (e instanceof CliError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && !code.startsWith('CSV_')) throw new CliError(`${source.file}: cannot be read (${code}); nothing imported`, 2);
    throw csvError(source.file, e);
  } finally {
    input.destroy();
    parser.destroy();
  }
}

export function readJson(file: string, text: string): ImportRow[] {
  return readJsonTypes(file, text).rows;
}

/** The rows of a JSON text and the types it names (an empty array names its type too). */
function readJsonTypes(file: string, text: string): { rows: ImportRow[]; types: ImportType[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new CliError(`${file}: not valid JSON: ${e instanceof Error ? e.message : String(e)}; nothing imported`, 2);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file}: must hold a JSON object with arrays named ${IMPORT_TYPES.join(', ')}; nothing imported`, 2);
  const rows: ImportRow[] = [];
  const types: ImportType[] = [];
  for (const [key, list] of Object.entries(doc as Record<string, unknown>)) {
    if (!(IMPORT_TYPES as readonly string[]).includes(key)) throw new CliError(`${file}: unknown key '${key}' (expected arrays named ${IMPORT_TYPES.join(', ')}); nothing imported`, 2);
    const type = key as ImportType;
    types.push(type);
    if (!Array.isArray(list)) throw new CliError(`${file}: ${key} must be an array; nothing imported`, 2);
    list.forEach((item: unknown, i: number) => {
      const path = `${key}[${i}]`;
      if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new CliError(`${file}: ${path} must be an object; nothing imported`, 2);
      const values: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item as Record<string, unknown>)) if (v !== null && v !== '') values[normaliseColumn(k)] = v;
      const row: ImportRow = { type, file, path, values };
      const spec = COLUMNS[type];
      for (const c of Object.keys(values)) if (!spec.required.includes(c) && !spec.optional.includes(c)) throw new CliError(`${where(row, c)}: unknown field for ${type} (fields: ${[...spec.required, ...spec.optional].join(', ')}); nothing imported`, 2);
      rows.push(row);
    });
  }
  return { rows, types };
}

function cannotRead(file: string, e: unknown): CliError {
  const code = (e as NodeJS.ErrnoException).code;
  return new CliError(code === 'ENOENT' ? `${file}: no such file; nothing imported` : `${file}: cannot be read (${code ?? String(e)}); nothing imported`, 2);
}

/**
 * Opens every file for an import (CSV or JSON by extension; JSON also when it
 * starts with '{'): a CSV file's header is read and checked now, its rows when
 * the import runs; a JSON file is read whole.
 */
export function openImportFiles(files: readonly string[], forced?: ImportType): ImportSource[] {
  const sources: ImportSource[] = [];
  for (const file of files) {
    let head: string;
    let bytes: number;
    try {
      bytes = statSync(file).size;
      const fd = openSync(file, 'r');
      try {
        const buf = new Uint8Array(Math.min(bytes, HEADER_PROBE_BYTES));
        const n = readSync(fd, buf, 0, buf.length, 0);
        head = new TextDecoder().decode(buf.subarray(0, n));
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw cannotRead(file, e);
    }
    const ext = extname(file).toLowerCase();
    const json = ext === '.json' || (ext !== '.csv' && head.replace(/^\uFEFF/, '').trimStart().startsWith('{'));
    if (json) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw cannotRead(file, e);
      }
      const { rows, types } = readJsonTypes(file, text);
      sources.push({ file, bytes, json: rows, jsonTypes: types });
    } else {
      // The header from the first MiB: a header line longer than that is not a header.
      const cut = bytes > HEADER_PROBE_BYTES ? head.slice(0, Math.max(head.lastIndexOf('\n'), 0)) : head;
      sources.push({ file, bytes, csv: csvHeader(file, cut, bytes, forced) });
    }
  }
  return sources;
}

/** Every row of every file, in file order (small imports and tests; `central import` streams). */
export async function readImportFiles(files: readonly string[], forced?: ImportType): Promise<ImportRow[]> {
  const rows: ImportRow[] = [];
  for (const source of openImportFiles(files, forced)) {
    if (source.json !== undefined) for (const row of source.json) rows.push(row);
    else if (source.csv !== undefined) for await (const row of streamCsv(source.csv)) rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------- values

export function text(row: ImportRow, field: string, required: true): string;
export function text(row: ImportRow, field: string, required: false): string | undefined;
export function text(row: ImportRow, field: string, required: boolean): string | undefined {
  const v = row.values[field];
  if (v === undefined) return required ? rowFail(row, field, 'is required') : undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') rowFail(row, field, 'must be a string');
  return v.trim();
}

/** A list of items: an array of strings, or one string split at commas, semicolons, bars or spaces. */
export function items(row: ImportRow, field: string): string[] {
  const v = row.values[field];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[\s,;|]+/).filter((s) => s !== '') : null;
  if (list === null || list.some((x) => typeof x !== 'string')) rowFail(row, field, 'must be a string or an array of strings');
  return list as string[];
}

export function oneOf<T extends string>(row: ImportRow, field: string, allowed: readonly T[]): T {
  const v = text(row, field, true);
  if (!(allowed as readonly string[]).includes(v)) rowFail(row, field, `'${v}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

function subset<T extends string>(row: ImportRow, field: string, allowed: readonly T[]): T[] {
  const list = items(row, field);
  if (list.length === 0) rowFail(row, field, `must name at least one of ${allowed.join(', ')}`);
  for (const x of list) if (!(allowed as readonly string[]).includes(x)) rowFail(row, field, `'${x}' is not one of ${allowed.join(', ')}`);
  return list as T[];
}

function time(row: ImportRow, field: string, endOfDay: boolean): number | undefined {
  const v = row.values[field];
  if (v === undefined) return undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) rowFail(row, field, 'must be UTC seconds in 0..4294967295');
    return v;
  }
  if (typeof v !== 'string') rowFail(row, field, 'must be a date, an ISO date and time, or UTC seconds');
  const s = v.trim();
  let seconds: number;
  if (/^\d+$/.test(s)) seconds = Number(s);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const ms = Date.parse(`${s}T00:00:00Z`);
    if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== s) rowFail(row, field, `'${s}' is not a valid date`);
    seconds = ms / 1000 + (endOfDay ? 86399 : 0);
  } else {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? s : `${s}Z`;
    const ms = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(s) ? Date.parse(zoned.replace(' ', 'T')) : NaN;
    if (Number.isNaN(ms)) rowFail(row, field, `'${s}' must be a date (2027-01-01), an ISO date and time or UTC seconds`);
    seconds = Math.floor(ms / 1000);
  }
  if (seconds < 0 || seconds > 0xffffffff) rowFail(row, field, `'${s}' is outside 1970..2106`);
  return seconds;
}

function integer(row: ImportRow, field: string, min: number, max: number): number | undefined {
  const v = row.values[field];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) rowFail(row, field, `must be an integer in ${min}..${max}`);
  return n;
}

export function hexId(row: ImportRow, field: string, v: string): string {
  if (!/^([0-9a-fA-F]{2})+$/.test(v)) rowFail(row, field, `'${v}' must be hex digits (an even number)`);
  if (v.length / 2 > MAX_RAW_ID_BYTES) rowFail(row, field, `'${v}' is longer than ${MAX_RAW_ID_BYTES} bytes`);
  return v.toLowerCase();
}

/** Digits: an id. Otherwise resolved by `byName`. */
async function reference(row: ImportRow, field: string, what: string, byId: (id: number) => Promise<boolean>, byName: (name: string) => Promise<number[]>): Promise<number> {
  const v = row.values[field];
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v.trim()))) {
    const id = Number(v);
    if (!Number.isSafeInteger(id) || !(await byId(id))) rowFail(row, field, `${what} ${String(v)} does not exist`);
    return id;
  }
  if (typeof v !== 'string') rowFail(row, field, `must be the ${what}'s id or name`);
  const found = await byName(v.trim());
  if (found.length === 0) rowFail(row, field, `${what} '${v}' does not exist`);
  if (found.length > 1) rowFail(row, field, `${what} name '${v}' is ambiguous (ids ${found.join(', ')}): use the id`);
  return found[0] as number;
}

export const industryRef = (r: Registry, row: ImportRow, field: string): Promise<number> =>
  reference(row, field, 'industry', async (id) => (await r.industry(id)) !== undefined, async (code) => {
    const id = await r.industryByCode(code);
    return id === undefined ? [] : [id];
  });
export const institutionRef = (r: Registry, row: ImportRow, field: string): Promise<number> =>
  reference(row, field, 'institution', async (id) => (await r.institution(id)) !== undefined, (name) => r.institutionsNamed(name));

// ---------------------------------------------------------------- applying

const LINES: readonly Line[] = ['first', 'second'];
const DIRECTIONS: readonly Direction[] = ['in', 'out'];
const LANES: readonly LaneKind[] = ['person', 'vehicle', 'goods'];
const KINDS: readonly SubjectKind[] = ['person', 'vehicle', 'goods'];
export const LEVELS: readonly GrantLevel[] = ['individual', 'institution', 'industry'];

/** Runs a registry call for a row: a RegistryError becomes the row's error, its field named by the column it came from. */
export async function registryCall<T>(row: ImportRow, columns: Readonly<Record<string, string>>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RegistryError) fromRegistry(row, e, columns);
    throw e;
  }
}

/** A subject row's id, kind (told by its type, or its kind column, which must agree) and name. */
export function subjectOf(row: ImportRow): { readonly id: string; readonly kind: SubjectKind; readonly name: string } {
  const implied = IMPLIED_KIND[row.type];
  const kind = row.values.kind === undefined && implied !== undefined ? implied : oneOf(row, 'kind', KINDS);
  if (implied !== undefined && kind !== implied) rowFail(row, 'kind', `is '${kind}' but ${row.type} are of kind ${implied}`);
  return { id: text(row, 'id', true), kind, name: text(row, 'name', true) };
}

/** Registry fields of a grant by the columns they come from. */
export const GRANT_COLUMNS: Readonly<Record<string, string>> = { level: 'level', target: 'target', spec: 'lines', 'spec.lines': 'lines', 'spec.directions': 'directions', 'spec.lanes': 'lanes', 'spec.validFrom': 'valid_from', 'spec.validUntil': 'valid_until', 'spec.passbackGroup': 'passback_group' };

/** A grant row's rights (its level and target are resolved by the caller). */
export function grantSpecOf(row: ImportRow): GrantSpec {
  const validFrom = time(row, 'valid_from', false);
  const validUntil = time(row, 'valid_until', true);
  const passbackGroup = integer(row, 'passback_group', 1, 255);
  return {
    lines: subset(row, 'lines', LINES),
    directions: subset(row, 'directions', DIRECTIONS),
    lanes: subset(row, 'lanes', LANES),
    ...(validFrom !== undefined ? { validFrom } : {}),
    ...(validUntil !== undefined ? { validUntil } : {}),
    ...(passbackGroup !== undefined ? { passbackGroup } : {}),
  };
}

/** The rows of one type from every source, in file order; CSV rows streamed (`onBytes` hears of every chunk read). */
export async function* rowsOf(sources: readonly ImportSource[], type: ImportType, onBytes?: (n: number) => void): AsyncGenerator<ImportRow> {
  for (const source of sources) {
    if (source.json !== undefined) {
      for (const row of source.json) if (row.type === type) yield row;
    } else if (source.csv !== undefined && source.csv.type === type) {
      yield* streamCsv(source.csv, onBytes);
    }
  }
}

async function applyRow(r: Registry, row: ImportRow, counts: ImportSummary['counts']): Promise<void> {
  const reg = <T>(columns: Readonly<Record<string, string>>, fn: () => Promise<T>): Promise<T> => registryCall(row, columns, fn);
  switch (row.type) {
    case 'industries': {
      const code = text(row, 'code', true);
      const name = text(row, 'name', true);
      await reg({ code: 'code', name: 'name', id: 'code' }, () => r.addIndustry({ code, name }));
      break;
    }
    case 'institutions': {
      const name = text(row, 'name', true);
      const industry = row.values.industry === undefined ? null : await industryRef(r, row, 'industry');
      await reg({ name: 'name', industry: 'industry', id: 'name' }, () => r.addInstitution({ name, industry }));
      break;
    }
    case 'people':
    case 'vehicles':
    case 'consignments':
    case 'subjects': {
      const { id, kind, name } = subjectOf(row);
      const institution = row.values.institution === undefined ? null : await institutionRef(r, row, 'institution');
      await reg({ id: 'id', kind: 'kind', name: 'name', institution: 'institution' }, () => r.addSubject({ id, kind, name, institution }));
      for (const field of ['card', 'uhf'] as const) {
        for (const raw of items(row, field)) {
          const rawId = hexId(row, field, raw);
          await reg({ rawId: field, kind: field, subject: 'id' }, () => r.addCredential({ subject: id, kind: field, rawId }));
          counts['inline credentials']++;
        }
      }
      break;
    }
    case 'credentials': {
      const subject = text(row, 'subject', true);
      const kind = oneOf(row, 'kind', ['card', 'uhf'] as const);
      const rawId = hexId(row, 'raw_id', text(row, 'raw_id', true));
      await reg({ subject: 'subject', kind: 'kind', rawId: 'raw_id' }, () => r.addCredential({ subject, kind, rawId }));
      break;
    }
    case 'grants': {
      const level = oneOf(row, 'level', LEVELS);
      const target = level === 'individual' ? text(row, 'target', true) : level === 'institution' ? await institutionRef(r, row, 'target') : await industryRef(r, row, 'target');
      const spec = grantSpecOf(row);
      await reg(GRANT_COLUMNS, () => r.grant(level, target, spec));
      break;
    }
  }
  counts[row.type]++;
}

export class DryRun extends Error {}

export interface ImportProgress {
  readonly rows: number;
  readonly bytes: number;
  readonly totalBytes: number;
}

/**
 * Applies the files' rows in one transaction (Registry.bulk): all or
 * nothing, by type in ORDER whatever the order of the files; CSV rows are
 * streamed. `progress` is called every `every` rows and at the end. With
 * dryRun the transaction is rolled back after the last row. A change over a
 * list's capacity throws CapacityError (unless the registry allows it).
 */
export async function applyImport(r: Registry, sources: readonly ImportSource[], options: { readonly dryRun?: boolean; readonly every?: number; readonly progress?: (p: ImportProgress) => void } = {}): Promise<ImportSummary> {
  const counts = Object.fromEntries([...IMPORT_TYPES, 'inline credentials'].map((t) => [t, 0])) as ImportSummary['counts'];
  const versionBefore = await r.version();
  const every = options.every ?? 5000;
  const totalBytes = sources.reduce((n, s) => n + s.bytes, 0);
  let rows = 0;
  let bytes = 0;
  const report = () => options.progress?.({ rows, bytes, totalBytes });
  // Imports only enrol: the count can be kept here, so a file over the capacity stops at the first row past it, not after the last.
  const limit = r.allowOverCapacity ? null : await r.tightestCapacity();
  const enrolledBefore = (await r.counts()).credentials;
  const apply = async (reg: Registry, row: ImportRow) => {
    await applyRow(reg, row, counts);
    if (limit !== null) {
      const n = enrolledBefore + counts.credentials + counts['inline credentials'];
      if (n > limit.capacity) throw new CapacityError(limit.list, n, limit.capacity, where(row));
    }
    rows++;
    if (rows % every === 0) report();
  };
  try {
    await r.bulk(async (reg) => {
      for (const type of ORDER) for await (const row of rowsOf(sources, type, (n) => (bytes += n))) await apply(reg, row);
      bytes = totalBytes;
      report();
      if (options.dryRun === true) throw new DryRun('dry run');
    });
  } catch (e) {
    if (e instanceof DryRun) return { rows, counts, versionBefore, versionAfter: versionBefore };
    if (e instanceof RowError) throw new CliError(`${where(e.row, e.field)}: ${e.message}; nothing imported`, 2);
    if (e instanceof RegistryError) throw new CliError(`${e.message}; nothing imported`, 2);
    throw e;
  }
  return { rows, counts, versionBefore, versionAfter: await r.version() };
}
