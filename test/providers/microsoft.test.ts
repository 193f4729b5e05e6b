// Microsoft presets against the fake provider: the multi-tenant `{tenantid}` issuer template filled from each
// token's `tid`, the tenant allow-list, and a fixed tenant's plain issuer check.
import t from 'tap';
import { MicrosoftProvider } from '../../src/providers/microsoft.js';
import { newFlowSecrets } from '../../src/providers/registry.js';
import { startFakeOidc } from '../../fixtures/fake-oidc.js';
import { providerConfig, providerError, testDeps } from '../helpers/providers.js';

const TENANT_A = '11111111-2222-4333-8444-555555555555';
const TENANT_B = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

const fake = await startFakeOidc();
t.teardown(() => fake.close());
const template = `${fake.origin}/{tenantid}/v2.0`;
const issuerOf = (tid: string) => `${fake.origin}/${tid}/v2.0`;

async function login(provider: MicrosoftProvider) {
  const flow = newFlowSecrets(provider);
  const callback = await fake.authorize(await provider.authorizationUrl(flow));
  return provider.handleCallback(callback, flow);
}

t.test('common tenant: the token iss must be the template with its own tid, and tid must be allowed', async (t) => {
  // Entra's multi-tenant discovery names the template issuer and sends no RFC 9207 iss parameter
  fake.issuer = template;
  fake.metadata = { authorization_response_iss_parameter_supported: false };
  const settings = { TYPE: 'microsoft', ISSUER: template, CLIENT_ID: fake.clientId, CLIENT_SECRET: fake.clientSecret };
  const provider = new MicrosoftProvider(providerConfig('ms', { ...settings, ALLOWED_TENANTS: TENANT_A }), testDeps());

  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_A), tid: TENANT_A });
  const before = fake.counts['/common/v2.0/.well-known/openid-configuration'] ?? 0;
  const id = await login(provider);
  t.equal(id.subject, 'user-1');
  t.equal(id.claims.tid, TENANT_A);
  t.equal((fake.counts['/common/v2.0/.well-known/openid-configuration'] ?? 0) - before, 1, 'discovery at /common/v2.0');

  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_B), tid: TENANT_B });
  t.equal((await providerError(login(provider))).reason, 'tenant_not_allowed');

  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_B), tid: TENANT_A });
  t.equal((await providerError(login(provider))).reason, 'id_token_iss', 'iss of another tenant than tid');

  fake.idToken = (c) => fake.sign({ ...c, iss: template, tid: TENANT_A });
  t.equal((await providerError(login(provider))).reason, 'id_token_iss', 'the unfilled template is no issuer');

  fake.idToken = (c) => fake.sign({ ...c, iss: template });
  t.equal((await providerError(login(provider))).reason, 'id_token_iss', 'no tid, no acceptable issuer');

  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_A), tid: TENANT_A }, { key: 'foreign', kid: fake.kid });
  t.equal((await providerError(login(provider))).reason, 'id_token_signature', 'a matching tid does not excuse a bad signature');

  fake.idToken = () => 'not-a.jwt';
  t.equal((await providerError(login(provider))).reason, 'id_token_invalid');

  const flow = newFlowSecrets(provider);
  const callback = await fake.authorize(await provider.authorizationUrl(flow));
  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_A), tid: TENANT_A });
  await provider.handleCallback(callback, flow);
  t.match(
    await providerError(provider.handleCallback(callback, flow)),
    { reason: 'upstream_error', upstreamError: 'invalid_grant' },
    'a token endpoint error stays a token endpoint error',
  );

  const anyTenant = new MicrosoftProvider(providerConfig('ms', settings), testDeps());
  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_B), tid: TENANT_B });
  t.equal((await login(anyTenant)).subject, 'user-1', 'without ALLOWED_TENANTS any tenant may sign in');
});

t.test('fixed tenant: the exact issuer', async (t) => {
  fake.issuer = issuerOf(TENANT_A);
  fake.metadata = {};
  const provider = new MicrosoftProvider(
    providerConfig('ms', {
      TYPE: 'microsoft',
      TENANT: TENANT_A,
      ISSUER: issuerOf(TENANT_A),
      CLIENT_ID: fake.clientId,
      CLIENT_SECRET: fake.clientSecret,
    }),
    testDeps(),
  );
  fake.idToken = (c) => fake.sign({ ...c, tid: TENANT_A });
  t.equal((await login(provider)).subject, 'user-1');
  fake.idToken = (c) => fake.sign({ ...c, iss: issuerOf(TENANT_B), tid: TENANT_B });
  t.equal((await providerError(login(provider))).reason, 'id_token_iss');
});

t.test('default issuers need no I/O to construct', async (t) => {
  const deps = testDeps();
  const common = new MicrosoftProvider(providerConfig('microsoft', { CLIENT_ID: 'c', CLIENT_SECRET: 's' }), deps);
  t.equal(common.config.issuer, 'https://login.microsoftonline.com/{tenantid}/v2.0');
  t.equal(common.type, 'microsoft');
  t.ok(common.usesNonce);
  t.same(deps.fetched, []);
});
