// The authorization endpoint (GET and POST /oauth2/authorize), its resumption after an upstream login, and the
// hosted sign-in page. Without a gateway session the browser signs in upstream through the login flow the
// gateway already has (straight to the provider when only one is configured or `provider` names one, else the
// sign-in page), then comes back to /oauth2/authorize/resume, which finishes the request. A live gateway session
// is single sign-on. Clients are first-party: there is no consent screen.
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, AppContext } from '../context.js';
import { AppError } from '../errors.js';
import { readFlowCookie, readSessionCookie, setFlowCookie } from '../http/cookies.js';
import { perMinute } from '../http/rate-limit.js';
import type { CurrentSession } from '../tokens/sessions.js';
import { type AuthorizationRequest, authorizationResponse, checkAuthorizationRequest, type RawParams } from './authorize.js';
import { ErrorBody } from '../schemas.js';
import { errorPage, PAGE_HEADERS, signInPage } from './pages.js';

const Params = Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]));
// an HTML page is sent as a string (never serialized); a 400 the validator gives is the usual JSON error
const Html = { 200: Type.String(), 400: ErrorBody };

/** What the gateway's login answers in `?error=` becomes for the client (RFC 6749 section 4.1.2.1). */
const LOGIN_ERRORS: Record<string, { error: 'access_denied' | 'temporarily_unavailable'; description: string }> = {
  access_denied: { error: 'access_denied', description: 'The user did not sign in.' },
  temporarily_unavailable: { error: 'temporarily_unavailable', description: 'The identity provider could not be reached.' },
  account_disabled: { error: 'access_denied', description: 'The account is disabled.' },
};

export async function authorizeRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  const limited = { config: perMinute(config.rateLimits.login), helmet: PAGE_HEADERS };

  const handle = async (request: FastifyRequest, reply: FastifyReply, params: RawParams) => {
    const { clients, providers } = app.ctx;
    const clientId = typeof params.client_id === 'string' ? params.client_id : undefined;
    const client = clientId ? await clients.find(clientId) : undefined;
    const checked = checkAuthorizationRequest(params, client, {
      providers: providers.list().map((p) => p.id),
      defaultAudience: config.accessTokenAudience,
    });
    if ('kind' in checked) {
      // RFC 6749 section 4.1.2.1, RFC 9700 section 4.1.1: never redirect to a URI that is not the client's
      if (checked.kind === 'page') return errorPage(reply, 400, checked);
      return reply.redirect(
        authorizationResponse(checked.redirectUri, config.issuer, {
          error: checked.error,
          description: checked.description,
          state: checked.state,
        }),
        302,
      );
    }
    return proceed(app.ctx, request, reply, checked, { loginAfter: null, resumed: false });
  };

  app.get('/oauth2/authorize', { ...limited, schema: { querystring: Params, response: { 302: Type.Null(), ...Html } } }, (request, reply) =>
    handle(request, reply, request.query),
  );
  app.post('/oauth2/authorize', { ...limited, schema: { body: Params, response: { 302: Type.Null(), ...Html } } }, (request, reply) =>
    handle(request, reply, request.body),
  );

  app.get(
    '/oauth2/authorize/resume',
    {
      ...limited,
      schema: {
        querystring: Type.Object({ request: Type.String({ maxLength: 128 }), error: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 302: Type.Null(), ...Html },
      },
    },
    async (request, reply) => {
      const { pending, clients, now } = app.ctx;
      // RFC 6749 section 10.12: one-time, and only in the browser that started it (its flow cookie)
      const entry = await pending.consume(request.query.request, readFlowCookie(request, config), now());
      if (!entry) {
        return errorPage(reply, 400, {
          error: 'invalid_request',
          description: 'This sign-in request has expired or was already completed. Go back to the application and start again.',
        });
      }
      const req = entry.request;
      const client = await clients.find(req.clientId);
      if (!client) return errorPage(reply, 400, { error: 'invalid_client', description: 'The application is no longer registered.' });
      const failed = request.query.error;
      if (failed) {
        const e = LOGIN_ERRORS[failed] ?? { error: 'access_denied' as const, description: 'Signing in failed.' };
        return reply.redirect(authorizationResponse(req.redirectUri, config.issuer, { ...e, state: req.state }), 302);
      }
      return proceed(app.ctx, request, reply, req, { loginAfter: entry.loginAfter, resumed: true });
    },
  );

  app.get(
    '/oauth2/signin',
    { ...limited, schema: { querystring: Type.Object({ request: Type.String({ maxLength: 128 }) }), response: Html } },
    async (request, reply) => {
      const { pending, clients, providers, now } = app.ctx;
      const entry = await pending.find(request.query.request, readFlowCookie(request, config), now());
      const client = entry ? await clients.find(entry.request.clientId) : undefined;
      if (!entry || !client) {
        return errorPage(reply, 400, {
          error: 'invalid_request',
          description: 'This sign-in request has expired or was already completed. Go back to the application and start again.',
        });
      }
      const id = request.query.request;
      return signInPage(reply, {
        clientName: client.clientName ?? client.id,
        providers: providers.list().map((p) => ({ name: p.name, url: upstreamLoginUrl(p.id, id, entry.request, entry.loginAfter) })),
        cancelUrl: `/oauth2/authorize/resume?request=${encodeURIComponent(id)}&error=access_denied`,
      });
    },
  );
}

