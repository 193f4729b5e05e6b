// Each test owns its database: a fresh Postgres database when DATABASE_URL or TEST_DATABASE_URL is set, an
// in-memory PGlite otherwise. Both are migrated before use and dropped (or emptied) when the test ends.
import { randomBytes } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import tap, { type Test } from 'tap';
import { embeddedStorage, openStorage, type Storage } from '../../src/storage/db.js';
import { PGlitePool } from '../../src/storage/pglite-pool.js';
import { migrate } from '../../src/storage/migrator.js';
import { templateBlob } from './pglite-template.js';
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

/** A freshly migrated database that only this test uses. */
export async function testDatabase(t: Test, options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  let url: string | undefined;
  let storage: Storage;
  if (postgresUrl) {
    url = await reusedPostgresDatabase();
    storage = await openStorage({ databaseUrl: url, poolSize: 5 });
    const close = storage.close.bind(storage);
    let closed = false;
    const give = url;
    storage.close = async () => {
      if (closed) return;
      closed = true;
      await close();
      idlePostgres.push(give);
    };
  } else {
    storage = await reusedEmbeddedStorage();
  }
  t.teardown(() => storage.close());
  if (options.migrate !== false) await migrate(storage.db);
  return { storage, url };
}

// Creating and dropping a Postgres database costs the server about a second (it copies template1 and syncs it to
// disk), more than most tests take, and a run has hundreds of tests. A test file therefore reuses the databases of
// its earlier tests, as it does its PGlite instances: when a test's storage is closed, the database goes back to
// an idle list, and the next test gets it emptied (other sessions on it ended, the public schema dropped and
// created again, database-level settings reset). The databases are dropped when the test file ends.
// createPostgresDatabase (a database a test hands to a process of its own) always makes a new one.
const idlePostgres: string[] = [];
const createdPostgres: string[] = [];

async function reusedPostgresDatabase(): Promise<string> {
  while (idlePostgres.length) {
    const url = idlePostgres.pop()!;
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
      );
      await c.query('select pg_advisory_unlock_all()');
      await c.query(
        `drop schema public cascade; create schema public authorization pg_database_owner; grant usage, create on schema public to public`,
      );
      await c.query(`alter database ${new URL(url).pathname.slice(1)} reset all`);
      const left = await c.query<{ n: number }>(
        `select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public'`,
      );
      if (left.rows[0]?.n === 0) return url;
    } catch {
      // not reusable: the next one, or a new database
    } finally {
      await c.end().catch(() => {});
    }
  }
  const name = `gw_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  if (!createdPostgres.length) {
    tap.teardown(async () => {
      const c = new pg.Client({ connectionString: postgresUrl });
      await c.connect();
      for (const db of createdPostgres) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await c.end();
    });
  }
  createdPostgres.push(name);
  const url = new URL(postgresUrl!);
  url.pathname = `/${name}`;
  return url.href;
}

// Starting an in-memory PGlite costs one to several seconds of CPU (the WebAssembly Postgres boots and runs
// initdb), more than most tests take. A new instance boots from the initdb template (pglite-template.ts), and a
// test file reuses its instances: when a test's storage is
// closed, its instance goes back to an idle list, and the next test gets it emptied: the public schema dropped
// and created again (every table with its rows, indexes and sequences, every type and function, the migration
// records), an open transaction rolled back and session advisory locks released. An instance that cannot be
// emptied is thrown away. A test that needs two databases at once gets two instances.
// (Not DISCARD ALL: it resets PGlite's search_path to its boot value, pg_catalog.)
const idle: PGlite[] = [];

/** The closed-database behaviour of PGlitePool, but the instance is handed back instead of being shut down. */
class ReusablePool extends PGlitePool {
  #closed = false;

  override async connect(): ReturnType<PGlitePool['connect']> {
    if (this.#closed) throw new Error('the embedded database is closed');
    return super.connect();
  }

  override async end(): Promise<void> {
    if (this.#closed) return;
    (await super.connect()).release(); // waits for the current holder (a transaction) to finish
    this.#closed = true;
    if (idle.length < 2) idle.push(this.pglite);
    else await this.pglite.close();
  }
}

async function emptied(pglite: PGlite): Promise<PGlite | undefined> {
  try {
    await pglite.exec('rollback'); // a transaction a failed test left open (only a warning when there is none)
    await pglite.exec('select pg_advisory_unlock_all(); drop schema public cascade; create schema public;');
    const left = await pglite.query<{ n: number }>(
      `select count(*)::int as n from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public'`,
    );
    const path = await pglite.query<{ schemas: string[] }>('select current_schemas(false) as schemas');
    if (left.rows[0]?.n !== 0 || path.rows[0]?.schemas.join() !== 'public') throw new Error('not empty');
    return pglite;
  } catch {
    await pglite.close().catch(() => {});
    return undefined;
  }
}

async function reusedEmbeddedStorage(): Promise<Storage> {
  let pglite: PGlite | undefined;
  while (!pglite && idle.length) pglite = await emptied(idle.pop()!);
  if (!pglite) {
    const { PGlite } = await import('@electric-sql/pglite');
    pglite = await PGlite.create({ loadDataDir: await templateBlob() });
  }
  // what openStorage's embedded branch returns, over the reused instance
  return embeddedStorage(new ReusablePool(pglite), 'an in-memory embedded database');
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
