// The token endpoint refuses what it must: authorization codes (RFC 6749 4.1.2, 4.1.3, RFC 7636 4.6, RFC 9700
// 4.8.2), client authentication (RFC 6749 2.3, 5.2), grants a client is not registered for, form encoding only
// (RFC 6749 3.2), no caching (5.1), and refresh tokens bound to their client and their grant (RFC 6749 6, 10.4,
// RFC 8707 2.2). Each refusal also leaves what it refused intact where it must.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { Test } from 'tap';
import {
  active,
  authorizeUrl,
  claimsOf,
  codeFor,
  NO_RATE_LIMITS,
  redeem,
  refresh,
  registerClient,
  signIn,
  type TestClient,
  tokenPost,
  validRequest,
  walk,
} from '../helpers/op-requests.js';
import { ADMIN_TOKEN, CLIENT_CB, startOpGateway } from '../helpers/op.js';
import { DEFAULT_UPSTREAM_ACCOUNT } from '../helpers/upstream-oidc.js';

t.test('the token endpoint', async (t) => {
  const op = await startOpGateway(t, { env: NO_RATE_LIMITS });
  const web = await registerClient(op, {
    client_name: 'Web',
    redirect_uris: [CLIENT_CB, 'https://app.example.com/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile',
    audience: ['https://api.example.com', 'urn:example:orders'],
  });
  const posted = await registerClient(op, {
    client_name: 'Posting web app',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  const spa = await registerClient(op, {
    client_name: 'SPA',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  });
  const codeOnly = await registerClient(op, {
    client_name: 'No refresh',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const service = await registerClient(op, {
    client_name: 'Service',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'orders:read orders:write openid',
    audience: ['urn:example:orders', 'urn:example:billing'],
  });
  // a row the registration rules would never write (RFC 6749 4.4: client_credentials is for confidential
  // clients): the token endpoint must refuse it on its own
  const rogue: TestClient = { id: `rogue-${randomUUID()}`, method: 'none' };
  await op.storage.db
    .insertInto('clients')
    .values({
      id: rogue.id,
      source: 'api',
      client_name: 'Public with client_credentials',
      secret_hash: null,
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: 'none',
      scope: 'orders:read',
      created_at: op.clock.now(),
      updated_at: op.clock.now(),
    })
    .execute();

  const browser = op.browser();
  const isError = (t: Test, res: { status: number; body: Record<string, unknown> }, status: number, error: string, name: string) => {
    t.equal(res.status, status, `${name}: ${status}`);
    t.equal(res.body.error, error, `${name}: ${error}`);
    t.type(res.body.error_description, 'string', `${name}: with error_description`);
    t.notOk('access_token' in res.body, `${name}: no token`);
  };

  t.test('a code is one-time: a second redemption is refused and revokes what the first one issued', async (t) => {
    const c = await codeFor(op, browser, web);
    const first = await redeem(op, web, c.code, c.verifier);
    t.equal(first.status, 200);
    const { access_token: access, refresh_token: rt } = first.body as { access_token: string; refresh_token: string };
    const rotated = await refresh(op, web, rt);
    t.equal(rotated.status, 200, 'the grant is used meanwhile');
    t.ok(await active(op, web, access), 'active before');

    isError(t, await redeem(op, web, c.code, c.verifier), 400, 'invalid_grant', 'second redemption');
    // RFC 6749 section 4.1.2: the grant of the first redemption ends, every token of it
    isError(t, await refresh(op, web, rotated.body.refresh_token as string), 400, 'invalid_grant', 'its refresh token');
    t.notOk(await active(op, web, access), 'its first access token introspects inactive');
    t.notOk(await active(op, web, rotated.body.access_token as string), 'and the one after the refresh');
    const info = await fetch(`${op.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${access}` } });
    t.equal(info.status, 401, 'UserInfo refuses it');
    // the browser session itself stays: the reuse is the client's, not the user's
    const again = await codeFor(op, browser, web);
    t.equal(again.upstream.length, 0, 'the browser session still signs in');
  });

  t.test("another client's code is refused and not spent", async (t) => {
    const c = await codeFor(op, browser, web);
    isError(t, await redeem(op, posted, c.code, c.verifier), 400, 'invalid_grant', 'confidential client');
    isError(t, await redeem(op, spa, c.code, c.verifier), 400, 'invalid_grant', 'public client');
    const own = await redeem(op, web, c.code, c.verifier);
    t.equal(own.status, 200, 'its own client still redeems it');
    t.equal(claimsOf(own.body.id_token as string).aud, web.id);
  });

  t.test('a code expires after 60 s', async (t) => {
    const fresh = await codeFor(op, browser, web);
    const old = await codeFor(op, browser, web);
    op.clock.advance(59);
    t.equal((await redeem(op, web, fresh.code, fresh.verifier)).status, 200, 'at 59 s: redeemed');
    op.clock.advance(2);
    isError(t, await redeem(op, web, old.code, old.verifier), 400, 'invalid_grant', 'at 61 s');
  });

  t.test('redirect_uri: exactly the one of the authorization request (RFC 6749 4.1.3)', async (t) => {
    for (const [name, redirectUri] of [
      ['missing', undefined],
      ['another registered URI', 'https://app.example.com/cb'],
      ['another loopback port', 'http://127.0.0.1:8/cb'],
      ['with a query', `${CLIENT_CB}?x=1`],
    ] as const) {
      const c = await codeFor(op, browser, web);
      const res = await tokenPost(op, web, {
        grant_type: 'authorization_code',
        code: c.code,
        code_verifier: c.verifier,
        ...(redirectUri ? { redirect_uri: redirectUri } : {}),
      });
      isError(t, res, 400, 'invalid_grant', name);
    }
    // the loopback port of the request, not the registered one
    const req = validRequest(web, { redirect_uri: 'http://127.0.0.1:54321/cb' });
    const { back } = await walk(op, browser, authorizeUrl(op, req.params), 'http://127.0.0.1:54321/cb');
    const code = back.searchParams.get('code')!;
    isError(t, await redeem(op, web, code, req.verifier), 400, 'invalid_grant', 'the registered port instead of the one asked');
    const req2 = validRequest(web, { redirect_uri: 'http://127.0.0.1:54321/cb' });
    const c2 = await walk(op, browser, authorizeUrl(op, req2.params), 'http://127.0.0.1:54321/cb');
    const same = await redeem(op, web, c2.back.searchParams.get('code')!, req2.verifier, { redirect_uri: 'http://127.0.0.1:54321/cb' });
    t.equal(same.status, 200, 'with the redirect_uri of the request: redeemed');
  });

  t.test('PKCE (RFC 7636 4.6, RFC 9700 4.8.2)', async (t) => {
    const wrong = await codeFor(op, browser, web);
    const other = `${wrong.verifier.slice(0, -1)}${wrong.verifier.endsWith('A') ? 'B' : 'A'}`;
    isError(t, await redeem(op, web, wrong.code, other), 400, 'invalid_grant', 'wrong verifier');
    // one attempt: the code is spent, the right verifier comes too late
    isError(t, await redeem(op, web, wrong.code, wrong.verifier), 400, 'invalid_grant', 'the right verifier after a wrong one');

    const missing = await codeFor(op, browser, web);
    isError(t, await redeem(op, web, missing.code, undefined), 400, 'invalid_grant', 'no verifier with a challenge');
    const short = await codeFor(op, browser, web);
    isError(t, await redeem(op, web, short.code, short.verifier.slice(0, 42)), 400, 'invalid_grant', 'a malformed verifier');
    const spaCode = await codeFor(op, browser, spa);
    isError(t, await redeem(op, spa, spaCode.code, undefined), 400, 'invalid_grant', 'public client without a verifier');

    // a confidential client without PKCE: redeemed without a verifier, and refused with one (a downgrade)
    const noPkce = { code_challenge: '', code_challenge_method: '' };
    const plain = await codeFor(op, browser, web, noPkce);
    t.equal((await redeem(op, web, plain.code, undefined)).status, 200, 'no challenge, no verifier: fine');
    const downgrade = await codeFor(op, browser, web, noPkce);
    isError(t, await redeem(op, web, downgrade.code, downgrade.verifier), 400, 'invalid_grant', 'a verifier without a challenge');
  });

  t.test('a code whose browser session has ended, or whose user was disabled, opens no grant', async (t) => {
    const b = op.browser();
    const c = await codeFor(op, b, web);
    const logout = await b.request(`${op.url}/auth/logout`, { method: 'POST', headers: { origin: op.url } });
    t.equal(logout.status, 204, 'the browser signs out');
    isError(t, await redeem(op, web, c.code, c.verifier), 400, 'invalid_grant', 'after logout');

    const b2 = op.browser();
    op.upstreams.corp.setAccount({ accountId: 'bob', claims: { email: 'bob@example.com', email_verified: true, name: 'Bob' } });
    t.teardown(() => op.upstreams.corp.setAccount(DEFAULT_UPSTREAM_ACCOUNT));
    const bob = claimsOf((await signIn(op, b2, web)).id_token!).sub as string;
    const c2 = await codeFor(op, b2, web);
    const disabled = await op.app.inject({
      method: 'PATCH',
      url: `/admin/users/${bob}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { status: 'disabled' },
    });
    t.equal(disabled.statusCode, 200);
    isError(t, await redeem(op, web, c2.code, c2.verifier), 400, 'invalid_grant', 'after the user was disabled');

    // the user's status on its own, without its sessions revoked (a change another path made)
    op.upstreams.corp.setAccount({ accountId: 'gina', claims: { email: 'gina@example.com', email_verified: true } });
    const b3 = op.browser();
    const gina = claimsOf((await signIn(op, b3, web)).id_token!).sub as string;
    const c3 = await codeFor(op, b3, web);
    await op.storage.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', gina).execute();
    isError(t, await redeem(op, web, c3.code, c3.verifier), 400, 'invalid_grant', 'a disabled user, sessions not revoked');
  });

  t.test('client authentication (RFC 6749 2.3, 5.2)', async (t) => {
    const code = async () => (await codeFor(op, browser, web)).code;
    const form = { grant_type: 'authorization_code', redirect_uri: CLIENT_CB };
    // invalid_client over Basic: 401 with a Basic challenge
    const basicWrong = await tokenPost(op, web, { ...form, code: await code() }, { secret: 'not-the-secret' });
    isError(t, basicWrong, 401, 'invalid_client', 'wrong secret (Basic)');
    t.match(basicWrong.headers.get('www-authenticate'), /^Basic realm="/, 'WWW-Authenticate: Basic');
    isError(t, await tokenPost(op, posted, { ...form, code: await code() }, { secret: 'x' }), 401, 'invalid_client', 'wrong secret (post)');
    isError(t, await tokenPost(op, web, { ...form, code: await code() }, { secret: '' }), 401, 'invalid_client', 'empty secret');
    isError(
      t,
      await tokenPost(op, web, { ...form, code: await code() }, { secret: `${web.secret} ` }),
      401,
      'invalid_client',
      'secret with a space',
    );
    const stranger: TestClient = { id: 'no-such-client', secret: 'whatever', method: 'client_secret_basic' };
    const unknown = await tokenPost(op, stranger, { ...form, code: await code() });
    isError(t, unknown, 401, 'invalid_client', 'unknown client (Basic)');
    t.match(unknown.headers.get('www-authenticate'), /^Basic /);
    isError(t, await tokenPost(op, { ...stranger, method: 'client_secret_post' }, form), 401, 'invalid_client', 'unknown client (post)');
    isError(t, await tokenPost(op, { ...stranger, method: 'none' }, form), 401, 'invalid_client', 'unknown client (none)');
    isError(t, await tokenPost(op, web, form, { as: 'nothing' }), 401, 'invalid_client', 'no authentication at all');
    // two methods at once
    const both = await tokenPost(op, web, { ...form, code: await code(), client_secret: web.secret! });
    isError(t, both, 400, 'invalid_request', 'Basic and client_secret');
    // the method the client registered, no other
    isError(
      t,
      await tokenPost(op, web, { ...form, code: await code() }, { as: 'client_secret_post' }),
      401,
      'invalid_client',
      'post for a basic client',
    );
    isError(t, await tokenPost(op, posted, form, { as: 'client_secret_basic' }), 401, 'invalid_client', 'Basic for a post client');
    const skip = await codeFor(op, browser, web);
    isError(
      t,
      await redeem(op, { ...web, method: 'none' }, skip.code, skip.verifier),
      401,
      'invalid_client',
      'a confidential client without its secret',
    );
    t.equal((await redeem(op, web, skip.code, skip.verifier)).status, 200, 'and its code was not spent by that');
    // a public client has no secret to send
    const spaCode = await codeFor(op, browser, spa);
    isError(
      t,
      await redeem(op, { ...spa, method: 'client_secret_post' }, spaCode.code, spaCode.verifier, {}),
      401,
      'invalid_client',
      'public client with a secret (post)',
    );
    isError(
      t,
      await redeem(op, { ...spa, method: 'client_secret_basic' }, spaCode.code, spaCode.verifier),
      401,
      'invalid_client',
      'public client with Basic',
    );
    t.equal((await redeem(op, spa, spaCode.code, spaCode.verifier)).status, 200, 'the public client as registered');
    // a client_id in the body that is not the one of the Authorization header
    isError(t, await tokenPost(op, web, { ...form, code: await code(), client_id: posted.id }), 401, 'invalid_client', 'two client ids');
  });

  t.test('grant types (RFC 6749 5.2)', async (t) => {
    isError(t, await tokenPost(op, web, { code: 'x' }), 400, 'invalid_request', 'no grant_type');
    for (const g of [
      'password',
      'implicit',
      'urn:ietf:params:oauth:grant-type:device_code',
      'urn:ietf:params:oauth:grant-type:jwt-bearer',
      'Authorization_Code',
    ]) {
      isError(t, await tokenPost(op, web, { grant_type: g }), 400, 'unsupported_grant_type', g);
    }
    // a grant the client is not registered for
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'authorization_code', code: 'x', redirect_uri: CLIENT_CB }),
      400,
      'unauthorized_client',
      'code grant for a service',
    );
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'refresh_token', refresh_token: 'x' }),
      400,
      'unauthorized_client',
      'refresh for a service',
    );
    isError(
      t,
      await tokenPost(op, web, { grant_type: 'client_credentials' }),
      400,
      'unauthorized_client',
      'client_credentials for a web app',
    );
    isError(t, await tokenPost(op, spa, { grant_type: 'client_credentials' }), 400, 'unauthorized_client', 'client_credentials for a SPA');
    // RFC 6749 4.4: even a public client somehow registered for it
    isError(
      t,
      await tokenPost(op, rogue, { grant_type: 'client_credentials' }),
      400,
      'unauthorized_client',
      'client_credentials for a public client',
    );
    // no refresh token for a client without the refresh_token grant, and no refreshing
    const c = await codeFor(op, browser, codeOnly);
    const tokens = await redeem(op, codeOnly, c.code, c.verifier);
    t.equal(tokens.status, 200);
    t.notOk('refresh_token' in tokens.body, 'no refresh_token without the grant');
    isError(
      t,
      await tokenPost(op, codeOnly, { grant_type: 'refresh_token', refresh_token: 'x' }),
      400,
      'unauthorized_client',
      'refresh without the grant',
    );
  });

  t.test('form-encoded only, no parameter twice, never cached (RFC 6749 3.2, 5.1)', async (t) => {
    const auth = `Basic ${Buffer.from(`${web.id}:${web.secret}`).toString('base64')}`;
    for (const [type, body] of [
      ['application/json', JSON.stringify({ grant_type: 'client_credentials' })],
      ['text/plain', 'grant_type=client_credentials'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--'],
    ]) {
      const res = await fetch(`${op.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': type, authorization: auth }, body });
      t.equal(res.status, 415, `${type}: 415`);
      t.equal(res.headers.get('cache-control'), 'no-store', `${type}: no-store`);
      t.equal(res.headers.get('pragma'), 'no-cache', `${type}: Pragma`);
      t.match(await res.json(), { error: 'invalid_request' });
    }
    const c = await codeFor(op, browser, web);
    const repeated: [string, Record<string, string[]>][] = [
      ['grant_type', { grant_type: ['authorization_code', 'authorization_code'] }],
      ['code', { code: [c.code, c.code] }],
      ['code_verifier', { code_verifier: [c.verifier, c.verifier] }],
      ['redirect_uri', { redirect_uri: [CLIENT_CB, CLIENT_CB] }],
    ];
    for (const [name, extra] of repeated) {
      const res = await tokenPost(op, web, {
        grant_type: 'authorization_code',
        code: c.code,
        code_verifier: c.verifier,
        redirect_uri: CLIENT_CB,
        ...extra,
      });
      isError(t, res, 400, 'invalid_request', `${name} twice`);
    }
    const clientIdTwice = await tokenPost(
      op,
      posted,
      { grant_type: 'authorization_code', code: 'x', client_id: posted.id },
      { as: 'client_secret_post' },
    );
    isError(t, clientIdTwice, 400, 'invalid_request', 'client_id twice');
    t.equal((await redeem(op, web, c.code, c.verifier)).status, 200, 'refused requests did not spend the code');

    const ok = await signIn(op, browser, web);
    t.ok(ok.access_token);
    const answers = [
      ['success', await tokenPost(op, service, { grant_type: 'client_credentials' })],
      ['invalid_grant', await tokenPost(op, web, { grant_type: 'refresh_token', refresh_token: 'nope' })],
      ['invalid_client', await tokenPost(op, web, { grant_type: 'client_credentials' }, { secret: 'wrong' })],
      ['invalid_request', await tokenPost(op, web, { grant_type: ['a', 'b'] })],
    ] as const;
    for (const [name, res] of answers) {
      t.equal(res.headers.get('cache-control'), 'no-store', `${name}: Cache-Control: no-store`);
      t.equal(res.headers.get('pragma'), 'no-cache', `${name}: Pragma: no-cache`);
    }
    t.equal(answers[0][1].status, 200);
  });

  t.test('refresh tokens are bound to their client and their grant (RFC 6749 6, 10.4)', async (t) => {
    const b = op.browser();
    const mine = await signIn(op, b, web);
    const spaTokens = await signIn(op, b, spa);
    isError(t, await refresh(op, posted, mine.refresh_token!), 400, 'invalid_grant', "another client's refresh token");
    isError(t, await refresh(op, spa, mine.refresh_token!), 400, 'invalid_grant', "a public client with a confidential client's token");
    isError(t, await refresh(op, web, spaTokens.refresh_token!), 400, 'invalid_grant', "the confidential client with the SPA's");
    // asking for more than the grant has tells nothing about another client's grant
    isError(
      t,
      await tokenPost(op, posted, { grant_type: 'refresh_token', refresh_token: mine.refresh_token!, scope: 'openid admin' }),
      400,
      'invalid_grant',
      "another client's token with a scope",
    );
    isError(
      t,
      await tokenPost(op, posted, {
        grant_type: 'refresh_token',
        refresh_token: mine.refresh_token!,
        resource: 'https://evil.example.com',
      }),
      400,
      'invalid_grant',
      "another client's token with a resource",
    );
    op.clock.advance(op.config.refreshGracePeriod + 1);
    // the other client's attempt neither rotated nor revoked anything
    const after = await refresh(op, web, mine.refresh_token!);
    t.equal(after.status, 200, "the owner's refresh token still works, unrotated");
    t.equal((await refresh(op, spa, spaTokens.refresh_token!)).status, 200, "and so does the SPA's");

    // the browser session's refresh token (the /auth/* cookie) is not a grant of any client
    const cookie = b.cookie(op.url, 'gw_session')!;
    isError(t, await refresh(op, web, cookie), 400, 'invalid_grant', 'a browser session token at the token endpoint');
    isError(t, await refresh(op, spa, cookie), 400, 'invalid_grant', 'the same with a public client');
    const viaCookie = await b.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } });
    t.equal(viaCookie.status, 200, 'the browser session is untouched');
    // and a grant's refresh token is not a browser session
    const grantToken = after.body.refresh_token as string;
    const asSession = await fetch(`${op.url}/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: grantToken }),
    });
    t.equal(asSession.status, 401, 'a grant token at POST /auth/refresh: refused');
    t.match(await asSession.json(), { error: 'invalid_grant' });
    const stolenCookie = op.browser();
    stolenCookie.setCookie(op.url, 'gw_session', grantToken);
    t.equal(
      (await stolenCookie.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } })).status,
      401,
      'also as the cookie',
    );
    const next = await refresh(op, web, grantToken);
    t.equal(next.status, 200, 'and the grant still refreshes');

    // within the grace period the predecessor of a rotated token is answered with its successor: to its own
    // client only, never to another, and a browser session's never at the token endpoint
    isError(t, await refresh(op, posted, grantToken), 400, 'invalid_grant', 'a just-rotated token of another client');
    isError(t, await refresh(op, spa, grantToken), 400, 'invalid_grant', 'the same for a public client');
    const again = await refresh(op, web, grantToken);
    t.equal(again.status, 200, 'its own client, within the grace period: the successor');
    t.equal(again.body.refresh_token, next.body.refresh_token);
    const before = b.cookie(op.url, 'gw_session')!;
    t.equal((await b.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } })).status, 200);
    isError(t, await refresh(op, web, before), 400, 'invalid_grant', "a just-rotated browser session's token");
    op.clock.advance(op.config.refreshGracePeriod + 1);
    t.equal((await refresh(op, web, next.body.refresh_token as string)).status, 200, 'nothing of that revoked the grant');
    t.equal((await b.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } })).status, 200, 'nor the session');
  });

  t.test('refresh: nothing beyond the grant, and a refused request keeps the token (RFC 6749 6, RFC 8707 2.2)', async (t) => {
    const b = op.browser();
    const tokens = await signIn(op, b, web, { scope: 'openid email' });
    let rt = tokens.refresh_token!;
    for (const [name, extra, error] of [
      ['a scope never granted', { scope: 'openid admin' }, 'invalid_scope'],
      ['a scope the client has, not granted', { scope: 'openid profile' }, 'invalid_scope'],
      ['a resource outside the audience', { resource: 'https://evil.example.com' }, 'invalid_target'],
      ['a resource not absolute', { resource: 'api' }, 'invalid_target'],
    ] as const) {
      isError(t, await tokenPost(op, web, { grant_type: 'refresh_token', refresh_token: rt, ...extra }), 400, error, name);
      // past the grace period: had the refused request rotated the token, this would be reuse and end the grant
      op.clock.advance(op.config.refreshGracePeriod + 1);
      const res = await refresh(op, web, rt);
      t.equal(res.status, 200, `${name}: the refresh token still works`);
      rt = res.body.refresh_token as string;
    }
    // within the grant: a narrower scope and one resource of the audience
    const narrow = await tokenPost(op, web, {
      grant_type: 'refresh_token',
      refresh_token: rt,
      scope: 'openid',
      resource: 'urn:example:orders',
    });
    t.equal(narrow.status, 200);
    const access = claimsOf(narrow.body.access_token as string);
    t.equal(access.aud, 'urn:example:orders', 'the audience narrowed to the resource');
    t.equal(access.scope, 'openid', 'the scope narrowed');
    t.equal(narrow.body.scope, 'openid', 'and the response says so');
    // the grant itself keeps what it was granted
    const wide = await refresh(op, web, narrow.body.refresh_token as string);
    t.same(claimsOf(wide.body.access_token as string).aud, ['https://api.example.com', 'urn:example:orders']);
    t.equal(wide.body.scope, 'openid email');
  });

  t.test('the code exchange: resource within what was granted (RFC 8707 2.2)', async (t) => {
    const c = await codeFor(op, browser, web, { resource: 'urn:example:orders' });
    isError(
      t,
      await redeem(op, web, c.code, c.verifier, { resource: 'https://api.example.com' }),
      400,
      'invalid_target',
      'a resource not in the request',
    );
    const d = await codeFor(op, browser, web);
    isError(
      t,
      await redeem(op, web, d.code, d.verifier, { resource: 'https://evil.example.com' }),
      400,
      'invalid_target',
      'a resource outside the audience',
    );
    const e = await codeFor(op, browser, web);
    const ok = await redeem(op, web, e.code, e.verifier, { resource: 'https://api.example.com' });
    t.equal(claimsOf(ok.body.access_token as string).aud, 'https://api.example.com');
  });

  t.test('client_credentials: only its own scopes, never openid, only its audience (RFC 6749 4.4, RFC 8707)', async (t) => {
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'client_credentials', scope: 'orders:delete' }),
      400,
      'invalid_scope',
      'a scope it does not have',
    );
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'client_credentials', scope: 'orders:read admin' }),
      400,
      'invalid_scope',
      'one scope too many',
    );
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'client_credentials', scope: 'openid' }),
      400,
      'invalid_scope',
      'openid (no user)',
    );
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'client_credentials', resource: 'https://api.example.com' }),
      400,
      'invalid_target',
      'resource outside its audience',
    );
    isError(
      t,
      await tokenPost(op, service, { grant_type: 'client_credentials', resource: 'orders' }),
      400,
      'invalid_target',
      'resource not absolute',
    );
    const def = await tokenPost(op, service, { grant_type: 'client_credentials' });
    t.equal(def.status, 200);
    t.equal(def.body.scope, 'orders:read orders:write', 'its scopes without openid');
    t.notOk('refresh_token' in def.body, 'no refresh token (RFC 6749 4.4.3)');
    t.notOk('id_token' in def.body);
    const narrowed = await tokenPost(op, service, {
      grant_type: 'client_credentials',
      scope: 'orders:read',
      resource: 'urn:example:billing',
    });
    t.match(claimsOf(narrowed.body.access_token as string), { sub: service.id, scope: 'orders:read', aud: 'urn:example:billing' });
  });
});
