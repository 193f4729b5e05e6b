import { readdirSync } from 'node:fs';
import { sql } from 'kysely';
import t from 'tap';
import { openStorage } from '../../src/storage/db.js';
import { defaultMigrationsDir, migrate } from '../../src/storage/migrator.js';
import { testDatabase } from '../helpers/db.js';

const TABLES = [
  'audit_events',
  'authorization_codes',
  'authorization_requests',
  'clients',
  'identities',
  'login_flows',
  'revoked_access_tokens',
  'sessions',
  'signing_keys',
  'users',
];
const ALL = readdirSync(defaultMigrationsDir())
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));

t.test('migrations create every table and are idempotent', async (t) => {
  const { storage } = await testDatabase(t, { migrate: false });
  const first = await migrate(storage.db);
  t.ok(first.includes('0001_initial'), 'first run applies the initial migration');
  const second = await migrate(storage.db);
  t.same(second, [], 'second run applies nothing');
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'kysely_%'
    order by table_name`.execute(storage.db);
  t.same(
    tables.rows.map((r) => r.table_name),
    TABLES,
  );
});

t.test('constraints: one identity per provider subject, one active key', async (t) => {
  const { storage } = await testDatabase(t);
  const db = storage.db;
  const userId = crypto.randomUUID();
  await db.insertInto('users').values({ id: userId, email: 'a@example.com', name: 'A', picture: null }).execute();
  const identity = {
    user_id: userId,
    provider: 'corp',
    subject: 's1',
    email: null,
    name: null,
    picture: null,
    raw_claims: '{}',
  };
  await db
    .insertInto('identities')
    .values({ id: crypto.randomUUID(), ...identity })
    .execute();
  await t.rejects(
    db
      .insertInto('identities')
      .values({ id: crypto.randomUUID(), ...identity })
      .execute(),
    /unique|duplicate/i,
  );

  const key = (kid: string) => ({
    kid,
    alg: 'ES256',
    state: 'active' as const,
    public_jwk: '{}',
    private_jwk_enc: 'x',
    activate_at: new Date(),
  });
  await db.insertInto('signing_keys').values(key('k1')).execute();
  await t.rejects(db.insertInto('signing_keys').values(key('k2')).execute(), /unique|duplicate/i);

  await db.deleteFrom('users').where('id', '=', userId).execute();
  const left = await db.selectFrom('identities').select('id').execute();
  t.same(left, [], 'identities go with their user');
});

t.test('two instances migrating one database at once', async (t) => {
  const { storage, url } = await testDatabase(t, { migrate: false });
  if (!url) {
    // PGlite is one process's embedded database: there is no second instance to race with
    const results = await Promise.all([migrate(storage.db), migrate(storage.db)]);
    t.same(results.flat(), ALL, 'applied exactly once');
    return;
  }
  const others = await Promise.all([1, 2, 3].map(() => openStorage({ databaseUrl: url, poolSize: 2 })));
  t.teardown(() => Promise.all(others.map((s) => s.close())));
  const results = await Promise.all([storage, ...others].map((s) => migrate(s.db)));
  t.same(results.flat(), ALL, 'exactly one instance applied each, none failed');
});
