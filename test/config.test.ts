import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, decodeSecret, loadConfig, parseConfig } from '../src/config.js';

const SECRET = Buffer.alloc(32, 1).toString('base64');

t.test('defaults follow the design table', async (t) => {
  const c = parseConfig({ SECRET_KEY: SECRET });
  t.equal(c.port, 3000);
  t.equal(c.host, '0.0.0.0');
  t.equal(c.publicUrl, 'http://localhost:3000');
  t.equal(c.issuer, 'http://localhost:3000');
  t.same(c.accessTokenAudience, ['http://localhost:3000']);
  t.same(c.allowedOrigins, ['http://localhost:3000']);
  t.equal(c.accessTokenTtl, 600);
  t.equal(c.refreshTokenTtl, 1209600);
  t.equal(c.sessionMaxAge, 2592000);
  t.equal(c.signingAlg, 'ES256');
  t.equal(c.keyRotationInterval, 2592000);
  t.equal(c.logLevel, 'info');
  t.equal(c.databaseUrl, undefined);
  t.equal(c.redisUrl, undefined);
  t.equal(c.adminToken, undefined);
  t.same(c.rateLimits, { login: 30, refresh: 120, admin: 300, session: 300, discovery: 1200, operations: 1200 });
  t.equal(c.redisKeyPrefix, 'auth-gateway:');
  t.equal(c.secureCookies, false);
  t.same(c.providers, []);
  t.equal(c.env, 'development');
});

t.test('an https PUBLIC_URL turns on secure cookies; ISSUER defaults to it', async (t) => {
  const c = parseConfig({ SECRET_KEY: SECRET, PUBLIC_URL: 'https://auth.example.com/' });
  t.equal(c.publicUrl, 'https://auth.example.com');
  t.equal(c.issuer, 'https://auth.example.com');
  t.equal(c.secureCookies, true);
});

t.test('every problem is reported in one error', async (t) => {
  const env = {
    NODE_ENV: 'production',
    PORT: 'eighty',
    PUBLIC_URL: 'ftp://x',
    DATABASE_URL: 'mysql://x',
    ACCESS_TOKEN_TTL: '5',
    SIGNING_ALG: 'HS256',
    ADMIN_TOKEN: 'short',
    LOG_LEVEL: 'loud',
    REDIS_URL: 'http://x',
    ALLOWED_ORIGINS: 'https://ok.example.com,https://bad.example.com/path',
    AUTH_PROVIDERS: 'corp,Bad_Id,github,weird',
    PROVIDER_WEIRD_TYPE: 'saml',
  };
  const err = t.throws(() => parseConfig(env)) as unknown as ConfigError;
  t.ok(err instanceof ConfigError);
  const text = err.message;
  for (const fragment of [
    'PORT must be a whole number',
    'PUBLIC_URL must be an absolute http(s) URL',
    'DATABASE_URL must be a postgres',
    'SECRET_KEY is required when NODE_ENV=production',
    'ACCESS_TOKEN_TTL must be between',
    'SIGNING_ALG must be one of',
    'ADMIN_TOKEN must be at least 32 characters',
    'LOG_LEVEL must be one of',
    'REDIS_URL must be a redis',
    'ALLOWED_ORIGINS entries must be exact origins',
    'provider id "Bad_Id" must match',
    'PROVIDER_CORP_CLIENT_ID is required',
    'PROVIDER_CORP_ISSUER is required',
    'PROVIDER_GITHUB_CLIENT_ID is required',
    'PROVIDER_GITHUB_CLIENT_SECRET is required',
    'PROVIDER_WEIRD_TYPE must be one of',
  ]) {
    t.match(text, fragment, fragment);
  }
  t.equal(err.problems.length, 16, 'one line per problem');
});

t.test('rate limits, the Redis key prefix and the admin token', async (t) => {
  const c = parseConfig({
    SECRET_KEY: SECRET,
    RATE_LIMIT_LOGIN: '5',
    RATE_LIMIT_REFRESH: '0',
    RATE_LIMIT_ADMIN: '1000',
    REDIS_URL: 'redis://127.0.0.1:6379/2',
    REDIS_KEY_PREFIX: 'gw-prod:',
    ADMIN_TOKEN: 'a'.repeat(40),
  });
  t.same(c.rateLimits, { login: 5, refresh: 0, admin: 1000, session: 300, discovery: 1200, operations: 1200 }, '0 turns a limit off');
  t.equal(c.redisUrl, 'redis://127.0.0.1:6379/2');
  t.equal(c.redisKeyPrefix, 'gw-prod:');
  t.equal(c.adminToken, 'a'.repeat(40));
  const err = t.throws(() =>
    parseConfig({
      SECRET_KEY: SECRET,
      RATE_LIMIT_LOGIN: '-1',
      RATE_LIMIT_REFRESH: 'many',
      RATE_LIMIT_ADMIN: '10000000',
      REDIS_KEY_PREFIX: 'has space',
      ADMIN_TOKEN: `${'x'.repeat(32)} "quoted"`,
    }),
  ) as unknown as ConfigError;
  t.same(err.problems, [
    'ADMIN_TOKEN may only contain A-Z a-z 0-9 - . _ ~ + / (and trailing =), e.g. `openssl rand -hex 32`',
    'RATE_LIMIT_LOGIN must be a whole number, got "-1"',
    'RATE_LIMIT_REFRESH must be a whole number, got "many"',
    'RATE_LIMIT_ADMIN must be between 0 and 1000000, got 10000000',
    'REDIS_KEY_PREFIX may only contain A-Z a-z 0-9 : . _ - (at most 64)',
  ]);
});

