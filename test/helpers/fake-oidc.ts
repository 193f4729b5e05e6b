// A tiny OpenID Provider that tests can make misbehave: the discovery document, the RFC 9207 `iss` parameter,
// the JWKS (rotate keys, count fetches) and the exact ID token the token endpoint returns are all under the
// test's control. It still checks what a real provider checks of us: single-use codes, redirect_uri, the PKCE
// verifier against the S256 challenge, and the client secret.
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { clientCredentials, type Listening, listen, readForm, redirect, redirectTarget, sendJson } from './listen.js';

export interface IdTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  nonce: string | undefined;
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

export interface SignOptions {
  /** default RS256; PS256 signs with the same RSA key (the JWKS names no `alg`, like Microsoft's) */
  alg?: 'RS256' | 'PS256' | 'HS256' | 'none';
  /** HS256 secret; default the client secret (the classic confusion attack) */
  secret?: string;
  /** 'foreign': a key that is not in the JWKS. Default: the current published key. */
  key?: 'published' | 'foreign';
  /** default: the kid of the chosen key; null: no kid header */
  kid?: string | null;
}

interface SigningKey {
  kid: string;
  privateJwk: JWK;
  /** the published public key */
  jwk: JWK;
}

export interface FakeOidc {
  readonly origin: string;
  /** the issuer in the discovery document, the default `iss` of ID tokens and of the callback; settable */
  issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** merged over the generated discovery document; a key set to undefined is left out */
  metadata: Record<string, unknown>;
  /** undefined: send the issuer when the metadata advertises support; null: never send; a string: send that */
  issParameter: string | null | undefined;
  /** builds the ID token of the next token responses from the defaults; default: sign(defaults) */
  idToken: (defaults: IdTokenClaims) => Promise<string> | string;
  /** served at /userinfo (and advertised) when set */
  userinfo: Record<string, unknown> | undefined;
  /** kid of the currently published signing key */
  readonly kid: string;
  /** requests per path, e.g. counts['/jwks'] */
  readonly counts: Record<string, number>;
  sign(claims: Record<string, unknown>, options?: SignOptions): Promise<string>;
  /** publishes a new signing key instead of the current one; returns its kid */
  rotateKey(): Promise<string>;
  /** requests our authorization URL and returns the callback URL it redirects to */
  authorize(authorizationUrl: URL): Promise<URL>;
  close(): Promise<void>;
}

async function newKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateJwk: await exportJWK(privateKey), jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

interface Grant {
  clientId: string;
  redirectUri: string;
  nonce: string | undefined;
  challenge: string | undefined;
}

export async function startFakeOidc(options: { clientId?: string; clientSecret?: string } = {}): Promise<FakeOidc> {
  const clientId = options.clientId ?? 'fake-client';
  const clientSecret = options.clientSecret ?? 'fake-client-secret';
  const codes = new Map<string, Grant>();
  const accessTokens = new Set<string>();
  const counts: Record<string, number> = {};
  let current = await newKey('key-1');
  const foreign = await newKey('foreign-key');
  let generation = 1;

  let fake!: FakeOidc;
  const server: Listening = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', fake.origin);
    counts[url.pathname] = (counts[url.pathname] ?? 0) + 1;

    if (url.pathname.endsWith('/.well-known/openid-configuration')) {
      const doc: Record<string, unknown> = {
        issuer: fake.issuer,
        authorization_endpoint: `${fake.origin}/authorize`,
        token_endpoint: `${fake.origin}/token`,
        jwks_uri: `${fake.origin}/jwks`,
        ...(fake.userinfo ? { userinfo_endpoint: `${fake.origin}/userinfo` } : {}),
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        authorization_response_iss_parameter_supported: true,
        ...fake.metadata,
      };
      return sendJson(res, 200, doc);
    }
    if (url.pathname === '/jwks') return sendJson(res, 200, { keys: [current.jwk] });

    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      const redirectUri = q.get('redirect_uri') ?? '';
      if (q.get('client_id') !== clientId || !redirectUri) return sendJson(res, 400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('base64url');
      codes.set(code, {
        clientId,
        redirectUri,
        nonce: q.get('nonce') ?? undefined,
        challenge: q.get('code_challenge_method') === 'S256' ? (q.get('code_challenge') ?? undefined) : undefined,
      });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      if (q.has('state')) back.searchParams.set('state', q.get('state')!);
      const advertised = fake.metadata.authorization_response_iss_parameter_supported ?? true;
      const iss = fake.issParameter === undefined ? (advertised ? fake.issuer : null) : fake.issParameter;
      if (iss !== null) back.searchParams.set('iss', iss);
      return redirect(res, back);
    }

    if (url.pathname === '/token' && req.method === 'POST') {
      const form = await readForm(req);
      const client = clientCredentials(req, form);
      if (client.id !== clientId || client.secret !== clientSecret) return sendJson(res, 401, { error: 'invalid_client' });
      const code = form.get('code') ?? '';
      const grant = codes.get(code);
      codes.delete(code); // single use
      const verifier = form.get('code_verifier') ?? '';
      if (
        form.get('grant_type') !== 'authorization_code' ||
        !grant ||
        grant.redirectUri !== form.get('redirect_uri') ||
        !grant.challenge ||
        createHash('sha256').update(verifier).digest('base64url') !== grant.challenge
      ) {
        return sendJson(res, 400, { error: 'invalid_grant' });
      }
      const now = Math.floor(Date.now() / 1000);
      const idToken = await fake.idToken({
        iss: fake.issuer,
        sub: 'user-1',
        aud: clientId,
        nonce: grant.nonce,
        iat: now,
        exp: now + 300,
      });
      const accessToken = randomBytes(16).toString('base64url');
      accessTokens.add(accessToken);
      return sendJson(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }

    if (url.pathname === '/userinfo' && fake.userinfo) {
      const token = req.headers.authorization?.replace(/^Bearer /, '');
      if (!token || !accessTokens.has(token)) {
        return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      }
      return sendJson(res, 200, fake.userinfo);
    }
    return sendJson(res, 404, { error: 'not_found' });
  });

  fake = {
    origin: server.origin,
    issuer: server.origin,
    clientId,
    clientSecret,
    metadata: {},
    issParameter: undefined,
    idToken: (defaults) => fake.sign(defaults),
    userinfo: undefined,
    get kid() {
      return current.kid;
    },
    counts,
    async sign(claims, signOptions = {}) {
      const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
      const alg = signOptions.alg ?? 'RS256';
      if (alg === 'none') return new UnsecuredJWT(payload).encode();
      if (alg === 'HS256') {
        return new SignJWT(payload)
          .setProtectedHeader({ alg: 'HS256', ...(signOptions.kid ? { kid: signOptions.kid } : {}) })
          .sign(new TextEncoder().encode(signOptions.secret ?? clientSecret));
      }
      const key = signOptions.key === 'foreign' ? foreign : current;
      const kid = signOptions.kid === undefined ? key.kid : signOptions.kid;
      return new SignJWT(payload).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).sign(await importJWK(key.privateJwk, alg));
    },
    async rotateKey() {
      current = await newKey(`key-${++generation}`);
      return current.kid;
    },
    authorize: (authorizationUrl) => redirectTarget(authorizationUrl),
    close: () => server.close(),
  };
  return fake;
}
