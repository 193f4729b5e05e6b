// What a token is worth after it was issued, and the endpoints around the flows: revocation (RFC 7009),
// introspection (RFC 7662), UserInfo (OIDC Core 5.3, RFC 6750), RP-Initiated Logout 1.0, CORS for public clients
// only (and the /auth/* session endpoints for ALLOWED_ORIGINS only), and the admin API ending grants.
import t from 'tap';
import type { Test } from 'tap';
import { signIdToken } from '../../src/oauth/id-token.js';
import { resignWithForeignKey, tampered } from '../helpers/forge.js';
import {
  active,
  claimsOf,
  NO_RATE_LIMITS,
  oauthPost,
  refresh,
  registerClient,
  signIn,
  type TestClient,
  tokenPost,
} from '../helpers/op-requests.js';
import { ADMIN_TOKEN, CLIENT_CB, type OpGateway, startOpGateway } from '../helpers/op.js';
import { DEFAULT_UPSTREAM_ACCOUNT } from '../helpers/upstream-oidc.js';

const BYE = 'http://127.0.0.1:7/bye';
const FRONTEND = 'https://front.example.com';

async function setup(t: Test) {
  const op = await startOpGateway(t, { env: { ...NO_RATE_LIMITS, ALLOWED_ORIGINS: FRONTEND } });
  const web = await registerClient(op, {
    client_name: 'Web',
    redirect_uris: [CLIENT_CB, 'https://web.example.com/cb'],
    post_logout_redirect_uris: [BYE],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile',
  });
  const posted = await registerClient(op, {
    client_name: 'Other web app',
    redirect_uris: [CLIENT_CB],
    post_logout_redirect_uris: [BYE],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid email profile',
  });
  const spa = await registerClient(op, {
    client_name: 'SPA',
    redirect_uris: [CLIENT_CB, 'https://spa.example.com/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
    scope: 'openid email profile',
  });
  // asks for no openid at all
  const api = await registerClient(op, {
    client_name: 'API only',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'email profile',
  });
  // was granted nothing at all
  const bare = await registerClient(op, {
    client_name: 'No scope',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: '',
  });
  const service = await registerClient(op, {
    client_name: 'Service',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'orders:read',
  });
  return { op, web, posted, spa, api, bare, service };
}

const revoke = (op: OpGateway, client: TestClient, token: string, extra: Record<string, string> = {}) =>
  oauthPost(op, '/oauth2/revoke', { token, ...extra }, { client });
const userinfo = (op: OpGateway, token: string, method: 'GET' | 'POST' = 'GET') =>
  fetch(`${op.url}/oauth2/userinfo`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    ...(method === 'POST' ? { body: '' } : {}),
  });

