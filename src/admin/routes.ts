// The admin API: users, identities, sessions, signing keys, audit log. Every route is rate limited per client
// IP (RATE_LIMIT_ADMIN) before anything else runs, then authenticated (auth.ts) before its body is parsed.
import type { App } from '../context.js';
import { invalidRequest } from '../errors.js';
import { findNul } from '../http/nul.js';
import { NO_QUERY } from '../http/validation.js';
import { auditRoutes } from './audit-log.js';
import { adminAuthenticator } from './auth.js';
import { keyRoutes } from './keys.js';
import { userRoutes } from './users.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** on admin routes: who is calling, for the audit log ("admin-token" or "user:<id>") */
    adminActor: string;
  }
}

export async function adminRoutes(app: App): Promise<void> {
  const authenticate = adminAuthenticator(app.ctx);
  app.decorateRequest('adminActor', '');
  // a route without query parameters refuses any: a typo or a guessed filter is an error, not silently ignored
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, querystring: route.schema?.querystring ?? NO_QUERY };
  });
  // preParsing: after the route's rate limit (onRequest), before the body is read or validated
  app.addHook('preParsing', async (request, _reply, payload) => {
    request.adminActor = await authenticate(request);
    return payload;
  });
  // U+0000 cannot be stored by Postgres: refused by name here, before it could fail deep inside a query as a 500
  app.addHook('preValidation', async (request) => {
    const parts = [
      ['query parameter', request.query],
      ['path parameter', request.params],
      ['body field', request.body],
    ] as const;
    for (const [kind, value] of parts) {
      const at = findNul(value);
      if (at === undefined) continue;
      throw invalidRequest(`${at ? `${kind} "${at}"` : 'the body'} must not contain a NUL character (U+0000).`);
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
  });
  await app.register(userRoutes);
  await app.register(keyRoutes);
  await app.register(auditRoutes);
}