/** Our own login route for provider `p`, coming back to the resumption of pending request `id`. */
function upstreamLoginUrl(provider: string, id: string, req: AuthorizationRequest, loginAfter: Date | null): string {
  const q = new URLSearchParams({ return_to: `/oauth2/authorize/resume?request=${encodeURIComponent(id)}` });
  // a fresh authentication was asked for (prompt=login, max_age): the provider must ask for the user again
  if (loginAfter !== null || req.maxAge !== undefined) q.set('prompt', 'login');
  else if (req.prompt.includes('select_account')) q.set('prompt', 'select_account');
  if (req.loginHint) q.set('login_hint', req.loginHint);
  return `/auth/${encodeURIComponent(provider)}/login?${q}`;
}

/**
 * Finishes a valid request: with a session recent enough for it, a code; with prompt=none, login_required;
 * else the upstream login first.
 */
async function proceed(
  ctx: AppContext,
  request: FastifyRequest,
  reply: FastifyReply,
  req: AuthorizationRequest,
  o: { loginAfter: Date | null; resumed: boolean },
) {
  const { config, sessions, codes, pending, providers, flows } = ctx;
  const now = ctx.now();
  let session: CurrentSession | undefined;
  try {
    session = await sessions.current(readSessionCookie(request, config), { ip: request.ip }, { allowGrace: true });
  } catch (err) {
    if (!(err instanceof AppError) || err.error !== 'login_required') throw err;
  }
  // OIDC Core 3.1.2.1: prompt=login asks for a new authentication, whatever the session's age (also one that
  // began this very instant, or on an instance whose clock is ahead); so does max_age=0 (errata set 2); max_age
  // asks for one at most that old. Once the login they caused has happened (a resumed request), an
  // authentication at or after the request is what counts.
  const forceLogin = !o.resumed && (req.prompt.includes('login') || req.maxAge === 0);
  const loginAfter = o.loginAfter ?? (forceLogin ? now : null);
  const recentEnough =
    session !== undefined &&
    !forceLogin &&
    (o.loginAfter !== null
      ? session.authTime >= o.loginAfter
      : req.maxAge === undefined || now.getTime() - session.authTime.getTime() <= req.maxAge * 1000);
  const back = (error: 'login_required' | 'access_denied', description: string) =>
    reply.redirect(authorizationResponse(req.redirectUri, config.issuer, { error, description, state: req.state }), 302);

  if (session && recentEnough) {
    const code = await codes.issue(
      {
        clientId: req.clientId,
        sessionId: session.sessionId,
        userId: session.userId,
        redirectUri: req.redirectUri,
        codeChallenge: req.codeChallenge ?? null,
        nonce: req.nonce ?? null,
        scope: req.scope.join(' '),
        audience: req.audience,
        authTime: session.authTime,
      },
      now,
    );
    void reply.header('cache-control', 'no-store');
    return reply.redirect(authorizationResponse(req.redirectUri, config.issuer, { code, state: req.state }), 302);
  }
  // OIDC Core 3.1.2.1: prompt=none MUST NOT show anything; without a (recent enough) session, login_required
  if (req.prompt.includes('none')) return back('login_required', 'The user is not signed in.');
  // back from an upstream login that did not end in a recent enough session: do not send the user round again
  if (o.resumed) return back('login_required', 'The user did not sign in.');

  const browserSecret = readFlowCookie(request, config) ?? flows.newBrowserSecret();
  setFlowCookie(reply, config, browserSecret);
  const id = await pending.create(req, browserSecret, loginAfter ?? (req.maxAge !== undefined ? now : null), now);
  void reply.header('cache-control', 'no-store');
  const list = providers.list();
  const only = req.provider ?? (list.length === 1 ? list[0].id : undefined);
  if (only) return reply.redirect(upstreamLoginUrl(only, id, req, loginAfter), 302);
  if (list.length === 0) return back('access_denied', 'No identity provider is configured.');
  return reply.redirect(`/oauth2/signin?request=${encodeURIComponent(id)}`, 302);
}
