import { decodeJwt, decodeProtectedHeader } from 'jose';
import t from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { resignWithForeignKey, tampered, unsigned } from '../helpers/forge.js';
import { testDatabase } from '../helpers/db.js';
import { cookiesOf, signedIn } from '../helpers/users.js';

const HOUR = 3600;
const ENV = { REFRESH_TOKEN_TTL: String(HOUR), SESSION_MAX_AGE: String(3 * HOUR), ACCESS_TOKEN_TTL: '300' };

t.test('refresh tokens', async (t) => {
  const { storage } = await testDatabase(t);
  const clock = new TestClock();
  const { app } = await buildTestApp(t, { storage, env: ENV, clock });
  const refreshBody = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } });
  const refreshCookie = (token: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gw_session: token }, headers });

  t.test('what is minted', async (t) => {
    const user = await signedIn(app, { roles: ['admin'], name: 'Ada' });
    const access = decodeJwt(user.tokens.accessToken);
    t.same(decodeProtectedHeader(user.tokens.accessToken).typ, 'at+jwt');
    t.match(access, {
      iss: 'http://localhost:3000',
      sub: user.id,
      aud: 'http://localhost:3000',
      sid: user.tokens.sessionId,
      client_id: 'http://localhost:3000',
      email: user.email,
      email_verified: true,
      name: 'Ada',
      roles: ['admin'],
    });
    t.equal(access.exp! - access.iat!, 300);
    t.type(access.jti, 'string');
    const refresh = decodeJwt(user.tokens.refreshToken);
    t.equal(decodeProtectedHeader(user.tokens.refreshToken).typ, 'rt+jwt');
    t.match(refresh, { iss: 'http://localhost:3000', aud: 'http://localhost:3000', sub: user.id, sid: user.tokens.sessionId });
    t.equal(refresh.exp! - refresh.iat!, HOUR);
    const stored = await storage.db.selectFrom('refresh_tokens').selectAll().where('session_id', '=', user.tokens.sessionId).execute();
    t.equal(stored.length, 1);
    t.equal(stored[0].jti, refresh.jti, 'stored by jti');
    t.notOk(JSON.stringify(stored).includes(user.tokens.refreshToken), 'never the token itself');
  });

  t.test('body refresh rotates and returns the new refresh token in the body', async (t) => {
    const user = await signedIn(app);
    const res = await refreshBody(user.tokens.refreshToken);
    t.equal(res.statusCode, 200);
    t.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    t.match(body, { token_type: 'Bearer', expires_in: 300 });
    t.type(body.access_token, 'string');
    t.type(body.refresh_token, 'string');
    t.not(body.refresh_token, user.tokens.refreshToken);
    t.equal(res.headers['set-cookie'], undefined, 'no cookie when the token came in the body');
    t.equal((await refreshBody(body.refresh_token)).statusCode, 200, 'the successor works');
  });

  t.test('cookie refresh rotates the cookie and keeps the token out of the body', async (t) => {
    const user = await signedIn(app);
    const res = await refreshCookie(user.tokens.refreshToken);
    t.equal(res.statusCode, 200);
    t.notOk('refresh_token' in res.json());
    const cookie = cookiesOf(res).get('gw_session')!;
    t.ok(cookie.value && cookie.value !== user.tokens.refreshToken, 'rotated');
    t.match(cookie.attrs, /HttpOnly/);
    t.match(cookie.attrs, /SameSite=Lax/);
    t.match(cookie.attrs, /Path=\//);
    t.match(cookie.attrs, /Max-Age=3600/);
    t.notMatch(cookie.attrs, /Secure/, 'plain http PUBLIC_URL: no Secure');
  });

  t.test('a rotated token used again revokes the whole session', async (t) => {
    const user = await signedIn(app);
    const first = await refreshBody(user.tokens.refreshToken);
    t.equal(first.statusCode, 200);
    const successor = first.json().refresh_token;
    const replay = await refreshBody(user.tokens.refreshToken);
    t.equal(replay.statusCode, 401);
    t.same(replay.json(), {
      error: 'invalid_grant',
      error_description: 'The refresh token was already used; the session has been revoked.',
    });
    const after = await refreshBody(successor);
    t.equal(after.statusCode, 401, 'the successor dies with its session');
    const session = await storage.db.selectFrom('sessions').selectAll().where('id', '=', user.tokens.sessionId).executeTakeFirstOrThrow();
    t.ok(session.revoked_at);
    t.equal(session.revoked_reason, 'refresh_reuse');
    const tokens = await storage.db
      .selectFrom('refresh_tokens')
      .select('revoked_at')
      .where('session_id', '=', user.tokens.sessionId)
      .execute();
    t.ok(
      tokens.every((r) => r.revoked_at),
      'every token of the session is revoked',
    );
    const audit = await storage.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'refresh.reuse_detected')
      .where('session_id', '=', user.tokens.sessionId)
      .execute();
    t.equal(audit.length, 1);
    t.match(audit[0], { outcome: 'failure', reason: 'refresh_token_reused', user_id: user.id });
    const userinfo = await app.inject({ url: '/auth/userinfo', headers: { authorization: `Bearer ${first.json().access_token}` } });
    t.equal(userinfo.statusCode, 401, 'access tokens of the revoked session are refused by userinfo');
  });

  t.test('concurrent refreshes with one token: exactly one succeeds', async (t) => {
    const user = await signedIn(app);
    const results = await Promise.all([1, 2, 3, 4].map(() => refreshBody(user.tokens.refreshToken)));
    const codes = results.map((r) => r.statusCode).sort();
    t.same(codes, [200, 401, 401, 401]);
  });

  t.test('idle expiry', async (t) => {
    const user = await signedIn(app);
    clock.advance(HOUR + 10);
    const res = await refreshBody(user.tokens.refreshToken);
    t.equal(res.statusCode, 401);
    t.equal(res.json().error, 'invalid_grant');
  });

  t.test('absolute expiry wins over activity', async (t) => {
    const user = await signedIn(app);
    let token = user.tokens.refreshToken;
    for (let i = 0; i < 5; i++) {
      clock.advance(HOUR - 60);
      const res = await refreshBody(token);
      if (res.statusCode !== 200) {
        t.equal(i, 3, 'refused once SESSION_MAX_AGE has passed, however active the session');
        t.equal(res.json().error, 'invalid_grant');
        return;
      }
      const exp = decodeJwt(res.json().refresh_token).exp!;
      t.ok(exp * 1000 <= clock.now().getTime() + HOUR * 1000, 'idle lifetime from now at most');
      token = res.json().refresh_token;
    }
    t.fail('the session outlived SESSION_MAX_AGE');
  });

  t.test('a disabled user or a revoked session cannot refresh', async (t) => {
    const disabled = await signedIn(app);
    await storage.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', disabled.id).execute();
    t.equal((await refreshBody(disabled.tokens.refreshToken)).statusCode, 401);
    const revoked = await signedIn(app);
    await app.ctx.sessions.revoke(revoked.tokens.sessionId, { reason: 'test', actor: 'test' });
    const res = await refreshBody(revoked.tokens.refreshToken);
    t.equal(res.statusCode, 401);
    t.equal(res.json().error_description, 'The session has been revoked.');
  });

  t.test('forged, re-typed and malformed tokens are refused', async (t) => {
    const user = await signedIn(app);
    const rt = user.tokens.refreshToken;
    const cases: Record<string, string> = {
      'an access token': user.tokens.accessToken,
      'a foreign key with our kid': await resignWithForeignKey(rt),
      'alg none': unsigned(rt),
      'a changed subject': tampered(rt, { sub: '00000000-0000-0000-0000-000000000000' }),
      'typ JWT': tampered(rt, {}, { typ: 'JWT' }),
      'HS256 header': tampered(rt, {}, { alg: 'HS256' }),
      'another issuer': tampered(rt, { iss: 'https://evil.example.com' }),
      garbage: 'not-a-jwt',
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await refreshBody(token);
      t.equal(res.statusCode, 401, name);
      t.equal(res.json().error, 'invalid_grant', name);
    }
    t.equal((await refreshBody(rt)).statusCode, 200, 'the genuine token was never harmed');
    const none = await app.inject({ method: 'POST', url: '/auth/refresh' });
    t.equal(none.statusCode, 401);
    t.match(none.json(), { error: 'invalid_grant' });
    const unknown = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x', extra: 1 } });
    t.equal(unknown.statusCode, 400, 'unknown fields are refused');
  });

  t.test('a failed cookie refresh clears the cookie; foreign origins are refused', async (t) => {
    const res = await refreshCookie('garbage');
    t.equal(res.statusCode, 401);
    const cleared = cookiesOf(res).get('gw_session')!;
    t.equal(cleared.value, '');
    const user = await signedIn(app);
    const evil = await refreshCookie(user.tokens.refreshToken, { origin: 'https://evil.example.com' });
    t.equal(evil.statusCode, 403);
    const ok = await refreshCookie(user.tokens.refreshToken, { origin: 'http://localhost:3000' });
    t.equal(ok.statusCode, 200);
  });

  t.test('CORS for the allowed origins only', async (t) => {
    const pre = await app.inject({
      method: 'OPTIONS',
      url: '/auth/refresh',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' },
    });
    t.equal(pre.headers['access-control-allow-origin'], 'http://localhost:3000');
    t.equal(pre.headers['access-control-allow-credentials'], 'true');
    const evil = await app.inject({
      method: 'OPTIONS',
      url: '/auth/refresh',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    t.equal(evil.headers['access-control-allow-origin'], undefined);
  });
});

t.test('https PUBLIC_URL: __Host- prefixed Secure cookie', async (t) => {
  const { app } = await buildTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com' } });
  const user = await signedIn(app);
  const res = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { '__Host-gw_session': user.tokens.refreshToken } });
  t.equal(res.statusCode, 200);
  const cookie = cookiesOf(res).get('__Host-gw_session')!;
  t.match(cookie.attrs, /Secure/);
  t.match(cookie.attrs, /Path=\//);
  t.notMatch(cookie.attrs, /Domain/, '__Host- cookies carry no Domain');
  const plain = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gw_session: user.tokens.refreshToken } });
  t.equal(plain.statusCode, 401, 'the unprefixed name is not read');
});
