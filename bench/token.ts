// The OpenID Provider's token endpoint, against real Postgres:
// - refresh_token grant: a confidential client (client_secret_basic), every request a real rotation of its own
//   grant (each connection keeps the token its previous request returned), the job POST /auth/refresh does for
//   the gateway's own sessions;
// - authorization_code exchange: BENCH_CODES codes issued before each round (each for its own browser session),
//   each redeemed once: PKCE check, the grant opened, an ES256 access token and an RS256 ID token signed.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { type BenchGateway, CONNECTIONS, openSessions, perConnection, type Scenario } from './common.js';

const CODES = Number(process.env.BENCH_CODES ?? 1500);
if (!Number.isInteger(CODES) || CODES < CONNECTIONS) throw new Error('BENCH_CODES must be a whole number, at least BENCH_CONNECTIONS');
const REDIRECT = 'https://app.example.com/cb';

interface BenchClient {
  id: string;
  authorization: string;
}

async function benchClient(gw: BenchGateway): Promise<BenchClient> {
  const { client, secret } = await gw.app.ctx.clients.register(
    {
      client_name: 'bench',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    { actor: 'bench', ip: null },
  );
  // RFC 6749 section 2.3.1: form-encoded, then base64
  const basic = Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(secret!)}`).toString('base64');
  return { id: client.id, authorization: `Basic ${basic}` };
}

/** n grants of the client, each from its own browser session: their first refresh tokens */
async function openGrants(gw: BenchGateway, client: BenchClient, n: number): Promise<string[]> {
  const sessions = await openSessions(gw, n);
  const now = new Date();
  return Promise.all(
    sessions.map(async (s) => {
      const parent = gw.app.ctx.refreshTokens.parse(s.refreshToken)!.sessionId;
      const user = (await gw.storage.db.selectFrom('sessions').select('user_id').where('id', '=', parent).executeTakeFirstOrThrow())
        .user_id;
      const grant = await gw.app.ctx.sessions.openGrant(
        {
          parentSessionId: parent,
          userId: user,
          clientId: client.id,
          scope: 'openid email profile',
          audience: [],
          authTime: now,
          meta: {},
          codeHash: 'none',
        },
        now,
      );
      return gw.app.ctx.refreshTokens.mint(grant!.grantId, 0);
    }),
  );
}

export async function tokenScenarios(gw: BenchGateway): Promise<Scenario[]> {
  const client = await benchClient(gw);
  const refresh: Scenario = {
    key: 'token-refresh',
    label: 'POST /oauth2/token refresh_token',
    system: 'gateway',
    server: gw,
    // the same job as node-oidc-provider's refresh_token grant
    peer: 'oidc-provider-refresh',
    prepare: async () =>
      perConnection(
        (await openGrants(gw, client, CONNECTIONS)).map((token) => ({ token })),
        (state) => ({
          method: 'POST',
          path: '/oauth2/token',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: client.authorization },
          setupRequest: (req) => ({ ...req, body: `grant_type=refresh_token&refresh_token=${state.token}` }),
          onResponse: (status, body) => {
            if (status === 200) state.token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
          },
        }),
      ),
  };
  const exchange: Scenario = {
    key: 'token-code',
    label: 'POST /oauth2/token authorization_code',
    system: 'gateway',
    server: gw,
    prepare: async (purpose) => {
      const n = purpose === 'warmup' ? CONNECTIONS * 2 : CODES;
      const sessions = await openSessions(gw, n);
      const now = new Date();
      const codes: { body: string }[] = [];
      const rows = [];
      for (const s of sessions) {
        const sessionId = gw.app.ctx.refreshTokens.parse(s.refreshToken)!.sessionId;
        const user = JSON.parse(Buffer.from(s.accessToken.split('.')[1], 'base64url').toString()).sub as string;
        const code = randomBytes(32).toString('base64url');
        const verifier = randomBytes(32).toString('base64url');
        rows.push({
          code_hash: createHash('sha256').update(code).digest('base64url'),
          client_id: client.id,
          session_id: sessionId,
          user_id: user,
          redirect_uri: REDIRECT,
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          nonce: randomUUID(),
          scope: 'openid email profile',
          audience: [],
          auth_time: now,
          created_at: now,
          // the gateway's own code lifetime (CODE_TTL_S)
          expires_at: new Date(now.getTime() + 60_000),
        });
        codes.push({
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
        });
      }
      for (let i = 0; i < rows.length; i += 1000)
        await gw.storage.db
          .insertInto('authorization_codes')
          .values(rows.slice(i, i + 1000))
          .execute();
      return {
        amount: codes.length,
        requests: [
          {
            method: 'POST',
            path: '/oauth2/token',
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: client.authorization },
            setupRequest: (req) => ({ ...req, body: codes.shift()!.body }),
          },
        ],
      };
    },
  };
  return [refresh, exchange];
}
