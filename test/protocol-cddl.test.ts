// schema.cddl is documentation, but it must not drift: every message type has
// a rule, and each rule names exactly the schema's fields (optional ones with '?'),
// as do the rules of array elements that are maps (list-version, refusal); the
// signed and MACed envelopes are checked the same way.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';
import { Signed } from '../protocol/envelope.js';
import { Maced } from '../protocol/mac-envelope.js';
import type { FieldDef } from '../protocol/schema.js';

const cddl = readFileSync(new URL('../protocol/schema.cddl', import.meta.url), 'utf8').replace(/;[^\n]*/g, '');

function rule(name: string): { required: string[]; optional: string[] } | null {
  const m = new RegExp(`^${name}\\s*=\\s*\\{([^}]*)\\}`, 'm').exec(cddl);
  if (m === null) return null;
  const required: string[] = [];
  const optional: string[] = [];
  for (const f of (m[1] as string).matchAll(/(\?\s*)?([A-Za-z][A-Za-z0-9]*)\s*:/g)) (f[1] ? optional : required).push(f[2] as string);
  return { required, optional };
}

type Fields = Readonly<Record<string, FieldDef>>;
const ENVELOPES = [Signed, Maced] as const;

const t = suite('protocol CDDL');
for (const schema of [...MESSAGE_SCHEMAS, ...ENVELOPES]) {
  t(`rule ${schema.type} matches the schema`, () => {
    const r = rule(schema.type);
    assert.ok(r, `schema.cddl has no rule '${schema.type}'`);
    const want = Object.entries(schema.fields);
    assert.equal(r.required.sort(), ['t', 'v', ...want.filter(([, d]) => (d as { optional?: boolean }).optional !== true).map(([k]) => k)].sort());
    assert.equal(r.optional.sort(), want.filter(([, d]) => (d as { optional?: boolean }).optional === true).map(([k]) => k).sort());
    assert.match(cddl, new RegExp(`t: "${schema.type}", v: ${schema.version}`));
    // Arrays of maps: the element rule named in `field: [* name]` has exactly the element's fields.
    for (const [k, d] of Object.entries(schema.fields as Fields)) {
      if (d.spec.kind !== 'array' || d.spec.of.kind !== 'map') continue;
      const el = new RegExp(`^\\s*${k}\\s*:\\s*\\[\\s*\\*\\s*([a-z][a-z0-9-]*)\\s*\\]`, 'm').exec(cddl);
      assert.ok(el, `${schema.type}.${k}: no '[* rule]' in schema.cddl`);
      const er = rule(el[1] as string);
      assert.ok(er, `schema.cddl has no rule '${el[1]}'`);
      const ef = Object.entries(d.spec.of.fields);
      assert.equal(er.required.sort(), ef.filter(([, x]) => x.optional !== true).map(([n]) => n).sort(), `${el[1]} required fields`);
      assert.equal(er.optional.sort(), ef.filter(([, x]) => x.optional === true).map(([n]) => n).sort(), `${el[1]} optional fields`);
    }
  });
}
t('the mac envelope carries exactly the MACed kinds', () => {
  const m = /^mac\s*=\s*\{[^}]*body:\s*bstr \.cbor \(([^)]*)\)/m.exec(cddl);
  assert.ok(m, 'mac rule has no body: bstr .cbor (...)');
  assert.equal((m[1] as string).split('/').map((x) => x.trim()).sort(), ['ack', 'cmdres', 'events', 'status', 'syncreq']);
});
t('the message choice lists every type', () => {
  const m = /^message\s*=\s*(.*)$/m.exec(cddl);
  assert.ok(m);
  const names = (m[1] as string).split('/').map((s) => s.trim());
  assert.equal(names.sort(), [...MESSAGE_SCHEMAS, ...ENVELOPES].map((s) => s.type).sort());
});
t.run();
