// The storage handle: kysely over pg (DATABASE_URL) or over the embedded PGlite (DATA_DIR/pgdata, or memory).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { PGlitePool } from './pglite-pool.js';

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

/** A statement the hot paths run as a named prepared statement: Postgres parses and plans it once per connection. */
export interface PreparedStatement {
  name: string;
  text: string;
}

export interface Storage {
  kind: 'postgres' | 'pglite';
  db: Kysely<Database>;
  /** Runs one prepared statement outside any transaction and returns its rows. */
  prepared<R>(statement: PreparedStatement, values: unknown[]): Promise<R[]>;
  /** Resolves when the database answers a trivial query within timeoutMs, rejects otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

export type StorageOptions = { databaseUrl: string; poolSize?: number; connectTimeoutMs?: number } | { pgliteDir: string | 'memory' };

export async function openStorage(options: StorageOptions): Promise<Storage> {
  if ('databaseUrl' in options) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
    });
    // An idle client that loses its server emits 'error' on the pool; without a listener that crashes the process.
    // A client that is checked out (kysely holds it between queries of a transaction) has no listener
    // either: its next query fails on its own, so the event itself is only swallowed.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return {
      kind: 'postgres',
      db,
      prepared: async <R>(st: PreparedStatement, values: unknown[]) =>
        (await pool.query<R & pg.QueryResultRow>({ name: st.name, text: st.text, values })).rows,
      ping: (timeoutMs = 2000) =>
        withTimeout(
          sql`select 1`.execute(db).then(() => undefined),
          timeoutMs,
        ),
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      close: () => db.destroy(),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  let dataDir: string | undefined;
  if (options.pgliteDir !== 'memory') {
    await mkdir(options.pgliteDir, { recursive: true });
    dataDir = join(options.pgliteDir, 'pgdata');
  }
  const pglite = await PGlite.create(dataDir);
  const pool = new PGlitePool(pglite);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: 'pglite',
    db,
    prepared: async <R>(st: PreparedStatement, values: unknown[]) => {
      // one holder of the embedded database at a time, as for every other query
      const client = await pool.connect();
      try {
        return (await client.query<R>(st.text, values)).rows;
      } finally {
        client.release();
      }
    },
    ping: (timeoutMs = 2000) =>
      withTimeout(
        sql`select 1`.execute(db).then(() => undefined),
        timeoutMs,
      ),
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    close: () => db.destroy(),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
