// The type checker and the linter are part of the test suite, so CI's
// `N passed, N failed` line counts them and a type error cannot slip through.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}${stderr}` });
    });
  });
}

const bin = (name: string) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const t = suite('static checks');
t('typecheck: host, tests and benches (tsconfig.json)', async () => {
  const r = await run(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  assert.is(r.code, 0, r.out.slice(0, 4000));
});
t('typecheck: device code without Node types (tsconfig.device.json)', async () => {
  const r = await run(bin('tsc'), ['-p', 'tsconfig.device.json', '--noEmit']);
  assert.is(r.code, 0, r.out.slice(0, 4000));
});
t('typecheck: Moddable adapters against @moddable/typings, no Node types (tsconfig.moddable.json)', async () => {
  const r = await run(bin('tsc'), ['-p', 'tsconfig.moddable.json', '--noEmit']);
  assert.is(r.code, 0, r.out.slice(0, 4000));
});
t('lint (eslint)', async () => {
  const r = await run(bin('eslint'), ['.']);
  assert.is(r.code, 0, r.out.slice(0, 4000));
});
t("every installed package supports this Node (engines.node): the README's requirement holds", () => {
  // Every package.json under node_modules, nested ones too (npm warns EBADENGINE for these).
  const bad: string[] = [];
  let seen = 0;
  const visit = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      if (name.startsWith('@')) {
        for (const sub of readdirSync(join(dir, name))) pkg(join(dir, name, sub));
      } else pkg(join(dir, name));
    }
  };
  const pkg = (dir: string): void => {
    let meta: { name?: string; version?: string; engines?: { node?: string } };
    try {
      meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof meta;
    } catch {
      return;
    }
    seen++;
    const range = meta.engines?.node;
    if (typeof range === 'string' && semver.validRange(range) !== null && !semver.satisfies(process.versions.node, range)) bad.push(`${meta.name ?? dir}@${meta.version ?? '?'} needs node ${range}`);
    visit(join(dir, 'node_modules'));
  };
  visit(join(root, 'node_modules'));
  assert.ok(seen > 100, `packages found: ${seen}`);
  assert.equal(bad, [], `on Node ${process.versions.node}`);
});
t.run();
