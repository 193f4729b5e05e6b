// The one small interface every upstream provider type implements (one file per type), and what it returns.
import type { ProviderConfig, ProviderType } from '../config.js';

/** What the login flow keeps between the redirect to the provider and the callback. */
export interface FlowSecrets {
  state: string;
  /** OIDC only */
  nonce: string | undefined;
  /** PKCE (RFC 7636) verifier; the provider sends its S256 challenge */
  codeVerifier: string;
  /**
   * OIDC Core 3.1.2.1 `prompt`: `login` makes the provider ask for the user again (switching users,
   * re-authentication), `none` forbids any interaction, `select_account` shows its account picker.
   */
  prompt?: 'login' | 'none' | 'select_account';
  /** OIDC Core 3.1.2.1 `max_age` (seconds): the ID token must then carry an `auth_time` at most this old */
  maxAge?: number;
  /** OIDC Core 3.1.2.1 `login_hint` (an email or a user name the provider may prefill) */
  loginHint?: string;
}

/** A user as the provider vouches for them, normalised across provider types. */
export interface NormalizedIdentity {
  provider: string;
  /** stable subject at this provider (OIDC `sub`, GitHub numeric user id as text) */
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  picture: string | null;
  /** when the provider last authenticated the user (OIDC `auth_time`), when it says */
  authTime?: Date;
  /** the verified ID token claims (and UserInfo / API user), for the identities.raw_claims column */
  claims: Record<string, unknown>;
}

/**
 * Why an upstream login failed. `reason` is a short stable code written to the audit log and used as the
 * `?error=` of the redirect back to the frontend (after mapping), e.g. access_denied, id_token_signature,
 * id_token_iss, id_token_aud, id_token_azp, id_token_nonce, id_token_expired, id_token_iat, id_token_sub,
 * id_token_alg, iss_mismatch, tenant_not_allowed, no_verified_email, invalid_claim (a claim the gateway cannot
 * store, e.g. holding U+0000), upstream_unavailable, upstream_error.
 */
export class ProviderError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    options?: ErrorOptions & {
      /** the provider's own error code when it sent one (RFC 6749 4.1.2.1), e.g. access_denied */
      upstreamError?: string;
    },
  ) {
    super(message, options);
    this.name = 'ProviderError';
    this.upstreamError = options?.upstreamError;
  }
  readonly upstreamError: string | undefined;
}

export interface UpstreamProvider {
  readonly id: string;
  readonly type: ProviderType;
  readonly name: string;
  /** may a verified email from this provider link to an existing user automatically */
  readonly trustEmail: boolean;
  readonly config: ProviderConfig;
  /** Whether this provider uses a nonce (OIDC types do, GitHub does not). */
  readonly usesNonce: boolean;
  /** The URL to send the browser to. May fetch (and cache) the provider's metadata. */
  authorizationUrl(flow: FlowSecrets): Promise<URL>;
  /**
   * Validates the callback (state, RFC 9207 iss, error), exchanges the code with the PKCE verifier, verifies
   * what comes back, and returns the identity. Throws ProviderError on every failure.
   */
  handleCallback(callbackUrl: URL, flow: FlowSecrets): Promise<NormalizedIdentity>;
}

export interface ProviderDeps {
  /** outbound fetch (injectable for tests: failures, stalls) */
  fetch: typeof fetch;
  /** clock for token time checks */
  now: () => Date;
  /** abort an upstream request after this many ms */
  timeoutMs: number;
}
