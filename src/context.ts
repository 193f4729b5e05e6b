// What every route and service of one app instance shares: configuration, storage, time and outbound fetch.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Config } from './config.js';
import type { IdentityService } from './identity/linking.js';
import type { FlowStore } from './login/flows.js';
import type { Pruner } from './maintenance/prune.js';
import type { Metrics } from './metrics.js';
import type { ClientStore } from './oauth/clients.js';
import type { AuthorizationCodes, PendingRequests, RevokedAccessTokens } from './oauth/stores.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { Storage } from './storage/db.js';
import type { KeyManager } from './tokens/keys.js';
import type { RefreshTokenCodec } from './tokens/refresh-token.js';
import type { SessionService } from './tokens/sessions.js';
import type { TokenService } from './tokens/tokens.js';

export interface ReadinessCheck {
  name: string;
  /** resolves when ready; rejects with the reason otherwise */
  check(): Promise<void>;
}

export interface AppContext {
  config: Config & { secretKey: Buffer };
  storage: Storage;
  /** injectable clock: tests move time instead of sleeping */
  now(): Date;
  /** injectable outbound fetch (upstream providers); tests make it fail or stall */
  fetch: typeof fetch;
  readiness: ReadinessCheck[];
  /** set on SIGTERM: readiness answers 503 so load balancers stop sending, while requests are still served */
  draining: boolean;
  keys: KeyManager;
  tokens: TokenService;
  /** reads and mints the opaque refresh tokens */
  refreshTokens: RefreshTokenCodec;
  sessions: SessionService;
  providers: ProviderRegistry;
  flows: FlowStore;
  identities: IdentityService;
  metrics: Metrics;
  pruner: Pruner;
  /** the registered OAuth clients (admin API and CLIENTS_FILE) */
  clients: ClientStore;
  /** OpenID Provider: authorization requests waiting for an upstream login */
  pending: PendingRequests;
  /** OpenID Provider: authorization codes */
  codes: AuthorizationCodes;
  /** OpenID Provider: access tokens revoked before they expire */
  revokedTokens: RevokedAccessTokens;
}

/** The Fastify instance every route module receives, with the TypeBox type provider and the context. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

declare module 'fastify' {
  interface FastifyInstance {
    ctx: AppContext;
  }
}
