// Applies migrations/NNNN_name.sql in order with kysely's Migrator, which serialises concurrent runs with a
// Postgres advisory lock, so several instances may start at once.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Kysely, type Migration, type MigrationProvider, type MigrationResultSet, Migrator, sql } from 'kysely';
import { StartupError } from '../startup.js';

/** migrations/ at the repository root, from src/storage (tsx) or dist/src/storage (compiled) */
export function defaultMigrationsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${'/dist/'}`) ? '../../../migrations' : '../../migrations';
  return resolve(here, up);
}

class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(join(this.dir, file), 'utf8');
      migrations[file.replace(/\.sql$/, '')] = {
        // the Migrator runs each migration inside its transaction; one multi-statement query is enough
        up: async (db: Kysely<unknown>) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

export class MigrationError extends StartupError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/** Applies every pending migration; returns the names applied by this call. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: the migrator only runs SQL files
export async function migrate(db: Kysely<any>, dir = defaultMigrationsDir()): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider(dir) });
  const result: MigrationResultSet = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = String((result.error as Error).message ?? result.error);
    throw new MigrationError(failed ? `migration ${failed} failed: ${reason}` : `migrating the database failed: ${reason}`, {
      cause: result.error,
    });
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
