// The real OpenID Provider of demo/upstream.ts on 127.0.0.1 for tests: one registered client, and interactions
// that complete by themselves: the test says who logs in next, or that the user denies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { createUpstream, type UpstreamAccount } from '../../demo/upstream.js';
import { listen } from '../../fixtures/listen.js';
import { HttpBrowser } from './http-browser.js';

export type { UpstreamAccount };

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

  let handler: (req: IncomingMessage, res: ServerResponse) => unknown = () => undefined;
  const server = await listen((req, res) => handler(req, res));
  const issuer = server.origin;
  const upstream = await createUpstream({
    issuer,
    clients: [{ clientId, clientSecret, redirectUris: options.redirectUris }],
    conformIdTokenClaims: options.conformIdTokenClaims,
    // no pages: every interaction completes by itself, as the test said
    async interact(i) {
      if (deny) {
        deny = false;
        return i.deny();
      }
      if (i.details.prompt.name === 'login') return i.login(account);
      if (i.details.prompt.name === 'consent') return i.consent();
      throw new Error(`unexpected interaction prompt ${i.details.prompt.name}`);
    },
  });
  handler = upstream.handle;

  const followLogin = async (authorizationUrl: URL | string): Promise<URL> => {
    // a fresh browser each time; it stops where the upstream sends it away (to a redirect URI: back to us)
    const end = await new HttpBrowser().follow(
      authorizationUrl,
      (u) => u.origin !== issuer || options.redirectUris.includes(`${u.origin}${u.pathname}`),
      12,
    );
    if (end.response) {
      throw new Error(`upstream answered ${end.response.status} at ${end.url.pathname}: ${(await end.response.text()).slice(0, 300)}`);
    }
    return end.url;
  };

  return {
    issuer,
    clientId,
    clientSecret,
    provider: upstream.provider,
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
