// Typed errors with OAuth-style codes, and the one error handler that turns every error into a response.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  /** RFC 7591 section 3.2.2: client registration */
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_grant'
  | 'invalid_token'
  | 'login_required'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'insufficient_scope'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'rate_limited'
  | 'server_error'
  | 'temporarily_unavailable';

export class AppError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly statusCode: number,
    readonly description: string,
    options?: ErrorOptions & { headers?: Record<string, string> },
  ) {
    super(description, options);
    this.name = 'AppError';
    this.headers = options?.headers;
  }
  readonly headers: Record<string, string> | undefined;
}

export const invalidRequest = (description: string) => new AppError('invalid_request', 400, description);
export const invalidGrant = (description: string) => new AppError('invalid_grant', 401, description);
export const notFound = (description: string) => new AppError('not_found', 404, description);
export const conflict = (description: string) => new AppError('conflict', 409, description);
/** The realm of every Bearer challenge (RFC 6750 section 3). */
export const REALM = 'auth-gateway';
const quoted = (s: string) => s.replace(/["\\]/g, "'");

/** A Bearer challenge, with an error code only when one applies (RFC 6750 section 3). */
export function bearerChallenge(error?: string, description?: string): string {
  return `Bearer realm="${REALM}"${error ? `, error="${error}"` : ''}${description ? `, error_description="${quoted(description)}"` : ''}`;
}

/** RFC 6750 section 3.1: a bad bearer token gets 401 with WWW-Authenticate naming error="invalid_token" */
export const invalidToken = (description: string) =>
  new AppError('invalid_token', 401, description, { headers: { 'www-authenticate': bearerChallenge('invalid_token', description) } });

/**
 * RFC 6750 section 3.1: a request without any credentials (or with another scheme than Bearer) "SHOULD NOT
 * include an error code or other error information" in the challenge. The JSON body keeps our code.
 */
export const missingToken = (description: string) =>
  new AppError('invalid_token', 401, description, { headers: { 'www-authenticate': bearerChallenge() } });
/** Why client authentication failed, for audit and metrics (never shown to the client beyond its description). */
export type ClientAuthFailure = 'missing' | 'malformed' | 'unsupported_method' | 'unknown_client' | 'wrong_method' | 'wrong_secret';

/**
 * RFC 6749 section 5.2 invalid_client: 401 with `WWW-Authenticate: Basic realm="…"`. The challenge is a MUST when
 * the client tried Basic; it is sent on every such 401 because RFC 9110 section 15.5.2 asks a 401 to carry one.
 */
export class InvalidClientError extends AppError {
  constructor(
    description: string,
    readonly reason: ClientAuthFailure,
    /** the client_id the request named, if any (unverified) */
    readonly clientId: string | undefined,
    realm: string,
  ) {
    super('invalid_client', 401, description, { headers: { 'www-authenticate': `Basic realm="${realm.replace(/["\\]/g, '')}"` } });
    this.name = 'InvalidClientError';
  }
}
export const unavailable = (description: string, options?: ErrorOptions) =>
  new AppError('temporarily_unavailable', 503, description, { ...options, headers: { 'retry-after': '5' } });

/** The largest request body any route reads (bytes); larger ones get 413. */
export const BODY_LIMIT = 64 * 1024;

export interface ErrorBody {
  error: string;
  error_description: string;
}

/** True for errors that say the database cannot be reached (as opposed to a bad query). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (
    e.code &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P03', '08006', '08001', '08003'].includes(e.code)
  ) {
    return true;
  }
  return /timeout exceeded when trying to connect|Connection terminated|database did not answer|embedded database is closed/i.test(
    e.message ?? '',
  );
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) => {
    let status: number;
    let body: ErrorBody;
    if (err instanceof AppError) {
      status = err.statusCode;
      body = { error: err.error, error_description: err.description };
      if (err.headers) void reply.headers(err.headers);
      if (status >= 500) request.log.warn({ err: { type: err.error, message: err.description, cause: err.cause } }, 'request failed');
    } else if ((err as FastifyError).validation) {
      status = 400;
      body = { error: 'invalid_request', error_description: err.message };
    } else if (isDatabaseUnavailable(err)) {
      status = 503;
      body = { error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable; try again shortly.' };
      void reply.header('retry-after', '5');
      request.log.error({ err }, 'database unavailable');
    } else if (typeof (err as FastifyError).statusCode === 'number' && (err as FastifyError).statusCode! < 500) {
      // Fastify's own 4xx (bad JSON, body too large, unsupported media type, rate limit)
      status = (err as FastifyError).statusCode!;
      const code = status === 429 ? 'rate_limited' : status === 404 ? 'not_found' : 'invalid_request';
      body = { error: code, error_description: fastifyMessage(err as FastifyError) };
    } else {
      status = 500;
      // a 5xx never leaks a message or a stack: they go to the log only
      body = { error: 'server_error', error_description: 'An unexpected error occurred.' };
      request.log.error({ err }, 'unhandled error');
    }
    void reply.code(status).header('cache-control', 'no-store').send(body);
  });

  // every route's method and path pattern, for 405 answers
  const routes: { method: string; pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    if (route.url === undefined || route.url.includes('*')) return;
    for (const method of [route.method].flat()) routes.push({ method, pattern: routePattern(route.url) });
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = new Set(routes.filter((r) => r.pattern.test(path) && r.method !== 'OPTIONS').map((r) => r.method));
    if (allowed.has('GET')) allowed.add('HEAD');
    if (allowed.size > 0 && !allowed.has(request.method)) {
      // RFC 9110 section 15.5.6: a 405 MUST carry Allow with the methods the resource supports
      const allow = METHOD_ORDER.filter((m) => allowed.has(m)).join(', ');
      void reply
        .code(405)
        .header('allow', allow)
        .header('cache-control', 'no-store')
        .send({ error: 'method_not_allowed', error_description: `${request.method} is not allowed on ${path}; use ${allow}.` });
      return;
    }
    void reply.code(404).send({ error: 'not_found', error_description: `No route ${request.method} ${path}` });
  });
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** `/admin/users/:id` → /^\/admin\/users\/[^/]+$/ */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

/** Fastify's 4xx messages, with what to do instead where Fastify's own text does not say it. */
function fastifyMessage(err: FastifyError): string {
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return `${err.message}; send a JSON body with Content-Type: application/json.`;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return `The request body is too large (at most ${BODY_LIMIT / 1024} KiB).`;
  return err.message;
}
