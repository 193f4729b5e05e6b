// The token endpoint (RFC 6749 section 3.2): authorization_code (with PKCE, RFC 7636), refresh_token (the same
// rotation and reuse detection as the gateway's own sessions, bound to the client) and client_credentials.
// Form-encoded requests only; every answer is no-store; errors exactly as RFC 6749 section 5.2 says.
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../context.js';
import { AppError } from '../errors.js';
import { perMinute } from '../http/rate-limit.js';
import type { GrantNarrowing } from '../tokens/sessions.js';
import { type Client, authenticateClient } from './clients.js';
import { signIdToken } from './id-token.js';

export const TokenForm = Type.Record(Type.String(), Type.String());
const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.Optional(Type.String()),
  refresh_token: Type.Optional(Type.String()),
  id_token: Type.Optional(Type.String()),
});
const OAuthError = Type.Object({ error: Type.String(), error_description: Type.String() });

/** RFC 6749 section 5.2: 400 for every error but invalid_client. */
export const tokenError = (
  error: 'invalid_request' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type' | 'invalid_scope' | 'invalid_target',
  description: string,
) => new AppError(error, 400, description);

/** RFC 7636 section 4.1: 43-128 unreserved characters */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

export async function tokenRoutes(app: App): Promise<void> {
  const { config } = app.ctx;

  app.post(
    '/oauth2/token',
    {
      config: perMinute(config.rateLimits.token),
      schema: { body: TokenForm, response: { 200: TokenResponse, 400: OAuthError, 401: OAuthError, 415: OAuthError, 429: OAuthError } },
      // RFC 6749 section 5.1: Cache-Control: no-store and Pragma: no-cache, set before the body is parsed so that
      // every answer has them, also a refused body (415, a repeated parameter)
      onRequest: async (_request, reply) => {
        void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      },
    },
    async (request, reply) => {
      const body = request.body;
      const client = await authenticateClient(app.ctx.clients, { authorization: request.headers.authorization, body });
      const grantType = body.grant_type;
      if (!grantType) throw tokenError('invalid_request', 'grant_type is missing.');
      // RFC 6749 section 5.2: unsupported_grant_type
      if (grantType !== 'authorization_code' && grantType !== 'refresh_token' && grantType !== 'client_credentials') {
        throw tokenError('unsupported_grant_type', `grant_type ${grantType} is not supported.`);
      }
      // RFC 6749 section 5.2: a client that is not allowed this grant type
      if (!client.grantTypes.includes(grantType))
        throw tokenError('unauthorized_client', `This client may not use the ${grantType} grant.`);
      if (grantType === 'authorization_code') return authorizationCode(app.ctx, request, client, body);
      if (grantType === 'refresh_token') return refreshToken(app.ctx, request, reply, client, body);
      return clientCredentials(app.ctx, client, body);
    },
  );
}

/** RFC 7636 section 4.6: BASE64URL(SHA256(code_verifier)) must equal the challenge. */
function pkceMatches(verifier: string, challenge: string): boolean {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url') === challenge;
}

/** RFC 8707 section 2.2: a token request may narrow the audience to resources the grant already has. */
function narrowAudience(body: Record<string, string>, granted: string[]): string[] {
  const resource = body.resource;
  if (resource === undefined) return granted;
  if (!granted.includes(resource)) throw tokenError('invalid_target', `The grant does not include the resource ${resource}.`);
  return [resource];
}

async function authorizationCode(ctx: AppContext, request: FastifyRequest, client: Client, body: Record<string, string>) {
  const { codes, sessions, config, keys } = ctx;
  const now = ctx.now();
  // RFC 6749 section 4.1.3: code is REQUIRED; an unknown, expired, spent or another client's code is invalid_grant
  if (!body.code) throw tokenError('invalid_request', 'code is missing.');
  const redeemed = await codes.redeem(body.code, client.id, now);
  if (redeemed.kind === 'reused') {
    // RFC 6749 section 4.1.2: a code used twice MUST be refused, and what it issued SHOULD be revoked
    if (redeemed.grantId) {
      await sessions.revoke(redeemed.grantId, { reason: 'authorization_code_reuse', actor: 'system', ip: request.ip });
    }
    request.log.warn({ clientId: client.id }, 'authorization code used twice: its grant is revoked');
    throw tokenError('invalid_grant', 'The authorization code was already used.');
  }
  if (redeemed.kind === 'invalid') throw tokenError('invalid_grant', 'The authorization code is invalid or expired.');
  const grant = redeemed.grant;
  // RFC 6749 section 4.1.3: the redirect_uri of the authorization request, identical
  if (body.redirect_uri !== grant.redirectUri) throw tokenError('invalid_grant', 'redirect_uri does not match the authorization request.');
  if (grant.codeChallenge) {
    if (!body.code_verifier || !VERIFIER.test(body.code_verifier))
      throw tokenError('invalid_grant', 'code_verifier is missing or malformed.');
    if (!pkceMatches(body.code_verifier, grant.codeChallenge))
      throw tokenError('invalid_grant', 'code_verifier does not match the code_challenge.');
  } else if (body.code_verifier !== undefined) {
    // RFC 9700 section 4.8.2: a verifier for a code issued without a challenge is a PKCE downgrade attempt
    throw tokenError('invalid_grant', 'The authorization request had no code_challenge.');
  }
  const audience = narrowAudience(body, grant.audience);
  const opened = await sessions.openGrant(
    {
      parentSessionId: grant.sessionId,
      userId: grant.userId,
      clientId: client.id,
      scope: grant.scope,
      audience,
      authTime: grant.authTime,
      meta: { ip: request.ip, userAgent: request.headers['user-agent'] ?? null },
      codeHash: redeemed.codeHash,
    },
    now,
  );
  // the code is bound to its browser session (RFC 6749 section 4.1.2): ended meanwhile, or its user disabled
  if (!opened) throw tokenError('invalid_grant', 'The sign-in this code came from has ended.');
  const issued = sessions.issue({
    user: opened.user,
    sessionId: opened.grantId,
    authTime: grant.authTime,
    generation: 0,
    idleExpiresAt: opened.idleExpiresAt,
    now,
    grant: { clientId: client.id, scope: grant.scope, audience },
  });
  const scope = grant.scope.split(' ').filter(Boolean);
  // OIDC Core 3.1.3.3: an ID token when openid was granted
  const idToken = scope.includes('openid')
    ? await signIdToken(keys, {
        issuer: config.issuer,
        clientId: client.id,
        alg: client.idTokenSignedResponseAlg,
        userId: grant.userId,
        sessionId: grant.sessionId,
        authTime: grant.authTime,
        nonce: grant.nonce,
        scope,
        accessToken: issued.accessToken,
        user: opened.user,
        lifetime: config.accessTokenTtl,
        now,
      })
    : undefined;
  return {
    access_token: issued.accessToken,
    token_type: 'Bearer' as const,
    expires_in: issued.expiresIn,
    scope: grant.scope,
    // refresh tokens only for clients allowed the refresh_token grant (no offline_access needed: first-party)
    ...(client.grantTypes.includes('refresh_token') ? { refresh_token: issued.refreshToken } : {}),
    ...(idToken ? { id_token: idToken } : {}),
  };
}

