// The OpenID Provider in real headless Chromium: a downstream application on its own origin and port (the Demo App
// of demo/app.ts, with openid-client) signs a user in through the gateway, whose hosted sign-in page lists two
// upstream providers; then a refresh, single sign-on for a second sign-in, RP-initiated logout back to the app, a
// cancelled sign-in, and the sign-in page in dark mode. Every state is screenshotted to be looked at; any console
// error or page error fails the test.
import t from 'tap';
import { startDemoApp } from '../../demo/app.js';
import { launchChromium, NEEDS_CHROMIUM } from '../helpers/chromium.js';
import { startOpGateway } from '../helpers/op.js';

t.test('a downstream app signs in through the hosted sign-in page with two providers', { skip: NEEDS_CHROMIUM }, async (t) => {
  const gw = await startOpGateway(t, {
    providers: ['acme', 'partner'],
    env: { PROVIDER_ACME_NAME: 'Acme Corp', PROVIDER_PARTNER_NAME: 'Partner Co' },
  });
  gw.upstreams.partner!.setAccount({
    accountId: 'grace',
    claims: { email: 'grace@partner.example', email_verified: true, name: 'Grace Hopper' },
  });
  const client = await gw.register({
    client_name: 'Demo App',
    redirect_uris: ['http://localhost/callback'],
    post_logout_redirect_uris: ['http://localhost/'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email',
  });
  // the app on localhost, the gateway on 127.0.0.1: two sites, as a real deployment has them
  const app = await startDemoApp({
    issuer: gw.url,
    clientId: client.client_id,
    clientSecret: client.client_secret!,
    port: 0,
    publicHost: 'localhost',
  });
  t.teardown(() => app.close());

  const chromium = await launchChromium(t, 'auth-gateway-op-screenshots');
  const { problems, screenshot } = chromium;
  const page = await chromium.newPage();
  const visited: string[] = [];
  page.on('request', (r) => visited.push(r.url()));
  const signInPages = () => visited.filter((u) => u.startsWith(`${gw.url}/oauth2/signin`));
  const upstreamVisits = () => visited.filter((u) => Object.values(gw.upstreams).some((up) => u.startsWith(`${up.issuer}/`)));

  await page.goto(`${app.url}/`);
  await screenshot(page, 'app-signed-out');
  await page.getByRole('button', { name: 'Sign in with Auth Gateway' }).click();

  // the hosted sign-in page: which application asks, and both providers, in the order configured
  await page.waitForURL(`${gw.url}/oauth2/signin?**`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  t.match(await page.locator('main').textContent(), /to continue to Demo App/);
  const choices = page.getByRole('navigation', { name: 'Sign-in providers' }).getByRole('link');
  t.same(await choices.allTextContents(), ['Continue with Acme Corp', 'Continue with Partner Co']);
  t.equal(await page.title(), 'Sign in to Demo App');
  // keyboard first: the first Tab lands on the first provider
  await page.keyboard.press('Tab');
  t.equal(await page.locator(':focus').textContent(), 'Continue with Acme Corp', 'reachable by keyboard');
  await screenshot(page, 'hosted-sign-in');

  await page.getByRole('link', { name: 'Continue with Partner Co' }).click();
  await page.getByRole('heading', { name: 'Signed in as Grace Hopper' }).waitFor();
  t.equal(page.url(), `${app.url}/`);
  t.ok(
    upstreamVisits().every((u) => u.startsWith(`${gw.upstreams.partner!.issuer}/`)) && upstreamVisits().length > 0,
    'signed in at the chosen provider only',
  );
  const claims = JSON.parse((await page.locator('#id-token-claims').textContent()) ?? '{}');
  t.match(claims, { iss: gw.url, aud: client.client_id, sid: String, auth_time: Number, nonce: String, at_hash: String });
  t.match(JSON.parse((await page.locator('#userinfo').textContent()) ?? '{}'), {
    sub: claims.sub,
    email: 'grace@partner.example',
    name: 'Grace Hopper',
  });
  t.match(await page.locator('#signed-in-upstream').textContent(), /\d{4}.*\d{1,2}:\d{2}:\d{2}.*UTC/);
  await screenshot(page, 'app-signed-in');

  await page.getByRole('button', { name: 'Refresh tokens' }).click();
  await page
    .getByRole('status')
    .getByText(/^Refreshed at .*: new tokens for the same grant\.$/)
    .waitFor();
  await screenshot(page, 'app-refreshed');

  // single sign-on: the app forgets its session; signing in again passes through the gateway without a page
  await page.context().clearCookies({ domain: 'localhost' });
  await page.goto(`${app.url}/`);
  const before = { signIn: signInPages().length, upstream: upstreamVisits().length };
  await page.getByRole('button', { name: 'Sign in with Auth Gateway' }).click();
  await page.getByRole('heading', { name: 'Signed in as Grace Hopper' }).waitFor();
  t.equal(signInPages().length, before.signIn, 'single sign-on: no sign-in page');
  t.equal(upstreamVisits().length, before.upstream, 'single sign-on: no upstream login');
  t.equal(JSON.parse((await page.locator('#id-token-claims').textContent()) ?? '{}').sid, claims.sid, 'the same gateway session');

  // RP-initiated logout with the ID token as hint: at once, back to the app's registered post-logout URI
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('status').getByText('Signed out of the Demo App and of the gateway.').waitFor();
  t.equal(page.url(), `${app.url}/`);
  await screenshot(page, 'app-signed-out-of-both');

  // the gateway session ended with it: the next sign-in shows the sign-in page again; cancel goes back to the app
  await page.getByRole('button', { name: 'Sign in with Auth Gateway' }).click();
  await page.waitForURL(`${gw.url}/oauth2/signin?**`);
  await page.getByRole('link', { name: 'Cancel and go back' }).click();
  await page.getByRole('alert').waitFor();
  t.match(await page.getByRole('alert').textContent(), /^The gateway answered access_denied: /);
  t.equal(page.url(), `${app.url}/`);
  await screenshot(page, 'app-sign-in-cancelled');

  // the sign-in page follows the reader's colour scheme
  const dark = await chromium.newPage({ colorScheme: 'dark' });
  await dark.goto(`${app.url}/`);
  await dark.getByRole('button', { name: 'Sign in with Auth Gateway' }).click();
  await dark.waitForURL(`${gw.url}/oauth2/signin?**`);
  await dark.getByRole('heading', { name: 'Sign in' }).waitFor();
  await screenshot(dark, 'hosted-sign-in-dark');

  t.same(problems, [], 'no console error or warning, no page error');
});
