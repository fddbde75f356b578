// The gate built with the Moddable SDK itself (docs/TESTING.md, "Device checks"):
// mcconfig -m -p lin compiles every module of manifest.json and links mc.so;
// the device check program (mcconfig -p x-cli-lin) runs the protocol vectors,
// whitelist decisions for every reason code, the journal across a simulated
// reboot and an overlay delta on the SDK's XS, byte-identical to Node.
// Without an SDK ($MODDABLE) these are not run: the runner prints
// "device checks: not run (<reason>)" and counts nothing for them.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHost, firmwareManifest, firmwareModules, locateSdk } from '../host-sim/moddable-sdk/sdk.js';
import { CHECK_DIR, ENGINE_REASONS, runDeviceCheck } from './sdk/device-check.js';
import { loadVectorFiles } from './helpers/vectors.js';
import { REASON_NAMES } from '../protocol/reasons.js';
import { HMAC_SHA256_VECTORS } from '../protocol/hmac-vectors.js';

const sdk = locateSdk();
if (!sdk.ok) {
  const file = process.env.SUBLINE_NOT_RUN_FILE;
  if (file !== undefined) appendFileSync(file, `device checks: not run (${sdk.reason})\n`);
  else console.log(`device checks: not run (${sdk.reason})`);
} else {
  const t = suite('device: the gate built with the Moddable SDK');

  t('mcconfig -m -p lin compiles every module of manifest.json and links mc.so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'subline-lin-'));
    try {
      const r = await buildHost(out);
      assert.ok(existsSync(r.so), 'mc.so linked');
      const modules = r.modules;
      // mcconfig stores "embedded:x/y" as "~.embedded/x/y".
      const missing = Object.keys(firmwareManifest().modules).filter((k) => !existsSync(join(modules, `${k.replace(/^embedded:/, '~.embedded/')}.xsb`)));
      assert.equal(missing, [], `modules not compiled by xsc: ${missing.join(', ')}`);
      assert.not.match(r.output, /typescript compile failure/, 'tsc under the SDK tsconfig');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  t('the device check runs on the SDK XS byte-identical to Node, over every case', async () => {
    const r = await runDeviceCheck();
    assert.is(r.sdkStderr, '', 'the program wrote nothing to stderr');
    assert.is(r.sdkExit, 0, 'the program exited 0');
    assert.is(r.firstDifference, 0, `first difference at line ${r.firstDifference}: node ${r.node[r.firstDifference - 1]} / sdk ${r.sdk[r.firstDifference - 1]}`);
    assert.equal(r.sdk, r.node);

    // What the lines cover: every golden vector, every engine reason code, the journal and the overlay.
    const vectors = loadVectorFiles().reduce((n, f) => n + f.vectors.length, 0);
    assert.is(r.sdk.filter((l) => l.startsWith('vector ')).length, vectors, 'one line per golden vector');
    assert.equal(r.sdk.filter((l) => l.startsWith('hmac ')).map((l) => l.slice(l.lastIndexOf(' ') + 1)), HMAC_SHA256_VECTORS.map((v) => v.macHex), 'RFC 4231 HMACs with the native Digest');
    const reasons = new Set<number>();
    for (const l of r.sdk.filter((x) => x.startsWith('scenario '))) {
      for (const tap of (JSON.parse(l.slice(l.indexOf('{'))) as { taps: { reason: number }[] }).taps) reasons.add(tap.reason);
    }
    const missing = ENGINE_REASONS.filter((c) => !reasons.has(c)).map((c) => REASON_NAMES[c]);
    assert.equal(missing, [], 'every reason code of the engine decided on the SDK XS');
    assert.ok(r.sdk.includes('journal reopened lastSeq=1500 acked=750 gaps=0 sectorsUsed=4'), 'journal recovered after the reboot');
    assert.ok(r.sdk.some((l) => l.startsWith('journal append after reboot seq=1501')), 'appends continue above every seq issued');
    const overlay = r.sdk.filter((l) => l.startsWith('overlay decisions') || l.startsWith('overlay after reboot')).map((l) => l.replace(/^overlay (decisions|after reboot) /, ''));
    assert.is(overlay.length, 2);
    assert.is(overlay[0], overlay[1], 'the delta holds across the reboot');
    assert.match(overlay[0]!, /:denied\/2 /, 'the revoked credential is denied as revoked');
  });

  t('the check program holds what is flashed: the firmware modules but the device entry, its creation sizes', () => {
    const m = JSON.parse(readFileSync(join(CHECK_DIR, 'manifest.json'), 'utf8')) as { modules: Record<string, unknown>; creation: Record<string, unknown> };
    for (const [k, v] of Object.entries(firmwareModules())) assert.is(m.modules[k], v, `module ${k}`);
    assert.is(m.modules[firmwareManifest().creation.main ?? 'main'], undefined, 'no device entry');
    const fw = firmwareManifest().creation;
    assert.equal({ static: m.creation.static, chunk: m.creation.chunk, heap: m.creation.heap, stack: m.creation.stack }, { static: fw.static, chunk: fw.chunk, heap: fw.heap, stack: fw.stack });
  });

  t.run();
}
