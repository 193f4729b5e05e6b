// GitHub (and GitHub Enterprise): OAuth 2.0 without an ID token, through oauth4webapi with a hand-built
// authorization server description. Who logged in comes from the API: GET /user and GET /user/emails.
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../config.js';
import {
  clientFor,
  type HttpOptions,
  httpOptions,
  requireState,
  setPkceChallenge,
  text,
  toProviderError,
  upstreamError,
  validateCallback,
} from './oidc.js';
import { checkedIdentity } from './identity.js';
import { type FlowSecrets, type NormalizedIdentity, type ProviderDeps, ProviderError, type UpstreamProvider } from './types.js';

interface GitHubUser {
  id?: unknown;
  login?: unknown;
  name?: unknown;
  avatar_url?: unknown;
  [key: string]: unknown;
}

interface GitHubEmail {
  email?: unknown;
  primary?: unknown;
  verified?: unknown;
}

export class GitHubProvider implements UpstreamProvider {
  readonly id: string;
  readonly type = 'github' as const;
  readonly name: string;
  readonly trustEmail: boolean;
  readonly usesNonce = false;
  private readonly as: oauth.AuthorizationServer;
  private readonly http: HttpOptions;

  constructor(
    readonly config: ProviderConfig,
    private readonly deps: ProviderDeps,
  ) {
    this.id = config.id;
    this.name = config.name;
    this.trustEmail = config.trustEmail;
    this.as = {
      issuer: config.baseUrl,
      authorization_endpoint: `${config.baseUrl}/login/oauth/authorize`,
      token_endpoint: `${config.baseUrl}/login/oauth/access_token`,
    };
    // plain http only for a local/test GitHub (tests, GitHub Enterprise behind localhost)
    const insecure = [config.baseUrl, config.apiUrl].some((u) => new URL(u).protocol === 'http:');
    this.http = httpOptions(deps, insecure);
  }

  async authorizationUrl(flow: FlowSecrets): Promise<URL> {
    const url = new URL(this.as.authorization_endpoint!);
    url.searchParams.set('client_id', this.config.clientId);
    url.searchParams.set('redirect_uri', this.config.redirectUri);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', this.config.scopes.join(' '));
    url.searchParams.set('state', requireState(flow));
    // GitHub has no prompt=login: its account picker is the closest it offers; `login` suggests an account.
    // It reports no auth_time either, so a max_age cannot be checked: a login through GitHub proves only that
    // this browser is signed in to that GitHub account now.
    if (flow.prompt === 'login' || flow.prompt === 'select_account') url.searchParams.set('prompt', 'select_account');
    if (flow.loginHint) url.searchParams.set('login', flow.loginHint);
    await setPkceChallenge(url, flow);
    return url;
  }

  async handleCallback(callbackUrl: URL, flow: FlowSecrets): Promise<NormalizedIdentity> {
    const client = clientFor(this.config.clientId, this.deps);
    const params = validateCallback(this.as, client, callbackUrl, requireState(flow));
    const secret = this.config.clientSecret;
    let tokens: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        this.as,
        client,
        secret ? oauth.ClientSecretPost(secret) : oauth.None(),
        params,
        this.config.redirectUri,
        flow.codeVerifier, // RFC 7636 4.5
        this.http,
      );
      await rejectErrorBody(response);
      tokens = await oauth.processAuthorizationCodeResponse(this.as, client, response);
    } catch (err) {
      throw toProviderError(err, 'token request');
    }

    const user = (await this.api(tokens.access_token, '/user')) as GitHubUser;
    const emails = await this.api(tokens.access_token, '/user/emails');
    if (typeof user?.id !== 'number' || !Number.isSafeInteger(user.id) || user.id <= 0) {
      throw new ProviderError('upstream_error', 'GitHub /user has no numeric id');
    }
    // Only the primary address, and only when GitHub has verified it, may identify the user.
    const primary = Array.isArray(emails)
      ? (emails as GitHubEmail[]).find((e) => e?.primary === true && e.verified === true && text(e.email) !== null)
      : undefined;
    if (!primary) throw new ProviderError('no_verified_email', 'the GitHub account has no verified primary email');
    const email = primary.email as string;
    return checkedIdentity({
      provider: this.id,
      subject: String(user.id),
      email,
      emailVerified: true,
      name: text(user.name) ?? text(user.login),
      picture: text(user.avatar_url),
      claims: { ...user, email, email_verified: true },
    });
  }

  private async api(accessToken: string, path: string): Promise<unknown> {
    let response: Response;
    try {
      response = await oauth.protectedResourceRequest(
        accessToken,
        'GET',
        new URL(`${this.config.apiUrl}${path}`),
        new Headers({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' }),
        null,
        this.http,
      );
    } catch (err) {
      throw toProviderError(err, `GitHub ${path}`);
    }
    if (response.status !== 200) {
      throw new ProviderError(
        response.status >= 500 ? 'upstream_unavailable' : 'upstream_error',
        `GitHub ${path}: HTTP ${response.status}`,
      );
    }
    try {
      return await response.json();
    } catch {
      throw new ProviderError('upstream_error', `GitHub ${path}: not JSON`);
    }
  }
}

/** GitHub answers token errors (bad code, PKCE verifier mismatch) with HTTP 200 and an `error` member. */
async function rejectErrorBody(response: Response): Promise<void> {
  if (response.status !== 200) return;
  let body: unknown;
  try {
    body = await response.clone().json();
  } catch {
    return; // oauth4webapi reports the malformed response
  }
  const error = (body as { error?: unknown } | null)?.error;
  if (typeof error === 'string') throw upstreamError(error);
}
