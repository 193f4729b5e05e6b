// node-oidc-provider as the peer the gateway's refresh is compared with: its process (bench/oidc-provider.ts) on a
// Postgres database of its own, refresh tokens obtained through real authorization code flows (PKCE), and its
// refresh_token grant driven like the gateway's refresh: every connection rotates its own token.
import { createHash, randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { benchDatabase, type Load, perConnection, type Server, startProcess, stopProcess } from './common.js';
import { PEER_CLIENT_ID, PEER_REDIRECT_URI, PEER_RESOURCE, PEER_SCOPE } from './oidc-provider.js';

export async function startPeer(): Promise<Server> {
  const database = await benchDatabase();
  try {
    const { url, child } = await startProcess(
      'bench/oidc-provider.ts',
      { PEER_DATABASE_URL: database.url },
      '/.well-known/openid-configuration',
    );
    return {
      url,
      pid: child.pid!,
      database: database.name,
      close: async () => {
        await stopProcess(child);
        await database.drop();
      },
    };
  } catch (err) {
    await database.drop();
    throw err;
  }
}

/** One authorization code flow with PKCE, redirects followed by hand with the provider's cookies; its tokens. */
async function codeFlow(peer: Server): Promise<{ access_token: string; refresh_token: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL('/auth', peer.url);
  authorize.search = new URLSearchParams({
    client_id: PEER_CLIENT_ID,
    response_type: 'code',
    redirect_uri: PEER_REDIRECT_URI,
    scope: PEER_SCOPE,
    resource: PEER_RESOURCE,
    // offline_access (a refresh token) is only granted with an explicit consent prompt (OpenID Connect Core 11)
    prompt: 'consent',
    state: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const cookies = new Map<string, string>();
  let location = authorize.href;
  for (let hop = 0; !location.startsWith(PEER_REDIRECT_URI); hop++) {
    if (hop > 5) throw new Error('the peer did not redirect back with a code');
    const res = await fetch(location, {
      redirect: 'manual',
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const next = res.headers.get('location');
    if (!next) throw new Error(`the peer answered ${res.status} at ${new URL(location).pathname}: ${await res.text()}`);
    location = new URL(next, location).href;
  }
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`the peer redirected without a code: ${location}`);
  const res = await fetch(new URL('/token', peer.url), {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: PEER_REDIRECT_URI,
      client_id: PEER_CLIENT_ID,
      code_verifier: verifier,
    }),
  });
  const tokens = (await res.json()) as { access_token?: string; refresh_token?: string };
  if (!res.ok || !tokens.refresh_token || !tokens.access_token)
    throw new Error(`the peer's code exchange failed: ${JSON.stringify(tokens)}`);
  // the job being compared: an ES256 JWT access token
  if (decodeProtectedHeader(tokens.access_token).alg !== 'ES256') throw new Error('the peer did not issue an ES256 JWT access token');
  return tokens as { access_token: string; refresh_token: string };
}

/** n refresh tokens of n accounts, each from its own authorization code flow. */
export async function peerRefreshTokens(peer: Server, n: number): Promise<string[]> {
  const tokens: string[] = [];
  // a few flows at a time: setup, not measured
  for (let i = 0; i < n; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => codeFlow(peer)));
    tokens.push(...batch.map((t) => t.refresh_token));
  }
  return tokens;
}

/** POST /token grant_type=refresh_token with a real rotation on every request, one token chain per connection. */
export function peerRotations(refreshTokens: string[]): Load {
  return perConnection(
    refreshTokens.map((token) => ({ token })),
    (state) => ({
      method: 'POST',
      path: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      setupRequest: (req) => ({
        ...req,
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: state.token, client_id: PEER_CLIENT_ID }).toString(),
      }),
      onResponse: (status, body) => {
        if (status === 200) state.token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
      },
    }),
  );
}
