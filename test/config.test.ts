import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, decodeSecret, loadConfig, parseConfig, parseConfigWithWarnings } from '../src/config.js';

const SECRET = 'v31nyCMQue89clZahe4GPMFlGwkZAEynIUdjKCPWK5k=';

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
  t.same(c.rateLimits, { login: 30, refresh: 120, admin: 300, session: 300, discovery: 1200, operations: 1200, token: 1200 });
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
    'PORT must be a whole number from 1 to 65535, got "eighty"',
    'PUBLIC_URL must be an absolute http(s) URL',
    'DATABASE_URL must be a postgres',
    'SECRET_KEY is required when NODE_ENV=production',
    'ACCESS_TOKEN_TTL must be a whole number from 30 to 86400, got "5"',
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
  t.same(
    c.rateLimits,
    { login: 5, refresh: 0, admin: 1000, session: 300, discovery: 1200, operations: 1200, token: 1200 },
    '0 turns a limit off',
  );
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
    'RATE_LIMIT_LOGIN must be a whole number from 0 to 1000000, got "-1"',
    'RATE_LIMIT_REFRESH must be a whole number from 0 to 1000000, got "many"',
    'RATE_LIMIT_ADMIN must be a whole number from 0 to 1000000, got "10000000"',
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
  t.match(first.warnings.join('\n'), /generated a development key/);
  const file = join(dir, 'secret-key');
  t.equal((await stat(file)).mode & 0o777, 0o600, 'readable by the owner only');
  const second = await loadConfig({ DATA_DIR: dir });
  t.same(second.config.secretKey, first.config.secretKey, 'same key after a restart');
  t.equal(decodeSecret(await readFile(file, 'utf8'))?.length, 32);
  await t.rejects(loadConfig({ DATA_DIR: dir, NODE_ENV: 'production' }), /SECRET_KEY is required/, 'never in production');
});

t.test('TRUST_PROXY takes a hop count or proxy addresses, never `true`', async (t) => {
  t.equal(parseConfig({ SECRET_KEY: SECRET }).trustProxy, false);
  t.equal(parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: '2' }).trustProxy, 2);
  t.equal(parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: 'false' }).trustProxy, false);
  t.equal(parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: '0' }).trustProxy, false);
  t.same(parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,fd00::/8, loopback' }).trustProxy, [
    '10.0.0.0/8',
    '192.168.1.7',
    'fd00::/8',
    'loopback',
  ]);
  // `true` trusts the left-most X-Forwarded-For entry, which the client writes: refused, saying what to use
  const err = t.throws(() => parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: 'true' })) as unknown as ConfigError;
  t.equal(err.problems.length, 1);
  t.match(
    err.problems[0],
    /^TRUST_PROXY=true would trust .*X-Forwarded-For.* the number of proxies .*e\.g\. TRUST_PROXY=1.* addresses or CIDRs/,
  );
  for (const bad of ['yes', '10.0.0.0/33', '300.1.1.1', '10.0.0.1, nonsense', '-1']) {
    t.throws(() => parseConfig({ SECRET_KEY: SECRET, TRUST_PROXY: bad }), /TRUST_PROXY must be/, bad);
  }
});

t.test('production requires an https PUBLIC_URL (loopback excepted)', async (t) => {
  const prod = { NODE_ENV: 'production', SECRET_KEY: SECRET, DATABASE_URL: 'postgres://db/x' };
  // over http the cookies lose __Host- and Secure: a sibling subdomain could plant the flow cookie (login CSRF)
  t.throws(() => parseConfig({ ...prod, PUBLIC_URL: 'http://auth.example.com' }), /PUBLIC_URL must be https when NODE_ENV=production/);
  t.equal(parseConfig({ ...prod, PUBLIC_URL: 'https://auth.example.com' }).secureCookies, true);
  for (const local of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
    t.equal(parseConfig({ ...prod, PUBLIC_URL: local }).publicUrl, local, `${local} is this machine`);
  }
  t.equal(parseConfig({ SECRET_KEY: SECRET, PUBLIC_URL: 'http://auth.example.com' }).secureCookies, false, 'development may use http');
});

