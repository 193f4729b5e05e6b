// Two gateway processes on one Postgres database: a login started on one finishes on the other, refresh works
// on either, reuse is detected across them, and a key rotation is seen by both.
import { decodeProtectedHeader } from 'jose';
import t from 'tap';
import { TEST_SECRET } from './helpers/app.js';
import { createPostgresDatabase, postgresUrl } from './helpers/db.js';
import { freePort, startGateway } from './helpers/process.js';
import { startUpstreamOidc } from './helpers/upstream-oidc.js';
import { eventually } from './helpers/wait.js';

const PUBLIC_URL = 'http://localhost:3000'; // what the load balancer in front of both would be

t.test('two instances, one database', { skip: postgresUrl ? false : 'needs Postgres (DATABASE_URL or TEST_DATABASE_URL)' }, async (t) => {
  const databaseUrl = await createPostgresDatabase(t);
  const upstream = await startUpstreamOidc({ redirectUris: [`${PUBLIC_URL}/auth/corp/callback`] });
  t.teardown(() => upstream.close());
  const env = {
    DATABASE_URL: databaseUrl,
    SECRET_KEY: TEST_SECRET,
    PUBLIC_URL,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AUTH_PROVIDERS: 'corp',
    PROVIDER_CORP_ISSUER: upstream.issuer,
    PROVIDER_CORP_CLIENT_ID: upstream.clientId,
    PROVIDER_CORP_CLIENT_SECRET: upstream.clientSecret!,
    JWKS_MAX_AGE: '1',
    KEY_CHECK_INTERVAL: '1',
    KEY_ROTATION_INTERVAL: '3600',
  };
  const [portA, portB] = [await freePort(), await freePort()];
  const a = startGateway({ ...env, PORT: String(portA) });
  const b = startGateway({ ...env, PORT: String(portB) });
  t.teardown(async () => {
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
  });
  const A = `http://127.0.0.1:${portA}`;
  const B = `http://127.0.0.1:${portB}`;
  await Promise.all([a.answers(`${A}/readyz`), b.answers(`${B}/readyz`)]);

  const jwks = async (base: string) =>
    ((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  const [kidsA, kidsB] = [await jwks(A), await jwks(B)];
  t.equal(kidsA.length, 1, 'two concurrent first starts made one key');
  t.same(kidsB, kidsA, 'both publish it');

  // the login starts on A and comes back through B
  const login = await fetch(`${A}/auth/corp/login?return_to=/app`, { redirect: 'manual' });
  t.equal(login.status, 302);
  const flowCookie = login.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const callback = await upstream.followLogin(login.headers.get('location')!);
  const done = await fetch(`${B}${callback.pathname}${callback.search}`, { redirect: 'manual', headers: { cookie: flowCookie } });
  t.equal(done.status, 302);
  t.equal(done.headers.get('location'), `${PUBLIC_URL}/app`);
  const session = done.headers
    .getSetCookie()
    .find((c) => c.startsWith('gw_session='))!
    .split(';')[0];

  const refresh = (base: string, cookie: string) => fetch(`${base}/auth/refresh`, { method: 'POST', headers: { cookie } });
  const onA = await refresh(A, session);
  t.equal(onA.status, 200, 'refresh on A with the cookie B set');
  const rotated = onA.headers
    .getSetCookie()
    .find((c) => c.startsWith('gw_session='))!
    .split(';')[0];
  const { access_token } = (await onA.json()) as { access_token: string };
  t.equal(
    (await fetch(`${B}/auth/userinfo`, { headers: { authorization: `Bearer ${access_token}` } })).status,
    200,
    'A’s token accepted by B',
  );
  t.equal((await refresh(B, rotated)).status, 200, 'refresh on B');

  const replay = await refresh(B, session);
  t.equal(replay.status, 401, 'the token A rotated, replayed on B, is detected');
  t.equal(
    (await fetch(`${A}/auth/userinfo`, { headers: { authorization: `Bearer ${access_token}` } })).status,
    401,
    'and the session is gone on A too',
  );

  // A rotation made through the database is picked up by each instance at its own next key check
  // (KEY_CHECK_INTERVAL=1 s, a timer in each process): every step below waits for the instance in question to
  // show it, however late its timer fires on a busy machine, instead of assuming one check is enough.
  const { openStorage } = await import('../src/storage/db.js');
  const storage = await openStorage({ databaseUrl, poolSize: 1 });
  t.teardown(() => storage.close());
  await storage.db
    .updateTable('signing_keys')
    .set({ activated_at: new Date(Date.now() - 7200 * 1000) })
    .where('state', '=', 'active')
    .execute();
  const kids = await eventually(
    async () => {
      const k = await jwks(A);
      return k.length === 2 ? k : undefined;
    },
    { what: 'A to publish a next key once the active one is due' },
  );
  t.equal(kids.length, 2, 'a next key is published once the active one is due');
  const newKid = kids.find((k) => k !== kidsA[0])!;
  let onB: string[] = [];
  await eventually(async () => (onB = await jwks(B)).length === 2, { what: () => `B to publish the next key (B: ${onB.join()})` });
  t.same(onB.sort(), kids.sort(), 'both publish it');
  // after one JWKS cache period (1 s) it signs, on both
  const signer = async (base: string) => {
    const l = await fetch(`${base}/auth/corp/login`, { redirect: 'manual' });
    const cb = await upstream.followLogin(l.headers.get('location')!);
    const r = await fetch(`${base}${cb.pathname}${cb.search}`, {
      redirect: 'manual',
      headers: {
        cookie: l.headers
          .getSetCookie()
          .map((c) => c.split(';')[0])
          .join('; '),
      },
    });
    const cookie = r.headers
      .getSetCookie()
      .find((c) => c.startsWith('gw_session='))!
      .split(';')[0];
    // the session cookie holds an opaque refresh token: the access token it refreshes into names the key
    const refreshed = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { cookie } });
    return decodeProtectedHeader(((await refreshed.json()) as { access_token: string }).access_token).kid;
  };
  for (const [name, base] of [
    ['A', A],
    ['B', B],
  ]) {
    let kid: string | undefined;
    await eventually(async () => (kid = await signer(base)) === newKid, {
      what: () => `${name} to sign with the new key ${newKid} (it signed with ${kid})`,
      intervalMs: 200,
    });
    t.equal(kid, newKid, `${name} signs with the new key`);
  }
  const states = await storage.db.selectFrom('signing_keys').select(['state']).execute();
  t.same(states.map((s) => s.state).sort(), ['active', 'retired'], 'one active key, the old one retired');
});
