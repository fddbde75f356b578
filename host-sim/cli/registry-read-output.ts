// How the registry read-outs print (registry-read-commands.ts): the columns
// of each listing — one name per field, camelCase in JSON, snake_case in the
// CSV header, upper case in the table — and the JSON and text views of one
// subject, institution, industry or grant. Times are ISO 8601 UTC; a missing
// value is null in JSON, empty in CSV, '-' in a table.

import { stringify } from 'csv-stringify/sync';
import type { GrantSpec } from '../central/image-builder.js';
import type { Effective, GrantDetail, GrantRow, IndustryDetail, IndustryRow, InstitutionDetail, InstitutionRow, SubjectDetail, SubjectRow } from '../central/registry-reader.js';
import { UNBOUNDED_UNTIL } from '../../protocol/whitelist-format.js';
import { formatTable, isoSeconds } from './common.js';

export type ListFormat = 'table' | 'csv' | 'json';
type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json };

interface Column<R> {
  /** The JSON key; the CSV header is its snake_case, the table header its upper case. */
  readonly name: string;
  readonly value: (r: R) => Json;
  /** CSV and table text when it is not the plain value (arrays of objects). */
  readonly text?: (r: R) => string;
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const specFields = (s: GrantSpec): Record<string, Json> => ({
  lines: [...s.lines],
  directions: [...s.directions],
  lanes: [...s.lanes],
  validFrom: s.validFrom === undefined || s.validFrom === 0 ? null : isoSeconds(s.validFrom),
  validUntil: s.validUntil === undefined || s.validUntil === UNBOUNDED_UNTIL ? null : isoSeconds(s.validUntil),
  schedule: s.schedule ?? null,
  passbackGroup: s.passbackGroup ?? null,
});

const grantRefs = (r: SubjectRow): string => r.grants.map((g) => `${g.level} ${g.grant}`).join(', ');

export const SUBJECT_COLUMNS: readonly Column<SubjectRow>[] = [
  { name: 'id', value: (r) => r.id },
  { name: 'kind', value: (r) => r.kind },
  { name: 'name', value: (r) => r.name },
  { name: 'institution', value: (r) => r.institution },
  { name: 'institutionName', value: (r) => r.institutionName },
  { name: 'industry', value: (r) => r.industry },
  { name: 'industryCode', value: (r) => r.industryCode },
  { name: 'activeCredentials', value: (r) => r.activeCredentials },
  { name: 'revokedCredentials', value: (r) => r.revokedCredentials },
  { name: 'grants', value: (r) => r.grants.map((g) => ({ level: g.level, grant: g.grant })), text: grantRefs },
  { name: 'suspended', value: (r) => [...r.suspended] },
  { name: 'state', value: (r) => r.state },
];

export const INSTITUTION_COLUMNS: readonly Column<InstitutionRow>[] = [
  { name: 'id', value: (r) => r.id },
  { name: 'name', value: (r) => r.name },
  { name: 'industry', value: (r) => r.industry },
  { name: 'industryCode', value: (r) => r.industryCode },
  { name: 'subjects', value: (r) => r.subjects },
  { name: 'grant', value: (r) => r.grant },
  { name: 'suspended', value: (r) => [...r.suspended] },
  { name: 'state', value: (r) => r.state },
];

export const INDUSTRY_COLUMNS: readonly Column<IndustryRow>[] = [
  { name: 'id', value: (r) => r.id },
  { name: 'code', value: (r) => r.code },
  { name: 'name', value: (r) => r.name },
  { name: 'institutions', value: (r) => r.institutions },
  { name: 'subjects', value: (r) => r.subjects },
  { name: 'grant', value: (r) => r.grant },
  { name: 'state', value: (r) => r.state },
];

const SPEC_COLUMNS: readonly Column<GrantRow>[] = (['lines', 'directions', 'lanes', 'validFrom', 'validUntil', 'schedule', 'passbackGroup'] as const).map((name) => ({ name, value: (r: GrantRow) => specFields(r.spec)[name] ?? null }));

export const GRANT_COLUMNS: readonly Column<GrantRow>[] = [
  { name: 'grant', value: (r) => r.grant },
  { name: 'level', value: (r) => r.level },
  { name: 'target', value: (r) => r.target },
  { name: 'targetName', value: (r) => r.targetName },
  ...SPEC_COLUMNS,
];

function cell(v: Json, empty: string): string {
  if (v === null) return empty;
  if (Array.isArray(v)) return v.length === 0 ? empty : v.map((x) => String(x)).join(',');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A listing in the chosen format (JSON: an array of objects keyed by the column names). */
export function renderList<R>(columns: readonly Column<R>[], rows: readonly R[], format: ListFormat): string {
  if (format === 'json') return JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, c.value(r)]))), null, 2);
  const text = (r: R, c: Column<R>, empty: string): string => (c.text !== undefined ? c.text(r) || empty : cell(c.value(r), empty));
  if (format === 'csv') return stringify([columns.map((c) => snake(c.name)), ...rows.map((r) => columns.map((c) => text(r, c, '')))]).trimEnd();
  return formatTable(
    columns.map((c) => snake(c.name).replace(/_/g, ' ').toUpperCase()),
    rows.map((r) => columns.map((c) => text(r, c, '-'))),
  );
}

