// `npm start` next to real accounts: the demo provider signs anyone in with any name and email, so the launcher
// refuses to run where that would reach real users (production, real providers, a database with users who did
// not come through the demo), its provider only listens on loopback, and it never links to a user by email.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrator.js';
import { createPostgresDatabase, postgresUrl } from '../helpers/db.js';
import { exitOf, freePort, startLauncher, waitFor, waitForOutput } from '../helpers/process.js';

const NO_STACK = /^\s+at .*:\d+:\d+\)?$/m;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-demo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The launcher's database: a fresh Postgres database when the suite runs on Postgres, else DATA_DIR's PGlite. */
async function launcherDatabase(t: Test): Promise<{ env: Record<string, string>; open(): Promise<Storage> }> {
  const dataDir = await tempDir(t);
  if (postgresUrl) {
    const url = await createPostgresDatabase(t);
    return { env: { DATA_DIR: dataDir, DATABASE_URL: url }, open: () => openStorage({ databaseUrl: url, poolSize: 2 }) };
  }
  return { env: { DATA_DIR: dataDir }, open: () => openStorage({ pgliteDir: dataDir }) };
}

async function addUser(storage: Storage, fields: { email: string; name: string; roles?: string[]; providers: string[] }): Promise<string> {
  const id = randomUUID();
  const now = new Date();
  await storage.db
    .insertInto('users')
    .values({
      id,
      email: fields.email,
      email_verified: true,
      name: fields.name,
      picture: null,
      roles: fields.roles ?? [],
      status: 'active',
      created_at: now,
      updated_at: now,
    })
    .execute();
  for (const provider of fields.providers) {
    await storage.db
      .insertInto('identities')
      .values({
        id: randomUUID(),
        user_id: id,
        provider,
        subject: randomUUID(),
        email: fields.email,
        email_verified: true,
        name: fields.name,
        picture: null,
        raw_claims: '{}',
        created_at: now,
        last_login_at: now,
      })
      .execute();
  }
  return id;
}

async function ports(): Promise<Record<string, string>> {
  return { PORT: String(await freePort()), DEMO_PROVIDER_PORT: String(await freePort()), DEMO_APP_PORT: String(await freePort()) };
}

t.test('refuses NODE_ENV=production', async (t) => {
  const { code, output } = await exitOf(startLauncher({ ...(await ports()), NODE_ENV: 'production', DATA_DIR: await tempDir(t) }));
  t.equal(code, 1);
  t.match(output, /npm start refuses to run: NODE_ENV=production/);
  t.match(output, /npm run gateway/);
  t.notMatch(output, NO_STACK, 'no stack trace');
  t.notMatch(output, /open http/);
});

t.test('refuses real providers next to the demo one', async (t) => {
  const { code, output } = await exitOf(
    startLauncher({
      ...(await ports()),
      DATA_DIR: await tempDir(t),
      AUTH_PROVIDERS: 'google',
      PROVIDER_GOOGLE_CLIENT_ID: 'id',
      PROVIDER_GOOGLE_CLIENT_SECRET: 'secret',
    }),
  );
  t.equal(code, 1);
  t.match(output, /npm start refuses to run: AUTH_PROVIDERS configures real providers \(google\)/);
  t.match(output, /npm run gateway/);
  t.notMatch(output, NO_STACK, 'no stack trace');
});

t.test('refuses a database holding users who did not sign in through the demo', async (t) => {
  const database = await launcherDatabase(t);
  const storage = await database.open();
  await migrate(storage.db);
  await addUser(storage, { email: 'demo@example.com', name: 'Demo', providers: ['demo'] });
  await addUser(storage, { email: 'ada@example.com', name: 'Ada', roles: ['admin'], providers: ['google', 'demo'] });
  await addUser(storage, { email: 'bob@example.com', name: 'Bob', providers: ['corp'] });
  await storage.close();

  const { code, output } = await exitOf(startLauncher({ ...(await ports()), ...database.env }));
  t.equal(code, 1);
  t.match(
    output,
    /npm start refuses to run: the database .* holds 2 users who did not sign in through the demo \(identities at corp, google\)/,
  );
  t.match(output, /npm run gateway/);
  t.notMatch(output, /ada@example\.com|bob@example\.com/, 'no personal data on the terminal');
  t.notMatch(output, NO_STACK, 'no stack trace');
  t.notMatch(output, /open http/);

  const after = await database.open();
  t.teardown(() => after.close());
  const names = (await after.db.selectFrom('users').select('name').orderBy('name').execute()).map((u) => u.name);
  t.same(names, ['Ada', 'Bob', 'Demo'], 'nothing changed');
});

