// The Demo App: a small downstream web application that signs its users in through the gateway as an OpenID
// Provider, the way any application would. It is a confidential client (client_secret_basic) and uses a certified
// client library, openid-client, for the standard flow: discovery, an authorization request with PKCE (S256), state
// and nonce, the code exchange with the ID token validated by the library, UserInfo, a refresh, and RP-Initiated
// Logout back to its own page. `npm start` runs it on 127.0.0.1 as the client of demo/clients.yaml; the browser
// test runs it in front of a gateway with two providers.
//
// Its sessions live in memory, keyed by a random HttpOnly cookie; its pages have no script at all.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

export interface DemoAppOptions {
  /** the gateway's issuer (its PUBLIC_URL) */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** where to listen on 127.0.0.1; 0: a port the system picks */
  port: number;
  /** the host name browsers use for the app (default 127.0.0.1); http://<host>:<port>/callback is its redirect URI */
  publicHost?: string;
  /** an address to point readers to for the gateway's own demo page */
  gatewayPage?: string;
}

export interface DemoApp {
  /** the app's origin, e.g. http://127.0.0.1:3002 */
  url: string;
  close(): Promise<void>;
}

interface Signedin {
  idToken: string;
  accessToken: string;
  refreshToken: string | undefined;
  claims: oidc.IDToken;
  userinfo: oidc.UserInfoResponse;
  accessTokenExpiresAt: number | undefined;
}

interface AppSession {
  /** the authorization request in flight */
  pending?: { verifier: string; state: string; nonce: string };
  user?: Signedin;
  /** shown once at the next page */
  notice?: { kind: 'status' | 'alert'; text: string };
}

