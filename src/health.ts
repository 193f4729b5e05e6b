// Liveness and readiness.
import { Type } from '@sinclair/typebox';
import type { App } from './context.js';
import { invalidToken, missingToken } from './errors.js';
import { bearerToken, presentsBearer, secretMatches } from './http/bearer.js';

const Health = Type.Object({ status: Type.Literal('ok') });
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Record(Type.String(), Type.String()),
});

export async function healthRoutes(app: App): Promise<void> {
  app.get('/healthz', { schema: { response: { 200: Health } } }, async (_req, reply) => {
    void reply.header('cache-control', 'no-store');
    return { status: 'ok' as const };
  });

  app.get('/readyz', { schema: { response: { 200: Ready, 503: Ready } } }, async (request, reply) => {
    const { storage, readiness } = app.ctx;
    const checks: Record<string, string> = {};
    let ok = true;
    const database = {
      name: 'database',
      check: () =>
        storage.ping(2000).catch(() => {
          throw new Error('unreachable');
        }),
    };
    const all = [database, ...readiness];
    await Promise.all(
      all.map(async (c) => {
        try {
          await c.check();
          checks[c.name] = 'ok';
        } catch (err) {
          ok = false;
          checks[c.name] = (err as Error).message || 'failed';
        }
      }),
    );
    if (!ok) request.log.warn({ checks }, 'not ready');
    void reply.code(ok ? 200 : 503).header('cache-control', 'no-store');
    return { status: ok ? ('ready' as const) : ('unavailable' as const), checks };
  });
}

export async function metricsRoutes(app: App): Promise<void> {
  const { config, metrics } = app.ctx;
  app.get('/metrics', { schema: { response: { 200: Type.String() } } }, async (request, reply) => {
    if (config.metricsToken && !secretMatches(bearerToken(request), config.metricsToken)) {
      if (!presentsBearer(request)) throw missingToken('The metrics token is required.');
      throw invalidToken('A valid metrics token is required.');
    }
    void reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store');
    return metrics.registry.metrics();
  });
}
