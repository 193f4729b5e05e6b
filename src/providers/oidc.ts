// Generic OpenID Connect relying party (Authorization Code Flow + PKCE) on oauth4webapi, with the ID token's
// signature and claims verified again by jose against the provider's JWKS. Google and Microsoft are presets of it;
// the small transport and error helpers at the bottom are shared with the GitHub provider.
//
// ProviderError reasons raised here and in github.ts:
//   access_denied, upstream_error (the provider's `error=` or a bad/unexpected response), upstream_unavailable
//   (network failure, timeout, 5xx), invalid_flow (the FlowSecrets handed in are unusable), state_mismatch,
//   iss_mismatch (RFC 9207), discovery_issuer_mismatch, id_token_alg, id_token_key (no JWKS key matches),
//   id_token_signature, id_token_invalid (malformed), id_token_iss, id_token_aud, id_token_azp, id_token_exp
//   (missing), id_token_expired, id_token_iat, id_token_nbf, id_token_sub, id_token_nonce, tenant_not_allowed,
//   no_verified_email.
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import type { ProviderConfig, ProviderType } from '../config.js';
import { checkedIdentity } from './identity.js';
import { type FlowSecrets, type NormalizedIdentity, type ProviderDeps, ProviderError, type UpstreamProvider } from './types.js';

/** Seconds of clock difference tolerated on `exp`, `iat` and `nbf`. */
export const CLOCK_TOLERANCE_S = 60;
/** An unknown `kid` makes jose refetch the JWKS at most once per this window. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;
/** Upstream responses larger than this are refused (they are small JSON documents). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface OidcOptions {
  /** The issuer the discovery document must name; default config.issuer. */
  issuer?: string;
  /** Where discovery is fetched (`/.well-known/openid-configuration` is appended); default the issuer. */
  discoveryUrl?: string;
  /**
   * The `iss` an ID token must carry, chosen from its not yet verified claims (Microsoft multi-tenant: the
   * discovered `{tenantid}` template filled with `tid`). The token is then verified against it. Default: the
   * discovered issuer. May throw a ProviderError.
   */
  expectedIssuer?: (unverified: jose.JWTPayload, discoveredIssuer: string) => string;
  /** Extra checks on the verified ID token claims; throw a ProviderError to reject. */
  validateClaims?: (claims: jose.JWTPayload) => void;
  /** Default DEFAULT_JWKS_COOLDOWN_MS; tests shorten it. */
  jwksCooldownMs?: number;
}

interface Discovered {
  as: oauth.AuthorizationServer;
  jwks: ReturnType<typeof jose.createRemoteJWKSet>;
  /** ID token algorithms we accept: the provider's, minus `none` and every HS* */
  algorithms: string[];
}

export class OidcProvider implements UpstreamProvider {
  readonly id: string;
  readonly type: ProviderType;
  readonly name: string;
  readonly trustEmail: boolean;
  readonly usesNonce = true;
  private readonly issuer: string;
  private readonly http: HttpOptions;
  private discovered: Promise<Discovered> | undefined;

  constructor(
    readonly config: ProviderConfig,
    private readonly deps: ProviderDeps,
    private readonly options: OidcOptions = {},
  ) {
    const issuer = options.issuer ?? config.issuer;
    if (!issuer) throw new Error(`provider ${config.id}: an OIDC provider needs an issuer`);
    this.id = config.id;
    this.type = config.type;
    this.name = config.name;
    this.trustEmail = config.trustEmail;
    this.issuer = issuer;
    // plain http only for a local/test issuer (config refuses it in production)
    this.http = httpOptions(deps, new URL(issuer.replace('{tenantid}', 'x')).protocol === 'http:');
  }

  async authorizationUrl(flow: FlowSecrets): Promise<URL> {
    const nonce = requireNonce(flow);
    const { as } = await this.discover();
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('client_id', this.config.clientId);
    url.searchParams.set('redirect_uri', this.config.redirectUri);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', this.config.scopes.join(' '));
    url.searchParams.set('state', requireState(flow));
    url.searchParams.set('nonce', nonce);
    if (flow.prompt) url.searchParams.set('prompt', flow.prompt);
    if (flow.maxAge !== undefined) url.searchParams.set('max_age', String(flow.maxAge));
    if (flow.loginHint) url.searchParams.set('login_hint', flow.loginHint);
    await setPkceChallenge(url, flow);
    return url;
  }

