// Each test file owns its database: a fresh Postgres database when DATABASE_URL or TEST_DATABASE_URL is set,
// an in-memory PGlite otherwise. Both are migrated before use and dropped when the test file ends.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrator.js';

export const postgresUrl: string | undefined = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || undefined;

/** Creates an empty Postgres database and returns its URL; dropped at the end of the test. */
export async function createPostgresDatabase(t: Test, adminUrl = postgresUrl!): Promise<string> {
  const name = `gw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.href;
}

export interface TestDatabase {
  storage: Storage;
  /** the Postgres URL of this database (undefined on PGlite) */
  url: string | undefined;
}

/** A freshly migrated database that only this test file uses. */
export async function testDatabase(t: Test, options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  let url: string | undefined;
  let storage: Storage;
  if (postgresUrl) {
    url = await createPostgresDatabase(t);
    storage = await openStorage({ databaseUrl: url, poolSize: 5 });
  } else {
    storage = await openStorage({ pgliteDir: 'memory' });
  }
  // registered after the database's own teardown, so it runs first (tap runs teardowns in reverse)
  t.teardown(() => storage.close());
  if (options.migrate !== false) await migrate(storage.db);
  return { storage, url };
}
