// Client authentication (RFC 6749 section 2.3), every branch, against a real database; what the one error handler
// answers for it; redirect URI matching (RFC 8252 section 7.3 loopback ports); secrets; the client cache.
import { createHash } from 'node:crypto';
import { parse as parseForm } from 'node:querystring';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.js';
import { AppError, InvalidClientError } from '../../src/errors.js';
import {
  authenticateClient,
  type Client,
  ClientStore,
  clientSecretMatches,
  generateClientSecret,
  hashClientSecret,
  matchPostLogoutRedirectUri,
  matchRedirectUri,
  matchUri,
} from '../../src/oauth/clients.js';
import { testConfig, TestClock } from '../helpers/app.js';
import { basicAuth } from '../helpers/clients.js';
import { testDatabase } from '../helpers/db.js';

const FILE_SECRET = 'file secret: with + spaces, %41 and a colon ::'.padEnd(40, '~');
const CLIENTS_FILE = JSON.stringify({
  clients: [
    {
      client_id: 'file.app~1',
      client_secret: 'env:FILE_APP_SECRET',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['client_credentials'],
    },
    {
      client_id: 'hashed-app',
      client_secret_hash: hashClientSecret(FILE_SECRET),
      grant_types: ['client_credentials'],
    },
  ],
});

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