t.test('a SECRET_KEY with little entropy is refused', async (t) => {
  const weak = [
    ['one repeated byte', Buffer.alloc(32, 7).toString('base64')],
    ['one repeated character', 'a'.repeat(44)],
    ['a short pattern, hex', '0123456789abcdef'.repeat(4)],
    ['a repeated word', 'password'.repeat(6)],
    [
      'a random half, twice',
      Buffer.concat([Buffer.from(SECRET, 'base64').subarray(0, 16), Buffer.from(SECRET, 'base64').subarray(0, 16)]).toString('base64'),
    ],
  ];
  for (const [name, key] of weak) {
    const err = t.throws(() => parseConfig({ SECRET_KEY: key }), name) as unknown as ConfigError;
    t.match(err.problems?.[0], /^SECRET_KEY has too little entropy .*`openssl rand -base64 32`/, name);
  }
  t.ok(parseConfig({ SECRET_KEY: SECRET }).secretKey, 'a random key passes');
  t.ok(parseConfig({ SECRET_KEY: 'pwKyIBOvHV/buUORfoKK8CVag4wrIftJybppHxSco1A=' }).secretKey);
});

t.test('HOST and PORT are checked with the rest', async (t) => {
  const err = t.throws(() => parseConfig({ SECRET_KEY: SECRET, HOST: 'localhost:43100', PORT: '-5' })) as unknown as ConfigError;
  t.same(err.problems, [
    'PORT must be a whole number from 1 to 65535, got "-5"',
    'HOST must be an IP address or a host name to listen on, without a port or scheme (the port is PORT), got "localhost:43100"',
  ]);
  t.throws(() => parseConfig({ SECRET_KEY: SECRET, HOST: 'http://example.com' }), /HOST must be/);
  t.throws(() => parseConfig({ SECRET_KEY: SECRET, PORT: '70000' }), /PORT must be a whole number from 1 to 65535, got "70000"/);
  for (const host of ['127.0.0.1', '::', '::1', 'localhost', 'gw-1.internal.example.com']) {
    t.equal(parseConfig({ SECRET_KEY: SECRET, HOST: host }).host, host);
  }
});

t.test('PUBLIC_URL defaults to http://localhost:PORT', async (t) => {
  const c = parseConfig({ SECRET_KEY: SECRET, PORT: '43040' });
  t.equal(c.publicUrl, 'http://localhost:43040');
  t.equal(c.issuer, 'http://localhost:43040');
  t.same(c.accessTokenAudience, ['http://localhost:43040']);
  t.same(c.allowedOrigins, ['http://localhost:43040']);
  t.equal(parseConfig({ SECRET_KEY: SECRET, PORT: '43040', PUBLIC_URL: 'https://auth.example.com' }).publicUrl, 'https://auth.example.com');
});

t.test('production needs an explicit choice of database', async (t) => {
  const prod = { NODE_ENV: 'production', SECRET_KEY: SECRET, PUBLIC_URL: 'https://auth.example.com' };
  t.throws(() => parseConfig(prod), /NODE_ENV=production needs DATABASE_URL \(postgres:\/\/…\), or DATABASE_EMBEDDED=true/);
  t.equal(parseConfig({ ...prod, DATABASE_URL: 'postgres://db/gw' }).databaseUrl, 'postgres://db/gw');
  t.equal(parseConfig({ ...prod, DATABASE_EMBEDDED: 'true' }).databaseUrl, undefined, 'embedded on purpose');
  t.throws(() => parseConfig({ ...prod, DATABASE_EMBEDDED: 'true', DATABASE_URL: 'postgres://db/gw' }), /choose one/);
  t.throws(() => parseConfig({ SECRET_KEY: SECRET, DATABASE_EMBEDDED: 'false' }), /DATABASE_EMBEDDED=false needs DATABASE_URL/);
  t.equal(parseConfig({ SECRET_KEY: SECRET }).databaseUrl, undefined, 'development: embedded by default');
});

t.test('DATABASE_CONNECT_TIMEOUT bounds the start-up retries', async (t) => {
  t.equal(parseConfig({ SECRET_KEY: SECRET }).databaseConnectTimeout, 30);
  t.equal(parseConfig({ SECRET_KEY: SECRET, DATABASE_CONNECT_TIMEOUT: '0' }).databaseConnectTimeout, 0);
  t.throws(
    () => parseConfig({ SECRET_KEY: SECRET, DATABASE_CONNECT_TIMEOUT: 'forever' }),
    /DATABASE_CONNECT_TIMEOUT must be a whole number from 0 to 3600/,
  );
});