t.test('a SECRET_KEY shorter than 32 bytes is refused', async (t) => {
  t.throws(() => parseConfig({ SECRET_KEY: Buffer.alloc(16).toString('base64') }), /SECRET_KEY must be at least 32/);
  t.throws(() => parseConfig({ SECRET_KEY: 'not base64 !!' }), /SECRET_KEY must be at least 32/);
  t.equal(decodeSecret('ab'.repeat(32))?.length, 32, 'hex');
  t.equal(decodeSecret(Buffer.alloc(48, 3).toString('base64url'))?.length, 48, 'base64url');
});

t.test('providers: presets, defaults and overrides', async (t) => {
  const c = parseConfig({
    SECRET_KEY: SECRET,
    PUBLIC_URL: 'https://auth.example.com',
    AUTH_PROVIDERS: 'google, microsoft,github,corp-sso,ms-org',
    PROVIDER_GOOGLE_CLIENT_ID: 'g',
    PROVIDER_GOOGLE_CLIENT_SECRET: 'gs',
    PROVIDER_MICROSOFT_CLIENT_ID: 'm',
    PROVIDER_MICROSOFT_CLIENT_SECRET: 'ms',
    PROVIDER_MICROSOFT_ALLOWED_TENANTS: 'a,b',
    PROVIDER_GITHUB_CLIENT_ID: 'h',
    PROVIDER_GITHUB_CLIENT_SECRET: 'hs',
    PROVIDER_GITHUB_BASE_URL: 'https://ghe.example.com/',
    PROVIDER_CORP_SSO_ISSUER: 'https://sso.example.com/',
    PROVIDER_CORP_SSO_CLIENT_ID: 'c',
    PROVIDER_CORP_SSO_SCOPES: 'openid email groups',
    PROVIDER_CORP_SSO_NAME: 'Corp',
    PROVIDER_CORP_SSO_TRUST_EMAIL: 'true',
    PROVIDER_MS_ORG_TYPE: 'microsoft',
    PROVIDER_MS_ORG_TENANT: '11111111-2222-3333-4444-555555555555',
    PROVIDER_MS_ORG_CLIENT_ID: 'x',
    PROVIDER_MS_ORG_CLIENT_SECRET: 'y',
  });
  const [google, microsoft, github, corp, msOrg] = c.providers;
  t.match(google, { type: 'google', issuer: 'https://accounts.google.com', trustEmail: true, name: 'Google' });
  t.equal(google.redirectUri, 'https://auth.example.com/auth/google/callback');
  t.match(microsoft, {
    type: 'microsoft',
    tenant: 'common',
    issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0',
    allowedTenants: ['a', 'b'],
    trustEmail: false,
  });
  t.match(github, { type: 'github', baseUrl: 'https://ghe.example.com', apiUrl: 'https://api.github.com', trustEmail: true });
  t.same(github.scopes, ['read:user', 'user:email']);
  t.match(corp, { id: 'corp-sso', type: 'oidc', issuer: 'https://sso.example.com', name: 'Corp', trustEmail: true });
  t.same(corp.scopes, ['openid', 'email', 'groups']);
  t.match(msOrg, { issuer: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0' });
});

t.test('loadConfig generates a development SECRET_KEY once and reuses it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await loadConfig({ DATA_DIR: dir });
  t.equal(first.config.secretKey.length, 32);
  t.match(first.warnings[0], /generated a development key/);
  const file = join(dir, 'secret-key');
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by the owner only');
  const second = await loadConfig({ DATA_DIR: dir });
  t.same(second.config.secretKey, first.config.secretKey, 'same key after a restart');
  t.equal(decodeSecret(await readFile(file, 'utf8'))?.length, 32);
  await t.rejects(loadConfig({ DATA_DIR: dir, NODE_ENV: 'production' }), /SECRET_KEY is required/, 'never in production');
});
