// Postgres going away mid-run: clear 503s (never a hang, a 500 or a crash), /readyz 503, and recovery.
import t from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { databaseBehindProxy, postgresUrl } from '../helpers/db.js';
import { signedIn } from '../helpers/users.js';
import { eventually } from '../helpers/wait.js';

t.test(
  'the database stops and comes back',
  { skip: postgresUrl ? false : 'needs a Postgres server (DATABASE_URL or TEST_DATABASE_URL)' },
  async (t) => {
    const { storage, proxy } = await databaseBehindProxy(t);
    const { app } = await buildTestApp(t, { storage });
    const user = await signedIn(app);
    const refresh = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } });

    await proxy.stop();
    const started = Date.now();
    const [res, info, ready] = await Promise.all([
      refresh(user.tokens.refreshToken),
      app.inject({ url: '/auth/userinfo', headers: { authorization: `Bearer ${user.tokens.accessToken}` } }),
      app.inject('/readyz'),
    ]);
    // a hang would last until tap's timeout; a refused connection is answered within the pool's 1 s connect
    // timeout plus the 2 s readiness ping, however busy the machine: 15 s tells the two apart with room to spare
    t.ok(Date.now() - started < 15_000, `answers, no hung request (${Date.now() - started} ms)`);
    for (const r of [res, info]) {
      t.equal(r.statusCode, 503);
      t.same(r.json(), {
        error: 'temporarily_unavailable',
        error_description: 'The service is temporarily unavailable; try again shortly.',
      });
      t.equal(r.headers['retry-after'], '5');
    }
    t.equal(ready.statusCode, 503);
    t.equal((await app.inject('/healthz')).statusCode, 200, 'the process is alive');
    await app.ctx.keys.tick().then(
      () => t.fail('the key check cannot succeed without a database'),
      () => t.pass('a failing key check rejects, and the timer only logs it'),
    );

    await proxy.restore();
    let status = 0;
    await eventually(async () => (status = (await refresh(user.tokens.refreshToken)).statusCode) !== 503, {
      what: 'a refresh that is not answered 503 once the database is back',
      intervalMs: 100,
    });
    t.equal(status, 200, 'the same refresh token works once the database is back: nothing was lost');
    t.equal((await app.inject('/readyz')).statusCode, 200);
  },
);
