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

  const storage = await openStorage(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: join(config.dataDir) });
  const applied = await migrate(storage.db);
  log.info({ database: storage.kind, applied }, 'database ready');

  const app = buildApp(config, { storage, logger: log });
  await app.listen({ port: config.port, host: config.host });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(
      () => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      },
      (config.shutdownDelay + 10) * 1000,
    );
    force.unref();
    try {
      // readiness answers 503 from now on while everything else is still served, so a load balancer drains us
      app.ctx.draining = true;
      if (config.shutdownDelay > 0) {
        log.info({ signal, seconds: config.shutdownDelay }, 'draining: readiness is 503 until the listener closes');
        await new Promise((r) => setTimeout(r, config.shutdownDelay * 1000));
      }
      log.info({ signal }, 'shutting down: finishing in-flight requests');
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
  // a configuration problem found once the database is open (a CLIENTS_FILE client_id taken): no stack trace
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
