// Registration metadata of an OAuth client (RFC 7591 section 2 names), validated the same way for the admin API
// and for CLIENTS_FILE. Pure: no I/O, so the config module can use it at start-up.
//
// Redirect URIs (RFC 6749 section 3.1.2, RFC 8252, RFC 9700 section 4.1.1): absolute, no fragment, no wildcard,
// no user information; https, or http for loopback hosts (127.0.0.1, [::1], localhost), or http for any host
// outside NODE_ENV=production; a private-use scheme in reverse domain-name form (com.example.app:/cb) only for
// public clients (native apps, RFC 8252 section 7.1). The same rules hold for post_logout_redirect_uris.
import type { SigningAlg } from '../config.js';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];
export const RESPONSE_TYPES = ['code'] as const;
export type ResponseType = (typeof RESPONSE_TYPES)[number];
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;
export type TokenEndpointAuthMethod = (typeof AUTH_METHODS)[number];

/** OIDC Core section 3.1.3.7: without a registered id_token_signed_response_alg, ID tokens are RS256. */
export const DEFAULT_ID_TOKEN_ALG: SigningAlg = 'RS256';
/** the scopes of a client with the authorization_code grant that registers none */
export const DEFAULT_SCOPES = ['openid', 'email', 'profile'];

/** The metadata names the gateway understands (RFC 7591 section 2, OIDC RP-Initiated Logout, and `audience`). */
export const METADATA_FIELDS = [
  'client_name',
  'redirect_uris',
  'post_logout_redirect_uris',
  'grant_types',
  'response_types',
  'token_endpoint_auth_method',
  'scope',
  'audience',
  'id_token_signed_response_alg',
] as const;
export type MetadataField = (typeof METADATA_FIELDS)[number];

