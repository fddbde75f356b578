// The console in a real browser (Debian's Chromium, driven by
// playwright-core), against the simulator (embedded broker, the real central
// and Node gates): unauthenticated page and API requests refused; log in; the
// fleet appears and its whitelist versions move after a revocation; the live
// passages stream in; a card searched as printed. Each page is saved as a
// screenshot in a temp folder (printed). Without Chromium the suite says
// "not run".

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { toHex } from '../protocol/hex.js';
import { FleetSimulator } from '../host-sim/sim/fleet-simulator.js';
import { ConsoleServer } from '../host-sim/console/console-server.js';
import { ensureFirstAdmin, FIRST_ADMIN } from '../host-sim/cli/operator-commands.js';
import { notRun } from './helpers/store-engines.js';
import { runCli } from './helpers/cli.js';
import { dataPaths, loadKeys } from '../host-sim/cli/common.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

if (CHROMIUM === undefined) {
  notRun('console in a browser', 'no Chromium: apt-get install chromium');
} else {
  const shots = mkdtempSync(join(tmpdir(), 'subline-console-shots-'));

  test('the console in Chromium: refused without login, then the live fleet, passages and a search', async () => {
    // A central's data directory: its keys are the simulator's, so `subline central revoke --data D --db <the simulator's database>` works on it.
    const data = join(shots, 'data');
    const init = await runCli(['central', 'init', '--data', data]);
    assert.is(init.code, 0, init.stderr);
    const sim = new FleetSimulator({ gates: 4, rate: 6, seed: 3, revokeAt: null, suspendAt: null, brokerRestartAt: null, xs: 0, keys: loadKeys(dataPaths(data)) });
    let browser: Browser | null = null;
    let web: ConsoleServer | null = null;
    try {
      await sim.start();
      const password = await ensureFirstAdmin(sim.central.store.db);
      assert.ok(password !== null);
      web = await ConsoleServer.start({ central: sim.central });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
      const page: Page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const shot = async (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

      // Unauthenticated: the login form, and the API refuses the page's own requests.
      await page.goto(web.url);
      await page.waitForSelector('#login-page:not([hidden])');
      const refused = await page.evaluate("Promise.all(['/api/gates', '/api/events?card=00', '/api/session'].map(async (p) => (await fetch(p)).status))");
      assert.equal(refused, [401, 401, 401]);
      await shot('login');

      // A wrong password, then the right one.
      await page.fill('input[name=name]', FIRST_ADMIN);
      await page.fill('input[name=password]', 'not the password!');
      await page.click('#login-form button');
      await page.waitForFunction("(document.querySelector('#login-error')?.textContent ?? '') !== ''");
      assert.match((await page.textContent('#login-error')) ?? '', /wrong name or password/);
      await page.fill('input[name=password]', password);
      await page.click('#login-form button');

      // The fleet: every gate appears online, with the version it holds.
      await page.waitForFunction("document.querySelectorAll('#fleet-table tbody tr').length === 4");
      await page.waitForFunction("[...document.querySelectorAll('#fleet-table tbody tr td:nth-child(4)')].every((td) => td.textContent === 'online')", undefined, { timeout: 20_000 });
      const VERSIONS = "[...document.querySelectorAll('#fleet-table tbody td.version')].map((td) => td.textContent ?? '')";
      const versions = async () => page.evaluate<string[]>(VERSIONS);
      const before = await versions();
      await shot('fleet');
      // A revocation made with the CLI on the running simulator's database: the list moves on and the gates follow, live (no reload).
      const card = sim.population.people[5]!.id;
      const key = toHex(sim.central.registry.credentialKey('card', card));
      const revoke = await runCli(['central', 'revoke', '--data', data, '--db', sim.dbPath, '--key', key]);
      assert.is(revoke.code, 0, revoke.stderr);
      await page.waitForFunction(`((b) => { const now = ${VERSIONS}; return now.length === b.length && now.every((v, i) => v !== b[i]); })(${JSON.stringify(before)})`, undefined, { timeout: 30_000 });
      await shot('fleet-after-revocation');

      // Live passages stream in; the revoked card, tapped at a gate, is refused there and shows up as such.
      await page.click('a[data-page=live]');
      await page.waitForFunction("document.querySelectorAll('#live-table tbody tr').length > 3", undefined, { timeout: 20_000 });
      const gate = sim.specs.find((g) => g.lane === 'person')!.id;
      assert.ok(sim.tapCard(gate, card));
      await page.waitForFunction(`[...document.querySelectorAll('#live-table tbody tr')].some((tr) => { const td = [...tr.children].map((c) => c.textContent); return td[1] === ${JSON.stringify(gate)} && td[2] === 'decision_denied' && td[3] === 'revoked'; })`, undefined, { timeout: 20_000 });
      await shot('live');

      // A card searched as printed (hex of its raw id): only that person's events.
      const searched = sim.population.people[0]!.id;
      await page.click('a[data-page=search]');
      await page.fill('#search-form input[name=card]', toHex(searched).toUpperCase());
      await page.click('#search-form button');
      await page.waitForFunction("/event\\(s\\) in/.test(document.querySelector('#search-status')?.textContent ?? '')");
      const subjects = await page.evaluate<string[]>("[...new Set([...document.querySelectorAll('#search-table tbody td:nth-child(5)')].map((td) => td.textContent ?? ''))]");
      assert.ok(subjects.length <= 1, `one subject: ${subjects.join(', ')}`);
      await shot('search');

      // A gate's page.
      await page.click('a[data-page=fleet]');
      await page.click('#fleet-table tbody tr:first-child a');
      await page.waitForFunction("(document.querySelector('#gate-summary')?.textContent ?? '').includes('whitelist')");
      await shot('gate');
      console.log(`console screenshots: ${shots}`);
    } finally {
      await browser?.close();
      await web?.close();
      await sim.close();
    }
  });

  test.run();
}
