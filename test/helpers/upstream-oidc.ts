// A real OpenID Provider (oidc-provider v9) on 127.0.0.1 for tests and the demo: one registered client, PKCE
// required, a generated RS256 key, the RFC 9207 `iss` authorization response parameter (oidc-provider's default),
// and interactions that complete by themselves: the test says who logs in next, or that the user denies.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { listen } from './listen.js';

export interface UpstreamAccount {
  /** becomes `sub` */
  accountId: string;
  /** e.g. email, email_verified, name, picture */
  claims?: Record<string, unknown>;
}

export interface UpstreamOidcOptions {
  redirectUris: string[];
  clientId?: string;
  /** null: a public client (token_endpoint_auth_method none) */
  clientSecret?: string | null;
  /**
   * false: email/profile claims go into the ID token as well. Default true (oidc-provider's default): with an
   * access token issued they are only available from UserInfo.
   */
  conformIdTokenClaims?: boolean;
}

export interface UpstreamOidc {
  issuer: string;
  clientId: string;
  clientSecret: string | undefined;
  provider: Provider;
  /** Who logs in at the following logins (until changed). Default: account "alice". */
  setAccount(account: UpstreamAccount): void;
  /** The next login ends with the user denying consent: error=access_denied at the callback. */
  denyNext(): void;
  /**
   * Drives the browser part of a login with plain fetch (manual redirects, the upstream's cookies) from our
   * authorization URL to the redirect back to us, and returns that callback URL (code, state, iss — or error)
   * without requesting it. Every call is a fresh browser (no upstream session).
   */
  followLogin(authorizationUrl: URL | string): Promise<URL>;
  close(): Promise<void>;
}

export const DEFAULT_UPSTREAM_ACCOUNT: UpstreamAccount = {
  accountId: 'alice',
  claims: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', picture: 'https://example.com/alice.png' },
};

export async function startUpstreamOidc(options: UpstreamOidcOptions): Promise<UpstreamOidc> {
  const clientId = options.clientId ?? 'gateway';
  const clientSecret = options.clientSecret === null ? undefined : (options.clientSecret ?? 'upstream-client-secret');
  let account = DEFAULT_UPSTREAM_ACCOUNT;
  let deny = false;
  const accounts = new Map<string, UpstreamAccount>();

  let handler: (req: IncomingMessage, res: ServerResponse) => unknown = () => undefined;
  const server = await listen((req, res) => handler(req, res));
  const issuer = server.origin;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `upstream-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        ...(clientSecret ? { client_secret: clientSecret } : {}),
        token_endpoint_auth_method: clientSecret ? 'client_secret_basic' : 'none',
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
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

  handler = async (req, res) => {
    if (!req.url?.startsWith('/interaction/')) return oidc(req, res);
    const details = await provider.interactionDetails(req, res);
    if (deny) {
      deny = false;
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User denied the request' },
        { mergeWithLastSubmission: false },
      );
    }
    if (details.prompt.name === 'login') {
      accounts.set(account.accountId, account);
      return provider.interactionFinished(req, res, { login: { accountId: account.accountId } }, { mergeWithLastSubmission: false });
    }
    if (details.prompt.name === 'consent') {
      const accountId = details.session?.accountId;
      if (!accountId || !details.params.client_id) throw new Error('consent without a session');
      const grant = details.grantId
        ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId: details.params.client_id }))
        : new provider.Grant({ accountId, clientId: details.params.client_id });
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    throw new Error(`unexpected interaction prompt ${details.prompt.name}`);
  };

  const followLogin = async (authorizationUrl: URL | string): Promise<URL> => {
    const jar = new Map<string, string>();
    let url = new URL(authorizationUrl);
    for (let hop = 0; hop < 12; hop++) {
      if (url.origin !== issuer || options.redirectUris.includes(`${url.origin}${url.pathname}`)) return url;
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
      for (const line of res.headers.getSetCookie()) {
        const [pair = '', ...attributes] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attributes.some((a) => {
          const [k = '', v = ''] = a.trim().split('=');
          return (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) || (k.toLowerCase() === 'max-age' && Number(v) <= 0);
        });
        if (expired || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const body = await res.text();
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        throw new Error(`upstream answered ${res.status} at ${url.pathname}: ${body.slice(0, 300)}`);
      }
      url = new URL(location, url);
    }
    throw new Error('too many redirects at the upstream');
  };

  return {
    issuer,
    clientId,
    clientSecret,
    provider,
    setAccount: (a) => {
      account = a;
    },
    denyNext: () => {
      deny = true;
    },
    followLogin,
    close: () => server.close(),
  };
}
