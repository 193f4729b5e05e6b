// Admin clients: registration (a secret shown once, only its hash stored), every registration rule refused,
// listing, PATCH, secret rotation, delete revoking the client's grants, and audit events in the same transaction.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { authenticateClient } from '../../src/oauth/clients.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { buildTestApp, testConfig, TestClock } from '../helpers/app.js';
import { basicAuth, insertGrant, registerClient } from '../helpers/clients.js';
import { signedIn } from '../helpers/users.js';

const CB = 'https://app.example.com/callback';

t.test('admin clients', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: { ADMIN_TOKEN }, clock });
  const db = storage.db;
  const call = adminCall(app);
  const rowOf = (id: string) => db.selectFrom('clients').selectAll().where('id', '=', id).executeTakeFirst();
  const auditOf = (type: string, clientId: string) =>
    db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', type)
      .where(sql<boolean>`details->>'client_id' = ${clientId}`)
      .orderBy('created_at')
      .execute();
  const authenticate = (id: string, secret: string) =>
    authenticateClient(app.ctx.clients, { authorization: basicAuth(id, secret), body: {} }).then(
      (c) => c.id,
      (e: { error?: string }) => e.error,
    );

  t.test('registering a confidential client: the secret is shown once and only its hash is stored', async (t) => {
    const res = await call('POST', '/admin/clients', {
      client_name: 'Billing',
      redirect_uris: [CB, 'http://127.0.0.1/cb'],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email invoices:read',
      audience: ['https://api.example.com'],
    });
    t.equal(res.statusCode, 201);
    t.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    t.match(body.client_id, /^[A-Za-z0-9_-]{22}$/, '128 random bits, URL-safe');
    t.match(body.client_secret, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
    t.same(body, {
      client_id: body.client_id,
      client_secret: body.client_secret,
      client_id_issued_at: Math.floor(clock.now().getTime() / 1000),
      client_secret_expires_at: 0,
      client_name: 'Billing',
      redirect_uris: [CB, 'http://127.0.0.1/cb'],
      post_logout_redirect_uris: ['https://app.example.com/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid email invoices:read',
      audience: ['https://api.example.com'],
      id_token_signed_response_alg: 'RS256',
      source: 'api',
      created_at: clock.now().toISOString(),
      updated_at: clock.now().toISOString(),
      secret_rotated_at: null,
    });

    const row = (await rowOf(body.client_id))!;
    t.equal(row.secret_hash, `sha256:${createHash('sha256').update(body.client_secret).digest('base64url')}`);
    t.notOk(JSON.stringify(row).includes(body.client_secret), 'the secret itself is nowhere in the row');
    t.equal(await authenticate(body.client_id, body.client_secret), body.client_id);

    const got = await call('GET', `/admin/clients/${body.client_id}`);
    t.equal(got.statusCode, 200);
    const { client_secret: _, ...withoutSecret } = body;
    t.same(got.json(), withoutSecret, 'never shown again');
    t.notOk(got.body.includes(row.secret_hash!.slice(7)), 'nor its hash');
    const list = await call('GET', '/admin/clients');
    t.notOk(list.body.includes(body.client_secret) || list.body.includes(row.secret_hash!.slice(7)));

    const [event] = await auditOf('client.created', body.client_id);
    t.match(event, { actor: 'admin-token', ip: '127.0.0.1', outcome: 'success' });
    t.match(event.details, {
      client_id: body.client_id,
      source: 'api',
      metadata: { client_name: 'Billing', grant_types: ['authorization_code', 'refresh_token'] },
    });
    t.notOk(JSON.stringify(event).includes(body.client_secret) || JSON.stringify(event).includes(row.secret_hash!.slice(7)));
  });

  t.test('registering a public client and the RFC 7591 defaults', async (t) => {
    const pub = await call('POST', '/admin/clients', {
      redirect_uris: ['com.example.app:/oauth2redirect'],
      token_endpoint_auth_method: 'none',
    });
    t.equal(pub.statusCode, 201);
    t.notOk('client_secret' in pub.json(), 'no secret for a public client');
    t.notOk('client_secret_expires_at' in pub.json());
    t.match(pub.json(), {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      scope: 'openid email profile',
      client_name: null,
    });
    t.equal((await rowOf(pub.json().client_id))!.secret_hash, null);
    t.equal(
      await authenticateClient(app.ctx.clients, { authorization: undefined, body: { client_id: pub.json().client_id } }).then((c) => c.id),
      pub.json().client_id,
    );

    const defaults = await call('POST', '/admin/clients', { redirect_uris: [CB] });
    t.match(defaults.json(), {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid email profile',
      audience: [],
      post_logout_redirect_uris: [],
      id_token_signed_response_alg: 'RS256',
    });
    const service = await call('POST', '/admin/clients', { grant_types: ['client_credentials'], id_token_signed_response_alg: 'ES256' });
    t.equal(service.statusCode, 201);
    t.match(service.json(), {
      grant_types: ['client_credentials'],
      response_types: [],
      scope: '',
      redirect_uris: [],
      id_token_signed_response_alg: 'ES256',
    });
    t.ok(service.json().client_secret);
    const post = await call('POST', '/admin/clients', { redirect_uris: [CB], token_endpoint_auth_method: 'client_secret_post', scope: '' });
    t.match(post.json(), { token_endpoint_auth_method: 'client_secret_post', scope: '' });
  });

  t.test('every registration rule is enforced (RFC 7591 section 3.2.2 errors naming the field)', async (t) => {
    const pub = { token_endpoint_auth_method: 'none' };
    const cases: [string, Record<string, unknown> | undefined, string, RegExp][] = [
      // RFC 6749 section 3.1.2 and RFC 9700 section 4.1.1
      ['relative', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri', /^redirect_uris\[0\]: must be an absolute URI/],
      ['no scheme', { redirect_uris: ['app.example.com/cb'] }, 'invalid_redirect_uri', /redirect_uris\[0\]: must be an absolute URI/],
      [
        'fragment',
        { redirect_uris: [CB, 'https://app.example.com/cb#x'] },
        'invalid_redirect_uri',
        /^redirect_uris\[1\]: must not have a fragment/,
      ],
      ['empty fragment', { redirect_uris: ['https://app.example.com/cb#'] }, 'invalid_redirect_uri', /fragment/],
      ['wildcard host', { redirect_uris: ['https://*.example.com/cb'] }, 'invalid_redirect_uri', /wildcard/],
      ['wildcard path', { redirect_uris: ['https://app.example.com/*'] }, 'invalid_redirect_uri', /wildcard/],
      ['user info', { redirect_uris: ['https://user:pw@app.example.com/cb'] }, 'invalid_redirect_uri', /user information/],
      ['user info on loopback', { redirect_uris: ['http://evil.example@127.0.0.1/cb'] }, 'invalid_redirect_uri', /user information/],
      ['backslash', { redirect_uris: ['https://app.example.com\\@evil.example/cb'] }, 'invalid_redirect_uri', /backslash/],
      ['space', { redirect_uris: ['https://app.example.com/a b'] }, 'invalid_redirect_uri', /printable ASCII/],
      ['non-ASCII', { redirect_uris: ['https://äpp.example.com/cb'] }, 'invalid_redirect_uri', /printable ASCII/],
      ['upper-case scheme', { redirect_uris: ['HTTPS://app.example.com/cb'] }, 'invalid_redirect_uri', /lower case/],
      ['no host', { redirect_uris: ['https:///cb'] }, 'invalid_redirect_uri', /host/],
      ['bad port', { redirect_uris: ['https://app.example.com:x/cb'] }, 'invalid_redirect_uri', /absolute URI|port/],
      ['javascript:', { ...pub, redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri', /reverse domain-name/],
      ['data:', { ...pub, redirect_uris: ['data:text/html,x'] }, 'invalid_redirect_uri', /reverse domain-name/],
      ['file:', { ...pub, redirect_uris: ['file:///etc/passwd'] }, 'invalid_redirect_uri', /reverse domain-name/],
      // RFC 8252 section 7.1: private-use schemes for native apps, which are public clients
      ['private scheme, confidential', { redirect_uris: ['com.example.app:/cb'] }, 'invalid_redirect_uri', /only for public clients/],
      ['private scheme, no path', { ...pub, redirect_uris: ['com.example.app:cb'] }, 'invalid_redirect_uri', /must have a path/],
      ['private scheme upper case', { ...pub, redirect_uris: ['Com.Example.App:/cb'] }, 'invalid_redirect_uri', /reverse domain-name/],
      ['twice', { redirect_uris: [CB, CB] }, 'invalid_redirect_uri', /redirect_uris\[1\]: lists .* twice/],
      [
        'too many',
        { redirect_uris: Array.from({ length: 33 }, (_, i) => `${CB}${i}`) },
        'invalid_redirect_uri',
        /^redirect_uris: must NOT have more than 32/,
      ],
      ['not strings', { redirect_uris: [{ uri: CB }] }, 'invalid_redirect_uri', /^redirect_uris\[0\]: must be string/],
      // RFC 7591 section 2: the code grant needs a redirect URI
      [
        'code without redirect_uris',
        {},
        'invalid_redirect_uri',
        /^redirect_uris: at least one is required for the authorization_code grant/,
      ],
      ['code with none', { redirect_uris: [] }, 'invalid_redirect_uri', /at least one is required/],
      [
        'post-logout fragment',
        { redirect_uris: [CB], post_logout_redirect_uris: ['https://app.example.com/bye#x'] },
        'invalid_redirect_uri',
        /^post_logout_redirect_uris\[0\]: must not have a fragment/,
      ],
      [
        'post-logout private scheme, confidential',
        { redirect_uris: [CB], post_logout_redirect_uris: ['com.example.app:/bye'] },
        'invalid_redirect_uri',
        /^post_logout_redirect_uris\[0\]: .*only for public clients/,
      ],
      [
        'post-logout wildcard',
        { redirect_uris: [CB], post_logout_redirect_uris: ['https://*.example.com/'] },
        'invalid_redirect_uri',
        /post_logout_redirect_uris\[0\]: .*wildcard/,
      ],
      // grant and response types (RFC 7591 section 2.1)
      [
        'implicit',
        { redirect_uris: [CB], grant_types: ['implicit'] },
        'invalid_client_metadata',
        /^grant_types\[0\]: must be one of authorization_code, refresh_token, client_credentials/,
      ],
      ['password', { grant_types: ['password'] }, 'invalid_client_metadata', /grant_types\[0\]/],
      ['no grant types', { grant_types: [] }, 'invalid_client_metadata', /^grant_types: must not be empty/],
      [
        'grant twice',
        { redirect_uris: [CB], grant_types: ['authorization_code', 'authorization_code'] },
        'invalid_client_metadata',
        /grant_types\[1\]: lists "authorization_code" twice/,
      ],
      ['refresh alone', { grant_types: ['refresh_token'] }, 'invalid_client_metadata', /refresh_token needs the authorization_code grant/],
      [
        'refresh with client credentials',
        { grant_types: ['client_credentials', 'refresh_token'] },
        'invalid_client_metadata',
        /refresh_token needs the authorization_code grant/,
      ],
      [
        'response type token',
        { redirect_uris: [CB], response_types: ['token'] },
        'invalid_client_metadata',
        /^response_types\[0\]: must be one of code/,
      ],
      [
        'code grant without code',
        { redirect_uris: [CB], response_types: [] },
        'invalid_client_metadata',
        /^response_types: must include code/,
      ],
      [
        'code without the grant',
        { grant_types: ['client_credentials'], response_types: ['code'] },
        'invalid_client_metadata',
        /^response_types: code needs the authorization_code grant/,
      ],
      // token_endpoint_auth_method
      [
        'private_key_jwt',
        { redirect_uris: [CB], token_endpoint_auth_method: 'private_key_jwt' },
        'invalid_client_metadata',
        /^token_endpoint_auth_method: must be one of client_secret_basic, client_secret_post, none/,
      ],
      // RFC 6749 section 4.4: client credentials only for confidential clients
      [
        'public client credentials',
        { ...pub, grant_types: ['client_credentials'] },
        'invalid_client_metadata',
        /client_credentials is only for confidential clients/,
      ],
      // RFC 6749 section 3.3 scope syntax
      [
        'double space',
        { redirect_uris: [CB], scope: 'openid  email' },
        'invalid_client_metadata',
        /^scope: must be scope tokens separated by single spaces/,
      ],
      ['leading space', { redirect_uris: [CB], scope: ' openid' }, 'invalid_client_metadata', /^scope:/],
      ['quote', { redirect_uris: [CB], scope: 'openid "x"' }, 'invalid_client_metadata', /"\\"x\\"" is not one|is not one/],
      ['backslash scope', { redirect_uris: [CB], scope: 'a\\b' }, 'invalid_client_metadata', /^scope:/],
      ['tab', { redirect_uris: [CB], scope: 'openid\temail' }, 'invalid_client_metadata', /^scope:/],
      ['scope twice', { redirect_uris: [CB], scope: 'openid email openid' }, 'invalid_client_metadata', /^scope: lists "openid" twice/],
      // RFC 8707 section 2: resource values
      [
        'audience not a URI',
        { redirect_uris: [CB], audience: ['not a uri'] },
        'invalid_client_metadata',
        /^audience\[0\]: must be an absolute URI/,
      ],
      [
        'audience without scheme',
        { redirect_uris: [CB], audience: ['api.example.com'] },
        'invalid_client_metadata',
        /^audience\[0\]: must be an absolute URI/,
      ],
      [
        'audience fragment',
        { redirect_uris: [CB], audience: ['https://api.example.com/#x'] },
        'invalid_client_metadata',
        /^audience\[0\]: must not have a fragment/,
      ],
      [
        'audience twice',
        { redirect_uris: [CB], audience: ['https://a.example', 'https://a.example'] },
        'invalid_client_metadata',
        /^audience\[1\]: lists/,
      ],
      // the ID-token algorithms the gateway keeps keys for: RS256 and SIGNING_ALG (ES256 here)
      [
        'alg HS256',
        { redirect_uris: [CB], id_token_signed_response_alg: 'HS256' },
        'invalid_client_metadata',
        /^id_token_signed_response_alg: must be one of RS256, ES256, EdDSA/,
      ],
      [
        'alg none',
        { redirect_uris: [CB], id_token_signed_response_alg: 'none' },
        'invalid_client_metadata',
        /^id_token_signed_response_alg:/,
      ],
      [
        'alg not kept',
        { redirect_uris: [CB], id_token_signed_response_alg: 'EdDSA' },
        'invalid_client_metadata',
        /^id_token_signed_response_alg: must be one of RS256, ES256$/,
      ],
      // names and unknown fields
      ['empty name', { redirect_uris: [CB], client_name: '' }, 'invalid_client_metadata', /^client_name: must be 1 to 200 characters/],
      [
        'long name',
        { redirect_uris: [CB], client_name: 'x'.repeat(201) },
        'invalid_client_metadata',
        /^client_name: must NOT have more than 200/,
      ],
      ['control character', { redirect_uris: [CB], client_name: 'a\nb' }, 'invalid_client_metadata', /^client_name:/],
      [
        'unknown field',
        { redirect_uris: [CB], jwks_uri: 'https://app.example.com/jwks' },
        'invalid_client_metadata',
        /^jwks_uri: is not a client metadata field/,
      ],
      [
        'choosing the id',
        { redirect_uris: [CB], client_id: 'mine' },
        'invalid_client_metadata',
        /^client_id: is not a client metadata field/,
      ],
      [
        'choosing the secret',
        { redirect_uris: [CB], client_secret: 'x'.repeat(40) },
        'invalid_client_metadata',
        /^client_secret: is not a client metadata field/,
      ],
      ['no body', undefined, 'invalid_request', /JSON object of client metadata is required/],
    ];
    const before = await db
      .selectFrom('clients')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    for (const [name, body, error, description] of cases) {
      const res = await call('POST', '/admin/clients', body);
      t.equal(res.statusCode, 400, `${name}: 400`);
      t.equal(res.json().error, error, `${name}: ${error}`);
      t.match(res.json().error_description, description, `${name}: ${res.json().error_description}`);
    }
    const after = await db
      .selectFrom('clients')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    t.equal(after.n, before.n, 'nothing registered');

    // several problems at once: every one is described, the code is the first one's
    const many = await call('POST', '/admin/clients', { redirect_uris: ['/a', 'https://b/#'], scope: 'a  b' });
    t.equal(many.json().error, 'invalid_redirect_uri');
    t.match(many.json().error_description, /redirect_uris\[0\]: .*; redirect_uris\[1\]: .*; scope: /);
  });

  t.test('no body field is coerced: a list given as a string is refused, naming the field', async (t) => {
    for (const [field, value] of [
      ['redirect_uris', CB],
      ['grant_types', 'authorization_code'],
      ['audience', 'https://api.example.com'],
      ['client_name', 42],
    ] as const) {
      const res = await call('POST', '/admin/clients', { redirect_uris: [CB], [field]: value });
      t.equal(res.statusCode, 400, field);
      t.match(res.json().error_description, new RegExp(`^${field}: must be`), `${field}: the message names the field`);
    }
  });

  t.test('http redirect URIs: any host outside production, loopback only in production', async (t) => {
    const dev = await call('POST', '/admin/clients', { redirect_uris: ['http://app.internal.example/cb'] });
    t.equal(dev.statusCode, 201, 'NODE_ENV=test: http is fine');

    const { app: prodApp } = await buildTestApp(t, { env: { ADMIN_TOKEN, NODE_ENV: 'production', DATABASE_EMBEDDED: 'true' }, clock });
    const prod = adminCall(prodApp);
    const refused = await prod('POST', '/admin/clients', { redirect_uris: ['http://app.example.com/cb'] });
    t.equal(refused.statusCode, 400);
    t.equal(refused.json().error, 'invalid_redirect_uri');
    t.match(refused.json().error_description, /^redirect_uris\[0\]: must be https; http is allowed only for the loopback hosts/);
    const logout = await prod('POST', '/admin/clients', { redirect_uris: [CB], post_logout_redirect_uris: ['http://app.example.com/'] });
    t.match(logout.json(), { error: 'invalid_redirect_uri', error_description: /^post_logout_redirect_uris\[0\]: must be https/ });
    // RFC 8252 section 7.3 / 8.3: loopback redirects of native apps use http
    for (const uri of ['http://127.0.0.1/cb', 'http://[::1]/cb', 'http://localhost:8080/cb']) {
      const ok = await prod('POST', '/admin/clients', { redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      t.equal(ok.statusCode, 201, `${uri} is allowed in production`);
    }
    const lookalike = await prod('POST', '/admin/clients', { redirect_uris: ['http://127.0.0.1.evil.example/cb'] });
    t.equal(lookalike.statusCode, 400, 'a host that only starts like a loopback address is not one');
    const shortForm = await prod('POST', '/admin/clients', { redirect_uris: ['http://127.1/cb'] });
    t.equal(shortForm.statusCode, 400, 'the loopback host is compared as written, not as a parser normalises it');
  });

  t.test('list, cursor pages and get', async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await registerClient(app, { client_name: `page-${i}` })).clientId);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call('GET', `/admin/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(res.statusCode, 200);
      for (const c of res.json().clients) {
        seen.push(c.client_id);
        t.notOk('client_secret' in c);
      }
      cursor = res.json().next_cursor;
      pages++;
    } while (cursor && pages < 50);
    t.equal(new Set(seen).size, seen.length, 'no client twice');
    const all = (await db.selectFrom('clients').select('id').orderBy('created_at').orderBy('id').execute()).map((r) => r.id);
    t.same(seen, all, 'every client, in (created_at, id) order');
    for (const id of ids) t.ok(seen.includes(id));

    for (const bad of [
      'nope',
      Buffer.from('2026-01-01T00:00:00.000000Z|a b').toString('base64url'),
      Buffer.from('2026-02-30T00:00:00.000000Z|abc').toString('base64url'),
    ]) {
      const res = await call('GET', `/admin/clients?cursor=${bad}`);
      t.equal(res.statusCode, 400, `cursor ${bad}`);
    }
    t.equal((await call('GET', '/admin/clients?limit=0')).statusCode, 400);
    t.equal((await call('GET', '/admin/clients?extra=1')).statusCode, 400);

    t.equal((await call('GET', `/admin/clients/${ids[0]}`)).json().client_name, 'page-0');
    t.match((await call('GET', '/admin/clients/unknown-client')).json(), { error: 'not_found' });
    t.equal((await call('GET', '/admin/clients/unknown-client')).statusCode, 404);
    t.equal((await call('GET', '/admin/clients/bad%20id')).statusCode, 400);
    t.equal((await call('GET', `/admin/clients/${'x'.repeat(65)}`)).statusCode, 400);
  });

  t.test('PATCH changes metadata, validated as a whole, audited with the changed fields', async (t) => {
    const { clientId, secret } = await registerClient(app, { client_name: 'Before', grant_types: ['authorization_code', 'refresh_token'] });
    clock.advance(60);
    const res = await call('PATCH', `/admin/clients/${clientId}`, {
      client_name: 'After',
      redirect_uris: [CB, 'https://app.example.com/other'],
      audience: ['https://api.example.com'],
    });
    t.equal(res.statusCode, 200);
    t.match(res.json(), {
      client_name: 'After',
      redirect_uris: [CB, 'https://app.example.com/other'],
      grant_types: ['authorization_code', 'refresh_token'],
      audience: ['https://api.example.com'],
      updated_at: clock.now().toISOString(),
    });
    t.not(res.json().created_at, res.json().updated_at);
    t.notOk('client_secret' in res.json());
    t.equal(await authenticate(clientId, secret!), clientId, 'the secret is unchanged');
    const [event] = await auditOf('client.updated', clientId);
    t.same(event.details, {
      client_id: clientId,
      changes: {
        client_name: { from: 'Before', to: 'After' },
        redirect_uris: { from: [CB], to: [CB, 'https://app.example.com/other'] },
        audience: { from: [], to: ['https://api.example.com'] },
      },
    });
    t.equal(event.actor, 'admin-token');

    // the same values again: nothing written, nothing audited
    const same = await call('PATCH', `/admin/clients/${clientId}`, { client_name: 'After' });
    t.equal(same.statusCode, 200);
    t.equal((await auditOf('client.updated', clientId)).length, 1);

    // validated as a whole with the current values
    const noCode = await call('PATCH', `/admin/clients/${clientId}`, { redirect_uris: [] });
    t.match(noCode.json(), { error: 'invalid_redirect_uri', error_description: /at least one is required/ });
    const fragment = await call('PATCH', `/admin/clients/${clientId}`, { redirect_uris: ['https://app.example.com/#x'] });
    t.match(fragment.json(), { error: 'invalid_redirect_uri' });
    const toPublic = await call('PATCH', `/admin/clients/${clientId}`, { token_endpoint_auth_method: 'none' });
    t.match(toPublic.json(), {
      error: 'invalid_client_metadata',
      error_description: /cannot change between public \(none\) and confidential/,
    });
    const orphanRefresh = await call('PATCH', `/admin/clients/${clientId}`, { grant_types: ['client_credentials', 'refresh_token'] });
    t.match(orphanRefresh.json(), { error: 'invalid_client_metadata', error_description: /refresh_token needs/ });
    t.equal((await call('PATCH', `/admin/clients/${clientId}`, {})).statusCode, 400);
    t.match((await call('PATCH', `/admin/clients/${clientId}`, { client_secret: 'x' })).json(), { error: 'invalid_client_metadata' });
    t.equal((await auditOf('client.updated', clientId)).length, 1, 'refused changes are not audited');

    // new grant types bring the response types they imply
    const service = await call('PATCH', `/admin/clients/${clientId}`, { grant_types: ['client_credentials'] });
    t.equal(service.statusCode, 200);
    t.match(service.json(), { grant_types: ['client_credentials'], response_types: [] });
    const basicToPost = await call('PATCH', `/admin/clients/${clientId}`, { token_endpoint_auth_method: 'client_secret_post' });
    t.equal(basicToPost.json().token_endpoint_auth_method, 'client_secret_post');
    t.equal(await authenticate(clientId, secret!), 'invalid_client', 'Basic is no longer its method');
    const viaPost = await authenticateClient(app.ctx.clients, {
      authorization: undefined,
      body: { client_id: clientId, client_secret: secret },
    });
    t.equal(viaPost.id, clientId);

    t.equal((await call('PATCH', '/admin/clients/unknown-client', { client_name: 'x' })).statusCode, 404);
  });

  t.test('rotating a secret: shown once, the old one stops working', async (t) => {
    const { clientId, secret } = await registerClient(app);
    clock.advance(30);
    const res = await call('POST', `/admin/clients/${clientId}/secret`);
    t.equal(res.statusCode, 200);
    const rotated = res.json();
    t.match(rotated.client_secret, /^[A-Za-z0-9_-]{43}$/);
    t.not(rotated.client_secret, secret);
    t.equal(rotated.secret_rotated_at, clock.now().toISOString());
    t.equal(rotated.client_secret_expires_at, 0);
    t.equal(await authenticate(clientId, secret!), 'invalid_client', 'the old secret fails');
    t.equal(await authenticate(clientId, rotated.client_secret), clientId, 'the new one passes');
    t.equal((await rowOf(clientId))!.secret_hash, `sha256:${createHash('sha256').update(rotated.client_secret).digest('base64url')}`);
    const [event] = await auditOf('client.secret_rotated', clientId);
    t.same(event.details, { client_id: clientId });
    t.notOk(JSON.stringify(event).includes(rotated.client_secret));
    t.notOk('client_secret' in (await call('GET', `/admin/clients/${clientId}`)).json());

    t.equal((await call('POST', `/admin/clients/${clientId}/secret`, {})).statusCode, 200, 'an empty JSON body is fine');
    t.equal((await call('POST', `/admin/clients/${clientId}/secret`, { client_secret: 'mine' })).statusCode, 400, 'no chosen secrets');
    const pub = await registerClient(app, { token_endpoint_auth_method: 'none' });
    const refused = await call('POST', `/admin/clients/${pub.clientId}/secret`);
    t.equal(refused.statusCode, 409);
    t.match(refused.json(), { error: 'conflict', error_description: /public client .* has no secret/ });
    t.equal((await call('POST', '/admin/clients/unknown-client/secret')).statusCode, 404);
  });

  t.test('deleting a client revokes every grant it holds, in the same transaction', async (t) => {
    const { clientId, secret } = await registerClient(app, { grant_types: ['authorization_code', 'refresh_token'] });
    const other = await registerClient(app);
    const grants = [await insertGrant(app, clientId), await insertGrant(app, clientId)];
    const ended = await insertGrant(app, clientId);
    await db.updateTable('sessions').set({ revoked_at: clock.now(), revoked_reason: 'logout' }).where('id', '=', ended).execute();
    const otherGrant = await insertGrant(app, other.clientId);
    const browser = await signedIn(app);

    clock.advance(10);
    const res = await call('DELETE', `/admin/clients/${clientId}`);
    t.equal(res.statusCode, 204);
    const rows = await db
      .selectFrom('sessions')
      .select(['id', 'revoked_at', 'revoked_reason', 'client_id'])
      .where('id', 'in', [...grants, ended, otherGrant, browser.tokens.sessionId])
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const g of grants) {
      t.equal(byId.get(g)!.revoked_reason, 'client_deleted');
      t.same(byId.get(g)!.revoked_at, clock.now());
      t.equal(byId.get(g)!.client_id, null, 'the reference is cleared with the client');
    }
    t.equal(byId.get(ended)!.revoked_reason, 'logout', 'an ended grant keeps its reason');
    t.equal(byId.get(otherGrant)!.revoked_at, null, "another client's grant lives");
    t.equal(byId.get(otherGrant)!.client_id, other.clientId);
    t.equal(byId.get(browser.tokens.sessionId)!.revoked_at, null, 'browser sessions live');
    t.equal(await rowOf(clientId), undefined);
    t.equal(await authenticate(clientId, secret!), 'invalid_client');
    t.equal((await call('GET', `/admin/clients/${clientId}`)).statusCode, 404);
    t.equal((await call('DELETE', `/admin/clients/${clientId}`)).statusCode, 404);
    const [event] = await auditOf('client.deleted', clientId);
    t.same(event.details, { client_id: clientId, client_name: null, grants_revoked: 2 });
    t.equal(event.actor, 'admin-token');
  });

  t.test('each change and its audit event commit together or not at all', async (t) => {
    const { clientId } = await registerClient(app, { client_name: 'Atomic' });
    const grant = await insertGrant(app, clientId);
    // the audit log refuses client events for a moment: every change must fail with it, leaving nothing behind
    // a 500 is no documented answer: this app on the same database is not checked against openapi.yaml
    const bare = buildApp(testConfig({ ADMIN_TOKEN }), { storage, now: clock.now });
    t.teardown(() => bare.close());
    await bare.ready();
    const call = adminCall(bare);
    await sql`alter table audit_events add constraint no_client_events check (type not like 'client.%') not valid`.execute(db);
    t.teardown(() => sql`alter table audit_events drop constraint if exists no_client_events`.execute(db));
    const countClients = async () =>
      Number(
        (
          await db
            .selectFrom('clients')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await countClients();

    t.equal((await call('POST', '/admin/clients', { redirect_uris: [CB] })).statusCode, 500);
    t.equal(await countClients(), before, 'no client without its client.created event');
    t.equal((await call('PATCH', `/admin/clients/${clientId}`, { client_name: 'Changed' })).statusCode, 500);
    t.equal((await rowOf(clientId))!.client_name, 'Atomic', 'no change without its client.updated event');
    const hash = (await rowOf(clientId))!.secret_hash;
    t.equal((await call('POST', `/admin/clients/${clientId}/secret`)).statusCode, 500);
    t.equal((await rowOf(clientId))!.secret_hash, hash, 'the secret is unchanged without its client.secret_rotated event');
    t.equal((await rowOf(clientId))!.secret_rotated_at, null);
    t.equal((await call('DELETE', `/admin/clients/${clientId}`)).statusCode, 500);
    t.ok(await rowOf(clientId), 'the client stays without its client.deleted event');
    const g = await db.selectFrom('sessions').select(['revoked_at', 'client_id']).where('id', '=', grant).executeTakeFirstOrThrow();
    t.same(g, { revoked_at: null, client_id: clientId }, 'and its grants are not revoked');

    await sql`alter table audit_events drop constraint no_client_events`.execute(db);
    t.equal((await call('DELETE', `/admin/clients/${clientId}`)).statusCode, 204);
  });

  t.test('the admin API authentication applies', async (t) => {
    for (const [method, url] of [
      ['GET', '/admin/clients'],
      ['POST', '/admin/clients'],
      ['GET', '/admin/clients/x'],
      ['PATCH', '/admin/clients/x'],
      ['DELETE', '/admin/clients/x'],
      ['POST', '/admin/clients/x/secret'],
    ] as const) {
      const res = await app.inject({ method, url, payload: method === 'POST' || method === 'PATCH' ? { client_name: 'x' } : undefined });
      t.equal(res.statusCode, 401, `${method} ${url}`);
      t.equal(res.json().error, 'invalid_token');
    }
    const user = await signedIn(app);
    const forbidden = await adminCall(app, user.tokens.accessToken)('POST', '/admin/clients', { redirect_uris: [CB] });
    t.equal(forbidden.statusCode, 403);
    const admin = await signedIn(app, { roles: ['admin'] });
    const byUser = await adminCall(app, admin.tokens.accessToken)('POST', '/admin/clients', { redirect_uris: [CB] });
    t.equal(byUser.statusCode, 201);
    const [event] = await auditOf('client.created', byUser.json().client_id);
    t.equal(event.actor, `user:${admin.id}`);
  });
});