t.test('unknown and ignored variables are warned about, with the nearest known name', async (t) => {
  const warnings = (env: Record<string, string>) => parseConfigWithWarnings({ SECRET_KEY: SECRET, ...env }).warnings;
  t.same(warnings({ PROVIDER_GOOGLE_CLIENT_ID: 'g', PROVIDER_GOOGLE_CLIENT_SECRET: 's' }), [
    'PROVIDER_GOOGLE_CLIENT_ID, PROVIDER_GOOGLE_CLIENT_SECRET are ignored: provider "google" is not in AUTH_PROVIDERS (unset)',
    'no login provider is configured (AUTH_PROVIDERS is empty): nobody can sign in; see "Configuring providers" in README.md',
  ]);
  t.match(warnings({ AUTH_PROVIDER: 'google' }), [
    'AUTH_PROVIDER is not a setting of the gateway and is ignored; did you mean AUTH_PROVIDERS?',
  ]);
  t.match(warnings({ SIGNING_ALGO: 'RS256' }), ['SIGNING_ALGO is not a setting of the gateway and is ignored; did you mean SIGNING_ALG?']);
  t.match(warnings({ RATE_LIMIT_LOGINS: '5' }), [/did you mean RATE_LIMIT_LOGIN\?/]);
  const corp = { AUTH_PROVIDERS: 'corp', PROVIDER_CORP_ISSUER: 'https://sso.example.com', PROVIDER_CORP_CLIENT_ID: 'c' };
  t.same(warnings({ ...corp, PROVIDER_CORP_CLIENTSECRET: 'x', PROVIDER_CROP_CLIENT_ID: 'y' }), [
    'PROVIDER_CORP_CLIENTSECRET is not a setting of the gateway and is ignored; did you mean PROVIDER_CORP_CLIENT_SECRET?',
    'PROVIDER_CROP_CLIENT_ID is ignored: provider "crop" is not in AUTH_PROVIDERS ("corp")',
  ]);
  t.same(warnings({ ...corp, PROVIDER_CORP_COLOUR: 'red' }), [
    'PROVIDER_CORP_COLOUR is not a setting of the gateway and is ignored (see the Configuration table in README.md)',
  ]);
  t.same(
    warnings({ ...corp, HOME: '/root', NODE_OPTIONS: '--x', REDIS_PORT: 'tcp://10.0.0.1:6379', AUTH_GATEWAY_SERVICE_HOST: '10.0.0.2' }),
    [],
    'variables the gateway does not own, and the service links Kubernetes sets, are left alone',
  );
  // a variable that CLIENTS_FILE names for a secret is read, whatever its prefix
  const clientsFile =
    'clients:\n  - client_id: worker\n    client_secret: env:ADMIN_WORKER_SECRET\n    grant_types: [client_credentials]\n';
  t.same(
    parseConfigWithWarnings(
      { ...corp, SECRET_KEY: SECRET, CLIENTS_FILE: 'clients.yaml', ADMIN_WORKER_SECRET: 'w'.repeat(20) + 'Xy7-Qz9_Lm3Pk5Rt8Vb2' },
      { clientsFile: { text: clientsFile } },
    ).warnings,
    [],
    'a secret named by CLIENTS_FILE is no unknown setting',
  );
  // a problem and the typo behind it are shown together
  const err = t.throws(() =>
    parseConfig({ ...corp, PROVIDER_CORP_CLIENT_ID: '', PROVIDER_CORP_CLIENTID: 'c', SECRET_KEY: SECRET }),
  ) as unknown as ConfigError;
  t.match(
    err.message,
    /PROVIDER_CORP_CLIENT_ID is required\nAlso:\n {2}- PROVIDER_CORP_CLIENTID is not a setting .*did you mean PROVIDER_CORP_CLIENT_ID\?/,
  );
});

t.test('the settings the config module reads are exactly the README Configuration table', async (t) => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
  const documented = new Set<string>();
  for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
    let prefix = '';
    for (const [, name] of row.split(' | ')[0].matchAll(/`([^`]+)`/g)) {
      // `PROVIDER_{ID}_BASE_URL` / `_API_URL`: the second shares the first's prefix
      const full = name.startsWith('_') ? prefix + name : name;
      prefix = full.includes('{ID}') ? full.slice(0, full.indexOf('{ID}') + 4) : '';
      documented.add(full.replace('{ID}', 'CORP'));
    }
  }
  const { read } = parseConfigWithWarnings({
    SECRET_KEY: SECRET,
    AUTH_PROVIDERS: 'corp',
    PROVIDER_CORP_ISSUER: 'https://sso.example.com',
    PROVIDER_CORP_CLIENT_ID: 'c',
  });
  t.same([...new Set(read)].sort(), [...documented].sort());
});
