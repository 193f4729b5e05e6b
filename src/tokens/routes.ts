// Session endpoints for frontends: refresh, logout, userinfo. CORS for ALLOWED_ORIGINS with credentials.
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../context.js';
import { AppError, invalidGrant, invalidToken, missingToken } from '../errors.js';
import { bearerToken, presentsBearer } from '../http/bearer.js';
import { clearSessionCookie, readSessionCookie, setSessionCookie } from '../http/cookies.js';
import { perMinute } from '../http/rate-limit.js';
import { resolveReturnTo } from '../http/return-to.js';
import { ErrorBody } from '../schemas.js';
import { userinfoStatement } from './userinfo.js';
import { TokenRejected } from './tokens.js';

const RefreshBody = Type.Union([
  Type.Object({ refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 })) }, { additionalProperties: false }),
  Type.Null(),
]);
const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  refresh_token: Type.Optional(Type.String()),
});
const UserInfo = Type.Object({
  sub: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  email_verified: Type.Boolean(),
  name: Type.Union([Type.String(), Type.Null()]),
  picture: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
  identities: Type.Array(
    Type.Object({
      provider: Type.String(),
      subject: Type.String(),
      email: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

export async function sessionRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  const userinfoQuery = userinfoStatement(app.ctx.storage.db);

  const ownOrigin = new URL(config.publicUrl).origin;
  const allowedOrigin = (origin: string) => origin === ownOrigin || config.allowedOrigins.includes(origin);

  /** Cookie-authenticated POSTs only from our own or an allowed origin (defence in depth next to SameSite=Lax). */
  const checkOrigin = (request: FastifyRequest) => {
    const origin = request.headers.origin;
    if (origin && !allowedOrigin(origin)) {
      throw new AppError('access_denied', 403, 'Cross-origin request from an origin that is not allowed.');
    }
  };

  /**
   * GET /auth/logout acts on the cookie alone, which SameSite=Lax still sends on a cross-site top-level
   * navigation: a link or a redirect on any site could log the user out (logout CSRF). So a GET logs out only
   * when the browser says where it comes from and that is us or an allowed origin: an allowed Origin, Fetch
   * Metadata `Sec-Fetch-Site: same-origin` or `none` (a bookmark, the address bar), or else a Referer on an
   * allowed origin (a cross-site frontend in ALLOWED_ORIGINS, or a browser without Fetch Metadata). Anything
   * else, no evidence at all included, is refused: fail closed.
   */
  const checkNavigation = (request: FastifyRequest) => {
    const refuse = () =>
      new AppError(
        'access_denied',
        403,
        'A logout link from another site is refused: sign out with POST /auth/logout, or link from an allowed origin.',
      );
    const { origin, referer } = request.headers;
    if (origin !== undefined) {
      if (allowedOrigin(origin)) return;
      throw refuse();
    }
    const site = request.headers['sec-fetch-site'];
    if (site === 'same-origin' || site === 'none') return;
    let refererOrigin: string | undefined;
    try {
      refererOrigin = referer ? new URL(referer).origin : undefined;
    } catch {
      refererOrigin = undefined;
    }
    if (refererOrigin && allowedOrigin(refererOrigin)) return;
    throw refuse();
  };
  const meta = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'] ?? null });

  app.post(
    '/auth/refresh',
    {
      config: perMinute(config.rateLimits.refresh),
      schema: {
        body: RefreshBody,
        response: { 200: TokenResponse, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const { sessions } = app.ctx;
      const fromBody = request.body?.refresh_token;
      const token = fromBody ?? readSessionCookie(request, config);
      if (!fromBody) checkOrigin(request);
      void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      if (!token) throw invalidGrant('No refresh token: send the session cookie or {"refresh_token"}.');
      try {
        const issued = await sessions.refresh(token, meta(request));
        if (fromBody) {
          return {
            access_token: issued.accessToken,
            token_type: 'Bearer' as const,
            expires_in: issued.expiresIn,
            refresh_token: issued.refreshToken,
          };
        }
        setSessionCookie(reply, config, issued.refreshToken, issued.refreshExpiresIn);
        return { access_token: issued.accessToken, token_type: 'Bearer' as const, expires_in: issued.expiresIn };
      } catch (err) {
        if (!fromBody && err instanceof AppError && err.error === 'invalid_grant') clearSessionCookie(reply, config);
        throw err;
      }
    },
  );

  /** Revokes the session named by the cookie, a body refresh token or a Bearer access token. */
  const logout = async (request: FastifyRequest, reply: FastifyReply, bodyToken: string | undefined) => {
    const { sessions, tokens, refreshTokens } = app.ctx;
    let sessionId: string | undefined;
    const access = bearerToken(request);
    const refresh = bodyToken ?? readSessionCookie(request, config);
    // RFC 7009 section 2.2: an invalid or expired token is not an error for the caller. Any token of the
    // session's chain names it: an older one ends it just as well.
    if (refresh) sessionId = refreshTokens.parse(refresh)?.sessionId;
    else if (access) {
      try {
        sessionId = (await tokens.verifyAccess(access)).sid;
      } catch (err) {
        if (!(err instanceof TokenRejected)) throw err;
      }
    }
    if (sessionId) await sessions.revoke(sessionId, { reason: 'logout', actor: 'user', ip: request.ip, auditType: 'logout' });
    clearSessionCookie(reply, config);
    void reply.header('cache-control', 'no-store');
  };

  app.post(
    '/auth/logout',
    { schema: { body: RefreshBody, response: { 204: Type.Null(), 400: ErrorBody, 403: ErrorBody, 429: ErrorBody } } },
    async (request, reply) => {
      const bodyToken = request.body?.refresh_token;
      if (!bodyToken && !bearerToken(request)) checkOrigin(request);
      await logout(request, reply, bodyToken);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/logout',
    {
      schema: {
        querystring: Type.Object({ return_to: Type.Optional(Type.String()) }),
        response: { 302: Type.Null(), 400: ErrorBody, 403: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const target = resolveReturnTo(request.query.return_to, config);
      checkNavigation(request);
      await logout(request, reply, undefined);
      return reply.redirect(target, 302);
    },
  );

  app.get('/auth/userinfo', { schema: { response: { 200: UserInfo, 401: ErrorBody, 429: ErrorBody } } }, async (request, reply) => {
    const { tokens, storage, now } = app.ctx;
    const token = bearerToken(request);
    if (!token) {
      if (!presentsBearer(request)) throw missingToken('A Bearer access token is required.');
      throw invalidToken('The Authorization header is not a single Bearer token.');
    }
    let claims;
    try {
      claims = await tokens.verifyAccess(token);
    } catch (err) {
      if (err instanceof TokenRejected)
        throw invalidToken(err.reason === 'expired' ? 'The access token has expired.' : 'The access token is invalid.');
      throw err;
    }
    // one prepared statement: the session, its user and the user's identities
    const [row] = await userinfoQuery.run(storage, { sid: claims.sid, sub: claims.sub, jti: claims.jti, now: now() });
    if (!row) {
      throw invalidToken('The session of this access token has ended.');
    }
    void reply.header('cache-control', 'no-store');
    return {
      sub: row.id,
      email: row.email,
      email_verified: row.email_verified,
      name: row.name,
      picture: row.picture,
      roles: row.roles,
      identities: row.identities,
    };
  });
}
