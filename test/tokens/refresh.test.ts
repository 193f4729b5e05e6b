import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createVerifier } from 'fast-jwt';
import t from 'tap';
import { RefreshTokenCodec } from '../../src/tokens/refresh-token.js';
import { buildTestApp, TEST_SECRET, TestClock } from '../helpers/app.js';
import { testDatabase } from '../helpers/db.js';
import { cookiesOf, signedIn } from '../helpers/users.js';

const HOUR = 3600;
const ENV = { REFRESH_TOKEN_TTL: String(HOUR), SESSION_MAX_AGE: String(3 * HOUR), ACCESS_TOKEN_TTL: '300', REFRESH_GRACE_PERIOD: '10' };

t.test('refresh tokens', async (t) => {
  const { storage } = await testDatabase(t);
  const clock = new TestClock();
  const { app } = await buildTestApp(t, { storage, env: ENV, clock });
  const refreshBody = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } });
  const refreshCookie = (token: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gw_session: token }, headers });
  const session = (id: string) => storage.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const reuseEvents = (sessionId: string) =>
    storage.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'refresh.reuse_detected')
      .where('session_id', '=', sessionId)
      .execute();

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
    const rt = user.tokens.refreshToken;
    t.match(rt, /^gwr1_[A-Za-z0-9_-]{48}$/, 'an opaque token, not a JWT');
    t.same(app.ctx.refreshTokens.parse(rt), { sessionId: user.tokens.sessionId, generation: 0 });
    const row = await session(user.tokens.sessionId);
    t.equal(row.refresh_gen, 0, 'the session keeps its generation only');
    const everything = JSON.stringify(await storage.db.selectFrom('sessions').selectAll().execute());
    t.notOk(everything.includes(rt) || everything.includes(rt.slice(5, 40)), 'never the token itself');
  });

  t.test('empty and null claims are left out of access tokens', async (t) => {
    const user = await signedIn(app, { roles: [], name: undefined });
    await storage.db.updateTable('users').set({ email: null, name: null }).where('id', '=', user.id).execute();
    const res = await refreshBody(user.tokens.refreshToken);
    const claims = decodeJwt(res.json().access_token);
    for (const claim of ['roles', 'email', 'email_verified', 'name']) t.notOk(claim in claims, `no ${claim}`);
  });

  t.test('access tokens verify with standard libraries; refresh tokens never pass as access tokens', async (t) => {
    const user = await signedIn(app);
    const jwks = createLocalJWKSet(app.ctx.keys.jwks());
    // what a sibling service checks when it forgets typ: iss, aud, alg
    const natural = { issuer: 'http://localhost:3000', audience: 'http://localhost:3000', algorithms: ['ES256'], currentDate: clock.now() };
    const { payload } = await jwtVerify(user.tokens.accessToken, jwks, { ...natural, typ: 'at+jwt' });
    t.equal(payload.sub, user.id, 'jose verifies our node:crypto signature');
    await t.rejects(jwtVerify(user.tokens.refreshToken, jwks, natural), 'jose refuses a refresh token even without a typ check');
    const pem = app.ctx.keys.signingKey().publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const fast = createVerifier({
      key: pem,
      allowedIss: natural.issuer,
      allowedAud: natural.audience,
      algorithms: ['ES256'],
      clockTimestamp: clock.now().getTime(),
    });
    t.equal(fast(user.tokens.accessToken).sub, user.id, 'fast-jwt verifies it too');
    t.throws(() => fast(user.tokens.refreshToken), 'fast-jwt refuses a refresh token');
    // a logged-out user's refresh token stays useless at a resource server
    await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: user.tokens.refreshToken } });
    await t.rejects(jwtVerify(user.tokens.refreshToken, jwks, natural));
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
    t.same(app.ctx.refreshTokens.parse(body.refresh_token), { sessionId: user.tokens.sessionId, generation: 1 });
    t.equal(res.headers['set-cookie'], undefined, 'no cookie when the token came in the body');
    t.equal((await refreshBody(body.refresh_token)).statusCode, 200, 'the successor works');
    t.equal((await session(user.tokens.sessionId)).refresh_gen, 2);
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

  t.test('a rotated token used again after the grace period revokes the whole session', async (t) => {
    const user = await signedIn(app);
    const first = await refreshBody(user.tokens.refreshToken);
    t.equal(first.statusCode, 200);
    const successor = first.json().refresh_token;
    clock.advance(11);
    const replay = await refreshBody(user.tokens.refreshToken);
    t.equal(replay.statusCode, 401);
    t.same(replay.json(), {
      error: 'invalid_grant',
      error_description: 'The refresh token was already used; the session has been revoked.',
    });
    const after = await refreshBody(successor);
    t.equal(after.statusCode, 401, 'the successor dies with its session');
    const row = await session(user.tokens.sessionId);
    t.ok(row.revoked_at);
    t.equal(row.revoked_reason, 'refresh_reuse');
    const audit = await reuseEvents(user.tokens.sessionId);
    t.equal(audit.length, 1);
    t.match(audit[0], { outcome: 'failure', reason: 'refresh_token_reused', user_id: user.id });
    const userinfo = await app.inject({ url: '/auth/userinfo', headers: { authorization: `Bearer ${first.json().access_token}` } });
    t.equal(userinfo.statusCode, 401, 'access tokens of the revoked session are refused by userinfo');
  });

  t.test('any older token of a valid chain is reuse', async (t) => {
    const user = await signedIn(app);
    let token = user.tokens.refreshToken;
    const chain = [token];
    for (let i = 0; i < 3; i++) {
      token = (await refreshBody(token)).json().refresh_token;
      chain.push(token);
    }
    // generation 1 of 3: within the grace period in time, but its successor was already used
    const res = await refreshBody(chain[1]);
    t.equal(res.statusCode, 401);
    t.ok((await session(user.tokens.sessionId)).revoked_at, 'revoked');
    t.equal((await reuseEvents(user.tokens.sessionId)).length, 1);
  });

  t.test('within the grace period the predecessor gets the same successor, and nothing is revoked', async (t) => {
    const user = await signedIn(app);
    const first = await refreshBody(user.tokens.refreshToken);
    clock.advance(9);
    const again = await refreshBody(user.tokens.refreshToken);
    t.equal(again.statusCode, 200);
    t.equal(again.json().refresh_token, first.json().refresh_token, 'the same successor');
    t.not(again.json().access_token, first.json().access_token, 'a fresh access token');
    const cookie = await refreshCookie(user.tokens.refreshToken);
    t.equal(cookiesOf(cookie).get('gw_session')!.value, first.json().refresh_token, 'the cookie carries that successor too');
    const row = await session(user.tokens.sessionId);
    t.same([row.refresh_gen, row.revoked_at], [1, null]);
    t.equal((await reuseEvents(user.tokens.sessionId)).length, 0);
    // once the successor is used, the predecessor is reuse even within the period
    const next = await refreshBody(first.json().refresh_token);
    t.equal(next.statusCode, 200);
    t.equal((await refreshBody(user.tokens.refreshToken)).statusCode, 401);
    t.ok((await session(user.tokens.sessionId)).revoked_at);
  });

  t.test('concurrent refreshes with one token: exactly one rotation, every tab keeps the session', async (t) => {
    const user = await signedIn(app);
    const results = await Promise.all([1, 2, 3, 4].map(() => refreshBody(user.tokens.refreshToken)));
    t.same(
      results.map((r) => r.statusCode),
      [200, 200, 200, 200],
    );
    t.equal(new Set(results.map((r) => r.json().refresh_token)).size, 1, 'one successor for all');
    const row = await session(user.tokens.sessionId);
    t.same([row.refresh_gen, row.revoked_at], [1, null]);
  });

  t.test('concurrent replays after the grace period: the session ends once, with one audit event', async (t) => {
    const user = await signedIn(app);
    await refreshBody(user.tokens.refreshToken);
    clock.advance(11);
    const results = await Promise.all([1, 2, 3, 4].map(() => refreshBody(user.tokens.refreshToken)));
    t.same(
      results.map((r) => r.statusCode),
      [401, 401, 401, 401],
    );
    t.ok((await session(user.tokens.sessionId)).revoked_at);
    t.equal((await reuseEvents(user.tokens.sessionId)).length, 1);
  });

  t.test('idle expiry', async (t) => {
    const user = await signedIn(app);
    clock.advance(HOUR + 10);
    const res = await refreshBody(user.tokens.refreshToken);
    t.equal(res.statusCode, 401);
    t.same(res.json(), { error: 'invalid_grant', error_description: 'The session has expired.' });
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
      const row = await session(user.tokens.sessionId);
      t.ok(row.idle_expires_at.getTime() <= clock.now().getTime() + HOUR * 1000, 'idle lifetime from now at most');
      t.ok(row.idle_expires_at <= row.expires_at, 'never past the absolute lifetime');
      token = res.json().refresh_token;
    }
    t.fail('the session outlived SESSION_MAX_AGE');
  });

  t.test('a disabled user or a revoked session cannot refresh', async (t) => {
    const disabled = await signedIn(app);
    await storage.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', disabled.id).execute();
    const res1 = await refreshBody(disabled.tokens.refreshToken);
    t.same([res1.statusCode, res1.json().error_description], [401, 'The user is disabled.']);
    const revoked = await signedIn(app);
    await app.ctx.sessions.revoke(revoked.tokens.sessionId, { reason: 'test', actor: 'test' });
    const res = await refreshBody(revoked.tokens.refreshToken);
    t.equal(res.statusCode, 401);
    t.equal(res.json().error_description, 'The session has been revoked.');
  });

  t.test('forged, foreign and malformed tokens are refused and harm nothing', async (t) => {
    const user = await signedIn(app);
    const rt = user.tokens.refreshToken;
    const other = await signedIn(app);
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const body = Buffer.from(rt.slice(5), 'base64url');
    const swapped = Buffer.concat([Buffer.from(other.tokens.refreshToken.slice(5), 'base64url').subarray(0, 16), body.subarray(16)]);
    const cases: Record<string, string> = {
      'an access token': user.tokens.accessToken,
      'a changed tag': flip(rt, rt.length - 2),
      'a changed generation': flip(rt, 5 + 22),
      "another session's id under this tag": `gwr1_${swapped.toString('base64url')}`,
      'another SECRET_KEY': new RefreshTokenCodec([Buffer.alloc(32, 9)]).mint(user.tokens.sessionId, 0),
      'a legacy JWT refresh token': `${Buffer.from('{"alg":"ES256","typ":"rt+jwt"}').toString('base64url')}.e30.sig`,
      'another prefix': `gwr2_${rt.slice(5)}`,
      garbage: 'not-a-token',
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await refreshBody(token);
      t.equal(res.statusCode, 401, name);
      t.equal(res.json().error, 'invalid_grant', name);
    }
    const future = app.ctx.refreshTokens.mint(user.tokens.sessionId, 7);
    t.equal((await refreshBody(future)).statusCode, 401, 'a generation the session never reached');
    t.equal((await refreshBody(rt)).statusCode, 200, 'the genuine token was never harmed');
    t.equal((await session(other.tokens.sessionId)).revoked_at, null, 'nor the other session');
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

t.test('two tabs refreshing at once over HTTP keep their sessions; without a grace period the race is reuse', async (t) => {
  for (const grace of ['10', '0']) {
    const { app } = await buildTestApp(t, { env: { ...ENV, REFRESH_GRACE_PERIOD: grace } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    const tab = (cookie: string) =>
      fetch(`http://127.0.0.1:${port}/auth/refresh`, { method: 'POST', headers: { cookie: `gw_session=${cookie}` } });
    const users = await Promise.all([1, 2, 3, 4, 5].map(() => signedIn(app)));
    const results = await Promise.all(users.map((u) => Promise.all([tab(u.tokens.refreshToken), tab(u.tokens.refreshToken)])));
    const sessions = await app.ctx.storage.db
      .selectFrom('sessions')
      .select(['revoked_at'])
      .where(
        'id',
        'in',
        users.map((u) => u.tokens.sessionId),
      )
      .execute();
    const statuses = results.map((pair) => pair.map((r) => r.status).sort());
    if (grace === '10') {
      t.same(statuses, Array(5).fill([200, 200]), 'both tabs succeed');
      t.equal(sessions.filter((s) => s.revoked_at).length, 0, 'no session is lost');
    } else {
      t.same(statuses, Array(5).fill([200, 401]), 'REFRESH_GRACE_PERIOD=0: the second tab is reuse');
      t.equal(sessions.filter((s) => s.revoked_at).length, 5, 'and ends the session');
    }
  }
});

t.test('https PUBLIC_URL: __Host- prefixed Secure cookie', async (t) => {
  const { app } = await buildTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com', SECRET_KEY: TEST_SECRET } });
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