// ---------------------------------------------------------------- one subject

const grantJson = (g: GrantRow): Record<string, Json> => ({ grant: g.grant, level: g.level, target: g.target, targetName: g.targetName, ...specFields(g.spec) });

export function subjectJson(s: SubjectDetail): Record<string, Json> {
  return {
    id: s.id,
    kind: s.kind,
    name: s.name,
    institution: s.institution,
    institutionName: s.institutionName,
    industry: s.industry,
    industryCode: s.industryCode,
    industryName: s.industryName,
    state: s.state,
    credentials: s.credentials.map((c) => ({ key: c.key, kind: c.kind, state: c.revoked ? 'revoked' : 'active', revokedAt: c.revokedAt === null ? null : isoSeconds(c.revokedAt) })),
    grants: s.grantDetails.map(grantJson),
    suspensions: s.suspensions.map((x) => ({ level: x.level, target: x.target, name: x.name })),
    effective: { passes: s.effective.passes, reason: s.effective.reason },
  };
}

const EFFECTIVE_TEXT: Record<Effective['reason'], string> = {
  granted: 'passes where a grant allows it (enrolled, not suspended, a grant valid now; line, direction, lane, schedule and anti-passback are checked by the gate)',
  unknown_credential: 'does not pass: no credential is enrolled (a gate answers unknown_credential)',
  revoked: 'does not pass: every credential is revoked (revoked)',
  subject_suspended: 'does not pass: the subject is suspended (subject_suspended)',
  institution_suspended: 'does not pass: its institution is suspended (institution_suspended)',
  industry_suspended: "does not pass: its institution's industry is suspended (industry_suspended)",
  no_grant: 'does not pass: no grant at any level (no_grant)',
  outside_validity: 'does not pass: no grant is valid now (outside_validity)',
};

const indent = (text: string): string => text.split('\n').map((l) => `  ${l}`).join('\n');

function grantTable(grants: readonly GrantRow[]): string {
  return indent(
    formatTable(
      ['LEVEL', 'TARGET', 'GRANT', 'LINES', 'DIRECTIONS', 'LANES', 'VALID FROM', 'VALID UNTIL', 'SCHEDULE', 'PASSBACK GROUP'],
      grants.map((g) => {
        const f = specFields(g.spec);
        return [g.level, `${g.target}${g.targetName !== null && g.targetName !== g.target ? ` (${g.targetName})` : ''}`, String(g.grant), ...(['lines', 'directions', 'lanes', 'validFrom', 'validUntil', 'schedule', 'passbackGroup'] as const).map((k) => cell(f[k] ?? null, '-'))];
      }),
    ),
  );
}

const fields = (pairs: readonly (readonly [string, string])[]): string => {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
};

const named = (id: number | null, name: string | null, extra = ''): string => (id === null ? '-' : `${id}${extra !== '' ? ` ${extra}` : ''}${name !== null ? ` (${name})` : ''}`);

