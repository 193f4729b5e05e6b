// buildApp(config, deps) returns the Fastify app, ready for inject() or listen(); it performs no I/O itself.
import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import type { App, AppContext } from './context.js';
import { demoPageRoutes } from './demo-page.js';
import { BODY_LIMIT, registerErrorHandler } from './errors.js';
import { healthRoutes, metricsRoutes } from './health.js';
import { registerRateLimits } from './http/rate-limit.js';
import { registerCors } from './http/cors.js';
import { registerErrorPages } from './http/error-page.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { registerSerialization } from './http/serialization.js';
import { registerValidation } from './http/validation.js';
import { loggerOptions } from './logger.js';
import type { Storage } from './storage/db.js';
import { adminRoutes } from './admin/routes.js';
import { recordAudit } from './audit.js';
import { IdentityService } from './identity/linking.js';
import { FlowStore } from './login/flows.js';
import { loginRoutes } from './login/routes.js';
import { Pruner } from './maintenance/prune.js';
import { Metrics } from './metrics.js';
import { ClientStore } from './oauth/clients.js';
import { oauthRoutes } from './oauth/routes.js';
import { AuthorizationCodes, PendingRequests, RevokedAccessTokens } from './oauth/stores.js';
import { createProviderRegistry } from './providers/registry.js';
import { discoveryRoutes } from './tokens/discovery.js';
import { DatabaseKeyStore } from './tokens/key-store.js';
import { KeyManager } from './tokens/keys.js';
import { sessionRoutes } from './tokens/routes.js';
import { RefreshTokenCodec } from './tokens/refresh-token.js';
import { SecretBox } from './tokens/secret-box.js';
import { SessionService } from './tokens/sessions.js';
import { TokenService } from './tokens/tokens.js';

export type { App } from './context.js';

export interface AppDeps {
  storage: Storage;
  /** defaults to the system clock */
  now?: () => Date;
  /** defaults to globalThis.fetch */
  fetch?: typeof fetch;
  /** a pino logger to use instead of one built from LOG_LEVEL */
  logger?: FastifyBaseLogger;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** proxy-addr walks from the socket (hop 0) leftwards through X-Forwarded-For: trust the first `hops` of them */
const hopsTrusted = (hops: number) => (_address: string, hop: number) => hop < hops;

export function buildApp(config: Config & { secretKey: Buffer }, deps: AppDeps): App {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: loggerOptions(config.logLevel) }),
    // the number of proxies in front of us, or their addresses: X-Forwarded-For entries they appended, never the
    // client's own (config.ts refuses `true`)
    trustProxy: typeof config.trustProxy === 'number' ? hopsTrusted(config.trustProxy) : config.trustProxy,
    // accept a caller's X-Request-Id when it is harmless, otherwise make one
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    requestIdHeader: false,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // one access-log line per request, written by the onResponse hook below
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const now = deps.now ?? (() => new Date());
  const db = deps.storage.db;
  // the current SECRET_KEY, then a previous one accepted for reading during a key change
  const secretKeys = config.secretKeyPrevious ? [config.secretKey, config.secretKeyPrevious] : [config.secretKey];
  const refreshTokens = new RefreshTokenCodec(secretKeys);
  const clients = new ClientStore({
    db,
    now,
    fileClients: config.clients,
    rules: { production: config.env === 'production', signingAlg: config.signingAlg },
    realm: config.issuer,
  });
  const keys = new KeyManager(
    new DatabaseKeyStore(db),
    new SecretBox(secretKeys, 'signing keys'),
    {
      alg: config.signingAlg,
      rotationInterval: config.keyRotationInterval,
      jwksMaxAge: config.jwksMaxAge,
      // refresh tokens are not signed with these keys: only access tokens count
      maxTokenLifetime: config.accessTokenTtl,
      now,
      log: app.log,
      tickIntervalMs: config.keyCheckInterval * 1000,
      // a key for every algorithm a registered client has its ID tokens signed with
      idTokenAlgs: () => clients.idTokenAlgs(),
    },
    (e, at) =>
      e.kind === 'created' || e.kind === 'activated'
        ? recordAudit(db, {
            type: e.kind === 'created' ? 'key.created' : 'key.rotated',
            actor: 'system',
            details: { kid: e.kid, alg: e.alg },
            at,
          })
        : undefined,
  );
  const tokens = new TokenService(config, keys, now);
  const fetchImpl = deps.fetch ?? globalThis.fetch;
  const metrics = new Metrics({ storage: deps.storage, keys });
  const pruner = new Pruner(db, now, app.log, config.pruneInterval * 1000);
  const flows = new FlowStore(deps.storage, config, now);
  const ctx: AppContext = {
    config,
    storage: deps.storage,
    now,
    fetch: fetchImpl,
    readiness: [
      { name: 'signing_key', check: () => keys.ready() },
      {
        name: 'shutdown',
        check: async () => {
          if (ctx.draining) throw new Error('draining');
        },
      },
    ],
    draining: false,
    keys,
    tokens,
    refreshTokens,
    sessions: new SessionService({
      storage: deps.storage,
      tokens,
      codec: refreshTokens,
      config,
      now,
      log: app.log,
      onRefresh: (outcome) => metrics.refreshOutcome(outcome),
    }),
    providers: createProviderRegistry(config.providers, { fetch: fetchImpl, now, timeoutMs: config.upstreamTimeoutMs }),
    flows,
    // an authorization request waits for its upstream login as long as a login flow may take
    pending: new PendingRequests(db, (kind, value) => flows.keyedHash(kind, value), config.loginFlowTtl),
    codes: new AuthorizationCodes(db),
    revokedTokens: new RevokedAccessTokens(db),
    identities: new IdentityService(deps.storage, now),
    metrics,
    pruner,
    clients,
  };
  app.decorate('ctx', ctx);
  // keys are loaded (and the first one made) when the app becomes ready, not at import or construction; so are
  // the rows of the CLIENTS_FILE clients written
  app.addHook('onReady', async () => {
    // clients first: the key manager keeps a key for each ID-token algorithm they ask for
    await clients.start();
    await keys.start();
    pruner.start();
  });
  app.addHook('onClose', async () => {
    keys.stop();
    pruner.stop();
  });

  // the hooks every request runs take a callback: an async hook costs a promise and a microtask turn per request
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      seconds,
    );
    request.log.info({ req: request, res: { statusCode: reply.statusCode }, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
    done();
  });

  registerErrorHandler(app);
  // a browser that navigated here gets the error handler's answers as an HTML page (API clients keep the JSON)
  registerErrorPages(app, { home: config.demoPage ? '/' : undefined });
  // bodies are never coerced; query strings have their numbers parsed; refusals name the field
  registerValidation(app);
  // one serializer per response schema, shared by every route that answers with it
  registerSerialization(app);
  // first of the onRequest hooks: even a request refused by a rate limit gets the headers
  registerSecurityHeaders(app, config);
  // before the routes: the plugin attaches each route's limit as the route is added
  registerRateLimits(app, config);
  registerCors(app, config, () => clients.publicOrigins());
  void app.register(cookie);
  void app.register(healthRoutes);
  void app.register(metricsRoutes);
  void app.register(discoveryRoutes);
  void app.register(sessionRoutes);
  void app.register(loginRoutes);
  void app.register(adminRoutes);
  void app.register(oauthRoutes);
  if (config.demoPage) void app.register(demoPageRoutes);
  return app;
}