/** A browser without JavaScript: follows redirects by hand, one cookie jar per origin. */
async function signInThroughDemo(gateway: string, account: { name: string; email: string }): Promise<Response> {
  const jars = new Map<string, Map<string, string>>();
  let url = new URL(`${gateway}/auth/demo/login?return_to=/`);
  let init: RequestInit = {};
  for (let hop = 0; hop < 20; hop++) {
    const jar = jars.get(url.origin) ?? new Map<string, string>();
    jars.set(url.origin, jar);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as object), ...(cookie ? { cookie } : {}) } });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (pair.slice(eq + 1).trim() === '') jar.delete(pair.slice(0, eq).trim());
      else jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    init = {};
    const location = res.headers.get('location');
    if (url.origin === gateway && url.pathname === '/auth/demo/callback') return res;
    if (res.status === 200 && url.pathname.startsWith('/interaction/')) {
      // the sign-in form
      await res.text();
      init = {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ name: account.name, email: account.email, action: 'login' }).toString(),
      };
      continue;
    }
    const body = await res.text();
    if (!location) throw new Error(`${res.status} at ${url.href}: ${body.slice(0, 300)}`);
    url = new URL(location, url);
  }
  throw new Error('too many redirects');
}

t.test(
  'the demo provider never links to an existing user by email, and listens on loopback only',
  { skip: postgresUrl ? false : 'needs Postgres: a user is added while the launcher holds the database' },
  async (t) => {
    const database = await launcherDatabase(t);
    const env = await ports();
    const launcher = startLauncher({ ...env, ...database.env, LOG_LEVEL: 'warn' });
    t.teardown(async () => {
      launcher.child.kill('SIGTERM');
      await exitOf(launcher);
    });
    await waitForOutput(launcher, /open http:\/\/localhost:\d+\/ to sign in/);
    await waitFor(`http://127.0.0.1:${env.PORT}/readyz`);

    // a real account that appears after start-up (another instance, an import): an admin with a verified email
    const storage = await database.open();
    t.teardown(() => storage.close());
    const victim = await addUser(storage, { email: 'victim@example.com', name: 'Victim', roles: ['admin'], providers: ['google'] });

    const callback = await signInThroughDemo(`http://localhost:${env.PORT}`, { name: 'Mallory', email: 'victim@example.com' });
    t.equal(callback.status, 302);
    t.notMatch(callback.headers.get('location') ?? '', /error=/, 'the demo login itself succeeds');
    const identity = await storage.db.selectFrom('identities').select('user_id').where('provider', '=', 'demo').executeTakeFirstOrThrow();
    t.not(identity.user_id, victim, 'a new user, not the one with that email');
    const after = await storage.db.selectFrom('users').select(['name', 'roles']).where('id', '=', victim).executeTakeFirstOrThrow();
    t.same(after, { name: 'Victim', roles: ['admin'] }, 'the existing user is untouched');

    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (external) {
      for (const port of [env.DEMO_PROVIDER_PORT, env.DEMO_APP_PORT, env.PORT]) {
        const result = await new Promise<string>((resolve) => {
          const s = connect(Number(port), external);
          s.once('connect', () => {
            s.destroy();
            resolve('connected');
          });
          s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        });
        t.equal(result, 'ECONNREFUSED', `nothing answers on ${external}:${port}`);
      }
    }
  },
);
