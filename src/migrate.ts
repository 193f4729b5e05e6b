// `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database in DATA_DIR) and exits.
import { parseConfig } from './config.js';
import { openStorage, waitForDatabase } from './storage/db.js';
import { migrate } from './storage/migrator.js';
import { exitOnStartupFailure } from './startup.js';

try {
  const config = parseConfig(process.env);
  const storage = await openStorage(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: config.dataDir });
  try {
    await waitForDatabase(storage, {
      timeoutSeconds: config.databaseConnectTimeout,
      onRetry: (message, delayMs) => process.stderr.write(`${message}; retrying in ${Math.ceil(delayMs / 1000)} s\n`),
    });
    const applied = await migrate(storage.db);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await storage.close();
  }
} catch (err) {
  exitOnStartupFailure(err);
}
