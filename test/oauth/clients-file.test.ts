// CLIENTS_FILE: static clients from JSON or YAML, validated at start-up with the other settings (one ConfigError
// naming each client and field), served next to the admin API's clients, read-only there (409).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config.js';
import { authenticateClient, ClientsFileConflictError, hashClientSecret } from '../../src/oauth/clients.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { buildTestApp, TEST_SECRET, testConfig, TestClock } from '../helpers/app.js';
import { basicAuth, insertGrant } from '../helpers/clients.js';
import { testDatabase } from '../helpers/db.js';
import { startGateway } from '../helpers/process.js';

const GRAFANA_SECRET = 'grafana-secret-0123456789-abcdefghijklmnop';
const BILLING_SECRET = 'billing-secret-0123456789-abcdefghijklmnop';

const JSON_FILE = JSON.stringify({
  clients: [
    {
      client_id: 'grafana',
      client_name: 'Grafana',
      client_secret: 'env:GRAFANA_SECRET',
      redirect_uris: ['https://grafana.example.com/login/generic_oauth'],
      grant_types: ['authorization_code', 'refresh_token'],
    },
    {
      client_id: 'billing',
      client_secret_hash: hashClientSecret(BILLING_SECRET),
      grant_types: ['client_credentials'],
      scope: 'invoices:read',
      audience: ['https://api.example.com'],
    },
    { client_id: 'cli', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/callback', 'com.example.cli:/cb'] },
  ],
});

const YAML_FILE = `# the same clients, as YAML
clients:
  - client_id: grafana
    client_name: Grafana
    client_secret: env:GRAFANA_SECRET
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
    grant_types: [authorization_code, refresh_token]
  - client_id: billing
    client_secret_hash: ${hashClientSecret(BILLING_SECRET)}
    grant_types: [client_credentials]
    scope: invoices:read
    audience:
      - https://api.example.com
  - client_id: cli
    token_endpoint_auth_method: none
    redirect_uris:
      - http://127.0.0.1/callback
      - com.example.cli:/cb
`;

const env = (extra: Record<string, string> = {}) => ({ SECRET_KEY: TEST_SECRET, GRAFANA_SECRET, ...extra });

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

t.test('a JSON and a YAML clients file give the same validated clients, secrets only as hashes', async (t) => {
  const fromJson = parseConfig(env({ CLIENTS_FILE: 'clients.json' }), { clientsFile: { text: JSON_FILE } });
  const fromYaml = parseConfig(env({ CLIENTS_FILE: 'clients.yaml' }), { clientsFile: { text: YAML_FILE } });
  t.same(fromYaml.clients, fromJson.clients);
  t.equal(fromJson.clientsFile, 'clients.json');
  t.same(
    fromJson.clients.map((c) => c.clientId),
    ['grafana', 'billing', 'cli'],
  );
  t.same(fromJson.clients[0], {
    clientId: 'grafana',
    secretHash: hashClientSecret(GRAFANA_SECRET),
    clientName: 'Grafana',
    redirectUris: ['https://grafana.example.com/login/generic_oauth'],
    postLogoutRedirectUris: [],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    scopes: ['openid', 'email', 'profile'],
    audience: [],
    idTokenSignedResponseAlg: 'RS256',
  });
  t.match(fromJson.clients[1], { secretHash: hashClientSecret(BILLING_SECRET), responseTypes: [], scopes: ['invoices:read'] });
  t.match(fromJson.clients[2], { secretHash: null, tokenEndpointAuthMethod: 'none' });
  t.notOk(JSON.stringify(fromJson).includes(GRAFANA_SECRET), 'the env secret itself is not kept in the configuration');
  t.same(parseConfig(env()).clients, [], 'no CLIENTS_FILE: no static clients');
});

t.test('loadConfig reads the file: .json as JSON, anything else as YAML', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-clients-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'clients.json'), JSON_FILE);
  await writeFile(join(dir, 'clients.yml'), YAML_FILE);
  await writeFile(join(dir, 'clients.conf'), YAML_FILE);
  const a = await loadConfig(env({ CLIENTS_FILE: join(dir, 'clients.json') }));
  const b = await loadConfig(env({ CLIENTS_FILE: join(dir, 'clients.yml') }));
  const c = await loadConfig(env({ CLIENTS_FILE: join(dir, 'clients.conf') }));
  t.equal(a.config.clients.length, 3);
  t.same(b.config.clients, a.config.clients);
  t.same(c.config.clients, a.config.clients);

  const missing = await loadConfig(env({ CLIENTS_FILE: join(dir, 'nope.yaml'), PORT: 'x' })).catch((e: unknown) => e);
  t.ok(missing instanceof ConfigError);
  t.match((missing as ConfigError).problems, [/PORT must be a whole number/, /CLIENTS_FILE \(.*nope\.yaml\) cannot be read: no such file/]);
  // YAML text in a .json file is refused as JSON
  await writeFile(join(dir, 'yaml.json'), YAML_FILE);
  const wrongFormat = await loadConfig(env({ CLIENTS_FILE: join(dir, 'yaml.json') })).catch((e: unknown) => e);
  t.match((wrongFormat as ConfigError).problems, [/is not valid JSON/]);
  t.match(
    problemsOf(() => parseConfig(env({ CLIENTS_FILE: 'x.yaml' }))),
    [/CLIENTS_FILE is set but was not read/],
  );
});