t.test('revocation, introspection and UserInfo', async (t) => {
  const { op, web, posted, spa, api, bare, service } = await setup(t);
  const browser = op.browser();

  t.test('revocation (RFC 7009)', async (t) => {
    const mine = await signIn(op, browser, web);
    // another client's tokens: refused, and still valid afterwards
    for (const [name, token] of [
      ['refresh token', mine.refresh_token!],
      ['access token', mine.access_token],
    ] as const) {
      for (const by of [posted, spa]) {
        const res = await revoke(op, by, token);
        t.equal(res.status, 400, `${name} of another client (${by.method}): refused`);
        t.equal(res.body.error, 'invalid_request');
      }
      t.ok(await active(op, web, token), `${name}: still active`);
    }
    op.clock.advance(op.config.refreshGracePeriod + 1);
    const after = await refresh(op, web, mine.refresh_token!);
    t.equal(after.status, 200, 'the refresh token still refreshes');
    // the browser session's refresh token is no client's to revoke
    const cookie = browser.cookie(op.url, 'gw_session')!;
    t.equal((await revoke(op, web, cookie)).status, 400, "the browser session's token: refused");
    t.equal((await browser.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } })).status, 200, 'and it lives');

    // what is not a token of ours: 200 (section 2.2)
    for (const token of ['not-a-token', 'eyJhbGciOiJub25lIn0.e30.', 'x'.repeat(5000)]) {
      const res = await revoke(op, web, token);
      t.equal(res.status, 200, `unknown token ${token.slice(0, 12)}: 200`);
      t.equal(res.headers.get('cache-control'), 'no-store');
    }
    // token_type_hint: the two of RFC 7009, anything else unsupported_token_type (section 2.2.1)
    const hinted = await revoke(op, web, after.body.access_token as string, { token_type_hint: 'id_token' });
    t.equal(hinted.status, 400);
    t.equal(hinted.body.error, 'unsupported_token_type');
    t.ok(await active(op, web, after.body.access_token as string), 'nothing revoked by a refused request');
    // a wrong hint does not save the token: the server looks for it as any type (section 2.1)
    t.equal((await revoke(op, web, after.body.access_token as string, { token_type_hint: 'refresh_token' })).status, 200);
    t.notOk(await active(op, web, after.body.access_token as string), 'the access token is revoked despite the hint');
    t.ok(await active(op, web, after.body.refresh_token as string), 'its grant goes on');
    t.equal((await revoke(op, web, after.body.refresh_token as string, { token_type_hint: 'access_token' })).status, 200);
    t.notOk(await active(op, web, after.body.refresh_token as string), 'the refresh token: the grant ends');
    // the client must authenticate; a public client revokes its own tokens
    t.equal((await oauthPost(op, '/oauth2/revoke', { token: mine.access_token })).status, 401, 'no client authentication');
    t.equal((await revoke(op, { ...web, secret: 'wrong' }, mine.access_token)).status, 401, 'a wrong secret');
    t.equal((await oauthPost(op, '/oauth2/revoke', {}, { client: web })).body.error, 'invalid_request', 'no token');
    const spaTokens = await signIn(op, browser, spa);
    t.equal((await revoke(op, spa, spaTokens.refresh_token!)).status, 200);
    t.equal((await refresh(op, spa, spaTokens.refresh_token!)).status, 400, "the SPA's own grant is revoked");
  });

  t.test('introspection (RFC 7662)', async (t) => {
    const mine = await signIn(op, browser, web);
    // section 2.1: the endpoint is protected; a public client cannot prove who it is
    const pub = await oauthPost(op, '/oauth2/introspect', { token: mine.access_token }, { client: spa });
    t.equal(pub.status, 401, 'a public client: 401');
    t.equal(pub.body.error, 'invalid_client');
    t.notOk('active' in pub.body);
    t.equal((await oauthPost(op, '/oauth2/introspect', { token: mine.access_token })).status, 401, 'no client: 401');
    // another client's refresh token: inactive, and nothing more said
    t.same((await oauthPost(op, '/oauth2/introspect', { token: mine.refresh_token! }, { client: posted })).body, { active: false });
    t.ok(await active(op, web, mine.refresh_token!), 'to its own client: active');
    // an access token is for any resource server: any confidential client may ask
    t.ok(await active(op, posted, mine.access_token));
    // forged and tampered access tokens
    t.same((await oauthPost(op, '/oauth2/introspect', { token: await resignWithForeignKey(mine.access_token) }, { client: web })).body, {
      active: false,
    });
    t.notOk(await active(op, web, tampered(mine.access_token, { sub: 'someone-else' })), 'tampered: inactive');
    // a revoked access token
    const other = await signIn(op, browser, web);
    t.equal((await revoke(op, web, other.access_token)).status, 200);
    t.same((await oauthPost(op, '/oauth2/introspect', { token: other.access_token }, { client: web })).body, { active: false });
    t.ok(await active(op, web, other.refresh_token!), 'revoking the access token leaves the grant');
    // an expired access token
    const soon = await signIn(op, browser, web);
    op.clock.advance(op.config.accessTokenTtl + 10);
    t.notOk(await active(op, web, soon.access_token), 'expired: inactive');
    t.ok(await active(op, web, soon.refresh_token!), 'its refresh token lives on');
    // a client's own token (no session behind it) revoked by the client
    const revokedCc = await tokenPost(op, service, { grant_type: 'client_credentials' });
    t.ok(await active(op, web, revokedCc.body.access_token as string));
    t.equal((await revoke(op, service, revokedCc.body.access_token as string)).status, 200);
    t.notOk(await active(op, web, revokedCc.body.access_token as string), 'a revoked client_credentials token: inactive');
    // a client's own token ends with the client
    const cc = await tokenPost(op, service, { grant_type: 'client_credentials' });
    t.ok(await active(op, web, cc.body.access_token as string));
    const gone = await op.app.inject({
      method: 'DELETE',
      url: `/admin/clients/${service.id}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    t.equal(gone.statusCode, 204);
    t.notOk(await active(op, web, cc.body.access_token as string), 'the client deleted: its token is inactive');
  });

  t.test('a user disabled through the admin API: every token of theirs is inactive', async (t) => {
    const b = op.browser();
    op.upstreams.corp.setAccount({ accountId: 'carol', claims: { email: 'carol@example.com', email_verified: true, name: 'Carol' } });
    t.teardown(() => op.upstreams.corp.setAccount(DEFAULT_UPSTREAM_ACCOUNT));
    const tokens = await signIn(op, b, web);
    const spaTokens = await signIn(op, b, spa);
    const sub = claimsOf(tokens.id_token!).sub as string;
    t.ok(await active(op, web, tokens.access_token));
    const res = await op.app.inject({
      method: 'PATCH',
      url: `/admin/users/${sub}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { status: 'disabled' },
    });
    t.equal(res.statusCode, 200);
    t.notOk(await active(op, web, tokens.access_token), 'access token: inactive');
    t.notOk(await active(op, web, tokens.refresh_token!), 'refresh token: inactive');
    t.notOk(await active(op, web, spaTokens.access_token), "the SPA's access token: inactive");
    t.equal((await refresh(op, web, tokens.refresh_token!)).status, 400, 'no refresh');
    t.equal((await refresh(op, spa, spaTokens.refresh_token!)).status, 400, 'not for the SPA either');
    t.equal((await userinfo(op, tokens.access_token)).status, 401, 'UserInfo refuses it');

    // the user's status on its own, without its sessions revoked (a change another path made)
    op.upstreams.corp.setAccount({ accountId: 'hank', claims: { email: 'hank@example.com', email_verified: true } });
    const b2 = op.browser();
    const hank = await signIn(op, b2, web);
    await op.storage.db
      .updateTable('users')
      .set({ status: 'disabled' })
      .where('id', '=', claimsOf(hank.id_token!).sub as string)
      .execute();
    t.notOk(await active(op, web, hank.access_token), 'disabled in the database only: the access token is inactive');
    t.notOk(await active(op, web, hank.refresh_token!), 'and the refresh token');
  });

  t.test('UserInfo (OIDC Core 5.3, RFC 6750)', async (t) => {
    const tokens = await signIn(op, browser, web);
    for (const method of ['GET', 'POST'] as const) {
      const res = await userinfo(op, tokens.access_token, method);
      t.equal(res.status, 200, `${method} works`);
      t.match(await res.json(), { sub: claimsOf(tokens.id_token!).sub, email: 'alice@example.com', name: 'Alice Example' });
      t.equal(res.headers.get('cache-control'), 'no-store');
    }
    // the gateway's own browser-session token (no scope claim, client_id the issuer) is all of it
    const session = await browser.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } });
    const ownToken = ((await session.json()) as { access_token: string }).access_token;
    t.equal(claimsOf(ownToken).client_id, op.url);
    t.match(
      await (await userinfo(op, ownToken)).json(),
      { email: 'alice@example.com', name: 'Alice Example' },
      'the browser session token',
    );
    // the claims of the granted scopes only
    const emailOnly = await signIn(op, browser, web, { scope: 'openid email' });
    const limited = (await (await userinfo(op, emailOnly.access_token)).json()) as Record<string, unknown>;
    t.equal(limited.email, 'alice@example.com');
    t.notOk('name' in limited || 'picture' in limited, 'no profile claims without the profile scope');
    // without openid: 403 insufficient_scope (RFC 6750 3.1)
    for (const [name, client, scope] of [
      ['a token without openid', api, 'email profile'],
      ['a token granted no scope at all', bare, ''],
    ] as const) {
      const granted = await signIn(op, browser, client, { scope });
      t.equal(claimsOf(granted.access_token).scope, scope || undefined, `${name}: the scope granted`);
      for (const method of ['GET', 'POST'] as const) {
        const res = await userinfo(op, granted.access_token, method);
        t.equal(res.status, 403, `${name} (${method}): 403`);
        t.match(res.headers.get('www-authenticate'), /error="insufficient_scope"/, `${name}: the challenge says why`);
        t.match(await res.json(), { error: 'insufficient_scope' });
      }
    }
    // a client's own token has no user
    const svc = await registerClient(op, {
      client_name: 'svc',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'orders:read',
    });
    const own = await tokenPost(op, svc, { grant_type: 'client_credentials' });
    const ccInfo = await userinfo(op, own.body.access_token as string);
    t.equal(ccInfo.status, 401, 'a client_credentials token: 401');
    t.match(ccInfo.headers.get('www-authenticate'), /error="invalid_token"/);
    // revoked, forged, expired, missing
    const revoked = await signIn(op, browser, web);
    await revoke(op, web, revoked.access_token);
    t.equal((await userinfo(op, revoked.access_token)).status, 401, 'a revoked token: 401');
    t.equal((await userinfo(op, revoked.access_token, 'POST')).status, 401, 'a revoked token (POST): 401');
    t.equal((await userinfo(op, await resignWithForeignKey(tokens.access_token))).status, 401, 'a forged token: 401');
    t.equal((await userinfo(op, tokens.id_token!)).status, 401, 'an ID token is not an access token');
    t.equal((await userinfo(op, tokens.refresh_token!)).status, 401, 'nor is a refresh token');
    const none = await fetch(`${op.url}/oauth2/userinfo`);
    t.equal(none.status, 401, 'no token: 401');
    t.equal(none.headers.get('www-authenticate'), 'Bearer realm="auth-gateway"', 'and no error code in the challenge (RFC 6750 3.1)');
    op.clock.advance(op.config.accessTokenTtl + 10);
    t.equal((await userinfo(op, tokens.access_token)).status, 401, 'an expired token: 401');
  });
});

