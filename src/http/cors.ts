// CORS, in one place, per route:
// - the gateway's own browser-session endpoints (/auth/refresh, /auth/logout, /auth/userinfo) for the exact
//   ALLOWED_ORIGINS, with credentials (the session cookie);
// - the OpenID Provider's token, revocation and UserInfo endpoints for the origins of public clients' redirect
//   URIs, without credentials (a browser app proves itself with PKCE and its tokens, never with our cookies);
// - nothing for every other route (the JWKS and discovery documents set their own `*`).
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

const SESSION_PATHS = new Set(['/auth/refresh', '/auth/logout', '/auth/userinfo']);
const OAUTH_PATHS = new Set(['/oauth2/token', '/oauth2/revoke', '/oauth2/userinfo']);

export function registerCors(
  app: FastifyInstance,
  config: Pick<Config, 'allowedOrigins'>,
  publicOrigins: () => Promise<Set<string>>,
): void {
  const common = { methods: ['GET', 'POST'], allowedHeaders: ['Authorization', 'Content-Type'], maxAge: 600 };
  void app.register(cors, {
    delegator: (request, callback) => {
      const origin = request.headers.origin;
      const path = (request.url ?? '').split('?')[0];
      if (!origin) return callback(null, { origin: false });
      if (SESSION_PATHS.has(path)) {
        return callback(null, { ...common, credentials: true, origin: config.allowedOrigins.includes(origin) ? origin : false });
      }
      if (!OAUTH_PATHS.has(path)) return callback(null, { origin: false });
      publicOrigins().then(
        (origins) => callback(null, { ...common, credentials: false, origin: origins.has(origin) ? origin : false }),
        (err: Error) => callback(err),
      );
    },
  });
}
