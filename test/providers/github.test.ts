// GitHub against the fake GitHub: PKCE and state through oauth4webapi, the user from the API, and only a
// verified primary email.
import t from 'tap';
import { calculatePKCECodeChallenge } from 'oauth4webapi';
import { GitHubProvider } from '../../src/providers/github.js';
import { newFlowSecrets } from '../../src/providers/registry.js';
import { startFakeGitHub } from '../../fixtures/fake-github.js';
import { providerConfig, providerError, testDeps } from '../helpers/providers.js';

const gh = await startFakeGitHub();
t.teardown(() => gh.close());

function setup(timeoutMs?: number) {
  const deps = testDeps(timeoutMs);
  const config = providerConfig('github', {
    CLIENT_ID: gh.clientId,
    CLIENT_SECRET: gh.clientSecret,
    BASE_URL: gh.baseUrl,
    API_URL: gh.apiUrl,
  });
  return { provider: new GitHubProvider(config, deps), deps };
}

async function start(provider: GitHubProvider) {
  const flow = newFlowSecrets(provider);
  return { flow, callback: await gh.authorize(await provider.authorizationUrl(flow)) };
}

async function login(provider: GitHubProvider) {
  const { flow, callback } = await start(provider);
  return provider.handleCallback(callback, flow);
}

t.test('happy path', async (t) => {
  const { provider, deps } = setup();
  t.same(deps.fetched, [], 'no I/O at construction');
  t.equal(provider.usesNonce, false);
  const flow = newFlowSecrets(provider);
  t.equal(flow.nonce, undefined);
  const url = await provider.authorizationUrl(flow);
  t.equal(url.origin + url.pathname, `${gh.baseUrl}/login/oauth/authorize`);
  t.equal(url.searchParams.get('state'), flow.state);
  t.equal(url.searchParams.get('scope'), 'read:user user:email');
  t.equal(url.searchParams.get('code_challenge_method'), 'S256');
  t.equal(url.searchParams.get('code_challenge'), await calculatePKCECodeChallenge(flow.codeVerifier));
  t.equal(url.searchParams.get('redirect_uri'), 'http://127.0.0.1:3999/auth/github/callback');
  t.notOk(url.searchParams.has('nonce'));

  const id = await provider.handleCallback(await gh.authorize(url), flow);
  t.match(id, {
    provider: 'github',
    subject: '4242',
    email: 'octocat@example.com',
    emailVerified: true,
    name: 'The Octocat',
    picture: 'https://avatars.example.com/u/4242',
  });
  t.equal(id.claims.login, 'octocat');
  t.equal(id.claims.email, 'octocat@example.com', 'the public profile email is not the one used');
  t.same(
    deps.fetched.map((u) => new URL(u).pathname),
    ['/login/oauth/access_token', '/api/v3/user', '/api/v3/user/emails'],
  );
});

t.test('name falls back to the login', async (t) => {
  const { provider } = setup();
  const saved = gh.user;
  t.teardown(() => void (gh.user = saved));
  gh.user = { ...saved, name: null };
  t.equal((await login(provider)).name, 'octocat');
});

t.test('no verified primary email: no_verified_email', async (t) => {
  const { provider } = setup();
  const saved = gh.emails;
  t.teardown(() => void (gh.emails = saved));
  gh.emails = [
    { email: 'primary@example.com', primary: true, verified: false },
    { email: 'verified@example.com', primary: false, verified: true },
  ];
  t.equal((await providerError(login(provider))).reason, 'no_verified_email');
  gh.emails = [];
  t.equal((await providerError(login(provider))).reason, 'no_verified_email');
});

t.test('callback failures', async (t) => {
  const { provider } = setup();

  const a = await start(provider);
  const other = newFlowSecrets(provider);
  t.match(
    await providerError(provider.handleCallback(a.callback, { ...a.flow, codeVerifier: other.codeVerifier })),
    { reason: 'upstream_error', upstreamError: 'invalid_grant' },
    'GitHub refuses another PKCE verifier',
  );
  t.match(
    await providerError(provider.handleCallback(a.callback, a.flow)),
    { reason: 'upstream_error', upstreamError: 'bad_verification_code' },
    'and the code is gone',
  );

  const b = await start(provider);
  t.equal((await providerError(provider.handleCallback(b.callback, other))).reason, 'state_mismatch');

  gh.denyNext = true;
  const c = await start(provider);
  t.match(await providerError(provider.handleCallback(c.callback, c.flow)), { reason: 'access_denied', upstreamError: 'access_denied' });
});

t.test('GitHub down or slow', async (t) => {
  const { provider, deps } = setup(150);
  const { flow, callback } = await start(provider);
  deps.mode = (url) => (url.endsWith('/user/emails') ? 'stall' : 'pass');
  const started = Date.now();
  t.equal((await providerError(provider.handleCallback(callback, flow))).reason, 'upstream_unavailable');
  // a ceiling, not a measurement: far above the 150 ms timeout on a busy machine, below the 10 s default
  t.ok(Date.now() - started < 5000, 'gives up after timeoutMs');

  const second = await start(provider);
  deps.mode = 'fail';
  t.equal((await providerError(provider.handleCallback(second.callback, second.flow))).reason, 'upstream_unavailable');
});
