import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { databaseBehindProxy, postgresUrl } from './helpers/db.js';
import { eventually } from './helpers/wait.js';

t.test('healthz and readyz on a working database', async (t) => {
  const { app } = await buildTestApp(t);
  const health = await app.inject('/healthz');
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });
  t.ok(health.headers['x-request-id'], 'every response carries a request id');
  const ready = await app.inject('/readyz');
  t.equal(ready.statusCode, 200);
  t.match(ready.json(), { status: 'ready', checks: { database: 'ok' } });
});

t.test('a harmless incoming X-Request-Id is kept, anything else replaced', async (t) => {
  const { app } = await buildTestApp(t);
  const kept = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
  t.equal(kept.headers['x-request-id'], 'abc-123');
  const replaced = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'a b\n"c' } });
  t.not(replaced.headers['x-request-id'], 'a b\n"c');
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/);
});

const needsPostgres = postgresUrl ? false : 'needs a Postgres server (DATABASE_URL or TEST_DATABASE_URL)';

t.test('readyz turns 503 when the database goes away and recovers when it comes back', { skip: needsPostgres }, async (t) => {
  const { storage, proxy } = await databaseBehindProxy(t);
  const { app } = await buildTestApp(t, { storage });

  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready while the database is there');

  await proxy.stop();
  const down = await app.inject('/readyz');
  t.equal(down.statusCode, 503, 'unavailable once it is gone');
  t.match(down.json(), { status: 'unavailable', checks: { database: 'unreachable' } });
  t.equal((await app.inject('/healthz')).statusCode, 200, 'the process itself is still alive');

  await proxy.restore();
  // the pool reconnects on its own: wait for that, however long a busy machine makes it take
  await eventually(async () => (await app.inject('/readyz')).statusCode === 200, { what: '/readyz 200 again', intervalMs: 100 });
  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready again once it is back');
});
