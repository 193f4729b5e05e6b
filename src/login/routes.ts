// The browser flow: the provider list, the redirect to a provider (sign-in, linking, re-authentication), and the
// callback.
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../context.js';
import { recordAudit } from '../audit.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { readFlowCookie, readSessionCookie, setFlowCookie, setSessionCookie } from '../http/cookies.js';
import { perMinute } from '../http/rate-limit.js';
import { resolveReturnTo, withQuery } from '../http/return-to.js';
import { LinkRefused, type Purpose } from '../identity/linking.js';
import { newFlowSecrets } from '../providers/registry.js';
import { type FlowSecrets, ProviderError, type UpstreamProvider } from '../providers/types.js';
import { ErrorBody } from '../schemas.js';
import type { Flow, FlowRefusal, NewFlow } from './flows.js';

const ProviderList = Type.Object({
  providers: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), type: Type.String(), login_url: Type.String() })),
});
const ProviderParams = Type.Object({ provider: Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 64 }) });
const LoginQuery = Type.Object({
  return_to: Type.Optional(Type.String()),
  link: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
  // OIDC Core 3.1.2.1: `login` makes the provider ask for the user again (switching users)
  prompt: Type.Optional(Type.Union([Type.Literal('login'), Type.Literal('select_account')])),
});

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

  /** Stores the flow, binds it to this browser and sends the browser to the provider. */
  const redirectToProvider = async (request: FastifyRequest, reply: FastifyReply, p: UpstreamProvider, flow: Omit<NewFlow, 'provider'>) => {
    const { flows } = app.ctx;
    // one flow cookie per browser; several logins in several tabs share it
    const browserSecret = readFlowCookie(request, config) ?? flows.newBrowserSecret();
    const stored = await flows.create({ ...flow, provider: p.id }, browserSecret);
    setFlowCookie(reply, config, browserSecret);
    void reply.header('cache-control', 'no-store');
    let url: URL;
    try {
      url = await p.authorizationUrl(stored);
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      await auditFailure(app.ctx, request, { provider: p.id, reason: err.reason });
      return reply.redirect(withQuery(flow.returnTo, { error: errorCode(err) }), 302);
    }
    return reply.redirect(url.href, 302);
  };

  /**
   * ?link=1: the session's CURRENT refresh token (an older one is reuse and revokes it) and an upstream
   * authentication at most LINK_MAX_AUTH_AGE old. An older one first sends the browser to authenticate again at
   * the session's own provider, which then comes back to this same link request.
   */
  const startLink = async (request: FastifyRequest, reply: FastifyReply, p: UpstreamProvider, returnTo: string) => {
    const { sessions, now } = app.ctx;
    const session = await sessions.current(readSessionCookie(request, config), { ip: request.ip });
    const age = (now().getTime() - session.authTime.getTime()) / 1000;
    if (age <= config.linkMaxAuthAge) {
      const secrets = newFlowSecrets(p);
      return redirectToProvider(request, reply, p, {
        returnTo,
        purpose: 'link',
        sessionId: session.sessionId,
        linkUserId: session.userId,
        secrets,
      });
    }
    const home = session.provider ? app.ctx.providers.get(session.provider) : undefined;
    if (!home)
      throw new AppError('login_required', 401, 'Sign in again before linking another account: this session is too old to link one.');
    // OIDC Core 3.1.2.1: prompt=login asks for the user again; max_age makes the ID token say when (auth_time)
    const secrets: FlowSecrets = { ...newFlowSecrets(home), prompt: 'login', maxAge: config.linkMaxAuthAge };
    return redirectToProvider(request, reply, home, {
      returnTo,
      nextUrl: resolveReturnTo(request.url, config),
      purpose: 'reauth',
      sessionId: session.sessionId,
      linkUserId: session.userId,
      secrets,
    });
  };

  app.get(
    '/auth/:provider/login',
    {
      config: perMinute(config.rateLimits.login),
      schema: {
        params: ProviderParams,
        querystring: LoginQuery,
        response: { 302: Type.Null(), 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const p = provider(request.params.provider);
      const returnTo = resolveReturnTo(request.query.return_to, config);
      if (request.query.link) return startLink(request, reply, p, returnTo);
      const secrets: FlowSecrets = { ...newFlowSecrets(p), ...(request.query.prompt ? { prompt: request.query.prompt } : {}) };
      return redirectToProvider(request, reply, p, { returnTo, purpose: 'login', sessionId: null, linkUserId: null, secrets });
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
      void reply.header('cache-control', 'no-store');
      // RFC 6749 section 10.12: the state must be ours, unused, unexpired and from this browser. It is consumed
      // before the code is presented to the provider, so one authorization response completes one login at most.
      const flow = await app.ctx.flows.consume(p.id, request.query.state as string | undefined, readFlowCookie(request, config));
      if (typeof flow === 'string') {
        await auditFailure(app.ctx, request, { provider: p.id, reason: flow });
        throw invalidRequest(FLOW_REFUSALS[flow]);
      }
      return completeCallback(app.ctx, request, reply, p, flow);
    },
  );
}

/** The callback after its flow was taken: the upstream exchange, then the login, link or re-authentication. */
async function completeCallback(ctx: AppContext, request: FastifyRequest, reply: FastifyReply, p: UpstreamProvider, flow: Flow) {
  const { config, identities, sessions } = ctx;
  const fail = async (code: LoginErrorCode, reason: string, details?: Record<string, unknown>) => {
    await auditFailure(ctx, request, { provider: p.id, reason, userId: flow.linkUserId, details });
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

  const ip = request.ip;
  const now = ctx.now();
  let purpose: Purpose;
  if (flow.purpose === 'login') {
    purpose = {
      kind: 'login',
      session: { id: randomUUID(), provider: p.id, ip, userAgent: request.headers['user-agent'] ?? null, ...sessions.lifetimes(now) },
    };
  } else {
    purpose = { kind: flow.purpose, sessionId: flow.sessionId!, userId: flow.linkUserId!, ip };
  }

  let done;
  try {
    done = await identities.complete(identity, p.trustEmail, purpose);
  } catch (err) {
    if (!(err instanceof LinkRefused)) throw err;
    const code: LoginErrorCode =
      err.reason === 'identity_linked_to_another_user'
        ? 'identity_in_use'
        : err.reason === 'user_disabled'
          ? 'account_disabled'
          : 'login_failed';
    return fail(code, err.reason, { subject: identity.subject });
  }

  if (purpose.kind === 'link') {
    // linking keeps the current session; the frontend learns which provider was added
    return reply.redirect(withQuery(flow.returnTo, { linked: p.id }), 302);
  }
  // authenticated again: on to the link request that asked for it
  if (purpose.kind === 'reauth') return reply.redirect(flow.nextUrl ?? flow.returnTo, 302);
  ctx.metrics.logins.inc({ provider: p.id, outcome: 'success', reason: '' });
  // the cookie carries the session's first refresh token; no access token is signed here, as none is sent
  const issued = sessions.issueRefresh({
    sessionId: purpose.session.id,
    generation: 0,
    idleExpiresAt: purpose.session.idleExpiresAt,
    now: done.at,
  });
  setSessionCookie(reply, config, issued.refreshToken, issued.refreshExpiresIn);
  return reply.redirect(flow.returnTo, 302);
}

async function auditFailure(
  ctx: AppContext,
  request: FastifyRequest,
  e: { provider: string; reason: string; userId?: string | null; details?: Record<string, unknown> },
): Promise<void> {
  ctx.metrics.logins.inc({ provider: e.provider, outcome: 'failure', reason: e.reason });
  await recordAudit(ctx.storage.db, {
    type: 'login',
    outcome: 'failure',
    reason: e.reason,
    provider: e.provider,
    userId: e.userId ?? null,
    actor: 'anonymous',
    ip: request.ip,
    details: e.details,
    at: ctx.now(),
  });
}

function errorCode(err: ProviderError): LoginErrorCode {
  if (err.upstreamError === 'access_denied' || err.reason === 'access_denied') return 'access_denied';
  if (err.reason === 'upstream_unavailable') return 'temporarily_unavailable';
  return 'login_failed';
}
