// The OpenID Provider for downstream apps, under /oauth2: authorization, token, revocation, introspection,
// UserInfo and RP-initiated logout. RFC 6749 requests are form-encoded (@fastify/formbody, in this scope only);
// CORS for public clients is in src/http/cors.ts.
import formbody from '@fastify/formbody';
import type { App } from '../context.js';
import { authorizeRoutes } from './authorize-routes.js';
import { logoutRoutes } from './logout-routes.js';
import { tokenInfoRoutes } from './token-info-routes.js';
import { tokenRoutes } from './token-routes.js';

export async function oauthRoutes(app: App): Promise<void> {
  // RFC 6749 sections 3.1, 3.2: form-encoded requests; nothing else is parsed here
  app.removeAllContentTypeParsers();
  await app.register(formbody);
  await app.register(authorizeRoutes);
  await app.register(tokenRoutes);
  await app.register(tokenInfoRoutes);
  await app.register(logoutRoutes);
}