t.test('authenticateClient', async (t) => {
  const { storage } = await testDatabase(t);
  const config = testConfig(
    { CLIENTS_FILE: '/etc/gateway/clients.json', FILE_APP_SECRET: FILE_SECRET, ISSUER: 'https://auth.example.com' },
    { clientsFile: { text: CLIENTS_FILE } },
  );
  const clock = new TestClock();
  const app = buildApp(config, { storage, now: clock.now });
  // a stand-in for the token endpoint: form-encoded body (a repeated parameter becomes an array, as with
  // @fastify/formbody), client authentication, the one error handler
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseForm(body as string));
  });
  app.post('/test/client-auth', async (request) => {
    const client = await authenticateClient(app.ctx.clients, {
      authorization: request.headers.authorization,
      body: request.body as Record<string, unknown>,
    });
    return { client_id: client.id };
  });
  t.teardown(() => app.close());
  await app.ready();
  const store = app.ctx.clients;
  const who = { actor: 'test' };
  const code = { redirect_uris: ['https://app.example.com/cb'] };
  const basicClient = await store.register({ ...code, client_name: 'Basic' }, who);
  const postClient = await store.register({ ...code, token_endpoint_auth_method: 'client_secret_post' }, who);
  const publicClient = await store.register({ ...code, token_endpoint_auth_method: 'none' }, who);
  const basic = { id: basicClient.client.id, secret: basicClient.secret! };
  const post = { id: postClient.client.id, secret: postClient.secret! };
  const pub = publicClient.client.id;

  const auth = (authorization: string | undefined, body: Record<string, unknown> | null = {}) =>
    authenticateClient(store, { authorization, body });
  const refused = async (
    t: Test,
    p: Promise<Client>,
    reason: InvalidClientError['reason'],
    description: RegExp,
  ): Promise<InvalidClientError | undefined> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof InvalidClientError, `refused as invalid_client (${reason})`);
    if (!(err instanceof InvalidClientError)) return undefined;
    t.equal(err.reason, reason);
    t.equal(err.statusCode, 401);
    t.match(err.description, description);
    t.equal(err.headers?.['www-authenticate'], 'Basic realm="https://auth.example.com"');
    return err;
  };
  const badRequest = async (t: Test, p: Promise<Client>, description: RegExp) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof AppError && !(err instanceof InvalidClientError), 'refused, not as invalid_client');
    t.equal((err as AppError).error, 'invalid_request');
    t.equal((err as AppError).statusCode, 400);
    t.match((err as AppError).description, description);
  };

  t.test('client_secret_basic', async (t) => {
    t.equal((await auth(basicAuth(basic.id, basic.secret))).id, basic.id);
    t.equal((await auth(`basic  ${b64(`${basic.id}:${basic.secret}`)}`)).id, basic.id, 'the scheme is case-insensitive');
    t.equal((await auth(basicAuth(basic.id, basic.secret), { client_id: basic.id })).id, basic.id, 'the same client_id in the body');
    const e = await refused(t, auth(basicAuth(basic.id, `${basic.secret}x`)), 'wrong_secret', /^Client authentication failed\.$/);
    t.equal(e?.clientId, basic.id);
    await refused(t, auth(basicAuth(basic.id, '')), 'wrong_secret', /failed/);
    await refused(t, auth(basicAuth(basic.id, basic.secret.slice(0, -1))), 'wrong_secret', /failed/);
    await refused(t, auth(basicAuth('no-such-client', basic.secret)), 'unknown_client', /^Client authentication failed\.$/);
    await refused(t, auth(basicAuth(basic.id, basic.secret), { client_id: post.id }), 'malformed', /client_id in the body/);
    await refused(
      t,
      auth(basicAuth(post.id, post.secret)),
      'wrong_method',
      /authenticates with client_secret_post, not client_secret_basic/,
    );
    await refused(t, auth(basicAuth(pub, 'anything')), 'wrong_method', /authenticates with none, not client_secret_basic/);
  });

  t.test('Basic credentials are form-urlencoded before base64 (RFC 6749 section 2.3.1)', async (t) => {
    // the file client's id and secret have characters that the encoding changes: +, space, %, :
    t.equal((await auth(basicAuth('hashed-app', FILE_SECRET))).id, 'hashed-app');
    // sent without the encoding, "+" would decode to a space and "%41" to "A": not the secret
    await refused(t, auth(`Basic ${b64(`hashed-app:${FILE_SECRET}`)}`), 'wrong_secret', /failed/);
    // an encoded colon in the id; an unencoded colon in the secret belongs to the secret (split at the first)
    await refused(t, auth(`Basic ${b64(`hashed%3Aapp:${encodeURIComponent(FILE_SECRET)}`)}`), 'unknown_client', /failed/);
    t.equal((await auth(`Basic ${b64(`hashed-app:${encodeURIComponent(FILE_SECRET).replace(/%3A/g, ':')}`)}`)).id, 'hashed-app');
  });

  t.test('malformed Basic credentials', async (t) => {
    for (const [header, why] of [
      ['Basic', 'no credentials'],
      ['Basic ', 'empty credentials'],
      ['Basic !!!!', 'not base64'],
      ['Basic a', 'not base64 (one character)'],
      [`Basic ${b64('no-colon')}`, 'no colon'],
      [`Basic ${b64(`:${basic.secret}`)}`, 'an empty client id'],
      [`Basic ${b64(`${basic.id}:%zz`)}`, 'a bad percent escape'],
      [`Basic ${b64(Buffer.from([0x61, 0x3a, 0xff, 0xfe]))}`, 'not UTF-8'],
      [`Basic ${b64(`${basic.id}:${basic.secret}`)} extra`, 'two tokens'],
    ]) {
      await refused(t, auth(header), 'malformed', /Basic credentials are malformed/).then((e) => t.ok(e, why));
    }
  });

  t.test('another Authorization scheme is not client authentication', async (t) => {
    await refused(t, auth('Bearer abc.def', { client_id: basic.id }), 'unsupported_method', /Basic scheme only/);
    await refused(t, auth('Basicx abc'), 'unsupported_method', /Basic scheme only/);
  });

  t.test('client_secret_post', async (t) => {
    t.equal((await auth(undefined, { client_id: post.id, client_secret: post.secret })).id, post.id);
    t.equal(
      (await auth(undefined, { client_id: 'file.app~1', client_secret: FILE_SECRET })).id,
      'file.app~1',
      'a CLIENTS_FILE env: secret',
    );
    await refused(t, auth(undefined, { client_id: post.id, client_secret: 'wrong' }), 'wrong_secret', /failed/);
    await refused(t, auth(undefined, { client_secret: post.secret }), 'malformed', /client_secret needs client_id/);
    await refused(t, auth(undefined, { client_id: '', client_secret: post.secret }), 'malformed', /client_secret needs client_id/);
    await refused(
      t,
      auth(undefined, { client_id: basic.id, client_secret: basic.secret }),
      'wrong_method',
      /client_secret_basic, not client_secret_post/,
    );
    await refused(t, auth(undefined, { client_id: pub, client_secret: 'x' }), 'wrong_method', /none, not client_secret_post/);
    await refused(t, auth(undefined, { client_id: 'nobody', client_secret: 'x' }), 'unknown_client', /failed/);
  });

  t.test('none: a public client names itself', async (t) => {
    t.equal((await auth(undefined, { client_id: pub })).id, pub);
    await refused(t, auth(undefined, { client_id: basic.id }), 'wrong_method', /client_secret_basic, not none/);
    await refused(t, auth(undefined, { client_id: post.id }), 'wrong_method', /client_secret_post, not none/);
    await refused(t, auth(undefined, { client_id: 'nobody' }), 'unknown_client', /failed/);
    await refused(t, auth(undefined, { client_id: 'x'.repeat(300) }), 'unknown_client', /failed/);
  });

  t.test('no authentication at all', async (t) => {
    await refused(t, auth(undefined, {}), 'missing', /required/);
    await refused(t, auth(undefined, null), 'missing', /required/);
    await refused(t, auth(undefined, { client_id: '' }), 'missing', /required/);
  });

  t.test('one method per request (RFC 6749 section 2.3) and each parameter once (section 3.2)', async (t) => {
    await badRequest(t, auth(basicAuth(basic.id, basic.secret), { client_secret: basic.secret }), /more than one authentication method/);
    await badRequest(t, auth(basicAuth(basic.id, basic.secret), { client_id: basic.id, client_secret: basic.secret }), /more than one/);
    await badRequest(t, auth(undefined, { client_id: post.id, client_secret: post.secret, client_assertion: 'x.y.z' }), /more than one/);
    await badRequest(t, auth(basicAuth(basic.id, basic.secret), { client_assertion_type: 'urn:x' }), /more than one/);
    await badRequest(t, auth(undefined, { client_id: [post.id, post.id], client_secret: post.secret }), /client_id must not be repeated/);
    await badRequest(t, auth(undefined, { client_id: post.id, client_secret: [post.secret, 'x'] }), /client_secret must not be repeated/);
    await badRequest(t, auth(undefined, { client_id: 7 }), /client_id must be a string/);
  });

  t.test('client assertions are not supported', async (t) => {
    await refused(t, auth(undefined, { client_id: post.id, client_assertion: 'x.y.z' }), 'unsupported_method', /not supported/);
  });

  t.test('the error handler: 401 invalid_client with a Basic challenge, 400 for two methods', async (t) => {
    const form = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/test/client-auth',
        payload: new URLSearchParams(body).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      });
    const ok = await form({}, { authorization: basicAuth(basic.id, basic.secret) });
    t.equal(ok.statusCode, 200);
    t.same(ok.json(), { client_id: basic.id });
    const viaPost = await form({ client_id: post.id, client_secret: post.secret });
    t.same(viaPost.json(), { client_id: post.id });

    // RFC 6749 section 5.2: the client tried Basic, so 401 with WWW-Authenticate for the Basic scheme
    const wrong = await form({}, { authorization: basicAuth(basic.id, 'wrong') });
    t.equal(wrong.statusCode, 401);
    t.same(wrong.json(), { error: 'invalid_client', error_description: 'Client authentication failed.' });
    t.equal(wrong.headers['www-authenticate'], 'Basic realm="https://auth.example.com"');
    t.equal(wrong.headers['cache-control'], 'no-store');
    const noAuth = await form({ grant_type: 'client_credentials' });
    t.equal(noAuth.statusCode, 401);
    t.equal(noAuth.json().error, 'invalid_client');
    t.equal(noAuth.headers['www-authenticate'], 'Basic realm="https://auth.example.com"', 'every 401 carries a challenge (RFC 9110)');
    const wrongPost = await form({ client_id: post.id, client_secret: 'nope' });
    t.equal(wrongPost.statusCode, 401);
    t.equal(wrongPost.json().error, 'invalid_client');

    const two = await form({ client_secret: basic.secret }, { authorization: basicAuth(basic.id, basic.secret) });
    t.equal(two.statusCode, 400);
    t.equal(two.json().error, 'invalid_request');
    const repeated = await app.inject({
      method: 'POST',
      url: '/test/client-auth',
      payload: `client_id=${pub}&client_id=${pub}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    t.equal(repeated.statusCode, 400);
    t.match(repeated.json(), { error: 'invalid_request', error_description: /must not be repeated/ });
  });

  t.test('a changed client is seen at once here, and within the cache period by another instance', async (t) => {
    const other = new ClientStore({
      db: storage.db,
      now: clock.now,
      fileClients: [],
      rules: { production: false, signingAlg: 'ES256' },
      realm: 'other',
    });
    const { client, secret } = await store.register({ grant_types: ['client_credentials'] }, who);
    const creds = basicAuth(client.id, secret!);
    t.equal((await authenticateClient(other, { authorization: creds, body: {} })).id, client.id, 'the other instance reads it');
    const rotated = await store.rotateSecret(client.id, who);
    await refused(t, auth(creds), 'wrong_secret', /failed/);
    t.equal((await auth(basicAuth(client.id, rotated.secret))).id, client.id, 'the new secret works here at once');
    // the other instance cached the client a moment ago: the old secret works there until the entry expires
    t.equal((await authenticateClient(other, { authorization: creds, body: {} })).id, client.id, 'stale for up to CACHE_TTL_MS');
    clock.advance(5);
    await t.rejects(authenticateClient(other, { authorization: creds, body: {} }), InvalidClientError, 'the old secret fails after 5 s');
    t.equal((await authenticateClient(other, { authorization: basicAuth(client.id, rotated.secret), body: {} })).id, client.id);

    await store.remove(client.id, who);
    await refused(t, auth(basicAuth(client.id, rotated.secret)), 'unknown_client', /failed/);
    clock.advance(5);
    await t.rejects(authenticateClient(other, { authorization: basicAuth(client.id, rotated.secret), body: {} }), InvalidClientError);
  });

  t.test('an unknown id is cached too, for as long', async (t) => {
    const { client } = await store.register({ grant_types: ['client_credentials'] }, who);
    t.equal((await store.find(client.id))?.id, client.id, 'a new client is found at once on the instance that made it');
    t.ok(Object.isFrozen(await store.find(client.id)), 'cached clients cannot be changed by a caller');
    t.ok(Object.isFrozen((await store.find(client.id))!.grantTypes));
    const later = 'registered-elsewhere';
    t.equal(await store.find(later), undefined);
    // as if another instance registered it now
    await storage.db
      .insertInto('clients')
      .values({ id: later, grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'none' })
      .execute();
    t.equal(await store.find(later), undefined, 'still unknown here within the cache period');
    clock.advance(5);
    t.equal((await store.find(later))?.id, later);
  });
});

t.test('redirect URI matching', async (t) => {
  const client = {
    redirectUris: [
      'https://app.example.com/callback',
      'http://127.0.0.1/cb',
      'http://[::1]:8080/cb?x=1',
      'http://localhost:3000/',
      'com.example.app:/oauth2redirect',
    ],
    postLogoutRedirectUris: ['https://app.example.com/bye', 'http://127.0.0.1/bye'],
  };
  const yes = [
    'https://app.example.com/callback',
    // RFC 8252 section 7.3: any port for a loopback redirect URI
    'http://127.0.0.1/cb',
    'http://127.0.0.1:51234/cb',
    'http://127.0.0.1:1/cb',
    'http://127.0.0.1:65535/cb',
    'http://[::1]/cb?x=1',
    'http://[::1]:50000/cb?x=1',
    'http://localhost:49152/',
    'http://localhost/',
    'com.example.app:/oauth2redirect',
  ];
  const no = [
    // exact: no normalisation of case, trailing slashes, default ports, dot segments or encoding
    'https://app.example.com/callback/',
    'https://APP.example.com/callback',
    'https://app.example.com:443/callback',
    'https://app.example.com/./callback',
    'https://app.example.com/%63allback',
    'https://app.example.com/callback?x=1',
    'https://app.example.com/callback#frag',
    'https://app.example.com/call',
    'https://app.example.com:8443/callback',
    // loopback: only the port may differ
    'http://127.0.0.1:8080/cb/',
    'http://127.0.0.1:8080/cb?x=1',
    'http://127.0.0.1:8080/cb#x',
    'http://127.0.0.1:0/cb',
    'http://127.0.0.1:65536/cb',
    'http://127.0.0.1:99999/cb',
    'http://127.0.0.1:/cb',
    'http://127.0.0.1:80@evil.example/cb',
    'http://127.0.0.1.evil.example/cb',
    'https://127.0.0.1:8080/cb',
    'http://localhost:8080/cb',
    'http://[::1]:8080/cb',
    'http://127.0.0.2:8080/cb',
    'http://localhost:3000',
    'com.example.app:/oauth2redirect/x',
    'com.example.app://oauth2redirect',
    '',
  ];
  for (const uri of yes) t.ok(matchRedirectUri(client, uri), `matches ${uri}`);
  for (const uri of no) t.notOk(matchRedirectUri(client, uri), `does not match "${uri}"`);
  t.notOk(matchUri(client.redirectUris, undefined), 'no URI');
  t.notOk(matchUri(client.redirectUris, ['https://app.example.com/callback']), 'not a string');
  t.notOk(matchUri([], 'https://app.example.com/callback'), 'nothing registered');
  // a non-loopback host with a port matches only that port
  t.notOk(matchUri(['https://app.example.com:8443/cb'], 'https://app.example.com:9443/cb'));

  t.ok(matchPostLogoutRedirectUri(client, 'https://app.example.com/bye'));
  t.ok(matchPostLogoutRedirectUri(client, 'http://127.0.0.1:4000/bye'));
  t.notOk(matchPostLogoutRedirectUri(client, 'https://app.example.com/callback'), 'a redirect URI is not a post-logout one');
  t.notOk(matchRedirectUri(client, 'https://app.example.com/bye'), 'nor the other way round');
});

t.test('client secrets: 256 random bits, stored as SHA-256, compared in constant time', async (t) => {
  const a = generateClientSecret();
  const b = generateClientSecret();
  t.match(a, /^[A-Za-z0-9_-]{43}$/);
  t.equal(Buffer.from(a, 'base64url').length, 32, '256 bits');
  t.not(a, b);
  const hash = hashClientSecret(a);
  t.equal(hash, `sha256:${createHash('sha256').update(a).digest('base64url')}`);
  t.ok(clientSecretMatches(a, hash));
  t.notOk(clientSecretMatches(b, hash));
  t.notOk(clientSecretMatches(`${a}x`, hash), 'a longer secret');
  t.notOk(clientSecretMatches('', hash), 'an empty secret');
  t.notOk(clientSecretMatches(a, null), 'a public client has no secret');
  t.notOk(clientSecretMatches(a, 'sha256:short'), 'a malformed hash');
  t.notOk(clientSecretMatches(a, `sha512:${hash.slice(7)}`), 'another algorithm');
});
