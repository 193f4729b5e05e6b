// Each test file owns its database: a fresh Postgres database when DATABASE_URL or TEST_DATABASE_URL is set,
// an in-memory PGlite otherwise. Both are migrated before use and dropped when the test file ends.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';
import { openStorage, type Storage } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrator.js';
import { TcpProxy } from './tcp-proxy.js';

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

/**
 * A freshly migrated Postgres database reached through a TCP proxy the test can cut (`proxy.stop()`) and restore,
 * to make the database go away and come back. Postgres only.
 */
export async function databaseBehindProxy(t: Test): Promise<{ storage: Storage; proxy: TcpProxy }> {
  const { url } = await testDatabase(t);
  if (!url) throw new Error('databaseBehindProxy needs Postgres');
  const target = new URL(url);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
  t.teardown(() => proxy.stop());
  const viaProxy = new URL(url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  const storage = await openStorage({ databaseUrl: viaProxy.href, poolSize: 4, connectTimeoutMs: 1000 });
  t.teardown(() => storage.close());
  return { storage, proxy };
}