  async handleCallback(callbackUrl: URL, flow: FlowSecrets): Promise<NormalizedIdentity> {
    const nonce = requireNonce(flow);
    const disc = await this.discover();
    const { as } = disc;
    const client = clientFor(this.config.clientId, this.deps);
    const params = validateCallback(as, client, callbackUrl, requireState(flow));

    let response: Response;
    try {
      response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth(as, this.config.clientSecret),
        params,
        this.config.redirectUri,
        flow.codeVerifier, // RFC 7636 4.5
        this.http,
      );
    } catch (err) {
      throw toProviderError(err, 'token request');
    }

    const idToken = await peekIdToken(response);
    const issuer = this.expectedIssuer(idToken, as.issuer);
    let tokens: oauth.TokenEndpointResponse;
    try {
      // OIDC Core 3.1.3.5: token response checks; 3.1.3.7: ID token claims (iss, aud, azp, exp, nonce, sub)
      tokens = await oauth.processAuthorizationCodeResponse({ ...as, issuer }, client, response, {
        expectedNonce: nonce,
        requireIdToken: true,
        // OIDC Core 3.1.2.1: with max_age the ID token MUST carry auth_time, no older than max_age
        ...(flow.maxAge !== undefined ? { maxAge: flow.maxAge } : {}),
      });
    } catch (err) {
      // When the ID token is what oauth4webapi refused, the full verification below names the precise reason.
      if (idToken !== undefined && !(err instanceof oauth.ResponseBodyError)) {
        const claims = await this.verifyIdToken(idToken, nonce, issuer, disc);
        if (flow.maxAge !== undefined) checkAuthTime(claims, flow.maxAge, this.deps.now());
      }
      throw toProviderError(err, 'token response');
    }
    // oauth4webapi does not check the signature of an ID token from the token endpoint (OIDC Core 3.1.3.7 step 6
    // allows that over TLS); we do anyway, with every claim check repeated by jose.
    const claims = await this.verifyIdToken(tokens.id_token!, nonce, issuer, disc);
    if (flow.maxAge !== undefined) checkAuthTime(claims, flow.maxAge, this.deps.now());
    const userinfo = await this.userInfo(as, client, tokens.access_token, claims.sub!);
    return identityFrom(this.id, claims, userinfo);
  }

  /** Metadata, fetched on first use and cached; a failed discovery is retried by the next call. */
  private discover(): Promise<Discovered> {
    this.discovered ??= this.loadMetadata().catch((err: unknown) => {
      this.discovered = undefined;
      throw err;
    });
    return this.discovered;
  }

  private async loadMetadata(): Promise<Discovered> {
    let as: oauth.AuthorizationServer;
    try {
      const response = await oauth.discoveryRequest(new URL(this.options.discoveryUrl ?? this.issuer), this.http);
      // RFC 8414 3.3 / OIDC Discovery 4.3: the issuer in the document MUST be the one we expected
      as = await oauth.processDiscoveryResponse(new URL(this.issuer), response);
    } catch (err) {
      if (err instanceof oauth.OperationProcessingError && err.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
        throw new ProviderError('discovery_issuer_mismatch', 'the discovery document names another issuer');
      }
      throw toProviderError(err, 'discovery');
    }
    const insecure = this.http[oauth.allowInsecureRequests];
    for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint'] as const) {
      const value = as[name];
      if (value === undefined && name === 'userinfo_endpoint') continue;
      if (typeof value !== 'string' || !isUrl(value, insecure)) {
        throw new ProviderError('upstream_error', `discovery: ${name} is missing or not an https URL`);
      }
    }
    // OIDC Core 3.1.3.7 steps 7-8: only the provider's own algorithms (RS256 when it lists none); never `none`
    // and never HS* (keyed with the client secret, which we share with the provider)
    const algorithms = (as.id_token_signing_alg_values_supported ?? ['RS256']).filter((alg) => alg !== 'none' && !alg.startsWith('HS'));
    const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri!), {
      cooldownDuration: this.options.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS,
      timeoutDuration: this.deps.timeoutMs,
      [jose.customFetch]: this.http[oauth.customFetch],
    });
    return { as, jwks, algorithms };
  }

  private expectedIssuer(idToken: string | undefined, discoveredIssuer: string): string {
    if (!this.options.expectedIssuer || idToken === undefined) return discoveredIssuer;
    let unverified: jose.JWTPayload;
    try {
      unverified = jose.decodeJwt(idToken);
    } catch {
      return discoveredIssuer; // malformed: the verification rejects it
    }
    return this.options.expectedIssuer(unverified, discoveredIssuer);
  }

  private async verifyIdToken(idToken: string, nonce: string, issuer: string, disc: Discovered): Promise<jose.JWTPayload> {
    const clientId = this.config.clientId;
    const now = this.deps.now();
    let claims: jose.JWTPayload;
    try {
      ({ payload: claims } = await jose.jwtVerify(idToken, disc.jwks, {
        algorithms: disc.algorithms, // OIDC Core 3.1.3.7 step 7 (alg); step 6 signature with the JWKS key
        issuer, // step 2: iss MUST exactly match
        audience: clientId, // step 3: aud MUST contain our client_id
        requiredClaims: ['exp', 'iat', 'sub'], // OIDC Core 2: REQUIRED claims
        currentDate: now,
        clockTolerance: CLOCK_TOLERANCE_S, // step 9: exp
      }));
    } catch (err) {
      throw joseError(err);
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    // steps 4-5: another audience needs azp = our client_id; an azp present MUST be our client_id
    if ((audiences.some((a) => a !== clientId) || claims.azp !== undefined) && claims.azp !== clientId) {
      throw new ProviderError('id_token_azp', 'ID token azp is not our client');
    }
    // step 10: iat must not be in the future (beyond the tolerance)
    if ((claims.iat as number) > Math.floor(now.getTime() / 1000) + CLOCK_TOLERANCE_S) {
      throw new ProviderError('id_token_iat', 'ID token issued in the future');
    }
    // step 11: nonce MUST equal the one sent in the authentication request
    if (claims.nonce !== nonce) throw new ProviderError('id_token_nonce', 'ID token nonce does not match the flow');
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new ProviderError('id_token_sub', 'ID token has no sub');
    this.options.validateClaims?.(claims);
    return claims;
  }

  /**
   * UserInfo only adds profile claims to the verified ID token: the ID token alone decides who logged in. So a
   * failing, slow or foreign UserInfo response is dropped (OIDC Core 5.3.2: a `sub` that differs from the ID
   * token's MUST NOT be used; processUserInfoResponse checks it) and the login goes on with the ID token claims.
   */
  private async userInfo(
    as: oauth.AuthorizationServer,
    client: oauth.Client,
    accessToken: string,
    sub: string,
  ): Promise<Record<string, unknown>> {
    if (!as.userinfo_endpoint) return {};
    try {
      const response = await oauth.userInfoRequest(as, client, accessToken, this.http);
      return { ...(await oauth.processUserInfoResponse(as, client, sub, response)) };
    } catch {
      return {};
    }
  }
}

