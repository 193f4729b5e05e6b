// DEMO_PAGE=true: a small page at / that signs in through /auth/providers, then shows the user from
// /auth/userinfo and the decoded access token, with Refresh, Switch user and Sign out. It only calls the public
// API. Its CSP is strict: no inline script (the script is /demo.js), the one inline style allowed by its hash.
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { App } from './context.js';
import { readSessionCookie } from './http/cookies.js';
import { ERROR_MESSAGES } from './http/error-page.js';
import { pageHeaders } from './http/security-headers.js';

const STYLE = `body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.2rem;margin:.25rem 0 .5rem}h3{font-size:1rem;margin:1.25rem 0 .4rem}
.muted{color:#59636e}.card{border:1px solid #d1d9e0;border-radius:10px;padding:1rem 1.25rem;margin:1rem 0}
a.button,button{display:inline-block;padding:.5rem 1rem;margin:.25rem .5rem .25rem 0;border-radius:6px;border:1px solid #1f2328;
background:#fff;color:#1f2328;text-decoration:none;font:inherit;cursor:pointer}
a.button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff}button:disabled{opacity:.6;cursor:progress}
.provider{margin:.25rem 0}.provider .other{font-size:.9rem;margin-left:.25rem}
.alert{border:1px solid #f4b4ae;background:#fff5f4;color:#7a1d13;border-radius:8px;padding:.75rem 1rem;margin:1rem 0}
.alert strong{display:block;margin-bottom:.2rem}.notice{border:1px solid #a7d3b0;background:#f1fbf3;color:#17461f;
border-radius:8px;padding:.6rem 1rem;margin:.75rem 0}
code{background:#f6f8fa;border:1px solid #d1d9e0;border-radius:4px;padding:0 .3rem;font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dt{color:#59636e}dd{margin:0}
pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow:auto;font-size:.8rem}[hidden]{display:none!important}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

const page = (hasSession: boolean) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>auth-gateway demo</title><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="gw-session" content="${hasSession ? 'present' : 'absent'}">
<style>${STYLE}</style></head>
<body>
<h1>auth-gateway demo</h1>
<p class="muted">This page only calls the gateway's public API: <code>/auth/providers</code>, <code>/auth/refresh</code>,
<code>/auth/userinfo</code> and <code>/auth/logout</code>.</p>
<div id="error" class="alert" role="alert" hidden><strong id="error-title"></strong><span id="error-message"></span>
<span class="muted">(<code id="error-code"></code>)</span></div>
<p id="status" class="notice" role="status" aria-live="polite" hidden></p>
<section id="loading" class="card muted">Checking for a session…</section>
<section id="signed-out" class="card" hidden><h2>Sign in</h2><div id="providers"></div></section>
<section id="signed-in" class="card" hidden>
<h2>Signed in as <span id="user-name"></span></h2>
<dl>
<dt>Email</dt><dd id="user-email"></dd>
<dt>Roles</dt><dd id="user-roles"></dd>
<dt>Signed in</dt><dd id="auth-time"></dd>
<dt>Access token</dt><dd id="token-expiry"></dd>
</dl>
<button id="refresh" type="button">Refresh</button><button id="switch" type="button">Switch user</button><button id="logout" type="button">Sign out</button>
<h3>Access token claims</h3><pre id="token-claims"></pre>
<h3>/auth/userinfo</h3><pre id="userinfo"></pre>
</section>
<script src="/demo.js"></script>
</body></html>`;

