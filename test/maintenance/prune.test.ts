import t from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { signedIn } from '../helpers/users.js';

const HOUR = 3600;

t.test('pruning removes expired flows, sessions and tokens and keeps live ones', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, {
    clock,
    env: { REFRESH_TOKEN_TTL: String(HOUR), SESSION_MAX_AGE: String(4 * HOUR), LOGIN_FLOW_TTL: '600' },
  });
  const db = storage.db;
  const count = async (table: 'login_flows' | 'sessions' | 'refresh_tokens') =>
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
  clock.advance(120); // the first flow, the idle session and the first token of the active session have expired

  t.same(await app.ctx.pruner.run(), { loginFlows: 1, sessions: 1, refreshTokens: 1 });
  t.equal(await count('login_flows'), 1, 'the live flow stays');
  const sessions = await db.selectFrom('sessions').select('id').execute();
  t.same(
    sessions.map((s) => s.id),
    [active.tokens.sessionId],
    'the idle-expired session is gone',
  );
  t.equal(await count('refresh_tokens'), 1, "only the active session's current token is left");
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rotated.refreshToken } })).statusCode, 200);
  t.equal(
    (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: idle.tokens.refreshToken } })).statusCode,
    401,
  );

  clock.advance(4 * HOUR);
  t.same(await app.ctx.pruner.run(), { loginFlows: 1, sessions: 1, refreshTokens: 0 }, 'past the absolute lifetime');
  t.equal(await count('sessions'), 0);
  t.equal(await count('refresh_tokens'), 0, 'tokens go with their session');
  t.equal(await count('login_flows'), 0);
});
