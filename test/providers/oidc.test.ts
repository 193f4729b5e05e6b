// The generic OIDC provider against a fake provider that misbehaves on purpose: every ID token and callback
// check must reject with its own reason, and transport trouble must end quickly as upstream_unavailable.
import t from 'tap';
import { calculatePKCECodeChallenge } from 'oauth4webapi';
import { OidcProvider, type OidcOptions } from '../../src/providers/oidc.js';
import { newFlowSecrets } from '../../src/providers/registry.js';
import type { FlowSecrets, ProviderError } from '../../src/providers/types.js';
import { type FakeOidc, type IdTokenClaims, startFakeOidc } from '../../fixtures/fake-oidc.js';
import { providerConfig, providerError, type TestDeps, testDeps } from '../helpers/providers.js';

const DISCOVERY = '/.well-known/openid-configuration';

const fake: FakeOidc = await startFakeOidc();
t.teardown(() => fake.close());
t.beforeEach(() => {
  fake.issuer = fake.origin;
  fake.metadata = {};
  fake.issParameter = undefined;
  fake.idToken = (claims) => fake.sign(claims);
  fake.userinfo = undefined;
});

function setup(options: OidcOptions & { timeoutMs?: number } = {}): { provider: OidcProvider; deps: TestDeps } {
  const deps = testDeps(options.timeoutMs);
  const config = providerConfig('corp', { ISSUER: fake.origin, CLIENT_ID: fake.clientId, CLIENT_SECRET: fake.clientSecret });
  return { provider: new OidcProvider(config, deps, options), deps };
}

/** A login up to the callback URL the fake redirects back to. */
async function start(provider: OidcProvider): Promise<{ flow: FlowSecrets; callback: URL }> {
  const flow = newFlowSecrets(provider);
  return { flow, callback: await fake.authorize(await provider.authorizationUrl(flow)) };
}

async function login(provider: OidcProvider) {
  const { flow, callback } = await start(provider);
  return provider.handleCallback(callback, flow);
}

/** The rejection of a full login, checked not to carry the code or any JWT in its message. */
async function loginError(provider: OidcProvider): Promise<ProviderError> {
  const { flow, callback } = await start(provider);
  const err = await providerError(provider.handleCallback(callback, flow));
  if (err.message.includes(callback.searchParams.get('code')!) || /eyJ/.test(err.message)) {
    throw new Error('a ProviderError message carries a code or a token');
  }
  return err;
}

t.test('no I/O at construction; discovery is cached, and retried after a failure', async (t) => {
  const { provider, deps } = setup();
  t.same(deps.fetched, [], 'constructing fetches nothing');
  const before = fake.counts[DISCOVERY] ?? 0;

  deps.mode = 'fail';
  t.equal((await providerError(provider.authorizationUrl(newFlowSecrets(provider)))).reason, 'upstream_unavailable');
  deps.mode = 'pass';
  await provider.authorizationUrl(newFlowSecrets(provider));
  await login(provider);
  await provider.authorizationUrl(newFlowSecrets(provider));
  t.equal((fake.counts[DISCOVERY] ?? 0) - before, 1, 'one successful discovery serves every later call');
});

t.test('authorization URL: code flow with PKCE S256, state, nonce, scopes, redirect_uri', async (t) => {
  const { provider } = setup();
  const flow = newFlowSecrets(provider);
  const url = await provider.authorizationUrl(flow);
  t.equal(url.origin + url.pathname, `${fake.origin}/authorize`);
  const q = url.searchParams;
  t.equal(q.get('response_type'), 'code');
  t.equal(q.get('client_id'), fake.clientId);
  t.equal(q.get('redirect_uri'), 'http://127.0.0.1:3999/auth/corp/callback');
  t.equal(q.get('scope'), 'openid email profile');
  t.equal(q.get('state'), flow.state);
  t.equal(q.get('nonce'), flow.nonce);
  t.equal(q.get('code_challenge_method'), 'S256');
  t.equal(q.get('code_challenge'), await calculatePKCECodeChallenge(flow.codeVerifier));
  t.notOk(q.has('code_verifier'), 'the verifier never leaves the server');

  t.equal((await providerError(provider.authorizationUrl({ ...flow, nonce: undefined }))).reason, 'invalid_flow');
  t.equal((await providerError(provider.authorizationUrl({ ...flow, codeVerifier: 'short' }))).reason, 'invalid_flow');
});

