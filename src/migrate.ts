// `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database in DATA_DIR) and exits.
import { ConfigError, parseConfig } from './config.js';
import { openStorage } from './storage/db.js';
import { migrate } from './storage/migrator.js';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const storage = await openStorage(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: config.dataDir });
  try {
    const applied = await migrate(storage.db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await storage.close();
  }
}

main().catch((err) => {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exit(1);
});
