// The process: configuration → database → migrations → app → listen; graceful shutdown on SIGTERM/SIGINT.
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { loggerOptions } from './logger.js';
import { openStorage } from './storage/db.js';
import { migrate } from './storage/migrator.js';

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = await loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = pino(loggerOptions(config.logLevel));
  for (const w of warnings) log.warn(w);

  const storage = await openStorage(
    config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: join(config.dataDir) },
  );
  const applied = await migrate(storage.db);
  log.info({ database: storage.kind, applied }, 'database ready');

  const app = buildApp(config, { storage, logger: log });
  await app.listen({ port: config.port, host: config.host });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    try {
      await app.close(); // stops accepting, waits for in-flight requests, runs onClose hooks
      await storage.close();
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
