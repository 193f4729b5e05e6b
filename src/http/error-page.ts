// Error answers a person reads: a browser that navigated to a gateway URL (a provider's redirect back with a bad
// state, a login link for an unknown provider, a mistyped address) gets a small HTML page instead of raw JSON.
// API clients keep the JSON body of the error handler (src/errors.ts), chosen by content negotiation on Accept:
// a browser's navigation prefers text/html; fetch(), curl and API clients send */* or ask for JSON.
//
// The page is rendered from the error handler's JSON body in an onSend hook, so the handler itself stays the one
// place that maps errors to codes and statuses, and both forms always say the same thing.
import { createHash } from 'node:crypto';
import accepts from '@fastify/accepts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * What each error code means to the person who sees it (the code itself is shown beside it). invalid_request has
 * none: its description already says what was wrong with the request.
 */
export const ERROR_MESSAGES: Record<string, string> = {
  access_denied: 'The sign-in was cancelled at the provider, or the provider refused it.',
  login_failed: 'The answer from the provider could not be verified, so you were not signed in.',
  temporarily_unavailable: 'The sign-in service or the provider is unavailable at the moment. Please try again shortly.',
  account_disabled: 'This account is disabled. Please contact an administrator.',
  identity_in_use: 'That account at the provider is already linked to another user.',
  invalid_grant: 'Your session has ended. Please sign in again.',
  invalid_token: 'Your session has ended. Please sign in again.',
  not_found: 'There is nothing at this address.',
  rate_limited: 'Too many attempts in a short time. Please wait a minute and try again.',
  server_error: 'Something went wrong on our side. Please try again later.',
};

const TITLES: Record<number, string> = { 400: 'Sign-in could not continue', 404: 'Not found', 429: 'Too many attempts' };

const STYLE = `body{font-family:system-ui,sans-serif;background:#f6f8fa;color:#1f2328;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #d1d9e0;border-radius:12px;padding:2rem 2.5rem;max-width:32rem;margin:1rem}
h1{font-size:1.35rem;margin:0 0 .75rem}p{line-height:1.5;margin:.5rem 0}.detail{color:#59636e}
code{background:#f6f8fa;border:1px solid #d1d9e0;border-radius:4px;padding:.05rem .35rem;font-size:.85rem}
a{color:#1d4ed8}`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** a strict CSP for the page: no script at all, only its own inline style (by hash) and its empty data: icon */
export const ERROR_PAGE_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderErrorPage(status: number, error: string, description: string, home?: string): string {
  const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Request refused');
  const message = ERROR_MESSAGES[error];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>${STYLE}</style></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
${message ? `<p>${escapeHtml(message)}</p>\n<p class="detail">${escapeHtml(description)}</p>` : `<p>${escapeHtml(description)}</p>`}
<p class="detail">Error <code>${escapeHtml(error)}</code> · HTTP ${status}</p>
<p>${home ? `<a href="${escapeHtml(home)}">Back to the start page</a>` : 'Go back to the application you came from and try again.'}</p>
</main></body></html>`;
}

/** Does this request come from a person's browser navigation (HTML preferred over JSON)? */
function wantsHtml(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  return request.accepts().type(['application/json', 'text/html']) === 'text/html';
}

/**
 * Turns the error handler's JSON answers into HTML pages for browsers. `home` is a page to offer as the way back
 * (the demo page when it is served), else the page tells the reader to return to their application.
 */
export function registerErrorPages(app: FastifyInstance, options: { home?: string } = {}): void {
  void app.register(accepts);
  // a callback hook, not an async one: it runs on every response, and almost always passes the payload on
  app.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
    if (
      reply.statusCode < 400 ||
      typeof payload !== 'string' ||
      !/^application\/json\b/.test(String(reply.getHeader('content-type') ?? ''))
    ) {
      return done(null, payload);
    }
    if (!wantsHtml(request)) {
      void reply.header('vary', 'Accept');
      return done(null, payload);
    }
    let body: { error?: unknown; error_description?: unknown };
    try {
      body = JSON.parse(payload) as typeof body;
    } catch {
      return done(null, payload);
    }
    if (typeof body.error !== 'string') return done(null, payload);
    void reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', ERROR_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('vary', 'Accept');
    done(
      null,
      renderErrorPage(reply.statusCode, body.error, typeof body.error_description === 'string' ? body.error_description : '', options.home),
    );
  });
}