t.test('happy path: identity from the verified ID token, UserInfo adds what the ID token lacks', async (t) => {
  const { provider } = setup();
  fake.userinfo = { sub: 'user-1', email: 'u1@example.com', email_verified: true, name: 'User One', picture: 'https://p.example/1' };
  const id = await login(provider);
  t.match(id, {
    provider: 'corp',
    subject: 'user-1',
    email: 'u1@example.com',
    emailVerified: true,
    name: 'User One',
    picture: 'https://p.example/1',
  });
  t.equal(id.claims.iss, fake.origin);
  t.equal(id.claims.aud, fake.clientId);

  // the ID token's own email wins over UserInfo's, and email_verified travels with it
  fake.idToken = (c) => fake.sign({ ...c, email: 'id@example.com', email_verified: 'true' });
  const second = await login(provider);
  t.equal(second.email, 'id@example.com');
  t.equal(second.emailVerified, false, 'email_verified is true only when the claim is literally true');
  t.equal(second.name, 'User One');
});

t.test('UserInfo for another subject is not used; a failing UserInfo does not hide the ID token claims', async (t) => {
  const { provider, deps } = setup();
  fake.idToken = (c) => fake.sign({ ...c, name: 'From ID Token' });
  fake.userinfo = { sub: 'someone-else', email: 'victim@example.com', email_verified: true, name: 'Mallory' };
  const id = await login(provider);
  t.equal(id.subject, 'user-1');
  t.equal(id.email, null);
  t.equal(id.emailVerified, false);
  t.equal(id.name, 'From ID Token');
  t.notOk('email' in id.claims);

  fake.userinfo = { sub: 'user-1', email: 'u1@example.com', email_verified: true };
  deps.mode = (url) => (url.endsWith('/userinfo') ? 'fail' : 'pass');
  const down = await login(provider);
  t.equal(down.subject, 'user-1');
  t.equal(down.name, 'From ID Token');
  t.equal(down.email, null);
});

t.test('ID token rejections, each with its own reason', async (t) => {
  const { provider } = setup();
  const cases: Array<[string, string, (c: IdTokenClaims) => Promise<string> | string, Record<string, unknown>?]> = [
    ['bad signature (published kid, another key)', 'id_token_signature', (c) => fake.sign(c, { key: 'foreign', kid: fake.kid })],
    ['key not in the JWKS', 'id_token_key', (c) => fake.sign(c, { key: 'foreign' })],
    ['alg none', 'id_token_alg', (c) => fake.sign(c, { alg: 'none' })],
    [
      'alg none, even when advertised',
      'id_token_alg',
      (c) => fake.sign(c, { alg: 'none' }),
      { id_token_signing_alg_values_supported: ['RS256', 'none'] },
    ],
    [
      'HS256 keyed with the client secret, even when advertised',
      'id_token_alg',
      (c) => fake.sign(c, { alg: 'HS256' }),
      { id_token_signing_alg_values_supported: ['RS256', 'HS256'] },
    ],
    ['an algorithm the provider does not use (PS256)', 'id_token_alg', (c) => fake.sign(c, { alg: 'PS256' })],
    ['malformed', 'id_token_invalid', () => 'not-a.jwt'],
    ['wrong iss', 'id_token_iss', (c) => fake.sign({ ...c, iss: 'http://evil.example' })],
    ['missing iss', 'id_token_iss', (c) => fake.sign({ ...c, iss: undefined })],
    ['wrong aud', 'id_token_aud', (c) => fake.sign({ ...c, aud: 'another-client' })],
    ['extra aud without azp', 'id_token_azp', (c) => fake.sign({ ...c, aud: [fake.clientId, 'another-client'] })],
    [
      'extra aud with a wrong azp',
      'id_token_azp',
      (c) => fake.sign({ ...c, aud: [fake.clientId, 'another-client'], azp: 'another-client' }),
    ],
    ['azp of another client', 'id_token_azp', (c) => fake.sign({ ...c, azp: 'another-client' })],
    ['missing nonce', 'id_token_nonce', (c) => fake.sign({ ...c, nonce: undefined })],
    ['wrong nonce', 'id_token_nonce', (c) => fake.sign({ ...c, nonce: 'n-0123456789abcdef0123456789' })],
    ['missing exp', 'id_token_exp', (c) => fake.sign({ ...c, exp: undefined })],
    ['expired', 'id_token_expired', (c) => fake.sign({ ...c, iat: c.iat - 3600, exp: c.iat - 600 })],
    ['missing iat', 'id_token_iat', (c) => fake.sign({ ...c, iat: undefined })],
    ['iat far in the future', 'id_token_iat', (c) => fake.sign({ ...c, iat: c.iat + 3600, exp: c.exp + 3600 })],
    ['nbf in the future', 'id_token_nbf', (c) => fake.sign({ ...c, nbf: c.iat + 3600 })],
    ['missing sub', 'id_token_sub', (c) => fake.sign({ ...c, sub: undefined })],
    ['empty sub', 'id_token_sub', (c) => fake.sign({ ...c, sub: '' })],
  ];
  for (const [name, reason, idToken, metadata] of cases) {
    // metadata is read once per provider: a case that changes it gets a fresh provider
    const subject = metadata ? setup().provider : provider;
    fake.metadata = metadata ?? {};
    fake.idToken = idToken;
    t.equal((await loginError(subject)).reason, reason, name);
  }
});

