// Server-rendered pages of the OpenID Provider: the hosted sign-in page, an error page for what must not be
// redirected, and the sign-out confirmation. No script at all, every value escaped, a strict CSP.
import type { FastifyReply } from 'fastify';
import { pageHeaders } from '../http/security-headers.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Route option for these pages: no script, no framing, styles only from the page itself, forms only to us. */
export const PAGE_HEADERS = pageHeaders({ 'style-src': ["'unsafe-inline'"], 'img-src': ["'self'", 'data:'], 'form-action': ["'self'"] });

const STYLE = `
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--line:#d1d9e0;--accent:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8}}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
main{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem 2.25rem;width:min(26rem,calc(100vw - 2rem));
box-shadow:0 8px 24px #0000000f}
h1{font-size:1.35rem;margin:0 0 .35rem}p{margin:.25rem 0 1rem;color:var(--muted)}
ul{list-style:none;padding:0;margin:1.25rem 0 0;display:grid;gap:.6rem}
a.provider,button{display:block;width:100%;text-align:center;padding:.7rem 1rem;border-radius:8px;font:inherit;font-weight:600;
text-decoration:none;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer}
a.provider:hover,button:hover{border-color:var(--accent)}a.provider:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.foot{margin-top:1.5rem;font-size:.875rem;text-align:center}.foot a{color:var(--muted)}
code{font-size:.85em;background:var(--bg);padding:.1em .35em;border-radius:4px}`;

function page(reply: FastifyReply, status: number, title: string, body: string) {
  void reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store');
  return reply.send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`);
}

export interface SignInChoice {
  name: string;
  url: string;
}

/** The hosted sign-in page: which application asks, and the providers to sign in with. */
export function signInPage(reply: FastifyReply, p: { clientName: string; providers: SignInChoice[]; cancelUrl: string }) {
  const items = p.providers
    .map((c) => `<li><a class="provider" href="${escapeHtml(c.url)}">Continue with ${escapeHtml(c.name)}</a></li>`)
    .join('');
  return page(
    reply,
    200,
    `Sign in to ${p.clientName}`,
    `<h1>Sign in</h1><p>to continue to <strong>${escapeHtml(p.clientName)}</strong></p>
<nav aria-label="Sign-in providers"><ul>${items}</ul></nav>
<p class="foot"><a href="${escapeHtml(p.cancelUrl)}">Cancel and go back</a></p>`,
  );
}

/** What cannot be sent back to an application: an unknown client, a redirect URI that is not registered, … */
export function errorPage(reply: FastifyReply, status: number, p: { error: string; description: string }) {
  return page(
    reply,
    status,
    'Sign-in cannot continue',
    `<h1>Sign-in cannot continue</h1><p role="alert">${escapeHtml(p.description)}</p>
<p>Go back to the application and try again. If this keeps happening, tell its operator: <code>${escapeHtml(p.error)}</code></p>`,
  );
}

/**
 * RP-Initiated Logout without proof of who asks: the user confirms (a form posted to ourselves). The form's
 * answer redirects to the registered post-logout URI, which CSP form-action must allow too.
 */
export function logoutConfirmPage(
  reply: FastifyReply,
  p: { clientName: string | null; fields: Record<string, string>; redirectOrigin?: string },
) {
  if (p.redirectOrigin) {
    const csp = String(reply.getHeader('content-security-policy') ?? '');
    void reply.header('content-security-policy', csp.replace("form-action 'self'", `form-action 'self' ${p.redirectOrigin}`));
  }
  const hidden = Object.entries(p.fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  const who = p.clientName ? ` from <strong>${escapeHtml(p.clientName)}</strong>` : '';
  return page(
    reply,
    200,
    'Sign out?',
    `<h1>Sign out?</h1><p>A request${who} asks to sign you out of every application using this sign-in.</p>
<form method="post" action="/oauth2/logout">${hidden}<input type="hidden" name="confirm" value="1">
<button class="primary" type="submit">Sign out</button></form>`,
  );
}

export function signedOutPage(reply: FastifyReply) {
  return page(reply, 200, 'Signed out', `<h1>You are signed out</h1><p>You can close this window.</p>`);
}
