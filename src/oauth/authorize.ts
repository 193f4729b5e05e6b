// The authorization request (RFC 6749 section 4.1.1, OIDC Core 3.1.2.1, RFC 7636, RFC 8707): what a client may
// ask, checked in the order that decides where an error goes. An unknown client or a redirect URI that is not
// registered is shown to the user and never redirected to (RFC 6749 section 4.1.2.1, RFC 9700 section 4.1.1);
// every later error is sent back to the client's redirect URI with `state` and `iss` (RFC 9207).
import type { Client } from './clients.js';
import { matchRedirectUri } from './clients.js';

export type Prompt = 'none' | 'login' | 'consent' | 'select_account';
const PROMPTS: readonly Prompt[] = ['none', 'login', 'consent', 'select_account'];

/** A valid authorization request, as the rest of the flow needs it. */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  state: string | undefined;
  nonce: string | undefined;
  /** granted scope: what was asked, within what the client may ask */
  scope: string[];
  /** RFC 7636: the S256 challenge (required for public clients) */
  codeChallenge: string | undefined;
  prompt: Prompt[];
  /** OIDC Core 3.1.2.1: seconds */
  maxAge: number | undefined;
  loginHint: string | undefined;
  /** our own parameter: the upstream provider to sign in with */
  provider: string | undefined;
  /** the aud of the access tokens (RFC 8707 resources, or the client's audience) */
  audience: string[];
}

/** An error about the client or its redirect URI: shown to the user, never redirected. */
export interface PageError {
  kind: 'page';
  error: 'invalid_request' | 'invalid_client';
  description: string;
}

/** Any other error: sent back to the redirect URI (RFC 6749 section 4.1.2.1). */
export interface RedirectError {
  kind: 'redirect';
  redirectUri: string;
  state: string | undefined;
  error:
    | 'invalid_request'
    | 'unauthorized_client'
    | 'unsupported_response_type'
    | 'invalid_scope'
    | 'invalid_target'
    | 'login_required'
    | 'access_denied'
    | 'server_error'
    | 'temporarily_unavailable'
    | 'request_not_supported'
    | 'request_uri_not_supported';
  description: string;
}

/** Parameters as Fastify parsed them from the query string or the form body. */
export type RawParams = Record<string, unknown>;

const single = (params: RawParams, name: string): string | undefined | 'repeated' => {
  const v = params[name];
  if (v === undefined) return undefined;
  // RFC 6749 section 3.1: parameters MUST NOT be included more than once
  if (typeof v !== 'string') return 'repeated';
  // RFC 6749 section 3.1: parameters sent without a value are treated as omitted
  return v === '' ? undefined : v;
};

/**
 * RFC 7636 section 4.2: the S256 challenge is BASE64URL(SHA256(verifier)), 43 characters of the base64url
 * alphabet without padding; S256 is the only method accepted, so anything else could never be redeemed.
 */
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface AuthorizeContext {
  /** the upstream providers that are configured */
  providers: readonly string[];
  /** the audience of access tokens when a client has none of its own */
  defaultAudience: readonly string[];
}

/**
 * Checks an authorization request for `client` (already found by client_id; undefined when unknown). Returns the
 * request, or where its error must go.
 */
