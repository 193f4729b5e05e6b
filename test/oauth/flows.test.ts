// The gateway as an OpenID Provider, driven end to end by a certified client library (openid-client): discovery,
// the authorization code flow with PKCE, state and nonce through a real browser trip (the gateway, the upstream
// provider and back), the code exchange with the library's ID token validation, UserInfo, refresh, reuse
// detection, revocation, introspection, client credentials and logout, for confidential and public clients.
import * as client from 'openid-client';
import t from 'tap';
import { ADMIN_TOKEN, CLIENT_CB, startOpGateway } from '../helpers/op.js';

t.test('openid-client against the gateway', async (t) => {
  const op = await startOpGateway(t);
  const issuer = new URL(op.url);
  const web = await op.register({
    client_name: 'Web app',
    redirect_uris: [CLIENT_CB],
    post_logout_redirect_uris: ['http://127.0.0.1:7/bye'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile',
    audience: ['https://api.example.com'],
  });
  const spa = await op.register({
    client_name: 'SPA',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  });
  const service = await op.register({
    client_name: 'Orders service',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'orders:read orders:write',
    audience: ['https://orders.example.com'],
  });
  const insecure = { execute: [client.allowInsecureRequests] };
  /** the OAuth error a library call failed with (RFC 6749 section 5.2), or undefined when it succeeded */
  const oauthError = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: { error?: string }) => e.error ?? String(e),
    );
  const webConfig = await client.discovery(issuer, web.client_id, undefined, client.ClientSecretBasic(web.client_secret), insecure);
  const spaConfig = await client.discovery(issuer, spa.client_id, undefined, client.None(), insecure);
  const serviceConfig = await client.discovery(
    issuer,
    service.client_id,
    undefined,
    client.ClientSecretPost(service.client_secret),
    insecure,
  );

  /** one sign-in through the library's authorization URL, the browser trip and its code exchange */
  const signIn = async (config: client.Configuration, browser = op.browser(), extra: Record<string, string> = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CLIENT_CB,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    });
    const back = await op.authorize(browser, url);
    const tokens = await client.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    return { tokens, back, browser };
  };

  t.test('discovery lists only what works', async (t) => {
    const m = webConfig.serverMetadata();
    t.equal(m.issuer, op.url);
    t.equal(m.authorization_endpoint, `${op.url}/oauth2/authorize`);
    t.equal(m.token_endpoint, `${op.url}/oauth2/token`);
    t.same(m.response_types_supported, ['code']);
    t.same(m.code_challenge_methods_supported, ['S256']);
    t.equal(m.authorization_response_iss_parameter_supported, true);
    t.same(m.id_token_signing_alg_values_supported?.sort(), ['ES256', 'RS256']);
    const oauth = await (await fetch(`${op.url}/.well-known/oauth-authorization-server`)).json();
    t.same(oauth, await (await fetch(`${op.url}/.well-known/openid-configuration`)).json(), 'RFC 8414 metadata is the same');
  });

  t.test('confidential client: code flow, ID token, UserInfo, refresh, introspection, revocation', async (t) => {
    const { tokens, back } = await signIn(webConfig);
    t.ok(back.searchParams.get('iss'), 'RFC 9207 iss in the response');
    const claims = tokens.claims()!;
    t.match(claims, { iss: op.url, aud: web.client_id, azp: web.client_id, email: 'alice@example.com', name: 'Alice Example' });
    t.type(claims.sid, 'string');
    t.type(claims.auth_time, 'number');
    t.type(claims.at_hash, 'string');
    t.equal(tokens.token_type.toLowerCase(), 'bearer');
    t.type(tokens.refresh_token, 'string');
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0], 'base64url').toString());
    t.equal(header.alg, 'RS256', 'ID tokens are RS256 by default (OIDC Core)');
    const access = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
    t.match(access, { client_id: web.client_id, aud: 'https://api.example.com', scope: 'openid email profile', sub: claims.sub });
    t.notOk('roles' in access, 'no empty roles claim');

    const info = await client.fetchUserInfo(webConfig, tokens.access_token, claims.sub);
    t.same(info, {
      sub: claims.sub,
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Example',
      picture: 'https://example.com/alice.png',
    });

    const introspected = await client.tokenIntrospection(webConfig, tokens.access_token);
    t.match(introspected, { active: true, client_id: web.client_id, sub: claims.sub, scope: 'openid email profile' });

    const refreshed = await client.refreshTokenGrant(webConfig, tokens.refresh_token!);
    t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated');
    t.match(await client.tokenIntrospection(webConfig, refreshed.refresh_token!), { active: true, token_type: 'refresh_token' });
    t.match(await client.tokenIntrospection(webConfig, tokens.refresh_token!), { active: false }, 'the rotated one is inactive');

    await client.tokenRevocation(webConfig, refreshed.access_token);
    t.same(await client.tokenIntrospection(webConfig, refreshed.access_token), { active: false }, 'a revoked access token is inactive');
    await t.rejects(client.fetchUserInfo(webConfig, refreshed.access_token, claims.sub), 'and refused by UserInfo');

    await client.tokenRevocation(webConfig, refreshed.refresh_token!);
    t.equal(
      await oauthError(client.refreshTokenGrant(webConfig, refreshed.refresh_token!)),
      'invalid_grant',
      'a revoked grant cannot refresh',
    );
    t.same(
      await client.tokenIntrospection(webConfig, tokens.access_token),
      { active: false },
      "and the grant's access tokens are inactive",
    );
  });

  t.test("the admin API lists a user's grants with their client, under their browser session", async (t) => {
    const { tokens } = await signIn(webConfig);
    const sub = tokens.claims()!.sub;
    const res = await fetch(`${op.url}/admin/users/${sub}/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { sessions } = (await res.json()) as { sessions: { id: string; client_id: string | null; parent_id: string | null }[] };
    const browserSession = sessions.find((s) => s.id === tokens.claims()!.sid)!;
    t.equal(browserSession.client_id, null, 'the browser session');
    const grant = sessions.find((s) => s.client_id === web.client_id && s.parent_id === browserSession.id);
    t.ok(grant, 'and the grant of the client, made from it');
    const revoke = await fetch(`${op.url}/admin/sessions/${browserSession.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    t.equal(revoke.status, 204);
    t.equal(await oauthError(client.refreshTokenGrant(webConfig, tokens.refresh_token!)), 'invalid_grant', 'revoking it ends the grant');
  });

  t.test('refresh token reuse revokes the grant', async (t) => {
    const { tokens } = await signIn(webConfig);
    const next = await client.refreshTokenGrant(webConfig, tokens.refresh_token!);
    op.clock.advance(30); // past REFRESH_GRACE_PERIOD
    t.equal(await oauthError(client.refreshTokenGrant(webConfig, tokens.refresh_token!)), 'invalid_grant');
    t.equal(await oauthError(client.refreshTokenGrant(webConfig, next.refresh_token!)), 'invalid_grant', 'the whole grant ended');
  });

  t.test('public client with PKCE; single sign-on with the browser session', async (t) => {
    const first = await signIn(spaConfig);
    t.equal(first.tokens.claims()!.aud, spa.client_id);
    // the same browser: the gateway session signs it in without another upstream login
    const upstreamHost = new URL(op.upstreams.corp.issuer).host;
    const before = op.upstreams.corp;
    const second = await signIn(webConfig, first.browser);
    t.equal(second.tokens.claims()!.sub, first.tokens.claims()!.sub);
    t.equal(second.tokens.claims()!.sid, first.tokens.claims()!.sid, 'one browser session, two grants');
    t.ok(before && upstreamHost, 'same upstream');
    const refreshed = await client.refreshTokenGrant(spaConfig, first.tokens.refresh_token!);
    t.type(refreshed.access_token, 'string');
  });

  t.test('client credentials: a token for the service itself', async (t) => {
    const tokens = await client.clientCredentialsGrant(serviceConfig, { scope: 'orders:read' });
    const access = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
    t.match(access, { sub: service.client_id, client_id: service.client_id, scope: 'orders:read', aud: 'https://orders.example.com' });
    t.notOk(tokens.refresh_token, 'no refresh token');
    t.notOk(tokens.id_token);
    t.match(await client.tokenIntrospection(serviceConfig, tokens.access_token), { active: true, sub: service.client_id });
  });

  t.test('RP-initiated logout ends the browser session and every grant made from it', async (t) => {
    const browser = op.browser();
    const web1 = await signIn(webConfig, browser);
    const spa1 = await signIn(spaConfig, browser);
    const url = client.buildEndSessionUrl(webConfig, {
      id_token_hint: web1.tokens.id_token!,
      post_logout_redirect_uri: 'http://127.0.0.1:7/bye',
      state: 'xyz',
    });
    const res = await browser.request(url);
    t.equal(res.status, 302);
    t.equal(res.headers.get('location'), 'http://127.0.0.1:7/bye?state=xyz');
    t.equal(await oauthError(client.refreshTokenGrant(webConfig, web1.tokens.refresh_token!)), 'invalid_grant');
    t.equal(await oauthError(client.refreshTokenGrant(spaConfig, spa1.tokens.refresh_token!)), 'invalid_grant', 'the other app too');
    t.same(await client.tokenIntrospection(webConfig, spa1.tokens.access_token), { active: false });
    // the browser has no session left: prompt=none says so
    const silent = client.buildAuthorizationUrl(webConfig, {
      redirect_uri: CLIENT_CB,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: 's',
      prompt: 'none',
    });
    const back = await op.authorize(browser, silent);
    t.equal(back.searchParams.get('error'), 'login_required');
    t.equal(back.searchParams.get('state'), 's');
  });
});
