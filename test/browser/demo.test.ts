// The demo in real headless Chromium (Debian's chromium, driven by playwright-core), every state a newcomer meets:
// signed out, the provider's sign-in page, signed in, refreshed, signed out (and asked again at the next sign-in),
// switching user, the Demo App (a downstream application) signing in by single sign-on and signing out of both,
// consent denied, and the HTML error pages of a bad redirect back and an unknown provider. Each
// state is screenshotted into SCREENSHOTS (printed as a comment) to be looked at; any console error or page
// error fails the test.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { launchChromium, NEEDS_CHROMIUM } from '../helpers/chromium.js';
import { seedDataDir } from '../helpers/pglite-template.js';
import { freePort, startProcess } from '../helpers/process.js';

t.test('sign in, refresh and sign out through the demo page', { skip: NEEDS_CHROMIUM }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-browser-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const demoPort = await freePort();
  const appPort = await freePort();
  const appUrl = `http://127.0.0.1:${appPort}`;
  const base = `http://localhost:${port}`;
  // exactly what `npm start` runs, on a data directory that has been through initdb already (the first start
  // on an empty one is test/server.test.ts's business)
  await seedDataDir(dataDir);
  const demo = startProcess(['--import=tsx', 'demo/start.ts'], {
    DATA_DIR: dataDir,
    PORT: String(port),
    DEMO_PROVIDER_PORT: String(demoPort),
    DEMO_APP_PORT: String(appPort),
    LOG_LEVEL: 'warn',
  });
  t.teardown(async () => {
    demo.child.kill('SIGTERM');
    await demo.exited;
  });
  await demo.answers(`${base}/readyz`);
  const stderr = demo.output;

  const chromium = await launchChromium(t, 'auth-gateway-demo-screenshots');
  const { problems, screenshot } = chromium;
  // Chromium notes in the console a document that was answered with an error status, as it notes a failed
  // fetch; an error page must be answered 4xx, so on a page opened to show one, exactly that one note of its own
  // document is expected (and checked), and nothing else. Everywhere else any console error fails the test.
  let expectedNote: { url: string; status: number } | undefined;
  const newPage = () =>
    chromium.newPage({}, (text, url) => {
      if (!expectedNote || url !== expectedNote.url) return false;
      if (!text.startsWith(`Failed to load resource: the server responded with a status of ${expectedNote.status} `)) return false;
      expectedNote = undefined; // seen, once
      return true;
    });
  const signInAtProvider = async (p: Awaited<ReturnType<typeof newPage>>, name: string, email: string) => {
    await p.waitForURL(`http://localhost:${demoPort}/interaction/**`);
    await p.getByLabel('Name').fill(name);
    await p.getByLabel('Email').fill(email);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForURL(`${base}/`);
    await p.getByText(`Signed in as ${name}`).waitFor();
  };
  const claimsOf = async (p: Awaited<ReturnType<typeof newPage>>) => JSON.parse((await p.locator('#token-claims').textContent()) ?? '{}');

  // signed out: no session cookie, so the page does not even ask /auth/refresh (no 401 in the console)
  const page = await newPage();
  const refreshCalls: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/auth/refresh')) refreshCalls.push(r.url());
  });
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
  t.same(refreshCalls, [], 'a signed-out load asks nothing of /auth/refresh');
  await screenshot(page, 'signed-out');

  await page.getByRole('link', { name: 'Sign in with Demo ID' }).click();
  await page.waitForURL(`http://localhost:${demoPort}/interaction/**`);
  await screenshot(page, 'provider-sign-in');
  await signInAtProvider(page, 'Grace Hopper', 'grace@example.com');
  t.equal(await page.locator('#user-email').textContent(), 'grace@example.com');
  const claims = await claimsOf(page);
  t.match(claims, { iss: base, email: 'grace@example.com', name: 'Grace Hopper' });
  t.type(claims.sid, 'string');
  // times with a date and a zone, e.g. "Dec 1, 2026, 7:52:10 AM UTC"
  t.match(await page.locator('#token-expiry').textContent(), /\d{4}.*\d{1,2}:\d{2}:\d{2}.*(UTC|GMT|[A-Z]{3,4})/);
  t.match(await page.locator('#auth-time').textContent(), /\d{4}.*\d{1,2}:\d{2}:\d{2}/);
  await screenshot(page, 'signed-in');

  // refresh: a new access token for the same session, and the page says so
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page
    .getByRole('status')
    .getByText(/^Refreshed at .* a new access token for the same session/)
    .waitFor();
  const refreshed = await claimsOf(page);
  t.not(refreshed.jti, claims.jti, 'a new access token');
  t.equal(refreshed.sid, claims.sid, 'same session');
  await screenshot(page, 'refreshed');

  // sign out; a reload stays signed out; the next sign-in asks the provider again (prompt=login)
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page
    .getByRole('status')
    .getByText(/^Signed out\./)
    .waitFor();
  await screenshot(page, 'signed-out-after-sign-out');
  await page.reload();
  await page.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
  t.ok(await page.locator('#signed-in').isHidden(), 'still signed out after a reload');
  t.match(await page.getByRole('link', { name: 'Sign in with Demo ID' }).getAttribute('href'), /[?&]prompt=login(&|$)/);
  await page.getByRole('link', { name: 'Sign in with Demo ID' }).click();
  await page.waitForURL(`http://localhost:${demoPort}/interaction/**`);
  await screenshot(page, 'asked-again-after-sign-out');
  await signInAtProvider(page, 'Ada Lovelace', 'ada@example.com');
  t.equal(await page.locator('#user-email').textContent(), 'ada@example.com', 'another user, not the one the provider remembered');

  // switch user: signs out and goes straight to the provider, which asks who it is
  await page.getByRole('button', { name: 'Switch user' }).click();
  await page.waitForURL(`http://localhost:${demoPort}/interaction/**`);
  await signInAtProvider(page, 'Grace Hopper', 'grace@example.com');
  t.equal(await page.locator('#user-email').textContent(), 'grace@example.com', 'switched back');
  t.not((await claimsOf(page)).sid, refreshed.sid, 'a new session');
  await screenshot(page, 'switched-user');

  // the Demo App, a downstream application on its own origin, signs in through the gateway's OpenID Provider:
  // the gateway session of this browser is single sign-on, so neither the provider nor a sign-in page is shown
  t.match(stderr(), `The Demo App, a downstream application signing in through the gateway as its OpenID Provider, is at ${appUrl}/`);
  const gatewaySub = (await claimsOf(page)).sub;
  const providerVisits: string[] = [];
  page.on('request', (r) => {
    if (r.url().startsWith(`http://localhost:${demoPort}/`)) providerVisits.push(r.url());
  });
  await page.goto(`${appUrl}/`);
  await screenshot(page, 'demo-app-signed-out');
  await page.getByRole('button', { name: 'Sign in with Auth Gateway' }).click();
  await page.getByRole('heading', { name: 'Signed in as Grace Hopper' }).waitFor();
  t.equal(page.url(), `${appUrl}/`);
  t.same(providerVisits, [], 'single sign-on: Demo ID was not asked again');
  const idClaims = JSON.parse((await page.locator('#id-token-claims').textContent()) ?? '{}');
  t.match(idClaims, { iss: base, aud: 'demo-app', sub: gatewaySub }, "the ID token's sub is the user of the gateway session");
  t.match(JSON.parse((await page.locator('#userinfo').textContent()) ?? '{}'), { email: 'grace@example.com', name: 'Grace Hopper' });
  await screenshot(page, 'demo-app-signed-in');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('status').getByText('Signed out of the Demo App and of the gateway.').waitFor();
  t.equal(page.url(), `${appUrl}/`, 'back at the Demo App (its registered post-logout redirect URI)');
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
  t.ok(await page.locator('#signed-in').isHidden(), 'the gateway session ended with the Demo App sign-out');

  // consent denied, in a fresh browser (no session at the provider): a human message next to the code
  const second = await newPage();
  await second.goto(`${base}/`);
  await second.getByRole('link', { name: 'Sign in with Demo ID' }).click();
  await second.waitForURL(`http://localhost:${demoPort}/interaction/**`);
  await second.getByRole('button', { name: 'Deny' }).click();
  await second.getByRole('alert').waitFor();
  t.equal(await second.locator('#error-title').textContent(), 'Sign-in failed');
  t.match(await second.locator('#error-message').textContent(), /cancelled at the provider/);
  t.equal(await second.locator('#error-code').textContent(), 'access_denied');
  await second.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
  t.ok(await second.locator('#signed-in').isHidden(), 'no session');
  t.equal(new URL(second.url()).search, '', 'the error leaves the address, so a reload does not repeat it');
  await screenshot(second, 'access-denied');

  // what a browser gets for a bad redirect back and for an unknown provider: HTML pages, not raw JSON
  const errorPage = async (path: string, status: number, heading: string, name: string) => {
    const p = await newPage();
    expectedNote = { url: `${base}${path}`, status };
    const res = await p.goto(`${base}${path}`);
    t.equal(res?.status(), status, path);
    t.match(res?.headers()['content-type'], /^text\/html/, `${path}: HTML`);
    await p.getByRole('heading', { name: heading }).waitFor();
    t.equal(expectedNote, undefined, `${path}: Chromium noted the ${status} of the document, and nothing else`);
    await screenshot(p, name);
    await p.getByRole('link', { name: 'Back to the start page' }).click();
    await p.waitForURL(`${base}/`);
    await p.getByRole('link', { name: 'Sign in with Demo ID' }).waitFor();
  };
  await errorPage('/auth/demo/callback?state=forged-state&code=x', 400, 'Sign-in could not continue', 'error-bad-callback');
  await errorPage('/auth/nope/login?return_to=/', 404, 'Not found', 'error-unknown-provider');

  t.same(problems, [], 'no console error or warning, no page error');
  t.notMatch(stderr(), /error/i, 'nothing went wrong in the gateway');
  t.notMatch(stderr(), /Unsupported runtime/, 'oidc-provider accepts this Node.js');
});
