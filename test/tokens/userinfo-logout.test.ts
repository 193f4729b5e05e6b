import { generateKeyPair, SignJWT } from 'jose';
import t from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { resignWithForeignKey, tampered, unsigned } from '../helpers/forge.js';
import { cookiesOf, signedIn } from '../helpers/users.js';

t.test('userinfo and logout', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: { ACCESS_TOKEN_TTL: '300', ALLOWED_ORIGINS: 'https://app.example.com' }, clock });
  const userinfo = (token?: string) =>
    app.inject({ url: '/auth/userinfo', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  t.test('userinfo returns the user and their identities', async (t) => {
    const user = await signedIn(app, { name: 'Grace', roles: ['ops'] });
    await storage.db
      .insertInto('identities')
      .values({
        id: crypto.randomUUID(),
        user_id: user.id,
        provider: 'corp',
        subject: 's-1',
        email: user.email,
        name: null,
        picture: null,
        raw_claims: '{}',
      })
      .execute();
    const res = await userinfo(user.tokens.accessToken);
    t.equal(res.statusCode, 200);
    t.equal(res.headers['cache-control'], 'no-store');
    t.same(res.json(), {
      sub: user.id,
      email: user.email,
      email_verified: true,
      name: 'Grace',
      picture: null,
      roles: ['ops'],
      identities: [{ provider: 'corp', subject: 's-1', email: user.email }],
    });
    const lower = await app.inject({ url: '/auth/userinfo', headers: { authorization: `bearer ${user.tokens.accessToken}` } });
    t.equal(lower.statusCode, 200, 'the scheme is case-insensitive');
  });

  t.test('userinfo verifies the access token strictly', async (t) => {
    const user = await signedIn(app);
    const at = user.tokens.accessToken;
    const { privateKey } = await generateKeyPair('ES256');
    const idTokenLike = await new SignJWT({ sub: user.id, sid: user.tokens.sessionId, jti: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: app.ctx.keys.signingKey().kid })
      .setIssuer('http://localhost:3000')
      .setAudience('http://localhost:3000')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    const cases: Record<string, string> = {
      'a refresh token': user.tokens.refreshToken,
      'an ID token (typ JWT) signed by another key': idTokenLike,
      'typ JWT': tampered(at, {}, { typ: 'JWT' }),
      'alg none': unsigned(at),
      'a foreign key': await resignWithForeignKey(at),
      'another audience': tampered(at, { aud: 'https://other.example.com' }),
      'another issuer': tampered(at, { iss: 'https://evil.example.com' }),
      'a lengthened lifetime': tampered(at, { exp: 4102444800 }),
      'an unknown kid': tampered(at, {}, { kid: 'nope' }),
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await userinfo(token);
      t.equal(res.statusCode, 401, name);
      t.equal(res.json().error, 'invalid_token', name);
      t.match(res.headers['www-authenticate'], /^Bearer realm="auth-gateway", error="invalid_token"/, name);
    }
    const missing = await userinfo();
    t.equal(missing.statusCode, 401);
    t.match(missing.headers['www-authenticate'], /^Bearer/);
    clock.advance(306); // past exp and the 5 s clock tolerance
    const expired = await userinfo(at);
    t.equal(expired.statusCode, 401, 'expired');
    t.equal(expired.json().error_description, 'The access token has expired.');
  });

  t.test('userinfo refuses tokens of disabled users and revoked sessions', async (t) => {
    const user = await signedIn(app);
    await storage.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', user.id).execute();
    t.equal((await userinfo(user.tokens.accessToken)).statusCode, 401);
  });

  t.test('POST logout with the cookie revokes the session and clears the cookie', async (t) => {
    const user = await signedIn(app);
    const res = await app.inject({ method: 'POST', url: '/auth/logout', cookies: { gw_session: user.tokens.refreshToken } });
    t.equal(res.statusCode, 204);
    t.equal(cookiesOf(res).get('gw_session')?.value, '');
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.tokens.refreshToken } });
    t.equal(refresh.statusCode, 401);
    t.equal((await userinfo(user.tokens.accessToken)).statusCode, 401);
    const audit = await storage.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'logout')
      .where('user_id', '=', user.id)
      .execute();
    t.equal(audit.length, 1);
    t.equal(audit[0].session_id, user.tokens.sessionId);
  });

  t.test('POST logout with a Bearer access token or a body refresh token', async (t) => {
    const a = await signedIn(app);
    t.equal(
      (await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${a.tokens.accessToken}` } })).statusCode,
      204,
    );
    t.equal((await userinfo(a.tokens.accessToken)).statusCode, 401);
    const b = await signedIn(app);
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: b.tokens.refreshToken } })).statusCode, 204);
    t.equal(
      (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: b.tokens.refreshToken } })).statusCode,
      401,
    );
  });

  t.test('logout with a forged token changes nothing', async (t) => {
    const victim = await signedIn(app);
    const rt = victim.tokens.refreshToken;
    const forged = `${rt.slice(0, -2)}${rt.at(-2) === 'A' ? 'B' : 'A'}${rt.at(-1)}`;
    const res = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: forged } });
    t.equal(res.statusCode, 204, 'logout never reports whether a token was valid');
    t.equal((await userinfo(victim.tokens.accessToken)).statusCode, 200, "the victim's session is untouched");
    const evil = await app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gw_session: victim.tokens.refreshToken },
      headers: { origin: 'https://evil.example.com' },
    });
    t.equal(evil.statusCode, 403, 'a cross-site form cannot log the user out');
    t.equal((await userinfo(victim.tokens.accessToken)).statusCode, 200);
  });

  t.test('GET logout redirects to a permitted return_to only', async (t) => {
    const user = await signedIn(app);
    const res = await app.inject({
      url: '/auth/logout?return_to=/bye',
      cookies: { gw_session: user.tokens.refreshToken },
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    t.equal(res.statusCode, 302);
    t.equal(res.headers.location, 'http://localhost:3000/bye');
    t.equal((await userinfo(user.tokens.accessToken)).statusCode, 401);
    for (const bad of ['//evil.example.com', 'https://evil.example.com/', 'javascript:alert(1)', '/\\evil.example.com']) {
      const r = await app.inject({ url: `/auth/logout?return_to=${encodeURIComponent(bad)}`, headers: { 'sec-fetch-site': 'none' } });
      t.equal(r.statusCode, 400, bad);
      t.equal(r.json().error, 'invalid_request', bad);
    }
    t.equal(
      (await app.inject({ url: '/auth/logout', headers: { 'sec-fetch-site': 'none' } })).headers.location,
      'http://localhost:3000/',
      'defaults to the gateway root',
    );
  });

  t.test('GET logout from another site does not log the user out (logout CSRF)', async (t) => {
    const user = await signedIn(app);
    const cookies = { gw_session: user.tokens.refreshToken };
    const refused: [string, Record<string, string>][] = [
      // a cross-site link, image or iframe: SameSite=Lax still sends the cookie on a top-level GET
      ['Sec-Fetch-Site cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site same-site (a sibling subdomain not in ALLOWED_ORIGINS)', { 'sec-fetch-site': 'same-site' }],
      ['Sec-Fetch-Site cross-site, Referer of another site', { 'sec-fetch-site': 'cross-site', referer: 'https://evil.example.com/page' }],
      ['an Origin that is not allowed', { origin: 'https://evil.example.com', 'sec-fetch-site': 'same-origin' }],
      ['Origin null (a sandboxed frame)', { origin: 'null' }],
      ['a browser without Sec-Fetch-* and no Referer', {}],
      ['a browser without Sec-Fetch-*, Referer of another site', { referer: 'https://evil.example.com/' }],
    ];
    for (const [name, headers] of refused) {
      const res = await app.inject({ url: '/auth/logout?return_to=/bye', cookies, headers });
      t.equal(res.statusCode, 403, name);
      t.equal(res.json().error, 'access_denied', name);
      t.match(res.json().error_description, /POST \/auth\/logout/, `${name}: says what to do instead`);
      t.notOk(cookiesOf(res).has('gw_session'), `${name}: the cookie is not touched`);
      t.equal((await userinfo(user.tokens.accessToken)).statusCode, 200, `${name}: the session lives on`);
    }
    t.equal(
      (await storage.db.selectFrom('audit_events').select('id').where('type', '=', 'logout').where('user_id', '=', user.id).execute())
        .length,
      0,
      'nothing audited as a logout',
    );

    const allowed: [string, Record<string, string>][] = [
      ['a link on the gateway itself', { 'sec-fetch-site': 'same-origin' }],
      ['typed into the address bar or a bookmark', { 'sec-fetch-site': 'none' }],
      ['a link on an allowed frontend origin (Referer)', { 'sec-fetch-site': 'cross-site', referer: 'https://app.example.com/account' }],
      ['an allowed Origin', { origin: 'https://app.example.com', 'sec-fetch-site': 'cross-site' }],
      ['a browser without Sec-Fetch-*, Referer of the gateway', { referer: 'http://localhost:3000/' }],
    ];
    for (const [name, headers] of allowed) {
      const victim = await signedIn(app);
      const res = await app.inject({ url: '/auth/logout?return_to=/bye', cookies: { gw_session: victim.tokens.refreshToken }, headers });
      t.equal(res.statusCode, 302, name);
      t.equal((await userinfo(victim.tokens.accessToken)).statusCode, 401, `${name}: logged out`);
    }
  });
});