t.test('an extra audience is accepted when azp is our client', async (t) => {
  const { provider } = setup();
  fake.idToken = (c) => fake.sign({ ...c, aud: [fake.clientId, 'another-client'], azp: fake.clientId });
  t.equal((await login(provider)).subject, 'user-1');
});

t.test('the algorithm allow-list comes from the provider metadata', async (t) => {
  fake.metadata = { id_token_signing_alg_values_supported: ['PS256', 'HS256', 'none'] };
  const { provider } = setup();
  fake.idToken = (c) => fake.sign(c, { alg: 'PS256' });
  t.equal((await login(provider)).subject, 'user-1', 'PS256 when advertised');
  fake.idToken = (c) => fake.sign(c);
  t.equal((await loginError(provider)).reason, 'id_token_alg', 'RS256 when not advertised');
  fake.idToken = (c) => fake.sign(c, { alg: 'HS256' });
  t.equal((await loginError(provider)).reason, 'id_token_alg', 'never HS*');
});

t.test('expiry and iat follow deps.now(), with a small clock tolerance', async (t) => {
  const { provider, deps } = setup(); // the fake's tokens live 300 s
  deps.advance(330);
  t.equal((await login(provider)).subject, 'user-1', '30 s after exp is within the tolerance');
  deps.advance(60);
  t.equal((await loginError(provider)).reason, 'id_token_expired');
  deps.advance(-390 - 3600);
  t.equal((await loginError(provider)).reason, 'id_token_iat', 'a token from our future');
  deps.advance(3600 - 50);
  t.equal((await login(provider)).subject, 'user-1', 'iat 50 s ahead is within the tolerance');
});

t.test('key rotation: one JWKS refetch for a new kid, none for another unknown kid within the cooldown', async (t) => {
  const { provider } = setup({ jwksCooldownMs: 300 });
  const jwks = () => fake.counts['/jwks'] ?? 0;
  const base = jwks();
  await login(provider);
  t.equal(jwks() - base, 1, 'JWKS fetched on first use');
  await login(provider);
  t.equal(jwks() - base, 1, 'and cached');

  await new Promise((r) => setTimeout(r, 350)); // past the cooldown
  await fake.rotateKey();
  t.equal((await login(provider)).subject, 'user-1', 'the new kid is accepted');
  t.equal(jwks() - base, 2, 'after exactly one refetch');

  fake.idToken = (c) => fake.sign(c, { key: 'foreign', kid: 'never-published' });
  t.equal((await loginError(provider)).reason, 'id_token_key');
  t.equal(jwks() - base, 2, 'an unknown kid within the cooldown fetches nothing');
});