/**
 * OIDC Core 3.1.2.1 / 3.1.3.7 step 13: when max_age was requested, auth_time MUST be present and the
 * authentication no older than max_age (oauth4webapi checks it too; this names the reason).
 */
function checkAuthTime(claims: jose.JWTPayload, maxAge: number, now: Date): void {
  const authTime = claims.auth_time;
  if (typeof authTime !== 'number') throw new ProviderError('id_token_auth_time', 'ID token has no auth_time although max_age was sent');
  if (authTime + maxAge < Math.floor(now.getTime() / 1000) - CLOCK_TOLERANCE_S) {
    throw new ProviderError('id_token_auth_time', 'the provider did not authenticate the user recently enough');
  }
}

/** Email and email_verified come as a pair from the ID token when it has an email, else from UserInfo. */
function identityFrom(provider: string, idClaims: jose.JWTPayload, userinfo: Record<string, unknown>): NormalizedIdentity {
  const claims: Record<string, unknown> = { ...userinfo, ...idClaims };
  const source: Record<string, unknown> = typeof idClaims.email === 'string' ? idClaims : userinfo;
  const email = text(source.email);
  return checkedIdentity({
    provider,
    subject: idClaims.sub!,
    email,
    emailVerified: email !== null && source.email_verified === true,
    name: text(claims.name),
    picture: text(claims.picture),
    ...(typeof idClaims.auth_time === 'number' ? { authTime: new Date(idClaims.auth_time * 1000) } : {}),
    claims,
  });
}