/**
 * RFC 6749 section 6: a refresh may ask for less scope than the grant has, never more; RFC 8707 section 2.2: and
 * for one resource of its audience. Checked BEFORE the token rotates, so that a refused request leaves the client
 * its refresh token (else its next refresh would be reuse and end the grant). Undefined when nothing is asked, or
 * when the token is not a grant of this client (the rotation then refuses it as invalid_grant).
 */
async function narrowing(ctx: AppContext, client: Client, body: Record<string, string>): Promise<GrantNarrowing | undefined> {
  const askedScope = body.scope?.split(' ').filter(Boolean);
  if ((askedScope === undefined || askedScope.length === 0) && body.resource === undefined) return undefined;
  const parsed = ctx.refreshTokens.parse(body.refresh_token);
  if (!parsed) return undefined;
  const grant = await ctx.storage.db
    .selectFrom('sessions')
    .select(['scope', 'audience'])
    .where('id', '=', parsed.sessionId)
    .where('client_id', '=', client.id)
    .executeTakeFirst();
  if (!grant) return undefined;
  const narrow: GrantNarrowing = {};
  if (askedScope && askedScope.length > 0) {
    const granted = (grant.scope ?? '').split(' ');
    const extra = askedScope.filter((s) => !granted.includes(s));
    if (extra.length > 0) throw tokenError('invalid_scope', `The grant does not include: ${extra.join(' ')}.`);
    narrow.scope = [...new Set(askedScope)].join(' ');
  }
  if (body.resource !== undefined) narrow.audience = narrowAudience(body, grant.audience ?? []);
  return narrow;
}

async function refreshToken(ctx: AppContext, request: FastifyRequest, _reply: FastifyReply, client: Client, body: Record<string, string>) {
  if (!body.refresh_token) throw tokenError('invalid_request', 'refresh_token is missing.');
  const narrow = await narrowing(ctx, client, body);
  let issued;
  try {
    // the same rotation as the gateway's sessions: reuse revokes the grant, a grace period covers a race
    issued = await ctx.sessions.refresh(
      body.refresh_token,
      { ip: request.ip, userAgent: request.headers['user-agent'] ?? null },
      client.id,
      narrow,
    );
  } catch (err) {
    // RFC 6749 section 5.2: invalid_grant is a 400 at the token endpoint
    if (err instanceof AppError && err.error === 'invalid_grant') throw tokenError('invalid_grant', err.description);
    throw err;
  }
  // RFC 6749 section 5.1: the response names the scope the access token carries
  return {
    access_token: issued.accessToken,
    token_type: 'Bearer' as const,
    expires_in: issued.expiresIn,
    ...(issued.grant?.scope ? { scope: issued.grant.scope } : {}),
    refresh_token: issued.refreshToken,
  };
}

function clientCredentials(ctx: AppContext, client: Client, body: Record<string, string>) {
  // RFC 6749 section 4.4: for confidential clients only
  if (client.tokenEndpointAuthMethod === 'none') throw tokenError('unauthorized_client', 'A public client cannot use client_credentials.');
  const asked = body.scope?.split(' ').filter(Boolean) ?? client.scopes.filter((s) => s !== 'openid');
  // RFC 6749 section 4.4.2: its own scopes only; openid (OIDC Core 3.1.2.1) needs a user, and here there is none
  const refused = asked.filter((s) => !client.scopes.includes(s) || s === 'openid');
  if (refused.length > 0) throw tokenError('invalid_scope', `This client may not ask for: ${refused.join(' ')}.`);
  const allowed = client.audience.length > 0 ? client.audience : ctx.config.accessTokenAudience;
  const audience = body.resource === undefined ? allowed : narrowAudience(body, allowed);
  const scope = [...new Set(asked)].join(' ');
  const access = ctx.tokens.signClientAccess({ clientId: client.id, scope, audience });
  return { access_token: access.token, token_type: 'Bearer' as const, expires_in: access.expiresIn, ...(scope ? { scope } : {}) };
}