const SCRIPT = `'use strict';
const MESSAGES = ${JSON.stringify(ERROR_MESSAGES)};
const $ = (id) => document.getElementById(id);
const show = (state) => { for (const s of ['loading', 'signed-in', 'signed-out']) $(s).hidden = s !== state; };
const decode = (jwt) => JSON.parse(atob(jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
// date, time and zone, e.g. "1 Dec 2026, 09:41:05 CET"
const when = (seconds) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' }).format(new Date(seconds * 1000));
const inMinutes = (seconds) => {
  const m = Math.round((seconds * 1000 - Date.now()) / 60000);
  return m <= 0 ? 'now' : m === 1 ? 'in 1 minute' : 'in ' + m + ' minutes';
};
let providerList = [];
let claims;

function status(text) { $('status').textContent = text; $('status').hidden = !text; }
function error(title, code) {
  $('error-title').textContent = title;
  $('error-message').textContent = MESSAGES[code] || 'Something went wrong.';
  $('error-code').textContent = code;
  $('error').hidden = false;
}

// Sign-in links. After a sign-out the provider still remembers who signed in there; prompt=login makes it ask.
function loginUrl(p, askAgain) {
  return p.login_url + '?return_to=' + encodeURIComponent('/') + (askAgain ? '&prompt=login' : '');
}
function renderProviders() {
  const box = $('providers');
  box.replaceChildren();
  const askAgain = sessionStorage.getItem('gw-demo-signed-out') === '1';
  for (const p of providerList) {
    const row = document.createElement('div');
    row.className = 'provider';
    const a = document.createElement('a');
    a.className = 'button primary';
    a.href = loginUrl(p, askAgain);
    a.textContent = 'Sign in with ' + p.name;
    a.addEventListener('click', () => sessionStorage.setItem('gw-demo-provider', p.id));
    row.append(a);
    if (!askAgain) {
      const other = document.createElement('a');
      other.className = 'other';
      other.href = loginUrl(p, true);
      other.textContent = 'use another account';
      other.addEventListener('click', () => sessionStorage.setItem('gw-demo-provider', p.id));
      row.append(other);
    }
    box.append(row);
  }
  if (!providerList.length) box.textContent = 'No provider is configured (AUTH_PROVIDERS).';
}

async function loadProviders() {
  providerList = (await (await fetch('/auth/providers')).json()).providers;
  renderProviders();
}

function signedOut() { claims = undefined; renderProviders(); show('signed-out'); }

async function refresh(userAsked) {
  const button = $('refresh');
  button.disabled = true;
  button.textContent = 'Refreshing…';
  try {
    const res = await fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      if (userAsked) error('Refresh failed', body.error || 'server_error');
      signedOut();
      return;
    }
    const { access_token } = await res.json();
    const me = await (await fetch('/auth/userinfo', { headers: { authorization: 'Bearer ' + access_token } })).json();
    const previous = claims;
    claims = decode(access_token);
    sessionStorage.removeItem('gw-demo-signed-out');
    $('user-name').textContent = me.name || me.email || me.sub;
    $('user-email').textContent = me.email || '(no email)';
    $('user-roles').textContent = me.roles.length ? me.roles.join(', ') : 'none';
    $('auth-time').textContent = claims.auth_time ? when(claims.auth_time) : 'unknown';
    $('token-expiry').textContent = 'issued ' + when(claims.iat) + ', expires ' + when(claims.exp) + ' (' + inMinutes(claims.exp) + ')';
    $('token-claims').textContent = JSON.stringify(claims, null, 2);
    $('userinfo').textContent = JSON.stringify(me, null, 2);
    show('signed-in');
    if (userAsked) {
      status('Refreshed at ' + when(claims.iat) + ': a new access token' + (previous && previous.sid === claims.sid ? ' for the same session' : '') +
        ', valid until ' + when(claims.exp) + '.');
    }
  } finally {
    button.disabled = false;
    button.textContent = 'Refresh';
  }
}

async function signOut() {
  await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin' });
  sessionStorage.setItem('gw-demo-signed-out', '1');
}

$('refresh').addEventListener('click', () => { $('error').hidden = true; refresh(true); });
$('logout').addEventListener('click', async () => {
  await signOut();
  status('Signed out. The next sign-in asks the provider who you are again.');
  signedOut();
});
$('switch').addEventListener('click', async () => {
  await signOut();
  const p = providerList.find((x) => x.id === sessionStorage.getItem('gw-demo-provider'));
  if (p) { location.assign(loginUrl(p, true)); return; }
  status('Signed out. Choose how to sign in as another user.');
  signedOut();
});

const params = new URLSearchParams(location.search);
if (params.get('error')) {
  error('Sign-in failed', params.get('error'));
  history.replaceState(null, '', location.pathname); // a reload does not show it again
}
// without a session cookie there is nothing to refresh: ask only when there is one
const hasSession = document.querySelector('meta[name="gw-session"]').content === 'present';
loadProviders().then(() => (hasSession ? refresh(false) : signedOut()));
`;

export async function demoPageRoutes(app: App): Promise<void> {
  const { config } = app.ctx;
  // the security headers come from the one global policy; the page adds only the sources it uses, and its one
  // inline style by hash (no 'unsafe-inline')
  const helmet = pageHeaders({
    'script-src': ["'self'"],
    'connect-src': ["'self'"],
    'style-src': [`'sha256-${STYLE_HASH}'`],
    'img-src': ["'self'", 'data:'],
  });
  app.get('/', { helmet, schema: { response: { 200: Type.String() } } }, async (request, reply) => {
    // the page says whether a session cookie came with it (not whether it is valid), so that a signed-out load
    // does not ask /auth/refresh for a session that is not there
    void reply.header('cache-control', 'no-cache').header('vary', 'Cookie').type('text/html; charset=utf-8');
    return page(readSessionCookie(request, config) !== undefined);
  });
  app.get('/demo.js', { helmet, schema: { response: { 200: Type.String() } } }, async (_request, reply) => {
    void reply.header('cache-control', 'no-cache').type('text/javascript; charset=utf-8');
    return SCRIPT;
  });
}
