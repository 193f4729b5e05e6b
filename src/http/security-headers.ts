// Security headers for every response, set in one place by @fastify/helmet (an onRequest hook, so 404s, 429s
// and error answers get them too). The default policy suits what almost every route answers, JSON: a CSP that
// loads nothing, no framing, no sniffing, no referrer. An HTML page relaxes only what it needs, with the
// route option `helmet: pageHeaders({ ... })`.
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

type Directives = Record<string, string[]>;

/**
 * The policy of a response that is not meant to load anything. `frame-ancestors 'none'` (CSP Level 2) and
 * X-Frame-Options DENY (RFC 7034, for browsers without CSP 2) refuse framing: no clickjacking of a page.
 */
const BASE_DIRECTIVES: Directives = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};

export function registerSecurityHeaders(app: FastifyInstance, config: Pick<Config, 'secureCookies'>): void {
  void app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: BASE_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // RFC 6797: only meaningful over https; on an http PUBLIC_URL (development) it is left out
    strictTransportSecurity: config.secureCookies ? { maxAge: 365 * 24 * 3600, includeSubDomains: false } : false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
}

type RouteHelmet = Omit<FastifyHelmetOptions, 'global'>;

/**
 * Route option (`helmet:`) for an HTML page: the base policy plus the sources the page needs, e.g.
 * `{ 'script-src': ["'self'"] }`. Framing stays refused whatever the page adds. The other headers are the
 * global ones (a route's options are merged over them).
 */
export function pageHeaders(sources: Directives): RouteHelmet {
  return { contentSecurityPolicy: { useDefaults: false, directives: { ...BASE_DIRECTIVES, ...sources, 'frame-ancestors': ["'none'"] } } };
}

/** Route option (`helmet:`) for public documents any origin may read (JWKS, discovery): CORP cross-origin. */
export const publicDocumentHeaders: RouteHelmet = { crossOriginResourcePolicy: { policy: 'cross-origin' } };