export function checkAuthorizationRequest(
  params: RawParams,
  client: Client | undefined,
  ctx: AuthorizeContext,
): AuthorizationRequest | PageError | RedirectError {
  const page = (error: PageError['error'], description: string): PageError => ({ kind: 'page', error, description });
  // RFC 6749 sections 4.1.2.1 and 3.1: a missing, repeated or unknown client_id is shown, never redirected
  const clientId = single(params, 'client_id');
  if (clientId === 'repeated') return page('invalid_request', 'client_id is given more than once.');
  if (!clientId) return page('invalid_request', 'The request has no client_id.');
  if (!client) return page('invalid_client', 'The application that sent you here is not registered.');
  const redirectUri = single(params, 'redirect_uri');
  if (redirectUri === 'repeated') return page('invalid_request', 'redirect_uri is given more than once.');
  // OIDC Core 3.1.2.1: redirect_uri is REQUIRED; RFC 6749 3.1.2.3 / RFC 9700 4.1.1: exact match with a registered one
  if (!redirectUri) return page('invalid_request', 'The request has no redirect_uri.');
  if (!matchRedirectUri(client, redirectUri)) {
    return page('invalid_request', 'The redirect_uri is not registered for this application.');
  }

  // RFC 6749 section 4.1.2.1: every error from here on goes to the redirect URI, with the state of the request
  const stateRaw = single(params, 'state');
  const state = stateRaw === 'repeated' ? undefined : stateRaw;
  const fail = (error: RedirectError['error'], description: string): RedirectError => ({
    kind: 'redirect',
    redirectUri,
    state,
    error,
    description,
  });
  // RFC 6749 section 4.1.2.1: a client not allowed the code grant is unauthorized_client
  if (!client.grantTypes.includes('authorization_code')) {
    return fail('unauthorized_client', 'This client may not use the authorization code grant.');
  }
  // RFC 6749 section 3.1: no parameter twice; and no control character in any (none belongs in these values,
  // and U+0000 cannot even be stored)
  // (RFC 8707 section 2: resource is the one parameter that may be given several times, one audience each)
  for (const name of Object.keys(params)) {
    const values = [params[name]].flat();
    if (values.length > 1 && name !== 'resource') return fail('invalid_request', `${name} is given more than once.`);
    if (values.some((v) => typeof v !== 'string' || CONTROL.test(v))) return fail('invalid_request', `${name} holds a control character.`);
  }
  // OIDC Core 6.1, 6.2: request objects are not supported, and saying so is required
  if (params.request !== undefined) return fail('request_not_supported', 'Request objects are not supported.');
  if (params.request_uri !== undefined) return fail('request_uri_not_supported', 'request_uri is not supported.');

  // RFC 6749 sections 4.1.1 and 4.1.2.1: response_type is REQUIRED, and code is the only one supported
  const responseType = single(params, 'response_type');
  if (!responseType) return fail('invalid_request', 'The request has no response_type.');
  if (responseType !== 'code') return fail('unsupported_response_type', 'Only response_type=code is supported.');
  // OAuth 2.0 Multiple Response Type Encoding Practices section 2.1: query, the default for code, only
  const responseMode = single(params, 'response_mode');
  if (responseMode !== undefined && responseMode !== 'query') return fail('invalid_request', 'Only response_mode=query is supported.');

  // RFC 6749 section 3.3: the client's registered scope when it asks for none
  const asked = (single(params, 'scope') as string | undefined)?.split(' ').filter(Boolean) ?? client.scopes;
  // RFC 6749 section 4.1.2.1: a scope the client may not ask for is invalid_scope
  const refused = asked.filter((s) => !client.scopes.includes(s));
  if (refused.length > 0) return fail('invalid_scope', `This client may not ask for: ${refused.join(' ')}.`);
  const scope = [...new Set(asked)];

  // RFC 7636 section 4.3, RFC 9700 section 2.1.1: S256 only; public clients MUST send a challenge
  const method = single(params, 'code_challenge_method') as string | undefined;
  const codeChallenge = single(params, 'code_challenge') as string | undefined;
  if (method !== undefined && method !== 'S256')
    return fail('invalid_request', 'code_challenge_method must be S256 (plain is not accepted).');
  if (codeChallenge === undefined && method !== undefined) return fail('invalid_request', 'code_challenge_method without code_challenge.');
  if (codeChallenge !== undefined && !CHALLENGE.test(codeChallenge)) return fail('invalid_request', 'code_challenge is malformed.');
  if (codeChallenge !== undefined && method === undefined) {
    // RFC 7636 section 4.3: without a method the challenge would be "plain", which is refused
    return fail('invalid_request', 'code_challenge_method=S256 is required with a code_challenge.');
  }
  if (codeChallenge === undefined && client.tokenEndpointAuthMethod === 'none') {
    return fail('invalid_request', 'PKCE (code_challenge with S256) is required for this client.');
  }

  // OIDC Core 3.1.2.1: the prompt values it defines, space-separated
  const promptRaw = (single(params, 'prompt') as string | undefined)?.split(' ').filter(Boolean) ?? [];
  const unknownPrompt = promptRaw.find((p) => !(PROMPTS as readonly string[]).includes(p));
  if (unknownPrompt) return fail('invalid_request', `prompt=${unknownPrompt} is not supported.`);
  // OIDC Core 3.1.2.1: none with any other value is an error
  if (promptRaw.includes('none') && promptRaw.length > 1)
    return fail('invalid_request', 'prompt=none cannot be combined with other values.');

  // OIDC Core 3.1.2.1: max_age is a whole, non-negative number of seconds
  const maxAgeRaw = single(params, 'max_age') as string | undefined;
  if (maxAgeRaw !== undefined && !/^\d{1,9}$/.test(maxAgeRaw)) return fail('invalid_request', 'max_age must be a whole number of seconds.');

  // our own parameter: one of the configured upstream providers
  const provider = single(params, 'provider') as string | undefined;
  if (provider !== undefined && !ctx.providers.includes(provider)) return fail('invalid_request', `Unknown provider "${provider}".`);

  // RFC 8707 section 2: resource is an absolute URI without a fragment, one the client is allowed
  const resources = params.resource === undefined ? [] : [params.resource].flat();
  const allowed = client.audience.length > 0 ? client.audience : ctx.defaultAudience;
  for (const r of resources) {
    if (typeof r !== 'string' || !isAbsoluteUri(r) || r.includes('#'))
      return fail('invalid_target', 'resource must be an absolute URI without a fragment.');
    if (!allowed.includes(r)) return fail('invalid_target', `This client may not ask for the resource ${r}.`);
  }
  // bounded, as everything stored with the code (OIDC Core 3.1.2.1 sets no limit)
  const nonce = single(params, 'nonce') as string | undefined;
  if (nonce !== undefined && nonce.length > 512) return fail('invalid_request', 'nonce is too long.');
  if (state !== undefined && state.length > 2048) return fail('invalid_request', 'state is too long.');
  const loginHint = single(params, 'login_hint') as string | undefined;

  return {
    clientId: client.id,
    redirectUri,
    state,
    nonce,
    scope,
    codeChallenge,
    prompt: promptRaw as Prompt[],
    maxAge: maxAgeRaw === undefined ? undefined : Number(maxAgeRaw),
    loginHint: loginHint?.slice(0, 256),
    provider,
    audience: resources.length > 0 ? (resources as string[]) : [...allowed],
  };
}

function isAbsoluteUri(value: string): boolean {
  try {
    return new URL(value).protocol.length > 1;
  } catch {
    return false;
  }
}

/** The redirect back to the client: `code` (or an error), `state`, and `iss` (RFC 9207 section 2). */
export function authorizationResponse(
  redirectUri: string,
  issuer: string,
  params: { code: string; state: string | undefined } | { error: string; description: string; state: string | undefined },
): string {
  const url = new URL(redirectUri);
  if ('code' in params) url.searchParams.set('code', params.code);
  else {
    url.searchParams.set('error', params.error);
    url.searchParams.set('error_description', params.description);
  }
  if (params.state !== undefined) url.searchParams.set('state', params.state);
  url.searchParams.set('iss', issuer);
  return url.href;
}
