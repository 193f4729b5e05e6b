// Rate limits per client IP on login, callback, refresh and every admin route: in-process, shared through
// Redis by several instances, and still enforced (per instance) while Redis is unreachable.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import type { FastifyBaseLogger, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { loggerOptions } from '../../src/logger.js';
import { buildTestApp } from '../helpers/app.js';
import { ADMIN_TOKEN } from '../helpers/admin.js';
import { testDatabase } from '../helpers/db.js';
import { freePort, ROOT } from '../helpers/process.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { eventually } from '../helpers/wait.js';

const REDIS_URL = 'redis://127.0.0.1:6379';

function assertLimited(t: Test, res: LightMyRequestResponse, name: string): void {
  t.equal(res.statusCode, 429, name);
  t.equal(res.json().error, 'rate_limited', name);
  t.match(res.json().error_description, /^Too many requests; retry in \d+ s\.$/, name);
  const retryAfter = Number(res.headers['retry-after']);
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${name}: Retry-After ${res.headers['retry-after']}`);
}

/** Every admin route from openapi.yaml (test/openapi.test.ts keeps it equal to the served routes). */
async function adminRoutes(): Promise<{ method: InjectOptions['method']; url: string }[]> {
  const doc = parse(await readFile(`${ROOT}/openapi.yaml`, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/admin/'))
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => ['get', 'post', 'patch', 'delete'].includes(m))
        .map((m) => ({ method: m.toUpperCase() as InjectOptions['method'], url: path.replace(/\{\w+\}/g, randomUUID()) })),
    );
}

function logLines(): { lines: string[]; logger: FastifyBaseLogger } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: pino(loggerOptions('info'), sink) };
}

t.test('in-process limits, per client IP and route', async (t) => {
  const { app } = await buildTestApp(t, { env: { ADMIN_TOKEN, RATE_LIMIT_LOGIN: '2', RATE_LIMIT_REFRESH: '2', RATE_LIMIT_ADMIN: '2' } });
  const from = (remoteAddress: string, o: InjectOptions) => app.inject({ ...o, remoteAddress });

  t.test('login and callback', async (t) => {
    for (const url of ['/auth/nope/login', '/auth/nope/callback']) {
      const first = await from('192.0.2.1', { url });
      t.equal(first.statusCode, 404, url);
      t.equal(first.headers['x-ratelimit-limit'], '2');
      t.equal(first.headers['x-ratelimit-remaining'], '1');
      t.equal((await from('192.0.2.1', { url })).statusCode, 404, url);
      assertLimited(t, await from('192.0.2.1', { url }), url);
      t.equal((await from('192.0.2.2', { url })).statusCode, 404, `${url}: another client IP has its own count`);
    }
  });

  t.test('refresh', async (t) => {
    const refresh = (ip: string) => from(ip, { method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x' } });
    t.equal((await refresh('192.0.2.3')).statusCode, 401);
    t.equal((await refresh('192.0.2.3')).statusCode, 401);
    assertLimited(t, await refresh('192.0.2.3'), 'refresh');
    t.equal((await refresh('192.0.2.4')).statusCode, 401, 'another client IP');
  });

  t.test('every admin route, before authentication', async (t) => {
    const routes = await adminRoutes();
    t.ok(routes.length >= 10, `${routes.length} admin routes`);
    for (const { method, url } of routes) {
      t.equal((await from('192.0.2.5', { method, url })).statusCode, 401, `${method} ${url}`);
      t.equal((await from('192.0.2.5', { method, url })).statusCode, 401, `${method} ${url}`);
      assertLimited(t, await from('192.0.2.5', { method, url }), `${method} ${url}`);
    }
    const withToken = { url: '/admin/keys', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
    t.equal((await from('192.0.2.6', withToken)).statusCode, 200);
    t.equal((await from('192.0.2.6', withToken)).statusCode, 200);
    assertLimited(t, await from('192.0.2.6', withToken), 'the admin token counts too');
  });
});

t.test('0 turns a limit off', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_REFRESH: '0', RATE_LIMIT_DISCOVERY: '0', RATE_LIMIT_LOGIN: '1' } });
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x' } });
    t.equal(res.statusCode, 401);
    t.equal(res.headers['x-ratelimit-limit'], undefined);
    const jwks = await app.inject('/.well-known/jwks.json');
    t.equal(jwks.statusCode, 200);
    t.equal(jwks.headers['x-ratelimit-limit'], undefined);
  }
});

t.test('the client IP is X-Forwarded-For only behind a trusted proxy', async (t) => {
  const { storage } = await testDatabase(t);
  const direct = (await buildTestApp(t, { storage, env: { RATE_LIMIT_LOGIN: '1' } })).app;
  const login = (app: typeof direct, xff: string) => app.inject({ url: '/auth/nope/login', headers: { 'x-forwarded-for': xff } });
  t.equal((await login(direct, '198.51.100.1')).statusCode, 404);
  assertLimited(t, await login(direct, '198.51.100.2'), 'an untrusted X-Forwarded-For does not make a new client');
});

// TRUST_PROXY=true took the left-most X-Forwarded-For entry, which the client writes itself: every limit could be
// dodged and the audit log recorded an address of the client's choosing. Only the entries the trusted proxies
// appended count now, whatever the client put in front of them.
for (const [setting, proxyAddress] of [
  ['1', '203.0.113.40'],
  ['10.0.0.0/8, 192.168.0.0/16', '10.1.2.3'],
] as const) {
  t.test(`TRUST_PROXY=${setting}: a client-set X-Forwarded-For cannot choose the client IP`, async (t) => {
    const { app } = await buildTestApp(t, { env: { TRUST_PROXY: setting, RATE_LIMIT_LOGIN: '1', ADMIN_TOKEN } });
    // what the proxy forwards: whatever the client sent, then the address the proxy saw
    const viaProxy = (o: InjectOptions, clientSent: string, clientIp: string) =>
      app.inject({ ...o, remoteAddress: proxyAddress, headers: { ...o.headers, 'x-forwarded-for': `${clientSent}, ${clientIp}` } });
    const login = { url: '/auth/nope/login' };
    t.equal((await viaProxy(login, '192.0.2.1', '198.51.100.7')).statusCode, 404);
    assertLimited(t, await viaProxy(login, '192.0.2.2', '198.51.100.7'), 'a new left-most entry is the same client');
    assertLimited(t, await viaProxy(login, '192.0.2.3, 192.0.2.4', '198.51.100.7'), 'so are several');
    t.equal((await viaProxy(login, '192.0.2.1', '198.51.100.8')).statusCode, 404, 'another client behind the proxy');

    const rotate = { method: 'POST' as const, url: '/admin/keys/rotate', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
    t.equal((await viaProxy(rotate, '192.0.2.9', '198.51.100.9')).statusCode, 200);
    const audit = await app.inject({
      url: '/admin/audit?type=key.rotation_requested',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    t.same(
      audit.json().events.map((e: { ip: string }) => e.ip),
      ['198.51.100.9'],
      'the audit log records the address the proxy saw, not the one the client wrote',
    );

    // a client that reaches the gateway directly (not through a trusted proxy) is its own address
    if (setting !== '1') {
      const direct = await app.inject({ ...login, remoteAddress: '198.51.100.50', headers: { 'x-forwarded-for': '10.9.9.9' } });
      t.equal(direct.statusCode, 404);
      assertLimited(
        t,
        await app.inject({ ...login, remoteAddress: '198.51.100.50', headers: { 'x-forwarded-for': '10.9.9.8' } }),
        'X-Forwarded-For from an untrusted peer is ignored',
      );
    }
  });
}

/** Why the Redis tests cannot run, or false when Redis answers. */
async function redisUnreachable(): Promise<string | false> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch {
    return `Redis is not reachable at ${REDIS_URL}: start it to test limits shared by instances`;
  } finally {
    probe.disconnect();
  }
}

t.test('Redis: instances share the limits', { skip: await redisUnreachable() }, async (t) => {
  const probe = new Redis(REDIS_URL);
  // a prefix of its own, so test files running at once never share counters
  const prefix = `test-${randomUUID()}:`;
  t.teardown(async () => {
    const keys = await probe.keys(`${prefix}*`);
    if (keys.length) await probe.del(...keys);
    await probe.quit();
  });
  const { storage } = await testDatabase(t);
  const env = { REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_ADMIN: '4' };

  t.test('two instances count together', async (t) => {
    const a = (await buildTestApp(t, { storage, env })).app;
    const b = (await buildTestApp(t, { storage, env })).app;
    const keys = (app: typeof a, remoteAddress = '192.0.2.10') => app.inject({ url: '/admin/keys', remoteAddress });
    t.equal((await keys(a)).statusCode, 401);
    t.equal((await keys(b)).statusCode, 401);
    t.equal((await keys(a)).statusCode, 401);
    const fourth = await keys(b);
    t.equal(fourth.statusCode, 401);
    t.equal(fourth.headers['x-ratelimit-remaining'], '0', 'the fourth request of four, whichever instance answers');
    assertLimited(t, await keys(a), 'the fifth on instance A');
    assertLimited(t, await keys(b), 'the sixth on instance B');
    t.equal((await keys(b, '192.0.2.11')).statusCode, 401, 'another client IP');
    t.ok((await probe.keys(`${prefix}rl:GET:/admin/keys:*`)).length >= 1, 'the counters live in Redis under the prefix');
  });

  t.test('while Redis is away each instance counts on its own, then shares again', async (t) => {
    const proxy = new TcpProxy('127.0.0.1', 6379);
    await proxy.start();
    t.teardown(() => proxy.stop());
    const { lines, logger } = logLines();
    const a = (await buildTestApp(t, { storage, env: { ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` }, deps: { logger } })).app;
    const b = (await buildTestApp(t, { storage, env })).app;
    const users = (app: typeof a) => app.inject({ url: '/admin/users', remoteAddress: '192.0.2.20' });
    t.equal((await users(a)).statusCode, 401);
    t.equal((await users(b)).statusCode, 401);
    t.equal((await users(a)).statusCode, 401, 'three in Redis');

    await proxy.stop();
    for (let i = 1; i <= 4; i++) t.equal((await users(a)).statusCode, 401, `A alone, request ${i} of 4`);
    assertLimited(t, await users(a), 'A still limits without Redis');
    t.equal(lines.filter((l) => l.includes('rate-limit store (Redis) unavailable')).length, 1, 'one warning, not one per request');
    t.notMatch(lines.join(''), /redis:\/\//, 'the Redis URL is not logged');

    await proxy.restore();
    // ioredis reconnects on its own schedule: wait for the instance to say so, however long that takes
    await eventually(() => lines.some((l) => l.includes('rate-limit store (Redis) available again')), { what: 'the reconnect log line' });
    t.ok(
      lines.some((l) => l.includes('available again')),
      'reconnected',
    );
    t.equal((await users(a)).statusCode, 401, 'the fourth in Redis');
    assertLimited(t, await users(b), 'B sees what A counted once Redis is back');
  });

  t.test('an instance starts, and limits, when Redis is unreachable from the beginning', async (t) => {
    const { lines, logger } = logLines();
    const port = await freePort();
    const { app } = await buildTestApp(t, { storage, env: { ...env, REDIS_URL: `redis://127.0.0.1:${port}` }, deps: { logger } });
    t.equal((await app.inject('/healthz')).statusCode, 200);
    for (let i = 0; i < 4; i++) t.equal((await app.inject({ url: '/admin/audit' })).statusCode, 401);
    assertLimited(t, await app.inject({ url: '/admin/audit' }), 'limited in-process');
    t.ok(lines.some((l) => l.includes('rate-limit store (Redis) unavailable')));
  });
});
