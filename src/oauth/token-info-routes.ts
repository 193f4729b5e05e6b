// What a token is worth after it was issued: revocation (RFC 7009), introspection (RFC 7662), and the OpenID
// Provider's UserInfo (OIDC Core 5.3), which answers the claims of the granted scopes.
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { App, AppContext } from '../context.js';
import { AppError, bearerChallenge, invalidToken, missingToken } from '../errors.js';
import { bearerToken } from '../http/bearer.js';
import { perMinute } from '../http/rate-limit.js';
import { type AccessClaims, TokenRejected } from '../tokens/tokens.js';
import { userinfoStatement } from '../tokens/userinfo.js';
import { authenticateClient, type Client } from './clients.js';
import { scopedClaims } from './id-token.js';
import { TokenForm, tokenError } from './token-routes.js';

const OAuthError = Type.Object({ error: Type.String(), error_description: Type.String() });
const Introspection = Type.Object(
  {
    active: Type.Boolean(),
    scope: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    sub: Type.Optional(Type.String()),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    jti: Type.Optional(Type.String()),
    token_type: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const UserInfo = Type.Object(
  {
    sub: Type.String(),
    email: Type.Optional(Type.String()),
    email_verified: Type.Optional(Type.Boolean()),
    name: Type.Optional(Type.String()),
    picture: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

/** An access token of ours, verified (any audience: every resource server's tokens come here), or undefined. */
async function accessToken(ctx: AppContext, token: string): Promise<AccessClaims | undefined> {
  try {
    return await ctx.tokens.verifyAccess(token, { anyAudience: true, sessionless: true });
  } catch (err) {
    if (err instanceof TokenRejected) return undefined;
    throw err;
  }
}

export async function tokenInfoRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  const limited = { config: perMinute(config.rateLimits.token) };
  const userinfoQuery = userinfoStatement(app.ctx.storage.db);

  app.post(
    '/oauth2/revoke',
    {
      ...limited,
      schema: { body: TokenForm, response: { 200: Type.String(), 400: OAuthError, 401: OAuthError, 415: OAuthError, 429: OAuthError } },
    },
    async (request, reply) => {
      const client = await authenticateClient(app.ctx.clients, { authorization: request.headers.authorization, body: request.body });
      const token = request.body.token;
      if (!token) throw tokenError('invalid_request', 'token is missing.');
      // RFC 7009 section 2.2.1: a token type hint we do not know is unsupported_token_type
      const hint = request.body.token_type_hint;
      if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') {
        throw new AppError('unsupported_token_type', 400, `token_type_hint ${hint} is not supported.`);
      }
      await revoke(app.ctx, request, client, token);
      // RFC 7009 section 2.2: 200 whether or not the token was valid
      void reply.header('cache-control', 'no-store');
      // RFC 7009 section 2.2: the body is ignored by the client; none is sent
      return reply.code(200).type('text/plain; charset=utf-8').send('');
    },
  );

  app.post(
    '/oauth2/introspect',
    {
      ...limited,
      schema: { body: TokenForm, response: { 200: Introspection, 400: OAuthError, 401: OAuthError, 415: OAuthError, 429: OAuthError } },
    },
    async (request, reply) => {
      const client = await authenticateClient(app.ctx.clients, { authorization: request.headers.authorization, body: request.body });
      // RFC 7662 section 2.1: the endpoint is protected; a public client has nothing to prove who it is with
      if (client.tokenEndpointAuthMethod === 'none') {
        throw new AppError('invalid_client', 401, 'Introspection needs a confidential client.');
      }
      const token = request.body.token;
      if (!token) throw tokenError('invalid_request', 'token is missing.');
      void reply.header('cache-control', 'no-store');
      return introspect(app.ctx, client, token);
    },
  );

  const userinfo = async (request: FastifyRequest) => {
    const { now, storage } = app.ctx;
    const token = bearerToken(request);
    if (!token) throw missingToken('A Bearer access token is required.');
    const claims = await accessToken(app.ctx, token);
    // RFC 6750 section 3.1: invalid_token; a client's own token (client_credentials) has no user to describe
    if (!claims || !claims.sid) throw invalidToken('The access token is invalid or expired.');
    // OIDC Core 5.3: UserInfo is for tokens granted openid. The gateway's own browser-session tokens (client_id:
    // the issuer) carry no scope and count as all of it; a client's token without a scope claim was granted none.
    const scope =
      claims.client_id === config.issuer && claims.scope === undefined ? ['openid', 'email', 'profile'] : (claims.scope?.split(' ') ?? []);
    if (!scope.includes('openid')) {
      throw new AppError('insufficient_scope', 403, 'The access token was not granted the openid scope.', {
        headers: { 'www-authenticate': `${bearerChallenge('insufficient_scope')}, scope="openid"` },
      });
    }
    const [row] = await userinfoQuery.run(storage, { sid: claims.sid, sub: claims.sub, jti: claims.jti, now: now() });
    if (!row) throw invalidToken('The access token was revoked or its sign-in has ended.');
    return { sub: row.id, ...scopedClaims(scope, row) };
  };
  const schema = { response: { 200: UserInfo, 401: OAuthError, 403: OAuthError, 429: OAuthError } };
  // OIDC Core 5.3.1: GET and POST
  app.get('/oauth2/userinfo', { config: perMinute(config.rateLimits.session), schema }, async (request, reply) => {
    void reply.header('cache-control', 'no-store');
    return userinfo(request);
  });
  app.post(
    '/oauth2/userinfo',
    { config: perMinute(config.rateLimits.session), schema: { ...schema, body: Type.Optional(TokenForm) } },
    async (request, reply) => {
      void reply.header('cache-control', 'no-store');
      return userinfo(request);
    },
  );
}

/**
 * RFC 7009 section 2.1: a refresh token ends its grant; an access token is remembered as revoked until it
 * expires. Only the client a token was issued to may revoke it (anything else is refused); a token that is not
 * one of ours is no error (section 2.2).
 */
async function revoke(ctx: AppContext, request: FastifyRequest, client: Client, token: string): Promise<void> {
  const refresh = ctx.refreshTokens.parse(token);
  if (refresh) {
    const grant = await ctx.storage.db.selectFrom('sessions').select(['client_id']).where('id', '=', refresh.sessionId).executeTakeFirst();
    if (!grant) return;
    if (grant.client_id !== client.id) throw tokenError('invalid_request', 'The token was not issued to this client.');
    await ctx.sessions.revoke(refresh.sessionId, { reason: 'revoked_by_client', actor: `client:${client.id}`, ip: request.ip });
    return;
  }
  const claims = await accessToken(ctx, token);
  if (!claims) return;
  if (claims.client_id !== client.id) throw tokenError('invalid_request', 'The token was not issued to this client.');
  await ctx.revokedTokens.add(claims.jti, new Date(claims.exp * 1000));
}

/**
 * RFC 7662 section 2.2: active only while the token is valid, unrevoked, its grant live and its user active.
 * Refresh tokens only to the client they belong to; everything else is `active: false`, and nothing more.
 */
async function introspect(ctx: AppContext, client: Client, token: string) {
  const inactive = { active: false };
  const now = ctx.now();
  const refresh = ctx.refreshTokens.parse(token);
  if (refresh) {
    const row = await ctx.storage.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['s.client_id', 's.user_id', 's.scope', 's.refresh_gen', 's.idle_expires_at', 's.created_at'])
      .where('s.id', '=', refresh.sessionId)
      .where('s.revoked_at', 'is', null)
      .where('s.expires_at', '>', now)
      .where('s.idle_expires_at', '>', now)
      .where('u.status', '=', 'active')
      .executeTakeFirst();
    if (!row || row.client_id !== client.id || row.refresh_gen !== refresh.generation) return inactive;
    return {
      active: true,
      token_type: 'refresh_token',
      client_id: row.client_id,
      sub: row.user_id,
      iss: ctx.config.issuer,
      exp: Math.floor(row.idle_expires_at.getTime() / 1000),
      ...(row.scope ? { scope: row.scope } : {}),
    };
  }
  const claims = await accessToken(ctx, token);
  if (!claims || (await ctx.revokedTokens.has(claims.jti))) return inactive;
  if (claims.sid) {
    const [row] = await userinfoStatement(ctx.storage.db).run(ctx.storage, { sid: claims.sid, sub: claims.sub, jti: claims.jti, now });
    if (!row) return inactive;
  } else if (!(await ctx.clients.find(claims.client_id))) {
    // a client's own token lives only as long as the client does
    return inactive;
  }
  return {
    active: true,
    token_type: 'Bearer',
    client_id: claims.client_id,
    sub: claims.sub,
    iss: claims.iss,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    ...(claims.scope ? { scope: claims.scope } : {}),
  };
}
