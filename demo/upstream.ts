// A real OpenID Provider (oidc-provider) for the demo and for tests: registered clients, PKCE required, an RS256
// key it generates, the RFC 9207 `iss` authorization response parameter, and interactions (sign-in, consent)
// decided by the caller: the demo shows a sign-in form, tests complete them on their own.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type InteractionDetails } from 'oidc-provider';

export interface UpstreamClient {
  clientId: string;
  /** undefined: a public client (token_endpoint_auth_method none) */
  clientSecret: string | undefined;
  redirectUris: string[];
}

export interface UpstreamAccount {
  /** becomes `sub` */
  accountId: string;
  /** e.g. email, email_verified, name, picture */
  claims?: Record<string, unknown>;
}

/** What an interaction handler can do with the browser in front of it. */
export interface Interaction {
  details: InteractionDetails;
  req: IncomingMessage;
  res: ServerResponse;
  /** signs the account in (remembering its claims) */
  login(account: UpstreamAccount): Promise<void>;
  /** grants what the client asked for */
  consent(): Promise<void>;
  /** RFC 6749 section 4.1.2.1: the user denied the request */
  deny(): Promise<void>;
}

export interface UpstreamOptions {
  issuer: string;
  clients: UpstreamClient[];
  /** false: email/profile claims also go into the ID token (default true: only from UserInfo) */
  conformIdTokenClaims?: boolean;
  /** at /interaction/{uid}: show a page, or call login/consent/deny */
  interact(interaction: Interaction): Promise<void>;
}

export interface Upstream {
  provider: Provider;
  /** the request handler to mount on an HTTP server listening at the issuer */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export async function createUpstream(options: UpstreamOptions): Promise<Upstream> {
  const accounts = new Map<string, UpstreamAccount>();
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `upstream-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };

  const provider = new Provider(options.issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret ? { client_secret: c.clientSecret } : {}),
      token_endpoint_auth_method: c.clientSecret ? 'client_secret_basic' : 'none',
      redirect_uris: c.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [jwk] },
    async findAccount(_ctx: unknown, id: string) {
      const found = accounts.get(id);
      if (!found) return undefined;
      return { accountId: id, claims: async () => ({ ...found.claims, sub: id }) };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'picture'] },
    conformIdTokenClaims: options.conformIdTokenClaims ?? true,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
  });
  const oidc = provider.callback();

  const consent = async (req: IncomingMessage, res: ServerResponse, details: InteractionDetails) => {
    const accountId = details.session?.accountId;
    const clientId = details.params.client_id;
    if (!accountId || !clientId) throw new Error('consent without a session');
    const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId, clientId });
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
      grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  };

  return {
    provider,
    async handle(req, res) {
      if (!req.url?.startsWith('/interaction/')) return oidc(req, res);
      const details = await provider.interactionDetails(req, res);
      await options.interact({
        details,
        req,
        res,
        login: async (account) => {
          accounts.set(account.accountId, account);
          await provider.interactionFinished(req, res, { login: { accountId: account.accountId } }, { mergeWithLastSubmission: false });
        },
        consent: () => consent(req, res, details),
        deny: () =>
          provider.interactionFinished(
            req,
            res,
            { error: 'access_denied', error_description: 'End-User denied the request' },
            { mergeWithLastSubmission: false },
          ),
      });
    },
  };
}
