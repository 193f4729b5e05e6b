// Every public route is rate limited per client (admin, login and refresh limits: test/admin/rate-limit.test.ts),
// and a client is its IPv4 address or its IPv6 /64: one host gets a whole /64, so counting single IPv6 addresses
// would let it pick a fresh address for every request.
import { readFile } from 'node:fs/promises';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { buildTestApp } from '../helpers/app.js';
import { testDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/process.js';
import { signedIn } from '../helpers/users.js';

const { storage } = await testDatabase(t);

function assertLimited(t: Test, res: LightMyRequestResponse, name: string): void {
  t.equal(res.statusCode, 429, name);
  t.equal(res.json().error, 'rate_limited', name);
  t.ok(Number(res.headers['retry-after']) >= 1, `${name}: Retry-After`);
}

/** The documented default per route group (README's Configuration table). */
const DEFAULTS: Record<string, number> = {
  'GET /healthz': 1200,
  'GET /readyz': 1200,
  'GET /metrics': 1200,
  'GET /.well-known/jwks.json': 1200,
  'GET /.well-known/openid-configuration': 1200,
  'GET /auth/providers': 1200,
  'GET /': 1200,
  'GET /demo.js': 1200,
  'GET /auth/{provider}/login': 30,
  'GET /auth/{provider}/callback': 30,
  'POST /auth/refresh': 120,
  'POST /auth/logout': 300,
  'GET /auth/logout': 300,
  'GET /auth/userinfo': 300,
  'GET /.well-known/oauth-authorization-server': 1200,
  'GET /oauth2/authorize': 30,
  'POST /oauth2/authorize': 30,
  'GET /oauth2/authorize/resume': 30,
  'GET /oauth2/signin': 30,
  'POST /oauth2/token': 1200,
  'POST /oauth2/revoke': 1200,
  'POST /oauth2/introspect': 1200,
  'GET /oauth2/userinfo': 300,
  'POST /oauth2/userinfo': 300,
  'GET /oauth2/logout': 300,
  'POST /oauth2/logout': 300,
};

t.test('every route in openapi.yaml has a limit by default', async (t) => {
  const { app } = await buildTestApp(t, { storage, env: { DEMO_PAGE: 'true' } });
  const doc = parse(await readFile(`${ROOT}/openapi.yaml`, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const routes = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
  t.ok(routes.length >= 20, `${routes.length} routes`);
  for (const route of routes) {
    const [method, path] = route.split(' ') as [InjectOptions['method'], string];
    const url = path.replace('{provider}', 'nope').replace(/\{\w+\}/g, '00000000-0000-4000-8000-000000000000');
    const res = await app.inject({ method, url, remoteAddress: '198.51.100.7', headers: { 'sec-fetch-site': 'same-origin' } });
    const limit = res.headers['x-ratelimit-limit'];
    t.ok(limit !== undefined, `${route}: limited (answered ${res.statusCode})`);
    if (!path.startsWith('/admin/')) t.equal(Number(limit), DEFAULTS[route], `${route}: the documented default`);
    else t.equal(Number(limit), 300, `${route}: RATE_LIMIT_ADMIN`);
  }
});

t.test('userinfo, logout, JWKS and discovery refuse a client over its limit', async (t) => {
  const { app } = await buildTestApp(t, {
    storage,
    env: { RATE_LIMIT_SESSION: '2', RATE_LIMIT_DISCOVERY: '2', RATE_LIMIT_OPERATIONS: '2' },
  });
  const user = await signedIn(app);
  const bearer = { authorization: `Bearer ${user.tokens.accessToken}` };
  const cases: [string, InjectOptions][] = [
    ['userinfo', { url: '/auth/userinfo', headers: bearer }],
    ['POST logout', { method: 'POST', url: '/auth/logout', payload: { refresh_token: 'x' } }],
    ['GET logout', { url: '/auth/logout', headers: { 'sec-fetch-site': 'same-origin' } }],
    ['JWKS', { url: '/.well-known/jwks.json' }],
    ['discovery', { url: '/.well-known/openid-configuration' }],
    ['providers', { url: '/auth/providers' }],
    ['readyz', { url: '/readyz' }],
  ];
  for (const [name, options] of cases) {
    const from = (remoteAddress: string) => app.inject({ ...options, remoteAddress });
    t.ok((await from('192.0.2.30')).statusCode < 400, `${name} 1`);
    t.ok((await from('192.0.2.30')).statusCode < 400, `${name} 2`);
    assertLimited(t, await from('192.0.2.30'), name);
    t.ok((await from('192.0.2.31')).statusCode < 400, `${name}: another client has its own count`);
  }
});

t.test('IPv6 clients are counted per /64, IPv4 clients per address', async (t) => {
  const { app } = await buildTestApp(t, { storage, env: { RATE_LIMIT_LOGIN: '2' } });
  const login = (remoteAddress: string) => app.inject({ url: '/auth/nope/login', remoteAddress });

  t.equal((await login('2001:db8:1:2::1')).statusCode, 404);
  t.equal((await login('2001:db8:1:2:ffff:ffff:ffff:fffe')).statusCode, 404, 'another address of the same /64');
  assertLimited(t, await login('2001:0db8:0001:0002:0000:0000:0000:0009'), 'the same /64 written out in full');
  assertLimited(t, await login('2001:DB8:1:2:a:b:c:d'), 'upper case');
  t.equal((await login('2001:db8:1:3::1')).statusCode, 404, 'the next /64 is another client');

  t.equal((await login('192.0.2.40')).statusCode, 404);
  t.equal((await login('::ffff:192.0.2.40')).statusCode, 404, 'an IPv4-mapped address is that IPv4 client');
  assertLimited(t, await login('192.0.2.40'), 'IPv4: the third request');
  t.equal((await login('192.0.2.41')).statusCode, 404, 'IPv4: a neighbour is another client');
});

t.test('the JWKS and the discovery document are cacheable: Cache-Control, ETag, 304', async (t) => {
  const { app } = await buildTestApp(t, { storage });
  for (const url of ['/.well-known/jwks.json', '/.well-known/openid-configuration']) {
    const first = await app.inject(url);
    t.equal(first.statusCode, 200, url);
    t.match(first.headers['cache-control'], /^public, max-age=\d+$/, url);
    const etag = first.headers.etag as string;
    t.match(etag, /^"[\w-]+"$/, `${url}: a strong ETag`);
    t.equal((await app.inject(url)).headers.etag, etag, `${url}: the same body, the same ETag`);
    for (const inm of [etag, `"other", ${etag}`, `W/${etag}`, '*']) {
      const again = await app.inject({ url, headers: { 'if-none-match': inm } });
      t.equal(again.statusCode, 304, `${url}: If-None-Match ${inm}`);
      t.equal(again.body, '');
      t.equal(again.headers.etag, etag);
    }
    t.equal((await app.inject({ url, headers: { 'if-none-match': '"other"' } })).statusCode, 200, `${url}: another ETag`);
  }
  const doc = await app.inject('/.well-known/openid-configuration');
  await app.ctx.keys.rotateNow();
  t.equal((await app.inject('/.well-known/openid-configuration')).headers.etag, doc.headers.etag, 'same algorithms, same document');
  t.not((await app.inject('/.well-known/jwks.json')).headers.etag, undefined);
});
