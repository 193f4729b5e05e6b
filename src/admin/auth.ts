// Who may call the admin API: the bootstrap ADMIN_TOKEN, or an access token whose user has the role `admin`
// right now (the roles claim in the token is not trusted: roles may have changed since it was minted), is
// active, and whose session is live. Bearer only: a cookie never authenticates an admin request, so there is no
// CSRF surface.
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { AppError, bearerChallenge, invalidToken, missingToken } from '../errors.js';
import { bearerToken, presentsBearer, secretMatches } from '../http/bearer.js';
import { liveSession } from '../tokens/sessions.js';
import { TokenRejected } from '../tokens/tokens.js';

export const ADMIN_ROLE = 'admin';

/** RFC 6750 section 3.1: a valid token without the needed privileges gets 403 insufficient_scope. */
const insufficientScope = () =>
  new AppError('insufficient_scope', 403, 'The admin role is required.', {
    headers: { 'www-authenticate': bearerChallenge('insufficient_scope', 'The admin role is required.') },
  });

/** Returns a function that authenticates a request and answers the audit actor: "admin-token" or "user:<id>". */
export function adminAuthenticator(ctx: AppContext): (request: FastifyRequest) => Promise<string> {
  return async (request) => {
    const token = bearerToken(request);
    if (!token) {
      if (!presentsBearer(request)) throw missingToken('A Bearer token is required.');
      throw invalidToken('The Authorization header is not a single Bearer token.');
    }
    if (ctx.config.adminToken && secretMatches(token, ctx.config.adminToken)) return 'admin-token';

    let claims;
    try {
      claims = await ctx.tokens.verifyAccess(token);
    } catch (err) {
      if (err instanceof TokenRejected)
        throw invalidToken(err.reason === 'expired' ? 'The access token has expired.' : 'The token is invalid.');
      throw err;
    }
    // only the gateway's own session tokens: a token the OpenID Provider issued to a client is that client's
    // (RFC 9068 section 2.2 client_id), and an app holding an admin's token must not become an admin itself
    if (claims.client_id !== ctx.config.issuer) throw invalidToken('This access token was issued to a client, not to the gateway.');
    const row = await liveSession(ctx.storage.db, claims.sid, claims.sub, ctx.now()).select('u.roles').executeTakeFirst();
    if (!row) {
      throw invalidToken('The session of this access token has ended.');
    }
    if (!row.roles.includes(ADMIN_ROLE)) throw insufficientScope();
    return `user:${claims.sub}`;
  };
}
