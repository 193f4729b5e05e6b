// RP-Initiated Logout 1.0 (end_session_endpoint): ends the browser session and every grant made from it, then
// returns to a registered post_logout_redirect_uri (with `state`) or shows that the user is signed out. With a
// valid id_token_hint for this browser's session it happens at once; otherwise the user confirms on a page
// whose form only this origin can post (logout CSRF, RP-Initiated Logout section 6).
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../context.js';
import { AppError } from '../errors.js';
import { clearSessionCookie, readSessionCookie } from '../http/cookies.js';
import { perMinute } from '../http/rate-limit.js';
import { verifyJws } from '../tokens/jws.js';
import { type Client, matchPostLogoutRedirectUri } from './clients.js';
import { logoutConfirmPage, PAGE_HEADERS, signedOutPage } from './pages.js';

const Params = Type.Record(Type.String(), Type.String());

interface HintClaims {
  sub: string;
  sid: string | undefined;
  clientId: string;
}

/** OIDC RP-Initiated Logout section 2: an ID token we issued (expired ones too), or undefined. */
async function idTokenHint(ctx: AppContext, token: string | undefined): Promise<HintClaims | undefined> {
  if (!token || token.length > 8192) return undefined;
  try {
    const { payload } = await verifyJws(token, {
      keyFor: (kid) => ctx.keys.verificationKey(kid),
      algorithms: ctx.keys.algorithms(),
      typ: ['jwt'],
    });
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const clientId = typeof payload.azp === 'string' ? payload.azp : aud[0];
    if (payload.iss !== ctx.config.issuer || typeof payload.sub !== 'string' || typeof clientId !== 'string') return undefined;
    return { sub: payload.sub, sid: typeof payload.sid === 'string' ? payload.sid : undefined, clientId };
  } catch {
    return undefined;
  }
}

export async function logoutRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  const limited = { config: perMinute(config.rateLimits.session), helmet: PAGE_HEADERS };

  const endSession = async (request: FastifyRequest, reply: FastifyReply, params: Record<string, string>, confirmed: boolean) => {
    const ctx = app.ctx;
    const hint = await idTokenHint(ctx, params.id_token_hint);
    const clientId = params.client_id ?? hint?.clientId;
    // section 2: client_id and the id_token_hint's audience must agree
    const mismatch = params.client_id !== undefined && hint !== undefined && params.client_id !== hint.clientId;
    const client: Client | undefined = clientId && !mismatch ? await ctx.clients.find(clientId) : undefined;
    const redirect = params.post_logout_redirect_uri;
    // section 3: only a URI registered for that client, matched exactly; otherwise no redirect at all
    const target = client && redirect !== undefined && matchPostLogoutRedirectUri(client, redirect) ? redirect : undefined;

    const cookie = readSessionCookie(request, config);
    const browser = cookie ? ctx.refreshTokens.parse(cookie) : undefined;
    // proof enough: the hint names this browser's session (or, without a session here, nothing is at stake)
    // section 6 (security considerations): without that proof the user confirms first
    const proven = hint !== undefined && (browser === undefined || hint.sid === browser.sessionId);
    if (!proven && !confirmed) {
      const fields: Record<string, string> = {};
      for (const k of ['client_id', 'post_logout_redirect_uri', 'state'] as const) if (params[k] !== undefined) fields[k] = params[k];
      if (client && !fields.client_id) fields.client_id = client.id;
      const origin = target ? new URL(target) : undefined;
      return logoutConfirmPage(reply, {
        clientName: client?.clientName ?? null,
        fields,
        // a private-use scheme has no origin: the scheme is what CSP can name
        ...(origin ? { redirectOrigin: origin.origin !== 'null' ? origin.origin : origin.protocol } : {}),
      });
    }
    // only this browser's own session: an ID token is no secret (clients log and forward them), so a hint alone,
    // from a browser without that session, ends nothing
    const sessionId = browser?.sessionId;
    if (sessionId) {
      // the browser session and, with it, every grant that came from it
      await ctx.sessions.revoke(sessionId, { reason: 'logout', actor: 'user', ip: request.ip, auditType: 'logout' });
    }
    clearSessionCookie(reply, config);
    void reply.header('cache-control', 'no-store');
    if (!target) return signedOutPage(reply);
    const url = new URL(target);
    if (params.state !== undefined) url.searchParams.set('state', params.state);
    return reply.redirect(url.href, 302);
  };

  const html = { 200: Type.String(), 302: Type.Null(), 400: Type.Object({ error: Type.String(), error_description: Type.String() }) };
  app.get('/oauth2/logout', { ...limited, schema: { querystring: Params, response: html } }, (request, reply) =>
    endSession(request, reply, request.query, false),
  );
  app.post('/oauth2/logout', { ...limited, schema: { body: Params, response: { ...html, 403: html[400] } } }, async (request, reply) => {
    // the confirmation form is ours: a cross-site post cannot sign the user out
    const site = request.headers['sec-fetch-site'];
    const origin = request.headers.origin;
    const sameOrigin =
      origin === new URL(config.publicUrl).origin || (origin === undefined && (site === 'same-origin' || site === undefined));
    if (request.body.confirm === '1' && !sameOrigin) {
      throw new AppError('access_denied', 403, 'Sign-out must be confirmed on this site.');
    }
    return endSession(request, reply, request.body, request.body.confirm === '1');
  });
}
