// The gateway process's start-up and shutdown, shared by `npm run gateway` (src/server.ts) and `npm start`
// (demo/start.ts): logger → database (retried while it cannot be reached) → migrations → app → listen, and on
// SIGTERM/SIGINT readiness 503, drain, close, exit 0.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { LoadedConfig } from './config.js';
import type { App } from './context.js';
import { createProcessLogger } from './logger.js';
import { openStorage, type Storage, waitForDatabase } from './storage/db.js';
import { migrate } from './storage/migrator.js';
import { StartupError } from './startup.js';

export interface GatewayHooks {
  /** once the database answers, before it is migrated (the demo's check that it holds no real users) */
  beforeMigrate?(storage: Storage, log: Logger): Promise<void>;
  /** after the migrations, before the gateway listens */
  beforeListen?(log: Logger): Promise<void>;
  /** on SIGTERM/SIGINT, after the gateway and its database were closed */
  onStop?(): Promise<void>;
}

export interface RunningGateway {
  app: App;
  log: Logger;
  /** Resolves when /readyz answers 200 (it says once in the log what it is waiting for if that takes a while). */
  ready(): Promise<void>;
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/** server.listen's error, for a port or address the operator chose, as a StartupError; others unchanged. */
export function listenError(err: unknown, where: string, settings: string): unknown {
  const reason = LISTEN_ERRORS[(err as NodeJS.ErrnoException).code ?? ''];
  return reason ? new StartupError(`cannot listen on ${where}: ${reason} (${settings})`, { cause: err }) : err;
}

export async function runGateway(loaded: LoadedConfig, hooks: GatewayHooks = {}): Promise<RunningGateway> {
  const { config, warnings } = loaded;
  const log = await createProcessLogger(config);
  for (const w of warnings) log.warn(w);

  const storage = await openStorage(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: config.dataDir });
  let app: App | undefined;
  try {
    await waitForDatabase(storage, {
      timeoutSeconds: config.databaseConnectTimeout,
      onRetry: (message, delayMs) => log.warn(`${message}; retrying in ${(delayMs / 1000).toFixed(delayMs < 1000 ? 2 : 0)} s`),
    });
    await hooks.beforeMigrate?.(storage, log);
    const applied = await migrate(storage.db);
    log.info({ database: storage.kind, applied }, 'database ready');
    await hooks.beforeListen?.(log);
    app = buildApp(config, { storage, logger: log });
    try {
      await app.listen({ port: config.port, host: config.host });
    } catch (err) {
      throw listenError(err, `${config.host}:${config.port}`, 'PORT, HOST');
    }
  } catch (err) {
    await app?.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw err;
  }
  const running = app;
  handleSignals(running, storage, log, config.shutdownDelay, hooks);
  return { app: running, log, ready: () => untilReady(running, log) };
}

async function untilReady(app: App, log: Logger): Promise<void> {
  const started = Date.now();
  let said = false;
  for (;;) {
    const res = await app.inject({ url: '/readyz' });
    if (res.statusCode === 200) return;
    if (!said && Date.now() - started > 15_000) {
      said = true;
      log.warn({ checks: (res.json() as { checks?: unknown }).checks }, 'started, but not ready yet');
    }
    await sleep(250);
  }
}

function handleSignals(app: App, storage: Storage, log: Logger, shutdownDelay: number, hooks: GatewayHooks): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(
      () => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      },
      (shutdownDelay + 10) * 1000,
    );
    force.unref();
    try {
      // readiness answers 503 from now on while everything else is still served, so a load balancer drains us
      app.ctx.draining = true;
      if (shutdownDelay > 0) {
        log.info({ signal, seconds: shutdownDelay }, 'draining: readiness is 503 until the listener closes');
        await sleep(shutdownDelay * 1000);
      }
      log.info({ signal }, 'shutting down: finishing in-flight requests');
      await app.close(); // stops accepting, waits for in-flight requests, runs onClose hooks
      await storage.close();
      await hooks.onStop?.();
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
