// Error answers for people: a browser navigation gets an HTML page, API clients keep the JSON (chosen by Accept).
import t from 'tap';
import { renderErrorPage } from '../../src/http/error-page.js';
import { buildTestApp } from '../helpers/app.js';

// what Chromium sends when it navigates to a page
const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8';
const ENV = { AUTH_PROVIDERS: 'corp', PROVIDER_CORP_ISSUER: 'http://127.0.0.1:9/', PROVIDER_CORP_CLIENT_ID: 'x' };

t.test('a browser gets an HTML page, with the code, what it means and the description', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV });
  const res = await app.inject({ url: '/auth/nope/login', headers: { accept: BROWSER } });
  t.equal(res.statusCode, 404);
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/);
  t.match(res.headers.vary, /Accept/);
  t.match(res.body, /<h1>Not found<\/h1>/);
  t.match(res.body, /There is nothing at this address\./);
  t.match(res.body, /Unknown provider &#34;nope&#34;\./, 'the description, escaped');
  t.match(res.body, /<code>not_found<\/code> · HTTP 404/);
  t.notMatch(res.body, /<script/i, 'no script');
  const csp = res.headers['content-security-policy'] as string;
  t.match(csp, /default-src 'none'/);
  t.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/, 'only its own inline style, by hash');
  t.notMatch(csp, /script-src|unsafe-inline/);
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(res.headers['cache-control'], 'no-store', 'the error handler’s headers stay');
});

t.test('the provider’s redirect back with a bad state: a page that says the sign-in could not continue', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV });
  const res = await app.inject({ url: '/auth/corp/callback?state=forged&code=x', headers: { accept: BROWSER } });
  t.equal(res.statusCode, 400);
  t.match(res.headers['content-type'], /^text\/html/);
  t.match(res.body, /<h1>Sign-in could not continue<\/h1>/);
  t.match(res.body, /<code>invalid_request<\/code>/);
  t.match(res.body, /Go back to the application you came from and try again\./, 'no demo page: no link to one');
});

t.test('with the demo page the error page links back to it', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...ENV, DEMO_PAGE: 'true' } });
  const res = await app.inject({ url: '/auth/nope/login', headers: { accept: BROWSER } });
  t.match(res.body, /<a href="\/">Back to the start page<\/a>/);
});

t.test('API clients keep the JSON error: */*, JSON, no Accept, and anything but GET or HEAD', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV });
  for (const accept of ['*/*', 'application/json', 'application/json, text/html;q=0.5', undefined]) {
    const res = await app.inject({ url: '/auth/nope/login', headers: accept ? { accept } : {} });
    t.equal(res.statusCode, 404);
    t.match(res.headers['content-type'], /^application\/json/, `Accept: ${accept ?? '(none)'}`);
    t.same(res.json(), { error: 'not_found', error_description: 'Unknown provider "nope".' });
    t.match(res.headers.vary, /Accept/, 'caches keep the two apart');
  }
  const post = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { accept: BROWSER }, payload: {} });
  t.equal(post.statusCode, 401);
  t.match(post.headers['content-type'], /^application\/json/, 'a POST from a page is a script’s call, not a navigation');
});

t.test('successful answers are untouched', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV });
  const res = await app.inject({ url: '/auth/providers', headers: { accept: BROWSER } });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
});

t.test('everything the page shows is escaped', async (t) => {
  const html = renderErrorPage(400, '<img src=x onerror=alert(1)>', '"quoted" & <b>bold</b>', '/?a=1&b="2"');
  t.notMatch(html, /<img|<b>/);
  t.match(html, /&#60;img src=x onerror=alert\(1\)&#62;/);
  t.match(html, /&#34;quoted&#34; &#38; &#60;b&#62;bold&#60;\/b&#62;/);
  t.match(html, /href="\/\?a=1&#38;b=&#34;2&#34;"/);
  t.match(html, /<h1>Sign-in could not continue<\/h1>/);
  t.notMatch(html, /<p>[^<]*means/, 'an unknown code: no invented explanation');
});
