// The demo in real headless Chromium (Debian's chromium, driven by playwright-core): sign in at the demo
// provider, back on the page, refresh, sign out; then a run that denies consent and sees the error.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import t from 'tap';
import { seedDataDir } from '../helpers/pglite-template.js';
import { freePort, startProcess } from '../helpers/process.js';

const CHROMIUM = '/usr/bin/chromium';

t.test(
  'sign in, refresh and sign out through the demo page',
  { skip: existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium)` },
  async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gw-browser-'));
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const demoPort = await freePort();
    const base = `http://localhost:${port}`;
    // exactly what `npm start` runs, on a data directory that has been through initdb already (the first start
    // on an empty one is test/server.test.ts's business)
    await seedDataDir(dataDir);
    const demo = startProcess(['--import=tsx', 'demo/start.ts'], {
      DATA_DIR: dataDir,
      PORT: String(port),
      DEMO_PROVIDER_PORT: String(demoPort),
      LOG_LEVEL: 'warn',
    });
    t.teardown(async () => {
      demo.child.kill('SIGTERM');
      await demo.exited;
    });
    await demo.answers(`${base}/readyz`);
    const stderr = demo.output;

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    t.teardown(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401/.test(m.text())) pageErrors.push(m.text());
    });

    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Sign in with Demo ID' }).click();
    await page.waitForURL(`http://localhost:${demoPort}/interaction/**`);
    await page.getByLabel('Name').fill('Grace Hopper');
    await page.getByLabel('Email').fill('grace@example.com');
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.waitForURL(`${base}/`);
    await page.getByText('Signed in as Grace Hopper').waitFor();
    t.equal(await page.locator('#user-email').textContent(), 'grace@example.com');
    const claims = JSON.parse((await page.locator('#token-claims').textContent()) ?? '{}');
    t.match(claims, { iss: base, email: 'grace@example.com', name: 'Grace Hopper' });
    t.type(claims.sid, 'string');

    await page.getByRole('button', { name: 'Refresh' }).click();
    // polled from here: the page's CSP (no unsafe-eval) refuses Playwright's string predicates
    for (let i = 0; i < 100 && ((await page.locator('#token-claims').textContent()) ?? '').includes(claims.jti); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const refreshed = JSON.parse((await page.locator('#token-claims').textContent()) ?? '{}');
    t.not(refreshed.jti, claims.jti, 'a new access token');
    t.equal(refreshed.sid, claims.sid, 'same session');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
    await page.reload();
    await page.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
    t.ok(await page.locator('#signed-in').isHidden(), 'still signed out after a reload');

    // the second run, in a fresh browser (no session at the provider): deny
    const second = await (await browser.newContext()).newPage();
    second.on('pageerror', (e) => pageErrors.push(String(e)));
    await second.goto(`${base}/`);
    await second.getByRole('link', { name: 'Sign in with Demo ID' }).click();
    await second.waitForURL(`http://localhost:${demoPort}/interaction/**`);
    await second.getByRole('button', { name: 'Deny' }).click();
    await second.waitForURL(`${base}/?error=access_denied`);
    t.equal(await second.getByRole('alert').textContent(), 'Sign-in failed: access_denied');
    await second.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
    t.ok(await second.locator('#signed-in').isHidden(), 'no session');

    t.same(pageErrors, [], 'no script errors on the page');
    t.notMatch(stderr(), /error/i, 'nothing went wrong in the gateway');
    t.notMatch(stderr(), /Unsupported runtime/, 'oidc-provider accepts this Node.js');
  },
);
