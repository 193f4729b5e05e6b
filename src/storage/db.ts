// The storage handle: kysely over pg (DATABASE_URL) or over the embedded PGlite (DATA_DIR/pgdata, or memory).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ensureWritableDir, StartupError } from '../startup.js';
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
  /** where the data lives, for messages: "Postgres at db.internal:5432" (never a password) */
  location: string;
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
      location: `Postgres at ${postgresAddress(options.databaseUrl)}`,
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
    await ensureWritableDir(options.pgliteDir, 'DATA_DIR');
    dataDir = join(options.pgliteDir, 'pgdata');
  }
  const pglite = await PGlite.create(dataDir);
  return embeddedStorage(new PGlitePool(pglite), dataDir ? `the embedded database in ${dataDir}` : 'an in-memory embedded database');
}

/** Storage over an embedded database's pool (exported for the tests, which reuse PGlite instances). */
export function embeddedStorage(pool: PGlitePool, location: string): Storage {
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: 'pglite',
    location,
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

/** host:port of a postgres:// URL (a `host` query parameter, such as a socket directory, wins), without credentials */
function postgresAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.searchParams.get('host') ?? (u.hostname || 'localhost')}:${u.port || '5432'}`;
  } catch {
    return 'the DATABASE_URL host';
  }
}

/** Why a connection failed, in pg's or Node's words (an AggregateError of every address tried has no message). */
function connectionReason(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: unknown[] };
  if (e.message) return e.message;
  if (e.errors?.length) return connectionReason(e.errors[0]);
  return e.code ?? String(err);
}

/** SQLSTATEs that retrying does not cure: a refused password or role (class 28), a database that does not exist */
const PERMANENT = (code: string | undefined) => code !== undefined && (code.startsWith('28') || code === '3D000');

export interface WaitOptions {
  /** give up after this many seconds of failed tries; 0 tries once */
  timeoutSeconds: number;
  /** told of every failed try that will be retried, and how long until the next one */
  onRetry?(message: string, delayMs: number): void;
}

/**
 * Resolves once the database answers. While it cannot be reached (not up yet, a DNS name not yet published), tries
 * again with exponential backoff (0.25 s, 0.5 s, … up to 5 s) until `timeoutSeconds` have passed, then throws a
 * StartupError "cannot connect to Postgres at host:port: reason".
 */
export async function waitForDatabase(storage: Storage, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      await storage.ping(15_000);
      return;
    } catch (err) {
      const message = `cannot connect to ${storage.location}: ${connectionReason(err)}`;
      const remaining = deadline - Date.now();
      if (PERMANENT((err as { code?: string }).code)) throw new StartupError(message, { cause: err });
      if (remaining <= 0) {
        throw new StartupError(
          options.timeoutSeconds > 0
            ? `${message} (gave up after ${options.timeoutSeconds} s of retries; DATABASE_CONNECT_TIMEOUT sets how long)`
            : message,
          { cause: err },
        );
      }
      const delay = Math.min(5000, 250 * 2 ** attempt, remaining);
      options.onRetry?.(message, delay);
      await sleep(delay);
    }
  }
}