function joseError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = jose.errors;
  if (err instanceof e.JOSEAlgNotAllowed || err instanceof e.JOSENotSupported) {
    return new ProviderError('id_token_alg', 'ID token algorithm not allowed');
  }
  if (err instanceof e.JWKSNoMatchingKey || err instanceof e.JWKSMultipleMatchingKeys) {
    return new ProviderError('id_token_key', 'no key of the provider matches the ID token');
  }
  if (err instanceof e.JWSSignatureVerificationFailed) return new ProviderError('id_token_signature', 'ID token signature invalid');
  if (err instanceof e.JWTExpired) return new ProviderError('id_token_expired', 'ID token expired');
  if (err instanceof e.JWTClaimValidationFailed) {
    const known = ['iss', 'aud', 'sub', 'iat', 'nbf', 'exp'];
    return new ProviderError(known.includes(err.claim) ? `id_token_${err.claim}` : 'id_token_invalid', `ID token: ${err.message}`);
  }
  if (err instanceof e.JWKSTimeout) return new ProviderError('upstream_unavailable', 'JWKS request timed out');
  if (err instanceof e.JWSInvalid || err instanceof e.JWTInvalid) return new ProviderError('id_token_invalid', 'ID token malformed');
  return new ProviderError('upstream_error', `could not load the provider's keys: ${err instanceof Error ? err.message : 'error'}`);
}

// ---- shared with github.ts ----

export type UpstreamFetch = (url: string, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
  [oauth.customFetch]: UpstreamFetch;
  [oauth.allowInsecureRequests]: boolean;
}

export function httpOptions(deps: ProviderDeps, insecure: boolean): HttpOptions {
  return { [oauth.customFetch]: upstreamFetch(deps), [oauth.allowInsecureRequests]: insecure };
}

/**
 * deps.fetch bounded by deps.timeoutMs for the whole exchange (headers and body, even when the fetch ignores
 * its signal) and by MAX_RESPONSE_BYTES. Every transport failure becomes ProviderError('upstream_unavailable').
 */
export function upstreamFetch(deps: ProviderDeps): UpstreamFetch {
  return async (url, init = {}) => {
    const timeout = AbortSignal.timeout(deps.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const gaveUp = new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(unavailable('no answer in time')), { once: true }),
    );
    const exchange = (async () => {
      const res = await deps.fetch(url, { ...init, signal });
      const body = [101, 204, 205, 304].includes(res.status) ? null : await readLimited(res);
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    })();
    try {
      return await Promise.race([exchange, gaveUp]);
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw unavailable('request failed');
    }
  };
}

async function readLimited(res: Response): Promise<Uint8Array> {
  if (Number(res.headers.get('content-length')) > MAX_RESPONSE_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_RESPONSE_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks);
}

const tooLarge = () => new ProviderError('upstream_error', 'upstream response too large');
const unavailable = (what: string) => new ProviderError('upstream_unavailable', `provider unreachable: ${what}`);

/** oauth4webapi client metadata with deps.now() as its clock. */
export function clientFor(clientId: string, deps: ProviderDeps): oauth.Client {
  return {
    client_id: clientId,
    [oauth.clockSkew]: Math.floor(deps.now().getTime() / 1000) - Math.floor(Date.now() / 1000),
    [oauth.clockTolerance]: CLOCK_TOLERANCE_S,
  };
}