export interface ClientMetadata {
  clientName: string | null;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: GrantType[];
  responseTypes: ResponseType[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** the scopes the client may ask for */
  scopes: string[];
  /** the `aud` of its access tokens and the RFC 8707 resource values it may request; empty: ACCESS_TOKEN_AUDIENCE */
  audience: string[];
  idTokenSignedResponseAlg: SigningAlg;
}

/** RFC 7591 section 3.2.2 error codes */
export type MetadataErrorCode = 'invalid_redirect_uri' | 'invalid_client_metadata';

export interface MetadataProblem {
  error: MetadataErrorCode;
  /** the field, with an index for list entries: redirect_uris[1] */
  field: string;
  message: string;
}

export interface MetadataRules {
  /** NODE_ENV=production: http redirect URIs only for loopback hosts */
  production: boolean;
  /** SIGNING_ALG: ID tokens may be signed with it or with RS256 */
  signingAlg: SigningAlg;
}

export const describeProblem = (p: MetadataProblem): string => `${p.field}: ${p.message}`;

export const isPublic = (m: Pick<ClientMetadata, 'tokenEndpointAuthMethod'>): boolean => m.tokenEndpointAuthMethod === 'none';

/** The algorithms an ID token may be signed with: RS256 (OIDC Core's default) and SIGNING_ALG. */
export const idTokenAlgs = (signingAlg: SigningAlg): SigningAlg[] => [...new Set<SigningAlg>([DEFAULT_ID_TOKEN_ALG, signingAlg])];

export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** http(s)://authority rest, split without normalising anything (exact matching compares these strings) */
const HTTP_URI = /^(https?):\/\/([^/?#]*)(.*)$/;
/** RFC 3986 section 3.1, in lower case, with at least one dot: a reverse domain name (RFC 8252 section 7.1) */
const PRIVATE_SCHEME = /^([a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+):(.*)$/;
/** RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const PRINTABLE = /^[\x21-\x7E]+$/;
const MAX_URIS = 32;
const MAX_URI_LENGTH = 2000;

/** The host of an http(s) authority without its port (an IPv6 literal keeps its brackets). */
function splitAuthority(authority: string): { host: string; port: string | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(authority)!;
  return { host: m[1], port: m[2] };
}

/** Why a redirect (or post-logout redirect) URI cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: string, rules: { production: boolean; publicClient: boolean }): string | undefined {
  if (uri.length === 0 || uri.length > MAX_URI_LENGTH) return `must be 1 to ${MAX_URI_LENGTH} characters`;
  if (!PRINTABLE.test(uri)) return 'must be printable ASCII without spaces (percent-encode anything else)';
  // RFC 6749 section 3.1.2: the endpoint URI MUST NOT include a fragment component
  if (uri.includes('#')) return 'must not have a fragment (RFC 6749 section 3.1.2)';
  // RFC 9700 section 4.1.1: exact string matching, so no patterns
  if (uri.includes('*')) return 'must not contain a wildcard: redirect URIs are matched exactly (RFC 9700 section 4.1.1)';
  // parsers disagree on "\" (WHATWG reads it as "/", RFC 3986 does not): what we check must be what a browser does
  if (uri.includes('\\')) return 'must not contain a backslash';
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return 'must be an absolute URI (RFC 6749 section 3.1.2)';
  }
  const http = HTTP_URI.exec(uri);
  if (http) {
    const [, scheme, authority] = http;
    if (authority.includes('@')) return 'must not contain user information';
    const { host, port } = splitAuthority(authority);
    if (host === '') return 'must have a host';
    if (port !== undefined && !/^\d{1,5}$/.test(port)) return 'has an invalid port';
    if (parsed.hostname === '') return 'must have a host';
    // RFC 6749 section 3.1.2.1 and RFC 9700 section 4.1.1: TLS, except for loopback redirects of native apps
    // (RFC 8252 section 7.3), and for any host outside production
    if (scheme === 'http' && rules.production && !LOOPBACK_HOSTS.has(host)) {
      return 'must be https; http is allowed only for the loopback hosts 127.0.0.1, [::1] and localhost when NODE_ENV=production';
    }
    return undefined;
  }
  if (/^https?:/i.test(uri)) return 'must be written as http(s)://host/… with the scheme in lower case';
  const custom = PRIVATE_SCHEME.exec(uri);
  if (!custom) {
    return 'must be https, http, or a private-use scheme in reverse domain-name form such as com.example.app:/callback (RFC 8252 section 7.1)';
  }
  // RFC 8252 section 7.1: private-use URI schemes are for native apps, which are public clients (section 8.4)
  if (!rules.publicClient) return 'a private-use URI scheme is allowed only for public clients (token_endpoint_auth_method none)';
  if (!custom[2].startsWith('/')) return 'must have a path after the scheme, such as com.example.app:/callback';
  return undefined;
}

type Input = Record<string, unknown>;

/**
 * Validates registration metadata given with RFC 7591 names and fills in the defaults of RFC 7591 section 2.
 * With `base` (a PATCH), absent fields keep the base values, except that new grant_types without response_types
 * get the response_types they imply. Every problem is reported, each naming its field.
 */
export function validateClientMetadata(
  input: Input,
  rules: MetadataRules,
  base?: ClientMetadata,
): { metadata: ClientMetadata; problems: [] } | { metadata: undefined; problems: MetadataProblem[] } {
  const problems: MetadataProblem[] = [];
  const meta = (field: string, message: string) => problems.push({ error: 'invalid_client_metadata', field, message });
  const redirect = (field: string, message: string) => problems.push({ error: 'invalid_redirect_uri', field, message });
  const has = (k: MetadataField) => Object.prototype.hasOwnProperty.call(input, k) && input[k] !== undefined;

  for (const key of Object.keys(input)) {
    if (!(METADATA_FIELDS as readonly string[]).includes(key)) meta(key, 'is not a client metadata field the gateway knows');
  }

  /** a list of strings, or undefined (reported) */
  const stringList = (field: MetadataField, report: (f: string, m: string) => void, max = MAX_URIS): string[] | undefined => {
    const v = input[field];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      report(field, 'must be a list of strings');
      return undefined;
    }
    if (v.length > max) {
      report(field, `must have at most ${max} entries`);
      return undefined;
    }
    const list = v as string[];
    list.forEach((x, i) => {
      if (list.indexOf(x) !== i) report(`${field}[${i}]`, `lists "${x}" twice`);
    });
    return list;
  };
  const oneOf = <T extends string>(field: MetadataField, allowed: readonly T[]): T | undefined => {
    const v = input[field];
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      meta(field, `must be one of ${allowed.join(', ')}`);
      return undefined;
    }
    return v as T;
  };

  // client_name: a display name, or null
  let clientName = base?.clientName ?? null;
  if (has('client_name')) {
    const v = input.client_name;
    if (v === null) clientName = null;
    // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
    else if (typeof v !== 'string' || v.trim() === '' || v.length > 200 || /[\x00-\x1F\x7F]/.test(v)) {
      meta('client_name', 'must be 1 to 200 characters without control characters, or null');
    } else clientName = v;
  }

  // grant_types and response_types (RFC 7591 section 2.1)
  let grantTypes: GrantType[] | undefined = base?.grantTypes ?? ['authorization_code'];
  if (has('grant_types')) {
    const list = stringList('grant_types', meta, GRANT_TYPES.length);
    grantTypes = undefined;
    if (list) {
      const unknown = list.filter((g) => !(GRANT_TYPES as readonly string[]).includes(g));
      if (unknown.length) meta('grant_types', `supports only ${GRANT_TYPES.join(', ')}; not ${unknown.join(', ')}`);
      else if (list.length === 0) meta('grant_types', 'must not be empty');
      else grantTypes = list as GrantType[];
    }
  }
  const impliedResponseTypes = (g: GrantType[]): ResponseType[] => (g.includes('authorization_code') ? ['code'] : []);
  let responseTypes: ResponseType[] | undefined =
    base && !has('grant_types') ? base.responseTypes : grantTypes ? impliedResponseTypes(grantTypes) : undefined;
  if (has('response_types')) {
    const list = stringList('response_types', meta, RESPONSE_TYPES.length);
    responseTypes = undefined;
    if (list) {
      if (list.some((r) => !(RESPONSE_TYPES as readonly string[]).includes(r))) meta('response_types', 'supports only code');
      else responseTypes = list as ResponseType[];
    }
  }
  if (grantTypes && responseTypes) {
    // RFC 7591 section 2.1: response_type code goes with the authorization_code grant, and only with it
    const code = grantTypes.includes('authorization_code');
    if (code !== responseTypes.includes('code')) {
      meta('response_types', code ? 'must include code for the authorization_code grant' : 'code needs the authorization_code grant');
    }
    // only the code grant issues refresh tokens (client_credentials never does, RFC 6749 section 4.4.3)
    if (grantTypes.includes('refresh_token') && !code) meta('grant_types', 'refresh_token needs the authorization_code grant');
  }

  let method: TokenEndpointAuthMethod | undefined = base?.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (has('token_endpoint_auth_method')) method = oneOf('token_endpoint_auth_method', AUTH_METHODS);
  if (method && base && (method === 'none') !== isPublic(base)) {
    meta('token_endpoint_auth_method', 'a client cannot change between public (none) and confidential; register a new client instead');
  }
  // RFC 6749 section 4.4: the client credentials grant MUST only be used by confidential clients
  if (method === 'none' && grantTypes?.includes('client_credentials')) {
    meta('grant_types', 'client_credentials is only for confidential clients, not with token_endpoint_auth_method none');
  }
  const publicClient = method === 'none';

  const uriList = (field: 'redirect_uris' | 'post_logout_redirect_uris', fallback: string[]): string[] | undefined => {
    if (!has(field)) {
      // a PATCH that makes a client public or confidential is refused above; the base URIs were valid for it
      return fallback;
    }
    const list = stringList(field, redirect);
    if (!list) return undefined;
    let ok = true;
    list.forEach((uri, i) => {
      const why = redirectUriProblem(uri, { production: rules.production, publicClient });
      if (why) {
        redirect(`${field}[${i}]`, why);
        ok = false;
      }
    });
    return ok ? list : undefined;
  };
  const redirectUris = uriList('redirect_uris', base?.redirectUris ?? []);
  const postLogoutRedirectUris = uriList('post_logout_redirect_uris', base?.postLogoutRedirectUris ?? []);
  // RFC 7591 section 2: redirect-based flows need registered redirect URIs (RFC 6749 section 3.1.2.2)
  if (redirectUris && grantTypes?.includes('authorization_code') && redirectUris.length === 0) {
    redirect('redirect_uris', 'at least one is required for the authorization_code grant');
  }

  let scopes: string[] | undefined = base?.scopes;
  if (has('scope')) {
    const v = input.scope;
    scopes = undefined;
    if (typeof v !== 'string') meta('scope', 'must be a string of space-separated scopes');
    else if (v === '') scopes = [];
    else {
      const tokens = v.split(' ');
      const bad = tokens.find((s) => !SCOPE_TOKEN.test(s));
      const twice = tokens.find((s, i) => tokens.indexOf(s) !== i);
      if (bad !== undefined) meta('scope', `must be scope tokens separated by single spaces (RFC 6749 section 3.3); "${bad}" is not one`);
      else if (twice !== undefined) meta('scope', `lists "${twice}" twice`);
      else if (tokens.length > 64 || tokens.some((s) => s.length > 128)) meta('scope', 'at most 64 scopes of at most 128 characters');
      else scopes = tokens;
    }
  } else if (!base) {
    // RFC 7591 section 2: the server may register a default scope when none is given
    scopes = grantTypes?.includes('authorization_code') ? DEFAULT_SCOPES : [];
  }

  let audience: string[] | undefined = base?.audience ?? [];
  if (has('audience')) {
    audience = stringList('audience', meta, 16);
    audience?.forEach((a, i) => {
      // RFC 8707 section 2: a resource is an absolute URI without a fragment
      if (!PRINTABLE.test(a) || a.length > MAX_URI_LENGTH || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(a) || !URL.canParse(a)) {
        meta(`audience[${i}]`, 'must be an absolute URI (RFC 8707 section 2)');
        audience = undefined;
      } else if (a.includes('#')) {
        meta(`audience[${i}]`, 'must not have a fragment (RFC 8707 section 2)');
        audience = undefined;
      } else if (a.includes('*')) {
        meta(`audience[${i}]`, 'must not contain a wildcard');
        audience = undefined;
      }
    });
  }

  let alg: SigningAlg | undefined = base?.idTokenSignedResponseAlg ?? DEFAULT_ID_TOKEN_ALG;
  if (has('id_token_signed_response_alg')) {
    alg = oneOf('id_token_signed_response_alg', idTokenAlgs(rules.signingAlg));
  }

  if (problems.length) return { metadata: undefined, problems };
  return {
    metadata: {
      clientName,
      redirectUris: redirectUris!,
      postLogoutRedirectUris: postLogoutRedirectUris!,
      grantTypes: grantTypes!,
      responseTypes: responseTypes!,
      tokenEndpointAuthMethod: method!,
      scopes: scopes!,
      audience: audience!,
      idTokenSignedResponseAlg: alg!,
    },
    problems: [],
  };
}

/** The metadata with RFC 7591 names, as the admin API answers it. */
export function metadataBody(m: ClientMetadata) {
  return {
    client_name: m.clientName,
    redirect_uris: m.redirectUris,
    post_logout_redirect_uris: m.postLogoutRedirectUris,
    grant_types: m.grantTypes,
    response_types: m.responseTypes,
    token_endpoint_auth_method: m.tokenEndpointAuthMethod,
    scope: m.scopes.join(' '),
    audience: m.audience,
    id_token_signed_response_alg: m.idTokenSignedResponseAlg,
  };
}
