// Strict input: a request body is never coerced into the type a route wants, query strings only have their
// numbers parsed, unknown parameters are refused everywhere in the admin API, and every 400 names the field or
// parameter and what it accepts. Also the edges of the HTTP surface: 405 with Allow, 413, 415, and
// WWW-Authenticate without an error code when no credentials were sent (RFC 6750 section 3.1).
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { buildTestApp } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { ROOT } from '../helpers/process.js';
import { createUser, signedIn } from '../helpers/users.js';

const METRICS_TOKEN = 'metrics-token-0123456789';

t.test('strict input and clear errors', async (t) => {
  const { app, storage } = await buildTestApp(t, { env: { ADMIN_TOKEN, METRICS_TOKEN } });
  const call = adminCall(app);

  /** 400 invalid_request whose description matches every pattern (and is no ajv jargon). */
  const refused = (t: Test, res: LightMyRequestResponse, name: string, ...patterns: RegExp[]) => {
    t.equal(res.statusCode, 400, `${name}: 400`);
    t.equal(res.json().error, 'invalid_request', name);
    const text: string = res.json().error_description;
    for (const p of patterns) t.match(text, p, `${name}: "${text}" matches ${p}`);
    t.notMatch(text, /must be equal to constant|must match a schema in anyOf|body\/|querystring\//, `${name}: no validator jargon`);
  };

  t.test('no request body is ever coerced', async (t) => {
    const user = await createUser(app, { name: 'Kept', roles: ['reader'] });
    const patch = (payload: unknown) =>
      call('PATCH', `/admin/users/${user.id}`, payload as InjectOptions['payload'], { headers: { 'content-type': 'application/json' } });
    refused(t, await patch({ roles: 'editor' }), 'roles as a string', /"roles"/, /an array/, /string/);
    refused(t, await patch({ name: true }), 'name as a boolean', /"name"/, /a string/, /null/);
    refused(t, await patch({ name: 42 }), 'name as a number', /"name"/);
    refused(t, await patch({ status: ['active'] }), 'status as an array', /"status"/, /"active"/, /"disabled"/);
    refused(t, await patch({ status: 'banned' }), 'an unknown status', /"status"/, /one of "active", "disabled"/);
    refused(t, await patch({ roles: [1] }), 'a role as a number', /"roles\[0\]"/, /a string/);
    refused(t, await patch({ roles: ['ad min'] }), 'a role with a space', /"roles\[0\]"/, /\^\[A-Za-z0-9_\.:-\]\+\$/);
    refused(t, await patch({ roles: ['a', 'a'] }), 'a repeated role', /"roles"/, /repeat/);
    refused(t, await patch({ status: 'active', admin: true }), 'an unknown field', /unknown body field "admin"/, /status, roles, name/);
    refused(t, await patch({}), 'an empty change', /at least one of status, roles, name/);
    refused(t, await patch('"active"'), 'a JSON string', /the body must be an object/);
    const unchanged = (await call('GET', `/admin/users/${user.id}`)).json();
    t.match(unchanged, { name: 'Kept', roles: ['reader'], status: 'active' }, 'nothing changed');

    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 123 } });
    refused(t, refresh, 'a number as the refresh token', /"refresh_token"/, /a string/);
    refused(t, await call('POST', '/admin/keys/rotate', { now: true }), 'rotate with a field', /unknown body field "now"/, /no fields/);

    const cleared = await patch({ name: '' });
    t.equal(cleared.statusCode, 200, 'an empty name still clears the name, as documented');
    t.equal(cleared.json().name, null);
  });

  t.test('query strings: numbers are parsed, nothing else is coerced, every problem is named', async (t) => {
    t.equal((await call('GET', '/admin/users?limit=2')).statusCode, 200, 'limit=2 is a number');
    refused(t, await call('GET', '/admin/users?limit=ten'), 'limit=ten', /query parameter "limit"/, /an integer from 1 to 200/);
    refused(t, await call('GET', '/admin/users?limit=2.5'), 'limit=2.5', /"limit"/, /integer/);
    refused(t, await call('GET', '/admin/users?limit=0'), 'limit=0', /"limit"/, /from 1 to 200/);
    refused(t, await call('GET', '/admin/users?status=gone'), 'status=gone', /query parameter "status"/, /"active", "disabled"/);
    refused(t, await call('GET', '/admin/users?status=active&status=disabled'), 'a repeated parameter', /query parameter "status"/);
    refused(
      t,
      await call('GET', '/admin/users?sort=email'),
      'sort',
      /unknown query parameter "sort"/,
      /q, status, provider, limit, cursor/,
    );
    refused(t, await call('GET', '/admin/users/not-a-uuid'), 'a bad id', /path parameter "id"/, /UUID/);
    refused(t, await call('GET', '/admin/audit?since=yesterday'), 'a bad date', /query parameter "since"/, /date-time/);
    refused(t, await call('GET', '/admin/audit?user_id=alice'), 'a bad user id', /query parameter "user_id"/, /UUID/);
  });

  t.test('every admin route refuses unknown query parameters', async (t) => {
    refused(t, await call('GET', '/admin/keys?x=1'), 'GET /admin/keys?x=1', /unknown query parameter "x"/, /takes no query parameters/);
    const doc = parse(await readFile(`${ROOT}/openapi.yaml`, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const user = await createUser(app);
    let n = 0;
    for (const [path, item] of Object.entries(doc.paths).filter(([p]) => p.startsWith('/admin/'))) {
      for (const method of Object.keys(item).filter((m) => ['get', 'post', 'patch', 'delete'].includes(m))) {
        const url = `${path.replace('{id}', user.id).replace(/\{\w+\}/g, randomUUID())}?bogus=1`;
        const payload = method === 'patch' ? { name: 'x' } : undefined;
        refused(t, await call(method.toUpperCase() as InjectOptions['method'], url, payload), `${method} ${url}`, /"bogus"/);
        n++;
      }
    }
    t.ok(n >= 10, `${n} admin routes`);
    t.ok((await call('GET', `/admin/users/${user.id}`)).statusCode === 200, 'the user is still there');
  });

  t.test('a known path with another method: 405 with Allow', async (t) => {
    const user = await createUser(app);
    const cases: [InjectOptions['method'], string, string][] = [
      ['PUT', `/admin/users/${user.id}`, 'GET, HEAD, PATCH, DELETE'],
      ['POST', '/admin/users', 'GET, HEAD'],
      ['PUT', '/healthz', 'GET, HEAD'],
      ['POST', '/.well-known/jwks.json', 'GET, HEAD'],
      ['DELETE', '/auth/refresh', 'POST'],
      ['PUT', '/auth/logout', 'GET, HEAD, POST'],
      ['GET', '/admin/keys/rotate', 'POST'],
    ];
    for (const [method, url, allow] of cases) {
      const res = await call(method, url);
      t.equal(res.statusCode, 405, `${method} ${url}`);
      t.equal(res.headers.allow, allow, `${method} ${url}: Allow`);
      t.equal(res.json().error, 'method_not_allowed');
      t.match(res.json().error_description, new RegExp(`${method} is not allowed on ${url.replace(/[/.]/g, '\\$&')}; use ${allow}`));
    }
    const unknown = await call('PUT', '/nowhere');
    t.equal(unknown.statusCode, 404, 'an unknown path stays 404');
    t.equal((await call('PUT', '/admin/users/not-a-uuid/x')).statusCode, 404);
    t.match((await call('GET', `/admin/users/${user.id}`)).json(), { id: user.id }, 'nothing changed');
  });

  t.test('413 and 415 are documented answers (every response here is checked against openapi.yaml)', async (t) => {
    const user = await createUser(app);
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024) });
    const json = { 'content-type': 'application/json' };
    const cases: [string, InjectOptions['method'], string, boolean][] = [
      ['PATCH a user', 'PATCH', `/admin/users/${user.id}`, true],
      ['rotate', 'POST', '/admin/keys/rotate', true],
      ['refresh', 'POST', '/auth/refresh', false],
      ['logout', 'POST', '/auth/logout', false],
    ];
    for (const [name, method, url, admin] of cases) {
      const send = (payload: string, headers: Record<string, string>) =>
        app.inject({ method, url, payload, headers: { ...headers, ...(admin ? { authorization: `Bearer ${ADMIN_TOKEN}` } : {}) } });
      const tooLarge = await send(big, json);
      t.equal(tooLarge.statusCode, 413, `${name}: 413`);
      t.equal(tooLarge.json().error, 'invalid_request');
      const text = await send('name=x', { 'content-type': 'text/plain' });
      t.equal(text.statusCode, 415, `${name}: 415`);
      t.equal(text.json().error, 'invalid_request');
      t.match(text.json().error_description, /application\/json/, `${name}: says what to send`);
    }
    t.equal((await call('GET', `/admin/users/${user.id}`)).json().name, 'Test User', 'nothing changed');
  });

  t.test('no credentials: WWW-Authenticate without an error code (RFC 6750 section 3.1)', async (t) => {
    const challenge = (res: LightMyRequestResponse) => res.headers['www-authenticate'];
    const admin = await signedIn(app, { roles: ['admin'] });
    for (const url of ['/admin/users', '/auth/userinfo', '/metrics']) {
      const none = await app.inject({ url });
      t.equal(none.statusCode, 401, `${url}: 401`);
      t.equal(challenge(none), 'Bearer realm="auth-gateway"', `${url}: no credentials, no error code`);
      t.equal(none.json().error, 'invalid_token', `${url}: the body keeps its code`);
      const basic = await app.inject({ url, headers: { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' } });
      t.equal(challenge(basic), 'Bearer realm="auth-gateway"', `${url}: another scheme is no credential for us`);
      const wrong = await app.inject({ url, headers: { authorization: 'Bearer not-a-valid-token' } });
      t.equal(wrong.statusCode, 401, `${url}: a wrong token`);
      t.match(challenge(wrong), /^Bearer realm="auth-gateway", error="invalid_token", error_description="[^"]+"$/, `${url}: a wrong token`);
    }
    const forbidden = await app.inject({
      url: '/admin/users',
      headers: { authorization: `Bearer ${(await signedIn(app)).tokens.accessToken}` },
    });
    t.match(forbidden.headers['www-authenticate'], /^Bearer realm="auth-gateway", error="insufficient_scope"/);
    t.equal((await app.inject({ url: '/admin/users', headers: { authorization: `Bearer ${admin.tokens.accessToken}` } })).statusCode, 200);
    t.ok(storage, 'same database');
  });
});
