// What a downstream app's tokens must not be good for: the gateway's admin API (its tokens are the client's, not
// the gateway's own), ending another browser's session (an ID token is not a secret), or claims beyond its scope.
import * as client from 'openid-client';
import t from 'tap';
import { ADMIN_TOKEN, CLIENT_CB, startOpGateway } from '../helpers/op.js';

t.test("a client's tokens", async (t) => {
  const op = await startOpGateway(t);
  const web = await op.register({
    client_name: 'Web',
    redirect_uris: [CLIENT_CB],
    post_logout_redirect_uris: ['http://127.0.0.1:7/bye'],
    grant_types: ['authorization_code', 'refresh_token'],
  });
  const config = await client.discovery(new URL(op.url), web.client_id, undefined, client.ClientSecretBasic(web.client_secret), {
    execute: [client.allowInsecureRequests],
  });
  const signIn = async (scope = 'openid email profile', browser = op.browser()) => {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CLIENT_CB,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: 's',
    });
    const tokens = await client.authorizationCodeGrant(config, await op.authorize(browser, url), {
      pkceCodeVerifier: verifier,
      expectedState: 's',
    });
    return { tokens, browser };
  };
  const admin = (path: string, init: RequestInit = {}, token = ADMIN_TOKEN) =>
    fetch(`${op.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });

  t.test('are refused by the admin API even when the user is an admin', async (t) => {
    const first = await signIn();
    const sub = first.tokens.claims()!.sub;
    t.equal((await admin(`/admin/users/${sub}`, { method: 'PATCH', body: JSON.stringify({ roles: ['admin'] }) })).status, 200);
    const { tokens } = await signIn();
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
    t.same(claims.roles, ['admin'], 'the role is in the token');
    const res = await admin('/admin/users', {}, tokens.access_token);
    t.equal(res.status, 401, "an app's access token is not the gateway's own");
    t.match(await res.json(), { error: 'invalid_token' });
  });

  t.test("an ID token does not end another browser's session", async (t) => {
    const victim = await signIn();
    const attacker = op.browser(); // no session of its own
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: victim.tokens.id_token!,
      post_logout_redirect_uri: 'http://127.0.0.1:7/bye',
    });
    const res = await attacker.request(url);
    t.equal(res.status, 302, 'the attacker is sent on as if signed out');
    const still = await client.refreshTokenGrant(config, victim.tokens.refresh_token!);
    t.type(still.access_token, 'string', "the victim's grant still works");
    // the victim's own browser signs out with it
    const own = await victim.browser.request(url);
    t.equal(own.status, 302);
    const ended = await client.refreshTokenGrant(config, still.refresh_token!).then(
      () => 'refreshed',
      (e: { error?: string }) => e.error,
    );
    t.equal(ended, 'invalid_grant');
  });

  t.test('an access token carries only the claims of its scope', async (t) => {
    const { tokens } = await signIn('openid');
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
    for (const c of ['email', 'email_verified', 'name']) t.notOk(c in claims, `no ${c} without its scope`);
    const full = await signIn('openid email profile');
    const fullClaims = JSON.parse(Buffer.from(full.tokens.access_token.split('.')[1], 'base64url').toString());
    t.match(fullClaims, { email: 'alice@example.com', name: 'Alice Example' });
  });
});
