import t from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { signedIn } from '../helpers/users.js';

const HOUR = 3600;

t.test('pruning removes expired flows and sessions and keeps live ones', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, {
    clock,
    env: { REFRESH_TOKEN_TTL: String(HOUR), SESSION_MAX_AGE: String(4 * HOUR), LOGIN_FLOW_TTL: '600' },
  });
  const db = storage.db;
  const count = async (table: 'login_flows' | 'sessions') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const flow = (provider: string) =>
    app.ctx.flows.create(
      {
        provider,
        returnTo: '/',
        purpose: 'login',
        sessionId: null,
        linkUserId: null,
        secrets: { state: crypto.randomUUID(), nonce: undefined, codeVerifier: 'v'.repeat(43) },
      },
      'browser',
    );

  await flow('old');
  const idle = await signedIn(app); // will pass its idle expiry
  const active = await signedIn(app); // keeps refreshing
  clock.advance(HOUR - 60);
  const rotated = await app.ctx.sessions.refresh(active.tokens.refreshToken, {});
  await flow('new');
  clock.advance(120); // the first flow and the idle session have expired

  t.same(await app.ctx.pruner.run(), {
    loginFlows: 1,
    sessions: 1,
    authorizationRequests: 0,
    authorizationCodes: 0,
    revokedAccessTokens: 0,
  });
  t.equal(await count('login_flows'), 1, 'the live flow stays');
  const sessions = await db.selectFrom('sessions').select('id').execute();
  t.same(
    sessions.map((s) => s.id),
    [active.tokens.sessionId],
    'the idle-expired session is gone',
  );
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refreshToken } })).statusCode, 200);
  t.equal(
    (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: idle.tokens.refreshToken } })).statusCode,
    401,
  );

  clock.advance(4 * HOUR);
  t.same(
    await app.ctx.pruner.run(),
    { loginFlows: 1, sessions: 1, authorizationRequests: 0, authorizationCodes: 0, revokedAccessTokens: 0 },
    'past the absolute lifetime',
  );
  t.equal(await count('sessions'), 0);
  t.equal(await count('login_flows'), 0);
});
