// The admin API: users, identities, sessions, signing keys, audit log, OAuth clients. Every route is rate limited per client
// IP (RATE_LIMIT_ADMIN) before anything else runs, then authenticated (auth.ts) before its body is parsed.
import type { App } from '../context.js';
import { auditRoutes } from './audit-log.js';
import { adminAuthenticator } from './auth.js';
import { clientRoutes } from './clients.js';
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
  // preParsing: after the route's rate limit (onRequest), before the body is read or validated
  app.addHook('preParsing', async (request, _reply, payload) => {
    request.adminActor = await authenticate(request);
    return payload;
  });
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
  });
  await app.register(userRoutes);
  await app.register(keyRoutes);
  await app.register(auditRoutes);
  await app.register(clientRoutes);
}
