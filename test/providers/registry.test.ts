// The registry: one provider per configured id, chosen by type, nothing fetched until used.
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { GitHubProvider } from '../../src/providers/github.js';
import { GOOGLE_ISSUER, GoogleProvider } from '../../src/providers/google.js';
import { MicrosoftProvider } from '../../src/providers/microsoft.js';
import { OidcProvider } from '../../src/providers/oidc.js';
import { createProviderRegistry, newFlowSecrets } from '../../src/providers/registry.js';
import { startFakeOidc } from '../../fixtures/fake-oidc.js';
import { providerConfig, testDeps } from '../helpers/providers.js';

t.test('one instance per configured provider, by type, without I/O', async (t) => {
  const config = parseConfig({
    NODE_ENV: 'test',
    AUTH_PROVIDERS: 'google,microsoft,github,corp',
    PROVIDER_GOOGLE_CLIENT_ID: 'g',
    PROVIDER_GOOGLE_CLIENT_SECRET: 'gs',
    PROVIDER_MICROSOFT_CLIENT_ID: 'm',
    PROVIDER_MICROSOFT_CLIENT_SECRET: 'ms',
    PROVIDER_GITHUB_CLIENT_ID: 'h',
    PROVIDER_GITHUB_CLIENT_SECRET: 'hs',
    PROVIDER_CORP_ISSUER: 'https://idp.example.com',
    PROVIDER_CORP_CLIENT_ID: 'c',
  });
  const deps = testDeps();
  const registry = createProviderRegistry(config.providers, deps);
  t.same(
    registry.list().map((p) => [p.id, p.type]),
    [
      ['google', 'google'],
      ['microsoft', 'microsoft'],
      ['github', 'github'],
      ['corp', 'oidc'],
    ],
  );
  t.type(registry.get('google'), GoogleProvider);
  t.type(registry.get('microsoft'), MicrosoftProvider);
  t.type(registry.get('github'), GitHubProvider);
  t.type(registry.get('corp'), OidcProvider);
  t.equal(registry.get('nope'), undefined);
  t.equal(registry.get('__proto__'), undefined);
  t.equal(registry.get('google')!.config.issuer, GOOGLE_ISSUER);
  t.same(
    registry.list().map((p) => p.usesNonce),
    [true, true, false, true],
  );
  t.same(
    registry.list().map((p) => p.trustEmail),
    [true, false, true, false],
  );
  t.equal(registry.get('corp')!.name, 'Corp');
  t.same(deps.fetched, [], 'nothing fetched');

  const oidcFlow = newFlowSecrets(registry.get('corp')!);
  t.match(oidcFlow, { state: /^[\w-]{43}$/, nonce: /^[\w-]{43}$/, codeVerifier: /^[\w-]{43}$/ });
  t.equal(newFlowSecrets(registry.get('github')!).nonce, undefined);
});

t.test('the Google preset is the generic OIDC flow (issuer overridable for tests)', async (t) => {
  const fake = await startFakeOidc();
  t.teardown(() => fake.close());
  const google = new GoogleProvider(
    providerConfig('google', { ISSUER: fake.origin, CLIENT_ID: fake.clientId, CLIENT_SECRET: fake.clientSecret }),
    testDeps(),
  );
  fake.idToken = (c) => fake.sign({ ...c, email: 'g@example.com', email_verified: true, name: 'G' });
  const flow = newFlowSecrets(google);
  const id = await google.handleCallback(await fake.authorize(await google.authorizationUrl(flow)), flow);
  t.match(id, { provider: 'google', subject: 'user-1', email: 'g@example.com', emailVerified: true, name: 'G' });
  t.equal(google.type, 'google');
});
