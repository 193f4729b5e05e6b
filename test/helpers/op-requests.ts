// Raw requests to the OpenID Provider for negative tests: authorization URLs with exactly the parameters a test
// wants (repeated ones too), the browser trip to a code, and form-encoded calls to the token, revocation and
// introspection endpoints with each client authentication method. No client library: these tests send what a
// library never would.
import { createHash, randomBytes } from 'node:crypto';
import type { HttpBrowser } from './http-browser.js';
import { CLIENT_CB, type OpGateway } from './op.js';

/** Limits no negative test reaches: these files send hundreds of requests from one address. */
export const NO_RATE_LIMITS = {
  RATE_LIMIT_LOGIN: '1000000',
  RATE_LIMIT_REFRESH: '1000000',
  RATE_LIMIT_SESSION: '1000000',
  RATE_LIMIT_ADMIN: '1000000',
};

export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** A client registered for a test, with how it authenticates. */
export interface TestClient {
  id: string;
  secret?: string;
  method: AuthMethod;
}

export async function registerClient(op: OpGateway, metadata: Record<string, unknown>): Promise<TestClient> {
  const r = await op.register(metadata);
  return {
    id: r.client_id,
    secret: r.client_secret,
    method: (metadata.token_endpoint_auth_method as AuthMethod | undefined) ?? 'client_secret_basic',
  };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The authorization endpoint URL with these parameters; an array repeats a parameter. */
export function authorizeUrl(op: OpGateway, params: Record<string, string | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const one of [v].flat()) q.append(k, one);
  return `${op.url}/oauth2/authorize?${q}`;
}

/** POST /oauth2/authorize with these parameters, form-encoded. */
export function authorizePost(op: OpGateway, params: Record<string, string | string[]>, browser?: HttpBrowser): Promise<Response> {
  const body = new URL(authorizeUrl(op, params)).searchParams.toString();
  const init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
  return browser
    ? browser.request(`${op.url}/oauth2/authorize`, init)
    : fetch(`${op.url}/oauth2/authorize`, { ...init, redirect: 'manual' });
}

/** The parameters of a valid authorization request of `client` (PKCE, state, nonce), plus `extra`. */
export function validRequest(client: TestClient, extra: Record<string, string | string[]> = {}) {
  const p = pkce();
  const state = randomBytes(8).toString('hex');
  const nonce = randomBytes(8).toString('hex');
  const params: Record<string, string | string[]> = {
    client_id: client.id,
    redirect_uri: CLIENT_CB,
    response_type: 'code',
    scope: 'openid email profile',
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  };
  return { params, verifier: p.verifier, state, nonce };
}

/** The trip of a browser from an authorization URL to the client's redirect, and the upstream requests on the way. */
export async function walk(
  op: OpGateway,
  browser: HttpBrowser,
  url: string,
  redirectUri = CLIENT_CB,
): Promise<{ back: URL; upstream: URL[] }> {
  const upstream: URL[] = [];
  const target = new URL(redirectUri);
  const end = await browser.follow(url, (u) => {
    if (Object.values(op.upstreams).some((up) => u.origin === up.issuer) && u.searchParams.has('redirect_uri')) upstream.push(u);
    return `${u.origin}${u.pathname}` === `${target.origin}${target.pathname}`;
  });
  if (end.response) {
    throw new Error(`the flow stopped at ${end.url.href} with ${end.response.status}: ${(await end.response.text()).slice(0, 300)}`);
  }
  return { back: end.url, upstream };
}

/** A code for `client` through the browser (an upstream login unless it has a session), with its verifier. */
export async function codeFor(op: OpGateway, browser: HttpBrowser, client: TestClient, extra: Record<string, string | string[]> = {}) {
  const req = validRequest(client, extra);
  const { back, upstream } = await walk(op, browser, authorizeUrl(op, req.params));
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code: ${back.href}`);
  return { code, verifier: req.verifier, state: req.state, nonce: req.nonce, back, upstream };
}

export interface OAuthResponse {
  status: number;
  headers: Headers;
  /** the JSON body (an empty object when there is none) */
  body: Record<string, unknown>;
}

/**
 * A form-encoded POST to an /oauth2 endpoint, authenticated as `client` with its own method (or `as`: another
 * method, or none at all); `form` values that are arrays repeat the parameter.
 */
export async function oauthPost(
  op: OpGateway,
  path: string,
  form: Record<string, string | string[]>,
  o: { client?: TestClient; as?: AuthMethod | 'nothing'; secret?: string; headers?: Record<string, string> } = {},
): Promise<OAuthResponse> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) q.append(k, one);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...o.headers };
  const c = o.client;
  if (c) {
    const method = o.as ?? c.method;
    const secret = o.secret ?? c.secret ?? '';
    if (method === 'client_secret_basic') {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    } else if (method === 'client_secret_post') {
      q.append('client_id', c.id);
      q.append('client_secret', secret);
    } else if (method === 'none') {
      q.append('client_id', c.id);
    }
  }
  const res = await fetch(`${op.url}${path}`, { method: 'POST', headers, body: q.toString() });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The token endpoint with `client`'s authentication. */
export const tokenPost = (
  op: OpGateway,
  client: TestClient,
  form: Record<string, string | string[]>,
  o: Parameters<typeof oauthPost>[3] = {},
) => oauthPost(op, '/oauth2/token', form, { client, ...o });

/** Redeems a code for `client`. */
export const redeem = (op: OpGateway, client: TestClient, code: string, verifier: string | undefined, extra: Record<string, string> = {}) =>
  tokenPost(op, client, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: CLIENT_CB,
    ...(verifier === undefined ? {} : { code_verifier: verifier }),
    ...extra,
  });

/** Tokens of a fresh sign-in of `client` through `browser`. */
export async function signIn(op: OpGateway, browser: HttpBrowser, client: TestClient, extra: Record<string, string | string[]> = {}) {
  const c = await codeFor(op, browser, client, extra);
  const res = await redeem(op, client, c.code, c.verifier);
  if (res.status !== 200) throw new Error(`code exchange failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { access_token: string; refresh_token?: string; id_token?: string; scope?: string; expires_in: number };
}

/** The payload of a JWT, unverified (for assertions about what the gateway put in it). */
export const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as Record<string, unknown>;

/** Is a token active at introspection (asked by `by`, a confidential client)? */
export async function active(op: OpGateway, by: TestClient, token: string): Promise<boolean> {
  const res = await oauthPost(op, '/oauth2/introspect', { token }, { client: by });
  if (res.status !== 200) throw new Error(`introspection failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.active === true;
}

/** A refresh with the token endpoint: its status and OAuth error (undefined on success). */
export async function refresh(op: OpGateway, client: TestClient, refreshToken: string) {
  return tokenPost(op, client, { grant_type: 'refresh_token', refresh_token: refreshToken });
}
