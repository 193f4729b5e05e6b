// DEMO_PAGE=true: a small page at / that signs in through /auth/providers, then shows the user from
// /auth/userinfo, the decoded access token, and Refresh and Sign out buttons. It only calls the public API.
import { Type } from '@sinclair/typebox';
import type { App } from './context.js';
import { pageHeaders } from './http/security-headers.js';

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>auth-gateway demo</title><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.5rem}.muted{color:#59636e}.card{border:1px solid #d1d9e0;border-radius:10px;padding:1rem 1.25rem;margin:1rem 0}
a.button,button{display:inline-block;padding:.55rem 1rem;margin:.25rem .5rem .25rem 0;border-radius:6px;border:1px solid #1f2328;
background:#fff;color:#1f2328;text-decoration:none;font-size:1rem;cursor:pointer}
a.button{background:#1d4ed8;border-color:#1d4ed8;color:#fff}#error{color:#b42318;font-weight:600}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow:auto;font-size:.85rem}[hidden]{display:none!important}
</style></head>
<body>
<h1>auth-gateway demo</h1>
<p class="muted">This page only calls the gateway's public API: <code>/auth/providers</code>, <code>/auth/refresh</code>,
<code>/auth/userinfo</code> and <code>/auth/logout</code>.</p>
<p id="error" role="alert" hidden></p>
<section id="signed-out" class="card" hidden><h2>Sign in</h2><div id="providers"></div></section>
<section id="signed-in" class="card" hidden>
<h2>Signed in as <span id="user-name"></span></h2>
<p><span id="user-email"></span> · roles: <span id="user-roles"></span></p>
<button id="refresh">Refresh</button><button id="logout">Sign out</button>
<h3>Access token <span class="muted" id="token-expiry"></span></h3><pre id="token-claims"></pre>
<h3>/auth/userinfo</h3><pre id="userinfo"></pre>
</section>
<script src="/demo.js"></script>
</body></html>`;

const SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
const show = (signedIn) => { $('signed-in').hidden = !signedIn; $('signed-out').hidden = signedIn; };
const decode = (jwt) => JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));

async function providers() {
  const { providers } = await (await fetch('/auth/providers')).json();
  const box = $('providers');
  box.replaceChildren();
  for (const p of providers) {
    const a = document.createElement('a');
    a.className = 'button';
    a.href = p.login_url + '?return_to=' + encodeURIComponent('/');
    a.textContent = 'Sign in with ' + p.name;
    box.append(a);
  }
  if (!providers.length) box.textContent = 'No provider is configured (AUTH_PROVIDERS).';
}

async function refresh() {
  const res = await fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' });
  if (!res.ok) { show(false); return; }
  const { access_token } = await res.json();
  const me = await (await fetch('/auth/userinfo', { headers: { authorization: 'Bearer ' + access_token } })).json();
  const claims = decode(access_token);
  $('user-name').textContent = me.name || me.email || me.sub;
  $('user-email').textContent = me.email || '(no email)';
  $('user-roles').textContent = me.roles.length ? me.roles.join(', ') : 'none';
  $('token-claims').textContent = JSON.stringify(claims, null, 2);
  $('token-expiry').textContent = 'expires ' + new Date(claims.exp * 1000).toLocaleTimeString();
  $('userinfo').textContent = JSON.stringify(me, null, 2);
  show(true);
}

$('refresh').addEventListener('click', () => refresh());
$('logout').addEventListener('click', async () => {
  await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin' });
  show(false);
});

const error = new URLSearchParams(location.search).get('error');
if (error) { $('error').textContent = 'Sign-in failed: ' + error; $('error').hidden = false; }
providers().then(refresh);
`;

export async function demoPageRoutes(app: App): Promise<void> {
  // the security headers come from the one global policy; the page adds only the sources it uses
  const helmet = pageHeaders({
    'script-src': ["'self'"],
    'connect-src': ["'self'"],
    'style-src': ["'unsafe-inline'"],
    'img-src': ["'self'", 'data:'],
  });
  app.get('/', { helmet, schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    void reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8');
    return HTML;
  });
  app.get('/demo.js', { helmet, schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    void reply.header('cache-control', 'no-cache').type('text/javascript; charset=utf-8');
    return SCRIPT;
  });
}
