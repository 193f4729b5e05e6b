// The generic OIDC provider against a real, certified OpenID Provider (oidc-provider): full browser round trips.
import t from 'tap';
import { calculatePKCECodeChallenge } from 'oauth4webapi';
import { createProviderRegistry, newFlowSecrets } from '../../src/providers/registry.js';
import type { UpstreamProvider } from '../../src/providers/types.js';
import { providerConfig, providerError, TEST_PUBLIC_URL, testDeps } from '../helpers/providers.js';
import { startUpstreamOidc, type UpstreamOidc } from '../helpers/upstream-oidc.js';

const REDIRECT = `${TEST_PUBLIC_URL}/auth/corp/callback`;

function corp(upstream: UpstreamOidc): UpstreamProvider {
  const settings: Record<string, string> = { ISSUER: upstream.issuer, CLIENT_ID: upstream.clientId };
  if (upstream.clientSecret) settings.CLIENT_SECRET = upstream.clientSecret;
  return createProviderRegistry([providerConfig('corp', settings)], testDeps()).get('corp')!;
}

t.test('confidential client, claims from UserInfo', async (t) => {
  const upstream = await startUpstreamOidc({ redirectUris: [REDIRECT] });
  t.teardown(() => upstream.close());
  const provider = corp(upstream);

  t.test('happy path', async (t) => {
    const flow = newFlowSecrets(provider);
    const url = await provider.authorizationUrl(flow);
    t.equal(url.searchParams.get('code_challenge_method'), 'S256');
    t.equal(url.searchParams.get('code_challenge'), await calculatePKCECodeChallenge(flow.codeVerifier));
    t.equal(url.searchParams.get('state'), flow.state);
    t.equal(url.searchParams.get('nonce'), flow.nonce);

    const callback = await upstream.followLogin(url);
    t.equal(callback.origin + callback.pathname, REDIRECT);
    t.equal(callback.searchParams.get('state'), flow.state);
    t.equal(callback.searchParams.get('iss'), upstream.issuer, 'RFC 9207 iss parameter');
    t.ok(callback.searchParams.get('code'));

    const id = await provider.handleCallback(callback, flow);
    t.match(id, {
      provider: 'corp',
      subject: 'alice',
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Example',
      picture: 'https://example.com/alice.png',
    });
    t.equal(id.claims.iss, upstream.issuer);
    t.equal(id.claims.nonce, flow.nonce);
  });

  t.test('another user, unverified email', async (t) => {
    upstream.setAccount({ accountId: 'bob', claims: { email: 'bob@example.com', email_verified: false, name: 'Bob' } });
    const flow = newFlowSecrets(provider);
    const id = await provider.handleCallback(await upstream.followLogin(await provider.authorizationUrl(flow)), flow);
    t.match(id, { subject: 'bob', email: 'bob@example.com', emailVerified: false, name: 'Bob', picture: null });
  });

  t.test('consent denied', async (t) => {
    upstream.denyNext();
    const flow = newFlowSecrets(provider);
    const callback = await upstream.followLogin(await provider.authorizationUrl(flow));
    t.equal(callback.searchParams.get('error'), 'access_denied');
    t.match(await providerError(provider.handleCallback(callback, flow)), { reason: 'access_denied', upstreamError: 'access_denied' });
  });

  t.test('PKCE: the provider refuses another verifier', async (t) => {
    const flow = newFlowSecrets(provider);
    const callback = await upstream.followLogin(await provider.authorizationUrl(flow));
    const forged = { ...flow, codeVerifier: newFlowSecrets(provider).codeVerifier };
    t.match(await providerError(provider.handleCallback(callback, forged)), { reason: 'upstream_error', upstreamError: 'invalid_grant' });
  });

  t.test('state of another flow', async (t) => {
    const flow = newFlowSecrets(provider);
    const callback = await upstream.followLogin(await provider.authorizationUrl(flow));
    t.equal((await providerError(provider.handleCallback(callback, newFlowSecrets(provider)))).reason, 'state_mismatch');
  });
});

t.test('public client, claims in the ID token', async (t) => {
  const upstream = await startUpstreamOidc({ redirectUris: [REDIRECT], clientSecret: null, conformIdTokenClaims: false });
  t.teardown(() => upstream.close());
  const provider = corp(upstream);
  const flow = newFlowSecrets(provider);
  const id = await provider.handleCallback(await upstream.followLogin(await provider.authorizationUrl(flow)), flow);
  t.match(id, { subject: 'alice', email: 'alice@example.com', emailVerified: true, name: 'Alice Example' });
});
