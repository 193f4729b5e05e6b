// Lets kysely's own PostgresDialect drive an embedded PGlite database: PGlite is one connection, so the
// "pool" hands it out to one holder at a time (a transaction keeps it until commit or rollback).
import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

const DML = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

export class PGlitePool implements PostgresPool {
  #tail: Promise<void> = Promise.resolve();
  #ended = false;

  constructor(readonly pglite: PGlite) {}

  async connect(): Promise<PostgresPoolClient> {
    if (this.#ended) throw new Error('the embedded database is closed');
    let release!: () => void;
    const turn = new Promise<void>((r) => (release = r));
    const before = this.#tail;
    this.#tail = before.then(() => turn);
    await before;
    const pglite = this.pglite;
    let released = false;
    const client = {
      async query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
        if (parameters.length === 0 && /;\s*\S/.test(sql)) {
          // several statements (a migration file) need the simple query protocol
          const results = await pglite.exec(sql);
          const last = results[results.length - 1];
          return { command: 'SELECT', rowCount: last?.affectedRows ?? 0, rows: (last?.rows ?? []) as R[] };
        }
        const result = await pglite.query<R>(sql, parameters as unknown[]);
        let command = (/^\s*(\w+)/.exec(sql)?.[1] ?? '').toUpperCase() as PostgresQueryResult<R>['command'];
        // a data-modifying CTE ("with ... update ...") still reports its affected rows
        if (!DML.has(command) && result.affectedRows !== undefined && result.affectedRows > 0) command = 'UPDATE';
        return { command, rowCount: result.affectedRows ?? result.rows.length, rows: result.rows };
      },
      release() {
        if (released) return;
        released = true;
        release();
      },
    };
    return client as PostgresPoolClient;
  }

  async end(): Promise<void> {
    this.#ended = true;
    await this.#tail;
    await this.pglite.close();
  }
}
