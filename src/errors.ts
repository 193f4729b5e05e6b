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
  | 'access_denied'
  | 'insufficient_scope'
  | 'not_found'
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
/** RFC 6750 section 3: a missing or bad bearer token gets 401 with WWW-Authenticate */
export const invalidToken = (description: string) =>
  new AppError('invalid_token', 401, description, {
    headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${description.replace(/"/g, "'")}"` },
  });
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
      body = { error: code, error_description: err.message };
    } else {
      status = 500;
      // a 5xx never leaks a message or a stack: they go to the log only
      body = { error: 'server_error', error_description: 'An unexpected error occurred.' };
      request.log.error({ err }, 'unhandled error');
    }
    void reply.code(status).header('cache-control', 'no-store').send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: 'not_found', error_description: `No route ${request.method} ${request.url.split('?')[0]}` });
  });
}
