// The browser flow: the provider list, the redirect to a provider, and the callback.
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { App } from '../context.js';
import { recordAudit } from '../audit.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { readSessionCookie, setSessionCookie } from '../http/cookies.js';
import { perMinute } from '../http/rate-limit.js';
import { resolveReturnTo, withQuery } from '../http/return-to.js';
import { LinkRefused } from '../identity/linking.js';
import { newFlowSecrets } from '../providers/registry.js';
import { ProviderError, type UpstreamProvider } from '../providers/types.js';
import { ErrorBody } from '../schemas.js';
import { liveSession } from '../tokens/sessions.js';
import { TokenRejected } from '../tokens/tokens.js';
import type { FlowRefusal } from './flows.js';

const ProviderList = Type.Object({
  providers: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), type: Type.String(), login_url: Type.String() })),
});
const ProviderParams = Type.Object({ provider: Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 64 }) });

/** What the frontend sees in `?error=` after a failed login (details are in the audit log only). */
export type LoginErrorCode = 'access_denied' | 'login_failed' | 'temporarily_unavailable' | 'account_disabled' | 'identity_in_use';

const FLOW_REFUSALS: Record<FlowRefusal, string> = {
  missing_state: 'The callback has no state parameter.',
  unknown_state: 'This login is unknown or was already used; start again.',
  expired_state: 'This login took too long and expired; start again.',
  wrong_browser: 'This login was started in another browser; start again.',
  wrong_provider: 'This login was started with another provider; start again.',
};

