// A NUL character (U+0000) cannot be stored by Postgres in text or jsonb. Wherever one can come in from outside it
// is refused at the edge: an upstream claim ends the login as login_failed with the audit reason invalid_claim
// (the browser is sent back, nothing is stored), and an admin request answers 400 naming the parameter or field.
import t from 'tap';
import { startFakeGitHub } from '../../fixtures/fake-github.js';
import { startFakeOidc } from '../../fixtures/fake-oidc.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { testDatabase } from '../helpers/db.js';
import { cookiesOf, createUser } from '../helpers/users.js';

const PUBLIC_URL = 'http://localhost:3000';
const { storage } = await testDatabase(t);

/** Follows one login: our login route, the upstream's authorize step, our callback (with the flow cookie). */
async function login(gw: TestApp, provider: string, authorize: (url: URL) => Promise<URL>) {
  const start = await gw.app.inject(`/auth/${provider}/login?return_to=/app`);
  t.equal(start.statusCode, 302);
  const callback = await authorize(new URL(start.headers.location as string));
  const res = await gw.app.inject({
    url: callback.pathname + callback.search,
    cookies: Object.fromEntries([...cookiesOf(start)].map(([name, c]) => [name, c.value])),
  });
  return res;
}

const failures = (gw: TestApp, provider: string) =>
  gw.storage.db
    .selectFrom('audit_events')
    .select(['reason', 'details'])
    .where('type', '=', 'login')
    .where('outcome', '=', 'failure')
    .where('provider', '=', provider)
    .execute();

t.test('a NUL in an OpenID Connect claim: login_failed, audited, nothing stored', async (t) => {
  const fake = await startFakeOidc();
  t.teardown(() => fake.close());
  const gw = await buildTestApp(t, {
    storage,
    env: {
      AUTH_PROVIDERS: 'corp',
      PROVIDER_CORP_ISSUER: fake.issuer,
      PROVIDER_CORP_CLIENT_ID: fake.clientId,
      PROVIDER_CORP_CLIENT_SECRET: fake.clientSecret,
    },
  });
  // advertised from the first discovery on (which is cached); it answers for subject nul-6 only: a UserInfo
  // response about another subject is ignored
  fake.userinfo = { sub: 'nul-6', name: 'From\u0000UserInfo' };
  const cases: [string, Record<string, unknown>][] = [
    ['the name', { sub: 'nul-1', name: 'Eve\u0000Admin' }],
    ['the email', { sub: 'nul-2', email: 'eve@example.com\u0000.evil', email_verified: true }],
    ['the subject', { sub: 'nul\u00003' }],
    ['a custom claim, deep inside', { sub: 'nul-4', groups: [{ id: 'g\u0000' }] }],
    ['a claim name', { sub: 'nul-5', 'x\u0000y': 1 }],
  ];
  for (const [name, claims] of cases) {
    fake.idToken = (defaults) => fake.sign({ ...defaults, ...claims });
    const res = await login(gw, 'corp', (url) => fake.authorize(url));
    t.equal(res.statusCode, 302, `${name}: the browser is sent back`);
    t.equal(res.headers.location, `${PUBLIC_URL}/app?error=login_failed`, name);
    t.notOk(cookiesOf(res).get('gw_session')?.value, `${name}: no session`);
    const last = (await failures(gw, 'corp')).at(-1);
    t.equal(last?.reason, 'invalid_claim', `${name}: audited with its reason`);
  }
  t.equal((await gw.storage.db.selectFrom('identities').select('id').where('provider', '=', 'corp').execute()).length, 0, 'no identity');

  // UserInfo only fills claims the ID token lacks, but what it sends is stored with them
  fake.idToken = (defaults) => fake.sign({ ...defaults, sub: 'nul-6' });
  const viaUserinfo = await login(gw, 'corp', (url) => fake.authorize(url));
  t.equal(viaUserinfo.headers.location, `${PUBLIC_URL}/app?error=login_failed`, 'a NUL from UserInfo');
  t.equal((await failures(gw, 'corp')).at(-1)?.reason, 'invalid_claim');

  fake.idToken = (defaults) => fake.sign({ ...defaults, sub: 'clean', name: 'Clean Name' });
  const ok = await login(gw, 'corp', (url) => fake.authorize(url));
  t.equal(ok.headers.location, `${PUBLIC_URL}/app`, 'a clean login still works');
});

t.test('a NUL from the GitHub API: login_failed, audited', async (t) => {
  const gh = await startFakeGitHub();
  t.teardown(() => gh.close());
  const gw = await buildTestApp(t, {
    storage,
    env: {
      AUTH_PROVIDERS: 'github',
      PROVIDER_GITHUB_CLIENT_ID: gh.clientId,
      PROVIDER_GITHUB_CLIENT_SECRET: gh.clientSecret,
      PROVIDER_GITHUB_BASE_URL: gh.baseUrl,
      PROVIDER_GITHUB_API_URL: gh.apiUrl,
    },
  });
  gh.user = { ...gh.user, id: 4242, name: 'Octo\u0000Cat' };
  const res = await login(gw, 'github', (url) => gh.authorize(url));
  t.equal(res.headers.location, `${PUBLIC_URL}/app?error=login_failed`);
  t.equal((await failures(gw, 'github')).at(-1)?.reason, 'invalid_claim');
});

t.test('a NUL in an admin query parameter or body field: 400 naming it', async (t) => {
  const { app } = await buildTestApp(t, { storage, env: { ADMIN_TOKEN } });
  const call = adminCall(app);
  const user = await createUser(app, { name: 'Unchanged' });
  const cases: [string, Awaited<ReturnType<typeof call>>, RegExp][] = [
    ['q', await call('GET', '/admin/users?q=a%00b'), /query parameter "q"/],
    ['provider', await call('GET', '/admin/users?provider=%00'), /query parameter "provider"/],
    ['type', await call('GET', '/admin/audit?type=login%00'), /query parameter "type"/],
    ['name', await call('PATCH', `/admin/users/${user.id}`, { name: 'Mal\u0000lory' }), /body field "name"/],
    ['roles', await call('PATCH', `/admin/users/${user.id}`, { roles: ['ops\u0000'] }), /body field "roles\[0\]"/],
  ];
  for (const [name, res, where] of cases) {
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().error, 'invalid_request', name);
    t.match(res.json().error_description, where, name);
  }
  t.match(cases[0][1].json().error_description, /NUL|U\+0000/, 'says what is wrong with it');
  t.equal((await call('GET', `/admin/users/${user.id}`)).json().name, 'Unchanged');
});