export function subjectText(s: SubjectDetail): string {
  const parts = [
    fields([
      ['subject', s.id],
      ['kind', s.kind],
      ['name', s.name],
      ['institution', named(s.institution, s.institutionName)],
      ['industry', named(s.industry, s.industryName, s.industryCode ?? '')],
      ['state', s.state],
      ['suspended', s.suspensions.length === 0 ? 'no' : s.suspensions.map((x) => `${x.level} ${x.target} (${x.name})`).join(', ')],
      ['effective', EFFECTIVE_TEXT[s.effective.reason]],
    ]),
    s.credentials.length === 0
      ? 'credentials: none'
      : `credentials:\n${indent(formatTable(['KEY', 'KIND', 'STATE', 'REVOKED AT'], s.credentials.map((c) => [c.key, c.kind, c.revoked ? 'revoked' : 'active', c.revokedAt === null ? '-' : isoSeconds(c.revokedAt)])))}`,
    s.grantDetails.length === 0 ? 'grants: none' : `grants (a gate tries them in this order; the first that matches its line, direction, lane and time opens):\n${grantTable(s.grantDetails)}`,
  ];
  return parts.join('\n');
}

// ---------------------------------------------------------------- institution, industry, grant

export function institutionJson(i: InstitutionDetail): Record<string, Json> {
  return {
    id: i.id,
    name: i.name,
    industry: i.industry,
    industryCode: i.industryCode,
    industryName: i.industryName,
    subjects: i.subjects,
    subjectsByKind: { ...i.subjectsByKind },
    activeCredentials: i.activeCredentials,
    grant: i.grant,
    grants: i.grantDetails.map(grantJson),
    suspended: [...i.suspended],
    state: i.state,
  };
}

export function institutionText(i: InstitutionDetail): string {
  const k = i.subjectsByKind;
  return [
    fields([
      ['institution', String(i.id)],
      ['name', i.name],
      ['industry', named(i.industry, i.industryName, i.industryCode ?? '')],
      ['subjects', `${i.subjects} (${k.person} people, ${k.vehicle} vehicles, ${k.goods} consignments), ${i.activeCredentials} active credentials`],
      ['state', i.state === 'active' ? 'active' : `suspended (${i.suspended.join(', ')})`],
    ]),
    i.grantDetails.length === 0 ? 'grants: none' : `grants (its own, then its industry's; its members hold both):\n${grantTable(i.grantDetails)}`,
  ].join('\n');
}

export function industryJson(d: IndustryDetail): Record<string, Json> {
  return { id: d.id, code: d.code, name: d.name, institutions: d.institutions, subjects: d.subjects, activeCredentials: d.activeCredentials, grant: d.grantDetail === null ? null : grantJson(d.grantDetail), state: d.state };
}

export function industryText(d: IndustryDetail): string {
  return [
    fields([
      ['industry', `${d.id} ${d.code}`],
      ['name', d.name],
      ['institutions', String(d.institutions)],
      ['subjects', `${d.subjects}, ${d.activeCredentials} active credentials`],
      ['state', d.state],
    ]),
    d.grantDetail === null ? 'grant: none' : `grant:\n${grantTable([d.grantDetail])}`,
  ].join('\n');
}

export function grantJsonDetail(g: GrantDetail): Record<string, Json> {
  return { id: g.id, retired: g.spec === null, ...(g.spec === null ? {} : specFields(g.spec)), assignments: g.assignments.map((a) => ({ level: a.level, target: a.target, targetName: a.targetName })) };
}

export function grantText(g: GrantDetail): string {
  if (g.spec === null) return `grant ${g.id}: retired (nothing refers to it any more; its id is never reused)`;
  const f = specFields(g.spec);
  return [
    fields([['grant', String(g.id)], ...(['lines', 'directions', 'lanes', 'validFrom', 'validUntil', 'schedule', 'passbackGroup'] as const).map((k): [string, string] => [snake(k).replace(/_/g, ' '), cell(f[k] ?? null, '-')])]),
    `assigned to:\n${indent(formatTable(['LEVEL', 'TARGET', 'NAME'], g.assignments.map((a) => [a.level, a.target, a.targetName ?? '-'])))}`,
  ].join('\n');
}
