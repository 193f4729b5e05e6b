// Security headers for every response, set in one place (an onRequest hook, so 404s, 429s and error answers get
// them too), with the header values helmet computes. The default policy suits what almost every route answers,
// JSON: a CSP that loads nothing, no framing, no sniffing, no referrer. An HTML page relaxes only what it needs,
// with the route option `helmet: pageHeaders({ ... })`.
//
// helmet's own Fastify plugin builds its middleware again on every request (the CSP parsed anew each time, about
// 5 µs a request); the headers only depend on the options, so they are computed once per route here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { Config } from '../config.js';

type Directives = Record<string, string[]>;

/** Route option `helmet`: what a route changes of the global policy. */
export type RouteHelmet = HelmetOptions;

declare module 'fastify' {
  interface RouteShorthandOptions {
    /** security headers of this route: merged over the global ones (see src/http/security-headers.ts) */
    helmet?: RouteHelmet;
  }
  interface FastifyContextConfig {
    /** the headers the route's `helmet` option comes to, computed once */
    securityHeaders?: Record<string, string>;
  }
}

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

/** The headers helmet sets for `options`, as a plain map (helmet only ever sets headers on the response). */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string | number | string[]) => {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
  });
  return headers;
}

export function registerSecurityHeaders(app: FastifyInstance, config: Pick<Config, 'secureCookies'>): void {
  const global: HelmetOptions = {
    contentSecurityPolicy: { useDefaults: false, directives: BASE_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // RFC 6797: only meaningful over https; on an http PUBLIC_URL (development) it is left out
    strictTransportSecurity: config.secureCookies ? { maxAge: 365 * 24 * 3600, includeSubDomains: false } : false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
  };
  const globalHeaders = helmetHeaders(global);
  app.addHook('onRoute', (route) => {
    if (route.helmet) {
      route.config = { ...route.config, securityHeaders: helmetHeaders({ ...global, ...route.helmet } as HelmetOptions) };
    }
  });
  app.addHook('onRequest', (request, reply, done) => {
    void reply.headers(request.routeOptions.config.securityHeaders ?? globalHeaders);
    done();
  });
}

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
