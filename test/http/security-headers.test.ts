// Security headers are set in one place (@fastify/helmet) for every response: JSON, HTML, redirects, errors,
// 404s and 429s alike. No page can be framed; no response can be sniffed into another type.
import type { LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { ADMIN_TOKEN } from '../helpers/admin.js';
import { testDatabase } from '../helpers/db.js';

/** The CSP as directive → sources. */
function csp(res: LightMyRequestResponse): Map<string, string> {
  const raw = String(res.headers['content-security-policy'] ?? '');
  return new Map(
    raw
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => {
        const [name, ...sources] = d.split(/\s+/);
        return [name, sources.join(' ')] as const;
      }),
  );
}

// one database for every app of this file: each app only reads, or writes what no other test looks at
const { storage } = await testDatabase(t);

function framingRefused(t: Test, res: LightMyRequestResponse, name: string): void {
  t.equal(csp(res).get('frame-ancestors'), "'none'", `${name}: CSP frame-ancestors 'none'`);
  t.equal(res.headers['x-frame-options'], 'DENY', `${name}: X-Frame-Options DENY`);
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`);
  t.equal(res.headers['referrer-policy'], 'no-referrer', `${name}: no referrer`);
  t.notOk(res.headers['x-powered-by'], `${name}: no X-Powered-By`);
}

t.test('every kind of response carries the security headers', async (t) => {
  const { app } = await buildTestApp(t, { storage, env: { DEMO_PAGE: 'true', ADMIN_TOKEN, RATE_LIMIT_LOGIN: '1' } });
  const cases: [string, LightMyRequestResponse, number][] = [
    ['the demo page', await app.inject('/'), 200],
    ['the demo script', await app.inject('/demo.js'), 200],
    ['JSON', await app.inject('/healthz'), 200],
    ['the JWKS', await app.inject('/.well-known/jwks.json'), 200],
    ['a redirect', await app.inject({ url: '/auth/logout', headers: { 'sec-fetch-site': 'same-origin' } }), 302],
    ['a 400', await app.inject({ url: '/admin/users?limit=0', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }), 400],
    ['a 401', await app.inject('/auth/userinfo'), 401],
    ['a 404', await app.inject('/nowhere'), 404],
    ['a 404 route answer', await app.inject('/auth/nope/login'), 404],
    ['a 429', await app.inject('/auth/nope/login'), 429],
  ];
  for (const [name, res, status] of cases) {
    t.equal(res.statusCode, status, name);
    framingRefused(t, res, name);
  }
});

t.test('JSON answers get a CSP that loads nothing', async (t) => {
  const { app } = await buildTestApp(t, { storage });
  for (const url of ['/healthz', '/auth/userinfo', '/nowhere']) {
    const res = await app.inject(url);
    t.match(res.headers['content-type'], /^application\/json/);
    t.equal(csp(res).get('default-src'), "'none'", url);
    t.notOk(csp(res).has('script-src'), `${url}: no script source at all`);
  }
});

t.test("the demo page's CSP stays strict: its own script only, no inline script, no framing", async (t) => {
  const { app } = await buildTestApp(t, { storage, env: { DEMO_PAGE: 'true' } });
  const page = await app.inject('/');
  t.match(page.headers['content-type'], /^text\/html/);
  const policy = csp(page);
  t.equal(policy.get('default-src'), "'none'");
  t.equal(policy.get('script-src'), "'self'");
  t.equal(policy.get('connect-src'), "'self'");
  t.equal(policy.get('frame-ancestors'), "'none'");
  t.equal(policy.get('base-uri'), "'none'");
  t.equal(policy.get('form-action'), "'none'");
  t.notMatch(
    page.headers['content-security-policy'],
    /unsafe-eval|'unsafe-inline'[^;]*script|script-src[^;]*unsafe/,
    'no unsafe script source',
  );
  t.equal(page.headers['cache-control'], 'no-cache');
});

t.test('HSTS only when PUBLIC_URL is https', async (t) => {
  const plain = await buildTestApp(t, { storage });
  t.notOk((await plain.app.inject('/healthz')).headers['strict-transport-security'], 'not on http');
  const tls = await buildTestApp(t, { storage, env: { PUBLIC_URL: 'https://auth.example.com' } });
  t.match((await tls.app.inject('/healthz')).headers['strict-transport-security'], /^max-age=\d{7,}/);
});

t.test('the JWKS and the discovery document may be read from any origin', async (t) => {
  const { app } = await buildTestApp(t, { storage });
  for (const url of ['/.well-known/jwks.json', '/.well-known/openid-configuration']) {
    const res = await app.inject(url);
    t.equal(res.headers['access-control-allow-origin'], '*', url);
    t.equal(res.headers['cross-origin-resource-policy'], 'cross-origin', url);
    t.equal(res.headers['x-content-type-options'], 'nosniff', url);
  }
  t.equal((await app.inject('/healthz')).headers['cross-origin-resource-policy'], 'same-origin', 'other routes stay same-origin');
});