export async function loginRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  const flowCookie = config.secureCookies ? '__Host-gw_flow' : 'gw_flow';

  const provider = (id: string): UpstreamProvider => {
    const p = app.ctx.providers.get(id);
    if (!p) throw notFound(`Unknown provider "${id}".`);
    return p;
  };

  app.get('/auth/providers', { schema: { response: { 200: ProviderList } } }, async () => ({
    providers: app.ctx.providers.list().map((p) => ({
      id: p.id,
      name: p.name,
      type: p.type,
      login_url: `${config.publicUrl}/auth/${p.id}/login`,
    })),
  }));

  /** The user of a valid session cookie, for ?link=1 (verified, not rotated). */
  const sessionUser = async (request: FastifyRequest): Promise<string> => {
    const token = readSessionCookie(request, config);
    const { tokens, storage, now } = app.ctx;
    try {
      if (token) {
        const claims = await tokens.verifyRefresh(token);
        const s = await liveSession(storage.db, claims.sid, claims.sub, now()).select('s.user_id').executeTakeFirst();
        if (s) return s.user_id;
      }
    } catch (err) {
      if (!(err instanceof TokenRejected)) throw err;
    }
    throw new AppError('login_required', 401, 'Linking an identity needs a signed-in session.');
  };

  app.get(
    '/auth/:provider/login',
    {
      config: perMinute(config.rateLimits.login),
      schema: {
        params: ProviderParams,
        querystring: Type.Object({
          return_to: Type.Optional(Type.String()),
          link: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
        }),
        response: { 302: Type.Null(), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const p = provider(request.params.provider);
      const returnTo = resolveReturnTo(request.query.return_to, config);
      const linkUserId = request.query.link ? await sessionUser(request) : null;
      const { flows } = app.ctx;
      // one flow cookie per browser; several logins in several tabs share it
      const browserSecret = request.cookies[flowCookie] || flows.newBrowserSecret();
      const flow = await flows.create({ provider: p.id, returnTo, linkUserId, secrets: newFlowSecrets(p) }, browserSecret);
      void reply.setCookie(flowCookie, browserSecret, {
        httpOnly: true,
        // Lax: sent on the provider's top-level redirect back to the callback
        sameSite: 'lax',
        secure: config.secureCookies,
        path: '/',
        maxAge: config.loginFlowTtl,
      });
      void reply.header('cache-control', 'no-store');
      let url: URL;
      try {
        url = await p.authorizationUrl(flow);
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        await audit(request, { provider: p.id, reason: err.reason });
        return reply.redirect(withQuery(returnTo, { error: errorCode(err) }), 302);
      }
      return reply.redirect(url.href, 302);
    },
  );

  app.get(
    '/auth/:provider/callback',
    {
      config: perMinute(config.rateLimits.login),
      schema: {
        params: ProviderParams,
        querystring: Type.Record(Type.String(), Type.String()),
        response: { 302: Type.Null(), 400: ErrorBody, 404: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const p = provider(request.params.provider);
      const { flows, identities, sessions } = app.ctx;
      void reply.header('cache-control', 'no-store');
      // RFC 6749 section 10.12: the state must be ours, unused, unexpired and from this browser
      const flow = await flows.consume(p.id, request.query.state as string | undefined, request.cookies[flowCookie]);
      if (typeof flow === 'string') {
        await audit(request, { provider: p.id, reason: flow });
        throw invalidRequest(FLOW_REFUSALS[flow]);
      }
      const fail = async (code: LoginErrorCode, reason: string, details?: Record<string, unknown>) => {
        await audit(request, { provider: p.id, reason, userId: flow.linkUserId, details });
        return reply.redirect(withQuery(flow.returnTo, { error: code }), 302);
      };

      let identity;
      try {
        identity = await p.handleCallback(new URL(request.url, config.publicUrl), flow);
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        request.log.info({ provider: p.id, reason: err.reason }, 'upstream login failed');
        return fail(errorCode(err), err.reason, err.upstreamError ? { upstream_error: err.upstreamError } : undefined);
      }

      let resolution;
      try {
        resolution = await identities.resolve(identity, { trustEmail: p.trustEmail, linkUserId: flow.linkUserId });
      } catch (err) {
        if (!(err instanceof LinkRefused)) throw err;
        return fail(err.reason === 'identity_linked_to_another_user' ? 'identity_in_use' : 'account_disabled', err.reason, {
          subject: identity.subject,
        });
      }

      const at = app.ctx.now();
      if (resolution.linkedBy === 'explicit' || resolution.linkedBy === 'email') {
        await recordAudit(app.ctx.storage.db, {
          type: 'identity.linked',
          userId: resolution.userId,
          provider: p.id,
          actor: resolution.linkedBy === 'explicit' ? `user:${resolution.userId}` : 'system',
          ip: request.ip,
          details: { identity_id: resolution.identityId, subject: identity.subject, linked_by: resolution.linkedBy },
          at,
        });
      }
      if (flow.linkUserId) {
        // linking keeps the current session; the frontend learns which provider was added
        return reply.redirect(withQuery(flow.returnTo, { linked: p.id }), 302);
      }
      const issued = await sessions.open(resolution.userId, {
        provider: p.id,
        ip: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
      });
      await recordAudit(app.ctx.storage.db, {
        type: 'login',
        userId: resolution.userId,
        sessionId: issued.sessionId,
        provider: p.id,
        actor: `user:${resolution.userId}`,
        ip: request.ip,
        details: { linked_by: resolution.linkedBy, identity_id: resolution.identityId },
        at,
      });
      app.ctx.metrics.logins.inc({ provider: p.id, outcome: 'success', reason: '' });
      setSessionCookie(reply, config, issued.refreshToken, issued.refreshExpiresIn);
      return reply.redirect(flow.returnTo, 302);
    },
  );

  async function audit(
    request: FastifyRequest,
    e: { provider: string; reason: string; userId?: string | null; details?: Record<string, unknown> },
  ): Promise<void> {
    app.ctx.metrics.logins.inc({ provider: e.provider, outcome: 'failure', reason: e.reason });
    await recordAudit(app.ctx.storage.db, {
      type: 'login',
      outcome: 'failure',
      reason: e.reason,
      provider: e.provider,
      userId: e.userId ?? null,
      actor: 'anonymous',
      ip: request.ip,
      details: e.details,
      at: app.ctx.now(),
    });
  }
}

function errorCode(err: ProviderError): LoginErrorCode {
  if (err.upstreamError === 'access_denied' || err.reason === 'access_denied') return 'access_denied';
  if (err.reason === 'upstream_unavailable') return 'temporarily_unavailable';
  return 'login_failed';
}