t.test('RP-Initiated Logout', async (t) => {
  const { op, web, posted, spa } = await setup(t);
  // another post-logout URI for the SPA, and the one of the web app too (for the client_id mismatch)
  for (const [client, uris] of [[spa, [BYE, 'https://spa.example.com/bye']]] as const) {
    const res = await op.app.inject({
      method: 'PATCH',
      url: `/admin/clients/${client.id}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { post_logout_redirect_uris: uris },
    });
    t.equal(res.statusCode, 200);
  }
  const logout = (browser: ReturnType<OpGateway['browser']>, params: Record<string, string>) =>
    browser.request(`${op.url}/oauth2/logout?${new URLSearchParams(params)}`);
  /** is the browser's gateway session (and the grant made from it) still alive? */
  const alive = async (browser: ReturnType<OpGateway['browser']>, tokens: { access_token: string }) => {
    const grant = await active(op, web, tokens.access_token);
    const session = await browser.request(`${op.url}/auth/refresh`, { method: 'POST', headers: { origin: op.url } });
    await session.arrayBuffer();
    if (grant !== (session.status === 200)) throw new Error('the grant and its browser session disagree');
    return grant;
  };
  const fresh = async () => {
    const b = op.browser();
    const tokens = await signIn(op, b, web);
    return { b, tokens };
  };
  const isSignedOutPage = async (t: Test, res: Response, name: string) => {
    t.equal(res.status, 200, `${name}: 200`);
    t.equal(res.headers.get('location'), null, `${name}: no redirect`);
    t.match(await res.text(), /You are signed out/, `${name}: the signed-out page`);
  };

  t.test('a valid hint: signed out at once, redirected only to a registered URI, with state', async (t) => {
    const { b, tokens } = await fresh();
    const res = await logout(b, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'st-1' });
    t.equal(res.status, 302);
    t.equal(res.headers.get('location'), `${BYE}?state=st-1`, 'the state echoed');
    t.notOk(await alive(b, tokens), 'the session and its grant ended');

    for (const uri of [
      'https://evil.example.com/bye',
      `${BYE}?x=1`,
      `${BYE}/`,
      'http://127.0.0.1:7/other',
      CLIENT_CB,
      'https://spa.example.com/bye',
    ]) {
      const s = await fresh();
      const r = await logout(s.b, { id_token_hint: s.tokens.id_token!, post_logout_redirect_uri: uri, state: 'st' });
      await isSignedOutPage(t, r, `unregistered ${uri}`);
      t.notOk(await alive(s.b, s.tokens), `${uri}: still signed out`);
    }
    // a loopback post-logout URI matches with any port, as a redirect URI does (RFC 8252 7.3)
    const s = await fresh();
    const r = await logout(s.b, { id_token_hint: s.tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:5000/bye' });
    t.equal(r.headers.get('location'), 'http://127.0.0.1:5000/bye');
  });

  t.test("client_id must be the hint's audience", async (t) => {
    // BYE is registered for the SPA too: only the mismatch keeps it from redirecting
    const { b, tokens } = await fresh();
    const res = await logout(b, { id_token_hint: tokens.id_token!, client_id: spa.id, post_logout_redirect_uri: BYE, state: 's' });
    t.equal(res.headers.get('location'), null, 'no redirect');
    t.equal(res.status, 200);
    await res.arrayBuffer();
    const second = await fresh();
    const ok = await logout(second.b, {
      id_token_hint: second.tokens.id_token!,
      client_id: web.id,
      post_logout_redirect_uri: BYE,
      state: 's',
    });
    t.equal(ok.headers.get('location'), `${BYE}?state=s`, 'the matching client_id redirects');
    // the SPA's own hint with its client_id goes to its own URI
    const third = await fresh();
    const spaTokens = await signIn(op, third.b, spa);
    const own = await logout(third.b, {
      id_token_hint: spaTokens.id_token!,
      client_id: spa.id,
      post_logout_redirect_uri: 'https://spa.example.com/bye',
    });
    t.equal(own.headers.get('location'), 'https://spa.example.com/bye');
  });

  t.test('without a hint: a confirmation page; only its own origin can post it', async (t) => {
    const { b, tokens } = await fresh();
    const page = await logout(b, { client_id: web.id, post_logout_redirect_uri: BYE, state: 'st-2' });
    t.equal(page.status, 200);
    t.equal(page.headers.get('location'), null);
    const html = await page.text();
    t.match(html, /<form method="post" action="\/oauth2\/logout">/, 'a form');
    t.match(html, /name="confirm" value="1"/);
    t.match(html, new RegExp(`name="state" value="st-2"`));
    t.match(
      page.headers.get('content-security-policy'),
      /form-action 'self' http:\/\/127\.0\.0\.1:7/,
      'CSP lets the form go back to the app',
    );
    t.ok(await alive(b, tokens), 'showing the page signs no one out');

    const form = new URLSearchParams({ client_id: web.id, post_logout_redirect_uri: BYE, state: 'st-2', confirm: '1' }).toString();
    const post = (headers: Record<string, string>) =>
      b.request(`${op.url}/oauth2/logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: form,
      });
    for (const [name, headers] of [
      ['another site', { origin: 'https://evil.example.com' }],
      ['a look-alike origin', { origin: `${op.url}.evil.example.com` }],
      ['an opaque origin', { origin: 'null' }],
      ['cross-site by Fetch Metadata', { 'sec-fetch-site': 'cross-site' }],
      ['same-site but not same-origin', { 'sec-fetch-site': 'same-site' }],
    ] as const) {
      const res = await post(headers);
      t.equal(res.status, 403, `${name}: 403`);
      t.equal(res.headers.get('location'), null);
      await res.arrayBuffer();
      t.ok(await alive(b, tokens), `${name}: the session is untouched`);
    }
    const ok = await post({ origin: op.url });
    t.equal(ok.status, 302, 'its own origin: signed out');
    t.equal(ok.headers.get('location'), `${BYE}?state=st-2`, 'with the state');
    t.notOk(await alive(b, tokens), 'the session and its grant ended');
  });

  t.test('a post_logout_redirect_uri without a client to check it against is not followed', async (t) => {
    const { b, tokens } = await fresh();
    const page = await logout(b, { post_logout_redirect_uri: BYE, state: 's' });
    t.equal(page.status, 200);
    t.equal(page.headers.get('location'), null);
    t.match(await page.text(), /<form method="post"/);
    const res = await b.request(`${op.url}/oauth2/logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: op.url },
      body: new URLSearchParams({ post_logout_redirect_uri: BYE, state: 's', confirm: '1' }).toString(),
    });
    await isSignedOutPage(t, res, 'confirmed without a client');
    t.notOk(await alive(b, tokens), 'signed out');
  });

  t.test('what is not a valid hint: forged, tampered, another issuer, an access token, another session', async (t) => {
    const { b, tokens } = await fresh();
    const idToken = tokens.id_token!;
    const claims = claimsOf(idToken);
    const otherIssuer = await signIdToken(op.app.ctx.keys, {
      issuer: 'https://evil.example.com',
      clientId: web.id,
      alg: 'RS256',
      userId: claims.sub as string,
      sessionId: claims.sid as string,
      authTime: new Date(),
      nonce: null,
      scope: ['openid'],
      accessToken: tokens.access_token,
      user: { email: null, email_verified: false, name: null },
      lifetime: 300,
      now: op.clock.now(),
    });
    const other = await fresh();
    for (const [name, hint] of [
      ['forged', await resignWithForeignKey(idToken)],
      ['tampered', tampered(idToken, { aud: posted.id, azp: posted.id })],
      ['unsigned', `${idToken.split('.').slice(0, 2).join('.')}.`],
      ['another issuer', otherIssuer],
      ['an access token', tokens.access_token],
      ["another browser's session", other.tokens.id_token!],
    ] as const) {
      const res = await logout(b, { id_token_hint: hint, post_logout_redirect_uri: BYE, state: 's' });
      t.equal(res.status, 200, `${name}: no immediate sign-out`);
      t.equal(res.headers.get('location'), null, `${name}: no redirect`);
      t.match(await res.text(), /<form method="post"/, `${name}: the confirmation page instead`);
      t.ok(await alive(b, tokens), `${name}: the session is untouched`);
    }
    t.ok(await alive(other.b, other.tokens), "the other browser's session too");
    // without a session in the browser a valid hint signs out at once: an access token must not count as one
    const stranger = op.browser();
    const res = await logout(stranger, { id_token_hint: tokens.access_token });
    t.match(await res.text(), /<form method="post"/, 'an access token as hint, no session here: the confirmation page');
    t.ok(await alive(b, tokens), 'and the grant it names is untouched');
  });
});

t.test('CORS: public clients at the token, revocation and UserInfo endpoints; ALLOWED_ORIGINS at /auth/*', async (t) => {
  const { op, web, spa } = await setup(t);
  const SPA = 'https://spa.example.com';
  const WEB = 'https://web.example.com';
  const preflight = (path: string, origin: string) =>
    fetch(`${op.url}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
  for (const path of ['/oauth2/token', '/oauth2/revoke', '/oauth2/userinfo']) {
    const ok = await preflight(path, SPA);
    t.equal(ok.status, 204, `${path}: preflight answered`);
    t.equal(ok.headers.get('access-control-allow-origin'), SPA, `${path}: the public client's origin`);
    t.equal(ok.headers.get('access-control-allow-credentials'), null, `${path}: never with credentials`);
    t.match(ok.headers.get('access-control-allow-methods'), /POST/);
    for (const [name, origin] of [
      ["a confidential client's origin", WEB],
      ['another origin', 'https://evil.example.com'],
      ['a look-alike', `${SPA}.evil.example.com`],
      ['http instead of https', 'http://spa.example.com'],
      ['the sessions origin', FRONTEND],
      ['null', 'null'],
    ]) {
      const no = await preflight(path, origin);
      t.equal(no.headers.get('access-control-allow-origin'), null, `${path}, ${name}: no CORS`);
      t.equal(no.headers.get('access-control-allow-credentials'), null);
    }
  }
  // the actual requests
  const browser = op.browser();
  const tokens = await signIn(op, browser, spa);
  const refreshed = await oauthPost(
    op,
    '/oauth2/token',
    { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
    { client: spa, headers: { origin: SPA } },
  );
  t.equal(refreshed.status, 200);
  t.equal(refreshed.headers.get('access-control-allow-origin'), SPA, 'a token response the SPA can read');
  t.equal(refreshed.headers.get('access-control-allow-credentials'), null);
  const error = await oauthPost(
    op,
    '/oauth2/token',
    { grant_type: 'refresh_token', refresh_token: 'nope' },
    { client: spa, headers: { origin: SPA } },
  );
  t.equal(error.headers.get('access-control-allow-origin'), SPA, 'and an error it can read');
  const info = await fetch(`${op.url}/oauth2/userinfo`, {
    headers: { authorization: `Bearer ${refreshed.body.access_token}`, origin: SPA },
  });
  t.equal(info.status, 200);
  t.equal(info.headers.get('access-control-allow-origin'), SPA);
  const foreign = await oauthPost(
    op,
    '/oauth2/token',
    { grant_type: 'refresh_token', refresh_token: 'nope' },
    { client: web, headers: { origin: WEB } },
  );
  t.equal(foreign.headers.get('access-control-allow-origin'), null, "a confidential client's origin: nothing");
  // endpoints that are not for browsers
  for (const path of ['/oauth2/introspect', '/oauth2/authorize', '/oauth2/logout']) {
    t.equal((await preflight(path, SPA)).headers.get('access-control-allow-origin'), null, `${path}: no CORS`);
  }
  // the gateway's own session endpoints: ALLOWED_ORIGINS, with credentials, and not the public clients' origins
  for (const path of ['/auth/refresh', '/auth/logout', '/auth/userinfo']) {
    const ok = await preflight(path, FRONTEND);
    t.equal(ok.headers.get('access-control-allow-origin'), FRONTEND, `${path}: ALLOWED_ORIGINS`);
    t.equal(ok.headers.get('access-control-allow-credentials'), 'true', `${path}: with credentials`);
    for (const origin of [SPA, WEB, 'https://evil.example.com']) {
      t.equal((await preflight(path, origin)).headers.get('access-control-allow-origin'), null, `${path}: not ${origin}`);
    }
  }
});

t.test('the admin API ends grants: a disabled user, a revoked browser session, all sessions of a user', async (t) => {
  const { op, web, spa } = await setup(t);
  const admin = (method: 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
    op.app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, ...(payload ? { payload } : {}) });
  const as = (accountId: string) =>
    op.upstreams.corp.setAccount({ accountId, claims: { email: `${accountId}@example.com`, email_verified: true } });
  t.teardown(() => op.upstreams.corp.setAccount(DEFAULT_UPSTREAM_ACCOUNT));

  as('dave');
  const b1 = op.browser();
  const dave = await signIn(op, b1, web);
  const daveSpa = await signIn(op, b1, spa);
  const sid = claimsOf(dave.id_token!).sid as string;
  t.equal(claimsOf(daveSpa.id_token!).sid, sid, 'both grants come from one browser session');
  const res = await admin('DELETE', `/admin/sessions/${sid}`);
  t.equal(res.statusCode, 204);
  t.equal((await refresh(op, web, dave.refresh_token!)).status, 400, 'the browser session revoked: its grants cannot refresh');
  t.equal((await refresh(op, spa, daveSpa.refresh_token!)).status, 400, 'neither of them');
  t.notOk(await active(op, web, dave.access_token), 'and their access tokens are inactive');

  as('erin');
  const b2 = op.browser();
  const erin = await signIn(op, b2, web);
  const erinId = claimsOf(erin.id_token!).sub as string;
  t.equal((await admin('DELETE', `/admin/users/${erinId}/sessions`)).statusCode, 200);
  t.equal((await refresh(op, web, erin.refresh_token!)).status, 400, "revoking a user's sessions ends their grants");

  as('frank');
  const b3 = op.browser();
  const frank = await signIn(op, b3, web);
  const frankId = claimsOf(frank.id_token!).sub as string;
  t.equal((await admin('PATCH', `/admin/users/${frankId}`, { status: 'disabled' })).statusCode, 200);
  t.equal((await refresh(op, web, frank.refresh_token!)).status, 400, 'a disabled user: no refresh');
  // enabling the user again does not bring the grants back
  t.equal((await admin('PATCH', `/admin/users/${frankId}`, { status: 'active' })).statusCode, 200);
  t.equal((await refresh(op, web, frank.refresh_token!)).status, 400, 'enabled again: the old grant stays ended');
});
