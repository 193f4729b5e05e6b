// A fake GitHub (github.com + api.github.com on one port): the OAuth web flow with PKCE, /user and /user/emails.
// Like GitHub it answers token errors with HTTP 200 and an `error` member, and form-encodes the token response
// unless the request accepts JSON. It checks the PKCE verifier against the S256 challenge it saw.
import { createHash, randomBytes } from 'node:crypto';
import { clientCredentials, listen, readForm, redirect, redirectTarget, sendJson } from './listen.js';

export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility?: string | null;
}

export interface FakeGitHub {
  /** PROVIDER_{ID}_BASE_URL */
  readonly baseUrl: string;
  /** PROVIDER_{ID}_API_URL (GitHub Enterprise style, under /api/v3) */
  readonly apiUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** GET /user */
  user: Record<string, unknown>;
  /** GET /user/emails */
  emails: GitHubEmail[];
  /** the next authorization ends with error=access_denied */
  denyNext: boolean;
  /** requests per path */
  readonly counts: Record<string, number>;
  /** requests our authorization URL and returns the callback URL it redirects to */
  authorize(authorizationUrl: URL): Promise<URL>;
  close(): Promise<void>;
}

export async function startFakeGitHub(options: { clientId?: string; clientSecret?: string } = {}): Promise<FakeGitHub> {
  const clientId = options.clientId ?? 'gh-client';
  const clientSecret = options.clientSecret ?? 'gh-client-secret';
  const codes = new Map<string, { redirectUri: string; challenge: string | undefined }>();
  const tokens = new Set<string>();
  const counts: Record<string, number> = {};

  let fake!: FakeGitHub;
  const server = await listen(async (req, res) => {
    const url = new URL(req.url ?? '/', fake.baseUrl);
    counts[url.pathname] = (counts[url.pathname] ?? 0) + 1;

    if (url.pathname === '/login/oauth/authorize') {
      const q = url.searchParams;
      const back = new URL(q.get('redirect_uri') ?? '');
      if (fake.denyNext) {
        fake.denyNext = false;
        back.searchParams.set('error', 'access_denied');
        back.searchParams.set('error_description', 'The user has denied your application access.');
      } else {
        const code = randomBytes(10).toString('hex');
        const challenge = q.get('code_challenge_method') === 'S256' ? (q.get('code_challenge') ?? undefined) : undefined;
        codes.set(code, { redirectUri: back.href, challenge });
        back.searchParams.set('code', code);
      }
      if (q.has('state')) back.searchParams.set('state', q.get('state')!);
      return redirect(res, back);
    }

    if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') {
      const form = await readForm(req);
      const client = clientCredentials(req, form);
      const code = form.get('code') ?? '';
      const grant = codes.get(code);
      codes.delete(code);
      let body: Record<string, string>;
      if (client.id !== clientId || client.secret !== clientSecret) {
        body = { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' };
      } else if (!grant || grant.redirectUri !== form.get('redirect_uri')) {
        body = { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' };
      } else if (
        !grant.challenge ||
        createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url') !== grant.challenge
      ) {
        body = { error: 'invalid_grant', error_description: 'The code_verifier does not match the code_challenge.' };
      } else {
        const token = `gho_${randomBytes(16).toString('hex')}`;
        tokens.add(token);
        body = { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' };
      }
      if ((req.headers.accept ?? '').includes('application/json')) return sendJson(res, 200, body);
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
      return res.end(new URLSearchParams(body).toString());
    }

    if (url.pathname === '/api/v3/user' || url.pathname === '/api/v3/user/emails') {
      const token = req.headers.authorization?.replace(/^(Bearer|token) /, '');
      if (!token || !tokens.has(token)) return sendJson(res, 401, { message: 'Bad credentials' });
      return sendJson(res, 200, url.pathname.endsWith('/emails') ? fake.emails : fake.user);
    }
    return sendJson(res, 404, { message: 'Not Found' });
  });

  fake = {
    baseUrl: server.origin,
    apiUrl: `${server.origin}/api/v3`,
    clientId,
    clientSecret,
    user: { id: 4242, login: 'octocat', name: 'The Octocat', avatar_url: 'https://avatars.example.com/u/4242', email: 'public@example.com' },
    emails: [
      { email: 'octo-unverified@example.com', primary: false, verified: false, visibility: null },
      { email: 'octocat@example.com', primary: true, verified: true, visibility: 'private' },
    ],
    denyNext: false,
    counts,
    authorize: (authorizationUrl) => redirectTarget(authorizationUrl),
    close: () => server.close(),
  };
  return fake;
}