function clientAuth(as: oauth.AuthorizationServer, secret: string | undefined): oauth.ClientAuth {
  if (!secret) return oauth.None(); // public client: PKCE alone binds the code
  const methods = as.token_endpoint_auth_methods_supported;
  // RFC 8414 2: client_secret_basic is the default when the provider lists nothing
  if (methods && !methods.includes('client_secret_basic') && methods.includes('client_secret_post')) {
    return oauth.ClientSecretPost(secret);
  }
  return oauth.ClientSecretBasic(secret);
}

/** Validates the authorization response (state, RFC 9207 iss, error=) and names what was wrong. */
export function validateCallback(as: oauth.AuthorizationServer, client: oauth.Client, url: URL, state: string): URLSearchParams {
  try {
    return oauth.validateAuthResponse(as, client, url, state);
  } catch (err) {
    const params = url.searchParams;
    if (err instanceof oauth.AuthorizationResponseError) {
      // RFC 6749 4.1.2.1: the provider's error response (its state and iss already checked)
      throw upstreamError(err.error);
    }
    // RFC 6749 10.12, RFC 9700 4.7.1: the state MUST bind the response to this browser's flow
    if (params.getAll('state').length !== 1 || params.get('state') !== state) {
      throw new ProviderError('state_mismatch', 'callback state does not match the login flow');
    }
    // RFC 9207 2.4: iss MUST equal the issuer when present, and MUST be present when the provider advertises it
    const iss = params.getAll('iss');
    if ((iss.length > 0 || as.authorization_response_iss_parameter_supported) && (iss.length !== 1 || iss[0] !== as.issuer)) {
      throw new ProviderError('iss_mismatch', 'callback iss parameter does not name the provider');
    }
    throw toProviderError(err, 'authorization response');
  }
}

/** The provider's own error code (kept only when it is a plain token) as access_denied or upstream_error. */
export function upstreamError(code: string): ProviderError {
  const safe = /^[\w.-]{1,64}$/.test(code) ? code : 'invalid';
  return new ProviderError(safe === 'access_denied' ? 'access_denied' : 'upstream_error', `the provider answered ${safe}`, {
    upstreamError: safe,
  });
}

/** Maps a library or transport failure to a ProviderError without copying response bodies or tokens into it. */
export function toProviderError(err: unknown, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    if (err.status < 500) return upstreamError(err.error);
    return new ProviderError('upstream_unavailable', `${what}: HTTP ${err.status}`);
  }
  const status = err instanceof oauth.OperationProcessingError && err.cause instanceof Response ? err.cause.status : 0;
  if (status >= 500) return new ProviderError('upstream_unavailable', `${what}: HTTP ${status}`);
  return new ProviderError('upstream_error', `${what}: ${err instanceof Error ? err.message : 'failed'}`);
}

export function requireState(flow: FlowSecrets): string {
  if (typeof flow.state !== 'string' || flow.state.length < 16) throw new ProviderError('invalid_flow', 'flow has no usable state');
  return flow.state;
}

function requireNonce(flow: FlowSecrets): string {
  if (typeof flow.nonce !== 'string' || flow.nonce.length < 16) throw new ProviderError('invalid_flow', 'flow has no usable nonce');
  return flow.nonce;
}

/** RFC 7636 4.2/4.3: code_challenge = BASE64URL(SHA256(code_verifier)), method S256 only. */
export async function setPkceChallenge(url: URL, flow: FlowSecrets): Promise<void> {
  // RFC 7636 4.1: 43-128 unreserved characters
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(flow.codeVerifier)) throw new ProviderError('invalid_flow', 'flow has no usable PKCE verifier');
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(flow.codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
}

async function peekIdToken(response: Response): Promise<string | undefined> {
  try {
    const body: unknown = await response.clone().json();
    const idToken = (body as { id_token?: unknown } | null)?.id_token;
    return typeof idToken === 'string' ? idToken : undefined;
  } catch {
    return undefined;
  }
}

export function isUrl(value: string, allowHttp: boolean): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'https:' || (allowHttp && protocol === 'http:');
  } catch {
    return false;
  }
}

export function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}
