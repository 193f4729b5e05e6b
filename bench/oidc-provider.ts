// The benchmark's peer: node-oidc-provider in its own process, configured like a production token service for one
// resource server: a public client with PKCE, refresh tokens rotated on every use (a reused one revokes the grant),
// ES256-signed JWT access tokens for the resource `urn:bench:api`, and its state in Postgres (DATABASE_URL) through
// the small JSONB adapter beside this file. Sign-in and consent are granted at once by /interaction/{uid}, so a
// client that follows the redirects gets an authorization code; `bench/peer.ts` drives it.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import pg from 'pg';
import { postgresAdapter, SCHEMA } from './oidc-pg-adapter.js';

export const PEER_CLIENT_ID = 'bench';
export const PEER_REDIRECT_URI = 'http://127.0.0.1/callback';
export const PEER_RESOURCE = 'urn:bench:api';
export const PEER_SCOPE = 'offline_access api';

// only run as a process (bench/peer.ts imports the constants above)
if (process.env.PEER_DATABASE_URL) await serve(process.env.PEER_DATABASE_URL, Number(process.env.PORT));

async function serve(databaseUrl: string, port: number): Promise<void> {
  // the gateway's default pool size
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  await pool.query(SCHEMA);

  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `peer-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    adapter: postgresAdapter(pool),
    clients: [
      {
        client_id: PEER_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        redirect_uris: [PEER_REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => PEER_RESOURCE,
        // a refresh without a resource parameter gets an access token for the granted resource server
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: PEER_RESOURCE,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    // every refresh rotates: the presented token is consumed, a new one issued, a reused one revokes the grant
    rotateRefreshToken: true,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 30 * 86400, Interaction: 600, RefreshToken: 14 * 86400, Session: 3600 },
  });
  const oidc = provider.callback();

  const server = createServer((req, res) => {
    if (!req.url?.startsWith('/interaction/')) return oidc(req, res);
    // sign-in and consent in one step: a new account, granted what the benchmark client asks for
    void (async () => {
      const accountId = randomUUID();
      const grant = new provider.Grant({ accountId, clientId: PEER_CLIENT_ID });
      grant.addOIDCScope('offline_access');
      grant.addResourceScope(PEER_RESOURCE, 'api');
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
    })().catch((err: unknown) => {
      process.stderr.write(`peer interaction failed: ${String(err)}\n`);
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.on('SIGTERM', () => {
    server.close();
    void pool.end().then(() => process.exit(0));
  });
}
