// schema.cddl is documentation, but it must not drift: every message type has
// a rule, and each rule names exactly the schema's fields (optional ones with '?').

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { MESSAGE_SCHEMAS } from '../protocol/messages.js';
import { Signed } from '../protocol/envelope.js';

const cddl = readFileSync(new URL('../protocol/schema.cddl', import.meta.url), 'utf8').replace(/;[^\n]*/g, '');

function rule(name: string): { required: string[]; optional: string[] } | null {
  const m = new RegExp(`^${name}\\s*=\\s*\\{([^}]*)\\}`, 'm').exec(cddl);
  if (m === null) return null;
  const required: string[] = [];
  const optional: string[] = [];
  for (const f of (m[1] as string).matchAll(/(\?\s*)?([A-Za-z][A-Za-z0-9]*)\s*:/g)) (f[1] ? optional : required).push(f[2] as string);
  return { required, optional };
}

const t = suite('protocol CDDL');
for (const schema of [...MESSAGE_SCHEMAS, Signed]) {
  t(`rule ${schema.type} matches the schema`, () => {
    const r = rule(schema.type);
    assert.ok(r, `schema.cddl has no rule '${schema.type}'`);
    const want = Object.entries(schema.fields);
    assert.equal(r.required.sort(), ['t', 'v', ...want.filter(([, d]) => (d as { optional?: boolean }).optional !== true).map(([k]) => k)].sort());
    assert.equal(r.optional.sort(), want.filter(([, d]) => (d as { optional?: boolean }).optional === true).map(([k]) => k).sort());
    assert.match(cddl, new RegExp(`t: "${schema.type}", v: ${schema.version}`));
  });
}
t('the message choice lists every type', () => {
  const m = /^message\s*=\s*(.*)$/m.exec(cddl);
  assert.ok(m);
  const names = (m[1] as string).split('/').map((s) => s.trim());
  assert.equal(names.sort(), [...MESSAGE_SCHEMAS, Signed].map((s) => s.type).sort());
});
t.run();
