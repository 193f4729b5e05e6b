// Who may call the admin API: the ADMIN_TOKEN, or an access token of an active admin with a live session.
import t, { type Test } from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { tampered } from '../helpers/forge.js';
import { signedIn } from '../helpers/users.js';

t.test('admin authentication', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: { ADMIN_TOKEN, ACCESS_TOKEN_TTL: '300' }, clock });
  const list = (headers: Record<string, string> = {}, cookies?: Record<string, string>) =>
    app.inject({ url: '/admin/users', headers, cookies });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const unauthorized = (t: Test, res: Awaited<ReturnType<typeof list>>, name: string) => {
    t.equal(res.statusCode, 401, name);
    t.equal(res.json().error, 'invalid_token', name);
    t.match(res.headers['www-authenticate'], /^Bearer realm="auth-gateway"/, name);
  };
  /** RFC 6750 section 3.1: no error code when the request sent no Bearer credentials; invalid_token otherwise */
  const challenge = (t: Test, res: Awaited<ReturnType<typeof list>>, sentBearer: boolean, name: string) => {
    if (sentBearer)
      t.match(res.headers['www-authenticate'], /^Bearer realm="auth-gateway", error="invalid_token", error_description="/, name);
    else t.equal(res.headers['www-authenticate'], 'Bearer realm="auth-gateway"', name);
  };

  t.test('the ADMIN_TOKEN', async (t) => {
    const res = await list(bearer(ADMIN_TOKEN));
    t.equal(res.statusCode, 200);
    t.equal(res.headers['cache-control'], 'no-store');
    const none = await list();
    unauthorized(t, none, 'no Authorization');
    challenge(t, none, false, 'no Authorization: no error code');
    const wrong = await list(bearer(`${ADMIN_TOKEN.slice(0, -1)}x`));
    unauthorized(t, wrong, 'a token that differs in the last character');
    challenge(t, wrong, true, 'a wrong token: invalid_token');
    unauthorized(t, await list(bearer(ADMIN_TOKEN.slice(0, -1))), 'a prefix of the token');
    unauthorized(t, await list(bearer(`${ADMIN_TOKEN}x`)), 'the token and more');
    const basic = await list({ authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` });
    unauthorized(t, basic, 'another scheme');
    challenge(t, basic, false, 'another scheme: no Bearer credentials, no error code');
    const two = await list({ authorization: `Bearer ${ADMIN_TOKEN}, Bearer x` });
    unauthorized(t, two, 'two credentials');
    challenge(t, two, true, 'two credentials: a malformed Bearer header is an invalid token');
  });

  t.test('an access token of a user with the role admin', async (t) => {
    const admin = await signedIn(app, { roles: ['admin'] });
    t.equal((await list(bearer(admin.tokens.accessToken))).statusCode, 200);
    const res = await adminCall(app, admin.tokens.accessToken)('PATCH', `/admin/users/${admin.id}`, { name: 'Root' });
    t.equal(res.statusCode, 200);
    const event = await storage.db
      .selectFrom('audit_events')
      .selectAll()
      .where('type', '=', 'user.updated')
      .where('user_id', '=', admin.id)
      .executeTakeFirstOrThrow();
    t.equal(event.actor, `user:${admin.id}`, 'changes are audited with the acting user');
    t.equal(event.ip, '127.0.0.1');
  });

  t.test('a valid token without the admin role: 403 insufficient_scope', async (t) => {
    const user = await signedIn(app, { roles: ['support'] });
    const res = await list(bearer(user.tokens.accessToken));
    t.equal(res.statusCode, 403);
    t.equal(res.json().error, 'insufficient_scope');
    t.match(res.headers['www-authenticate'], /^Bearer realm="auth-gateway", error="insufficient_scope"/);
  });

  t.test('the role is read from the database, not from the token', async (t) => {
    const admin = await signedIn(app, { roles: ['admin'] });
    await storage.db.updateTable('users').set({ roles: [] }).where('id', '=', admin.id).execute();
    t.equal((await list(bearer(admin.tokens.accessToken))).statusCode, 403, 'a revoked role counts at once');
    const user = await signedIn(app);
    await storage.db
      .updateTable('users')
      .set({ roles: ['admin'] })
      .where('id', '=', user.id)
      .execute();
    t.equal((await list(bearer(user.tokens.accessToken))).statusCode, 200, 'a granted role counts at once');
  });

  t.test('ended sessions, disabled users, expired and forged tokens: 401', async (t) => {
    const revoked = await signedIn(app, { roles: ['admin'] });
    await app.ctx.sessions.revoke(revoked.tokens.sessionId, { reason: 'test', actor: 'test' });
    unauthorized(t, await list(bearer(revoked.tokens.accessToken)), 'revoked session');

    const disabled = await signedIn(app, { roles: ['admin'] });
    await storage.db.updateTable('users').set({ status: 'disabled' }).where('id', '=', disabled.id).execute();
    unauthorized(t, await list(bearer(disabled.tokens.accessToken)), 'disabled user');

    const admin = await signedIn(app, { roles: ['admin'] });
    unauthorized(t, await list(bearer(admin.tokens.refreshToken)), 'a refresh token');
    unauthorized(t, await list(bearer(tampered(admin.tokens.accessToken, { roles: ['admin'], sub: disabled.id }))), 'a tampered token');
    clock.advance(306);
    const expired = await list(bearer(admin.tokens.accessToken));
    unauthorized(t, expired, 'expired');
    t.equal(expired.json().error_description, 'The access token has expired.');
  });

  t.test('a session cookie alone never authenticates an admin request', async (t) => {
    const admin = await signedIn(app, { roles: ['admin'] });
    unauthorized(t, await list({}, { gw_session: admin.tokens.refreshToken }), 'cookie');
    unauthorized(t, await list({ cookie: `gw_session=${admin.tokens.refreshToken}` }), 'cookie header');
  });

  t.test('authentication comes before validation: nothing about the request leaks to a stranger', async (t) => {
    unauthorized(t, await app.inject({ url: '/admin/users/not-a-uuid' }), 'bad id');
    unauthorized(
      t,
      await app.inject({ method: 'PATCH', url: '/admin/users/not-a-uuid', payload: '{', headers: { 'content-type': 'application/json' } }),
      'bad JSON',
    );
    unauthorized(t, await app.inject({ url: '/admin/users?cursor=%%%' }), 'bad query');
  });
});

t.test('without ADMIN_TOKEN only admin users get in', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ url: '/admin/keys', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.equal(res.statusCode, 401);
  t.equal(res.json().error, 'invalid_token');
  const admin = await signedIn(app, { roles: ['admin'] });
  t.equal((await app.inject({ url: '/admin/keys', headers: { authorization: `Bearer ${admin.tokens.accessToken}` } })).statusCode, 200);
});