t.test('callback: state mismatch, RFC 9207 iss parameter, provider errors, reused code', async (t) => {
  const { provider } = setup();

  const a = await start(provider);
  const wrongState = new URL(a.callback);
  wrongState.searchParams.set('state', 'x'.repeat(43));
  t.equal((await providerError(provider.handleCallback(wrongState, a.flow))).reason, 'state_mismatch');
  const noState = new URL(a.callback);
  noState.searchParams.delete('state');
  t.equal((await providerError(provider.handleCallback(noState, a.flow))).reason, 'state_mismatch');

  fake.issParameter = 'http://evil.example';
  t.equal((await loginError(provider)).reason, 'iss_mismatch', 'a wrong iss parameter');
  fake.issParameter = null;
  t.equal((await loginError(provider)).reason, 'iss_mismatch', 'no iss parameter although the provider advertises it');

  const b = await start(provider);
  const denied = new URL(b.callback.origin + b.callback.pathname);
  denied.search = new URLSearchParams({ error: 'access_denied', state: b.flow.state, iss: fake.issuer }).toString();
  const deniedErr = await providerError(provider.handleCallback(denied, b.flow));
  t.match(deniedErr, { reason: 'access_denied', upstreamError: 'access_denied' });
  const failed = new URL(denied);
  failed.searchParams.set('error', 'temporarily_unavailable');
  t.match(await providerError(provider.handleCallback(failed, b.flow)), {
    reason: 'upstream_error',
    upstreamError: 'temporarily_unavailable',
  });
  const foreign = new URL(denied);
  foreign.searchParams.set('state', 'y'.repeat(43));
  t.equal((await providerError(provider.handleCallback(foreign, b.flow))).reason, 'state_mismatch', 'an error for another flow');

  fake.issParameter = undefined;
  const c = await start(provider);
  await provider.handleCallback(c.callback, c.flow);
  t.match(
    await providerError(provider.handleCallback(c.callback, c.flow)),
    { reason: 'upstream_error', upstreamError: 'invalid_grant' },
    'a code works once',
  );

  const d = await start(provider);
  t.match(
    await providerError(provider.handleCallback(d.callback, { ...d.flow, codeVerifier: newFlowSecrets(provider).codeVerifier })),
    { reason: 'upstream_error', upstreamError: 'invalid_grant' },
    'another PKCE verifier is refused by the provider',
  );
});

t.test('no iss parameter is fine when the provider does not advertise RFC 9207', async (t) => {
  const { provider } = setup();
  fake.metadata = { authorization_response_iss_parameter_supported: undefined };
  fake.issParameter = null;
  t.equal((await login(provider)).subject, 'user-1');
});

t.test('the discovered issuer must be the configured one', async (t) => {
  const { provider } = setup();
  fake.issuer = 'http://127.0.0.1:1/other';
  t.equal((await providerError(provider.authorizationUrl(newFlowSecrets(provider)))).reason, 'discovery_issuer_mismatch');
  fake.issuer = fake.origin;
  await provider.authorizationUrl(newFlowSecrets(provider));
});

t.test('upstream down or slow: upstream_unavailable, quickly', async (t) => {
  const closed = await startFakeOidc();
  await closed.close();
  const unreachable = new OidcProvider(providerConfig('gone', { ISSUER: closed.origin, CLIENT_ID: 'c', CLIENT_SECRET: 's' }), testDeps());
  t.equal(
    (await providerError(unreachable.authorizationUrl(newFlowSecrets(unreachable)))).reason,
    'upstream_unavailable',
    'connection refused',
  );

  const { provider, deps } = setup({ timeoutMs: 150 });
  deps.mode = 'stall';
  let started = Date.now();
  t.equal((await providerError(provider.authorizationUrl(newFlowSecrets(provider)))).reason, 'upstream_unavailable');
  // a ceiling, not a measurement: far above timeoutMs on a busy machine, and below the 10 s default it must not use
  t.ok(Date.now() - started < 5000, 'a discovery that never answers gives up after timeoutMs');

  for (const stalled of ['/token', '/jwks']) {
    deps.mode = 'pass';
    const { flow, callback } = await start(provider);
    deps.mode = (url) => (url.endsWith(stalled) ? 'stall' : 'pass');
    started = Date.now();
    t.equal((await providerError(provider.handleCallback(callback, flow))).reason, 'upstream_unavailable', `${stalled} never answers`);
    t.ok(Date.now() - started < 5000, `${stalled} gives up after timeoutMs`);
  }

  deps.mode = 'pass';
  const { flow, callback } = await start(provider);
  deps.mode = (url) => (url.endsWith('/token') ? 'fail' : 'pass');
  t.equal((await providerError(provider.handleCallback(callback, flow))).reason, 'upstream_unavailable', 'token endpoint unreachable');
});