t.test('a bad clients file: every problem in one ConfigError, each naming the client and the field', async (t) => {
  const entries = [
    { client_id: 'literal', client_secret: 'hunter2-but-much-longer-than-32-characters', grant_types: ['client_credentials'] },
    { client_id: 'unset-env', client_secret: 'env:NOT_SET_ANYWHERE', grant_types: ['client_credentials'] },
    { client_id: 'short-env', client_secret: 'env:SHORT_SECRET', grant_types: ['client_credentials'] },
    { client_id: 'bad-env-name', client_secret: 'env:1-BAD', grant_types: ['client_credentials'] },
    {
      client_id: 'both',
      client_secret: 'env:GRAFANA_SECRET',
      client_secret_hash: hashClientSecret('x'),
      grant_types: ['client_credentials'],
    },
    { client_id: 'bad-hash', client_secret_hash: 'sha256:not-a-digest', grant_types: ['client_credentials'] },
    {
      client_id: 'plain-hash',
      client_secret_hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      grant_types: ['client_credentials'],
    },
    { client_id: 'no-secret', grant_types: ['client_credentials'] },
    { client_id: 'empty-hash', client_secret_hash: hashClientSecret(''), grant_types: ['client_credentials'] },
    {
      client_id: 'public-with-secret',
      token_endpoint_auth_method: 'none',
      client_secret: 'env:GRAFANA_SECRET',
      redirect_uris: ['http://127.0.0.1/cb'],
    },
    { client_id: 'bad-redirect', client_secret: 'env:GRAFANA_SECRET', redirect_uris: ['https://app.example.com/cb#x'] },
    { client_id: 'bad-metadata', client_secret: 'env:GRAFANA_SECRET', grant_types: ['implicit'], jwks_uri: 'https://x' },
    { client_id: 'bad id!', client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'] },
    { client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'] },
    { client_id: 'twice', client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'] },
    { client_id: 'twice', client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'] },
    'not an object',
  ];
  const text = JSON.stringify({ clients: entries, extra: true });
  const problems = problemsOf(() =>
    parseConfig(env({ CLIENTS_FILE: 'c.json', SHORT_SECRET: 'too-short', LOG_LEVEL: 'loud' }), { clientsFile: { text } }),
  );
  const where = 'CLIENTS_FILE (c.json)';
  for (const expected of [
    /^LOG_LEVEL must be one of/,
    `${where}: unknown top-level field "extra"`,
    `${where} client "literal": client_secret must be env:NAME (the secret itself is read from that environment variable); a literal secret in the file is refused`,
    `${where} client "unset-env": client_secret: the environment variable NOT_SET_ANYWHERE is not set`,
    `${where} client "short-env": client_secret: SHORT_SECRET must be at least 32 random characters (e.g. \`openssl rand -base64 32\`)`,
    `${where} client "bad-env-name": client_secret: "1-BAD" is not an environment variable name`,
    `${where} client "both": give client_secret or client_secret_hash, not both`,
    /^CLIENTS_FILE \(c\.json\) client "bad-hash": client_secret_hash must be "sha256:"/,
    /^CLIENTS_FILE \(c\.json\) client "plain-hash": client_secret_hash must be "sha256:"/,
    /^CLIENTS_FILE \(c\.json\) client "no-secret": a confidential client needs client_secret/,
    `${where} client "empty-hash": client_secret_hash is the hash of an empty secret`,
    /^CLIENTS_FILE \(c\.json\) client "public-with-secret": a public client .* has no secret/,
    /^CLIENTS_FILE \(c\.json\) client "bad-redirect": redirect_uris\[0\]: must not have a fragment/,
    /^CLIENTS_FILE \(c\.json\) client "bad-metadata": jwks_uri: is not a client metadata field/,
    /^CLIENTS_FILE \(c\.json\) client "bad-metadata": grant_types: supports only authorization_code, refresh_token, client_credentials; not implicit/,
    /^CLIENTS_FILE \(c\.json\) client "bad id!": client_id is required: 1 to 64 characters/,
    /^CLIENTS_FILE \(c\.json\) clients\[13\]: client_id is required/,
    /^CLIENTS_FILE \(c\.json\) client "twice": client_id is listed twice/,
    `${where}: clients[16] must be an object`,
  ]) {
    t.ok(
      problems.some((p) => (typeof expected === 'string' ? p === expected : expected.test(p))),
      `reported: ${String(expected)}`,
    );
  }
  t.notOk(problems.join('\n').includes('hunter2'), 'a literal secret is never echoed');
  t.notOk(problems.join('\n').includes('too-short'), 'nor an environment secret');

  for (const [name, file, text, expected] of [
    ['bad JSON', 'c.json', '{"clients": [', /^CLIENTS_FILE \(c\.json\) is not valid JSON/],
    ['bad YAML', 'c.yaml', 'clients:\n  - client_id: a\n   bad: [', /^CLIENTS_FILE \(c\.yaml\) is not valid YAML/],
    ['duplicate YAML key', 'c.yaml', 'clients:\n  - client_id: a\n    client_id: b\n', /is not valid YAML/],
    ['a list at the top', 'c.yaml', '- client_id: a\n', /must be an object with a "clients" list/],
    ['no clients list', 'c.yaml', 'clients: none\n', /must be an object with a "clients" list/],
    ['empty file', 'c.yaml', '', /must be an object with a "clients" list/],
    [
      'a YAML redirect URI list as a string',
      'c.yaml',
      'clients:\n  - client_id: a\n    client_secret: env:GRAFANA_SECRET\n    redirect_uris: https://a.example/cb\n',
      /client "a": redirect_uris: must be a list of strings/,
    ],
  ] as const) {
    t.match(
      problemsOf(() => parseConfig(env({ CLIENTS_FILE: file }), { clientsFile: { text } })),
      [expected],
      name,
    );
  }

  // production: http redirect URIs only for loopback hosts, and the rest of the production rules
  const http = JSON.stringify({
    clients: [{ client_id: 'a', client_secret: 'env:GRAFANA_SECRET', redirect_uris: ['http://app.example.com/cb'] }],
  });
  t.same(parseConfig(env({ CLIENTS_FILE: 'c.json' }), { clientsFile: { text: http } }).clients.length, 1, 'fine outside production');
  t.match(
    problemsOf(() =>
      parseConfig(env({ CLIENTS_FILE: 'c.json', NODE_ENV: 'production', DATABASE_EMBEDDED: 'true' }), { clientsFile: { text: http } }),
    ),
    [/client "a": redirect_uris\[0\]: must be https/],
  );
  const alg = JSON.stringify({
    clients: [
      { client_id: 'a', client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'], id_token_signed_response_alg: 'EdDSA' },
    ],
  });
  t.match(
    problemsOf(() => parseConfig(env({ CLIENTS_FILE: 'c.json' }), { clientsFile: { text: alg } })),
    [/id_token_signed_response_alg: must be one of RS256, ES256/],
  );
  t.equal(
    parseConfig(env({ CLIENTS_FILE: 'c.json', SIGNING_ALG: 'EdDSA' }), { clientsFile: { text: alg } }).clients[0].idTokenSignedResponseAlg,
    'EdDSA',
  );
});

t.test('file clients in the app: listed, authenticated, holding grants, read-only through the API', async (t) => {
  const clock = new TestClock();
  const files = { clientsFile: { text: YAML_FILE } };
  const { app, storage } = await buildTestApp(t, { env: { ADMIN_TOKEN, CLIENTS_FILE: 'clients.yaml', GRAFANA_SECRET }, files, clock });
  const db = storage.db;
  const call = adminCall(app);

  clock.advance(1);
  const api = await call('POST', '/admin/clients', { redirect_uris: ['https://app.example.com/cb'] });
  t.equal(api.statusCode, 201);
  // a row another instance's file left behind is not one of this instance's clients
  await db
    .insertInto('clients')
    .values({
      id: 'elsewhere',
      source: 'file',
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })
    .execute();

  const list = await call('GET', '/admin/clients');
  t.equal(list.statusCode, 200);
  const listed = list.json().clients as { client_id: string; source: string }[];
  t.same(
    listed.map((c) => [c.client_id, c.source]),
    [
      ['billing', 'file'],
      ['cli', 'file'],
      ['grafana', 'file'],
      [api.json().client_id, 'api'],
    ],
  );
  t.notOk(list.body.includes(hashClientSecret(BILLING_SECRET).slice(7)), 'no hash of a file secret');
  const grafana = await call('GET', '/admin/clients/grafana');
  t.match(grafana.json(), {
    client_id: 'grafana',
    client_name: 'Grafana',
    source: 'file',
    client_secret_expires_at: 0,
    grant_types: ['authorization_code', 'refresh_token'],
    secret_rotated_at: null,
  });
  t.notOk('client_secret' in grafana.json());
  t.equal((await call('GET', '/admin/clients/elsewhere')).statusCode, 404);

  for (const [method, url, payload] of [
    ['PATCH', '/admin/clients/grafana', { client_name: 'Changed' }],
    ['DELETE', '/admin/clients/grafana', undefined],
    ['POST', '/admin/clients/billing/secret', undefined],
    ['DELETE', '/admin/clients/cli', undefined],
  ] as const) {
    const res = await call(method, url, payload);
    t.equal(res.statusCode, 409, `${method} ${url}`);
    t.match(res.json(), { error: 'conflict', error_description: /comes from CLIENTS_FILE: change or remove it there/ });
  }
  t.equal((await call('GET', '/admin/clients/grafana')).json().client_name, 'Grafana', 'unchanged');

  const auth = (authorization: string | undefined, body: Record<string, unknown> = {}) =>
    authenticateClient(app.ctx.clients, { authorization, body }).then(
      (c) => c.id,
      (e: { error?: string }) => e.error,
    );
  t.equal(await auth(basicAuth('grafana', GRAFANA_SECRET)), 'grafana', 'secret from env:GRAFANA_SECRET');
  t.equal(await auth(basicAuth('billing', BILLING_SECRET)), 'billing', 'secret from client_secret_hash');
  t.equal(await auth(undefined, { client_id: 'cli' }), 'cli', 'a public file client');
  t.equal(await auth(basicAuth('grafana', BILLING_SECRET)), 'invalid_client');
  t.equal(await auth(basicAuth('elsewhere', 'x')), 'invalid_client', "another instance's file client is unknown here");

  // their rows anchor grants (sessions.client_id references clients)
  const anchor = await db.selectFrom('clients').selectAll().where('id', '=', 'grafana').executeTakeFirstOrThrow();
  t.match(anchor, { source: 'file', secret_hash: null, client_name: 'Grafana' });
  const grant = await insertGrant(app, 'grafana');
  t.equal((await db.selectFrom('sessions').select('client_id').where('id', '=', grant).executeTakeFirstOrThrow()).client_id, 'grafana');
  await t.rejects(insertGrant(app, 'not-a-client'), /foreign key|violates/i, 'a grant needs a known client');

  const created = await db.selectFrom('audit_events').select(['actor', 'details']).where('type', '=', 'client.created').execute();
  t.same(
    created
      .filter((e) => (e.details as { source?: string }).source === 'file')
      .map((e) => [e.actor, (e.details as { client_id: string }).client_id])
      .sort(),
    [
      ['system', 'billing'],
      ['system', 'cli'],
      ['system', 'grafana'],
    ],
  );

  t.test('another start with the same file changes nothing; a changed file is audited', async (t) => {
    const count = async () =>
      Number(
        (
          await db
            .selectFrom('audit_events')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count();
    const again = buildApp(testConfig({ CLIENTS_FILE: 'clients.yaml', GRAFANA_SECRET }, files), { storage, now: clock.now });
    await again.ready();
    await again.close();
    t.equal(await count(), before, 'nothing new');

    clock.advance(60);
    const changed = YAML_FILE.replace('client_name: Grafana', 'client_name: Grafana OSS');
    const next = buildApp(testConfig({ CLIENTS_FILE: 'clients.yaml', GRAFANA_SECRET }, { clientsFile: { text: changed } }), {
      storage,
      now: clock.now,
    });
    await next.ready();
    t.equal((await next.ctx.clients.find('grafana'))?.clientName, 'Grafana OSS');
    await next.close();
    const [event] = await db
      .selectFrom('audit_events')
      .select(['actor', 'details'])
      .where('type', '=', 'client.updated')
      .where(sql<boolean>`details->>'client_id' = 'grafana'`)
      .execute();
    t.same(event, {
      actor: 'system',
      details: { client_id: 'grafana', source: 'file', changes: { client_name: { from: 'Grafana', to: 'Grafana OSS' } } },
    });
    const row = await db
      .selectFrom('clients')
      .select(['client_name', 'updated_at', 'created_at'])
      .where('id', '=', 'grafana')
      .executeTakeFirstOrThrow();
    t.equal(row.client_name, 'Grafana OSS');
    t.same(row.updated_at, clock.now());
    t.ok(row.created_at < row.updated_at);
  });
});

t.test('a file client_id the admin API registered already stops start-up', async (t) => {
  const { storage } = await testDatabase(t);
  const first = buildApp(testConfig({ ADMIN_TOKEN }), { storage });
  await first.ready();
  const {
    client: { id: clientId },
  } = await first.ctx.clients.register({ grant_types: ['client_credentials'] }, { actor: 'test' });
  await first.close();
  const text = JSON.stringify({
    clients: [{ client_id: clientId, client_secret: 'env:GRAFANA_SECRET', grant_types: ['client_credentials'] }],
  });
  const second = buildApp(testConfig({ CLIENTS_FILE: 'c.json', GRAFANA_SECRET }, { clientsFile: { text } }), { storage });
  t.teardown(() => second.close());
  const err = await second.ready().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ClientsFileConflictError, 'refused');
  t.ok(err instanceof ConfigError, 'a configuration error');
  t.match((err as ConfigError).problems, [
    new RegExp(`CLIENTS_FILE client "${clientId}": this client_id is already registered through the admin API`),
  ]);
  const row = await storage.db.selectFrom('clients').select(['source', 'secret_hash']).where('id', '=', clientId).executeTakeFirstOrThrow();
  t.equal(row.source, 'api', 'the registered client is untouched');
  t.ok(row.secret_hash);
});

t.test('the process stops at start-up on a bad clients file, listing its problems', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-clients-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'clients.yaml');
  await writeFile(
    file,
    'clients:\n  - client_id: app\n    client_secret: s3cr3t-literal\n    redirect_uris: [https://app.example.com/cb#x]\n',
  );
  const gw = startGateway({ DATA_DIR: dir, CLIENTS_FILE: file, PORT: '0' });
  t.teardown(() => gw.child.kill('SIGKILL'));
  t.equal(await gw.exited, 1);
  const out = gw.output();
  t.match(out, /^Invalid configuration:\n/);
  t.match(out, /client "app": redirect_uris\[0\]: must not have a fragment/);
  t.match(out, /client "app": client_secret must be env:NAME/);
  t.notMatch(out, /s3cr3t-literal/, 'the literal secret is not echoed');
  t.notMatch(out, /at .*\.ts:\d+/, 'no stack trace');
});