const COOKIE = 'demo_app';
const SCOPE = 'openid profile email';
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const when = (seconds: unknown) =>
  typeof seconds === 'number'
    ? new Date(seconds * 1000).toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'long', timeZone: 'UTC' })
    : '–';

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b636d;--bg:#eef2f0;--card:#fff;--line:#cfd8d3;--accent:#0f766e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa4ae;--bg:#0f1513;--card:#17201d;--line:#2c3a35;--accent:#2dd4bf}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
header{background:var(--accent);color:#fff;padding:.9rem 1.5rem;font-weight:700;letter-spacing:.02em}
@media (prefers-color-scheme:dark){header{color:#04211d}}
main{max-width:44rem;margin:2rem auto;padding:0 1rem}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.5rem 1.75rem;margin-bottom:1.25rem}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.05rem;margin:0 0 .75rem}p{margin:.25rem 0 1rem;color:var(--muted)}
form{display:inline}.row{display:flex;gap:.6rem;flex-wrap:wrap;margin-top:1rem}
button{padding:.6rem 1.1rem;border-radius:8px;font:inherit;font-weight:600;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
pre{background:var(--bg);border-radius:8px;padding:.75rem 1rem;overflow:auto;font-size:.85rem;margin:0}
.notice{border-radius:8px;padding:.6rem .9rem;margin-bottom:1rem;border:1px solid var(--line)}
.notice.alert{border-color:#b91c1c;color:#b91c1c}a{color:var(--accent)}`;

export async function startDemoApp(o: DemoAppOptions): Promise<DemoApp> {
  const sessions = new Map<string, AppSession>();
  let url = '';
  let config: Promise<oidc.Configuration> | undefined;
  // discovered at the first sign-in, when the gateway is surely up; a failure is retried at the next one
  const client = () =>
    (config ??= oidc
      .discovery(new URL(o.issuer), o.clientId, undefined, oidc.ClientSecretBasic(o.clientSecret), {
        // the demo runs on http://localhost; a real deployment's issuer is https
        execute: o.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
      })
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      }));
  const gatewayOrigin = new URL(o.issuer).origin;

  const sessionOf = (req: IncomingMessage): [string, AppSession] | undefined => {
    const m = /(?:^|;\s*)demo_app=([A-Za-z0-9_-]{43})(?:;|$)/.exec(req.headers.cookie ?? '');
    const s = m ? sessions.get(m[1]!) : undefined;
    return m && s ? [m[1]!, s] : undefined;
  };
  const newSession = (res: ServerResponse, s: AppSession): void => {
    const id = randomBytes(32).toString('base64url');
    sessions.set(id, s);
    res.setHeader('set-cookie', `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`);
  };
  const redirect = (res: ServerResponse, to: string) => {
    res.writeHead(303, { location: to, 'cache-control': 'no-store' });
    res.end();
  };

  const page = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // no script; forms post here and redirect on to the gateway (form-action covers those redirects)
      'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' ${gatewayOrigin}; frame-ancestors 'none'; base-uri 'none'`,
      'x-content-type-options': 'nosniff',
      // not no-referrer: under it a browser sends "Origin: null" with the forms' POSTs, which the check below refuses
      'referrer-policy': 'same-origin',
    });
    res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo App</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><header>Demo App</header><main>${body}</main></body></html>`);
  };

  const home = (res: ServerResponse, s: AppSession | undefined) => {
    const notice = s?.notice
      ? `<div class="notice ${s.notice.kind}" role="${s.notice.kind}">${escape(s.notice.text)}</div>`
      : '<div role="status"></div>';
    if (s) delete s.notice;
    const u = s?.user;
    const back = o.gatewayPage ? ` The gateway's own demo page is at <a href="${escape(o.gatewayPage)}">${escape(o.gatewayPage)}</a>.` : '';
    if (!u) {
      return page(
        res,
        200,
        `${notice}<section><h1>Welcome to the Demo App</h1>
<p>A downstream application on its own origin. It signs you in through the auth gateway as its OpenID Provider:
the authorization code flow with PKCE, as any OpenID client library does it.${back}</p>
<form method="post" action="/login"><button class="primary" type="submit">Sign in with Auth Gateway</button></form></section>`,
      );
    }
    const name = String(u.userinfo.name ?? u.claims.name ?? u.claims.sub);
    const rows: [string, unknown][] = [
      ['Subject', u.claims.sub],
      ['Email', u.userinfo.email ?? '–'],
      ['Signed in upstream', when(u.claims.auth_time)],
      ['Access token expires', when(u.accessTokenExpiresAt)],
      ['Refresh token', u.refreshToken ? 'yes (rotates at every refresh)' : 'no'],
    ];
    return page(
      res,
      200,
      `${notice}<section><h1 id="signed-in-as">Signed in as ${escape(name)}</h1>
<dl>${rows.map(([k, v]) => `<dt>${escape(k)}</dt><dd id="${escape(k.toLowerCase().replace(/ /g, '-'))}">${escape(String(v))}</dd>`).join('')}</dl>
<div class="row"><form method="post" action="/refresh"><button type="submit">Refresh tokens</button></form>
<form method="post" action="/logout"><button type="submit">Sign out</button></form></div></section>
<section><h2>ID token claims</h2><pre id="id-token-claims">${escape(JSON.stringify(u.claims, null, 2))}</pre></section>
<section><h2>UserInfo</h2><pre id="userinfo">${escape(JSON.stringify(u.userinfo, null, 2))}</pre></section>`,
    );
  };

  /** the tokens of a code exchange, or of a refresh (which keeps the first ID token: OIDC Core 12.2 makes one optional) */
  const signedIn = (
    tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
    userinfo: oidc.UserInfoResponse,
    previous?: Signedin,
  ): Signedin => {
    const claims = tokens.id_token ? tokens.claims() : previous?.claims;
    const idToken = tokens.id_token ?? previous?.idToken;
    if (!claims || !idToken) throw new Error('the gateway answered without an ID token');
    const expiresIn = tokens.expiresIn();
    return {
      idToken,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token ?? previous?.refreshToken,
      claims,
      userinfo,
      accessTokenExpiresAt: expiresIn === undefined ? undefined : Math.floor(Date.now() / 1000) + expiresIn,
    };
  };

  const failure = (err: unknown) => {
    if (err instanceof oidc.AuthorizationResponseError)
      return `The gateway answered ${err.error}: ${err.error_description ?? 'no description'}`;
    if (err instanceof oidc.ResponseBodyError) return `The gateway refused: ${err.error} (${err.error_description ?? 'no description'})`;
    return `Something went wrong: ${(err as Error).message}`;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const here = new URL(req.url ?? '/', url);
    const found = sessionOf(req);
    const s = found?.[1];
    if (req.method === 'GET' && here.pathname === '/') return home(res, s);
    if (req.method === 'GET' && here.pathname === '/callback') {
      if (!s?.pending) return redirect(res, '/');
      const { verifier, state, nonce } = s.pending;
      delete s.pending;
      try {
        const c = await client();
        const tokens = await oidc.authorizationCodeGrant(c, here, {
          pkceCodeVerifier: verifier,
          expectedState: state,
          expectedNonce: nonce,
          idTokenExpected: true,
        });
        const userinfo = await oidc.fetchUserInfo(c, tokens.access_token, tokens.claims()!.sub);
        s.user = signedIn(tokens, userinfo);
        s.notice = { kind: 'status', text: 'Signed in through the gateway.' };
      } catch (err) {
        s.notice = { kind: 'alert', text: failure(err) };
      }
      return redirect(res, '/');
    }
    if (req.method !== 'POST' || !['/login', '/refresh', '/logout'].includes(here.pathname)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('Not found');
    }
    // a form of ours, not another site's (browsers send Origin with every POST)
    if (req.headers.origin !== url) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end('Forbidden: a cross-site form');
    }
    for await (const chunk of req) void chunk; // the forms carry nothing
    try {
      if (here.pathname === '/login') {
        const pending = { verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
        const c = await client();
        const to = oidc.buildAuthorizationUrl(c, {
          redirect_uri: `${url}/callback`,
          scope: SCOPE,
          code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
          state: pending.state,
          nonce: pending.nonce,
        });
        if (s) s.pending = pending;
        else newSession(res, { pending });
        return redirect(res, to.href);
      }
      if (!s?.user) return redirect(res, '/');
      const c = await client();
      if (here.pathname === '/refresh') {
        if (!s.user.refreshToken) throw new Error('no refresh token');
        const tokens = await oidc.refreshTokenGrant(c, s.user.refreshToken);
        const userinfo = await oidc.fetchUserInfo(c, tokens.access_token, s.user.claims.sub);
        s.user = signedIn(tokens, userinfo, s.user);
        s.notice = { kind: 'status', text: `Refreshed at ${when(Math.floor(Date.now() / 1000))}: new tokens for the same grant.` };
        return redirect(res, '/');
      }
      // sign out here and at the gateway, which ends its session and every grant made from it, then comes back
      const idToken = s.user.idToken;
      sessions.delete(found![0]);
      newSession(res, { notice: { kind: 'status', text: 'Signed out of the Demo App and of the gateway.' } });
      return redirect(res, oidc.buildEndSessionUrl(c, { id_token_hint: idToken, post_logout_redirect_uri: `${url}/` }).href);
    } catch (err) {
      if (s) s.notice = { kind: 'alert', text: failure(err) };
      return redirect(res, '/');
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Demo App error: ${(err as Error).message}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://${o.publicHost ?? '127.0.0.1'}:${port}`;
  return {
    url,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
