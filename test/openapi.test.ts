// openapi.yaml and the routes stay in step: a route missing from the file, or documented but absent, fails.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parse } from 'yaml';
import { buildApp } from '../src/app.js';
import { testConfig } from './helpers/app.js';
import { testDatabase } from './helpers/db.js';
import { checkResponse } from './helpers/openapi.js';
import { ROOT } from './helpers/process.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

t.test('every route is documented and every documented route exists', async (t) => {
  const { storage } = await testDatabase(t);
  // every optional route switched on
  const app = buildApp(testConfig({ DEMO_PAGE: 'true' }), { storage });
  t.teardown(() => app.close());
  const routes = new Set<string>();
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) {
      if (m === 'HEAD' || m === 'OPTIONS') continue;
      // fastify's /a/:id is OpenAPI's /a/{id}
      routes.add(`${m.toLowerCase()} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
    }
  });
  await app.ready();

  const doc = parse(await readFile(`${ROOT}/openapi.yaml`, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (METHODS.includes(m)) documented.add(`${m} ${path}`);
  }
  t.ok(routes.size > 0);
  t.same([...routes].filter((r) => !documented.has(r)).sort(), [], 'routes missing from openapi.yaml');
  t.same([...documented].filter((r) => !routes.has(r)).sort(), [], 'documented in openapi.yaml but not served');
});

t.test('the response check used by every test finds mismatches', async (t) => {
  const json = 'application/json; charset=utf-8';
  const ok = { method: 'GET', route: '/healthz', status: 200, contentType: json, body: '{"status":"ok"}' };
  t.same(checkResponse(ok), []);
  t.match(checkResponse({ ...ok, body: '{"status":"fine"}' }), [/GET \/healthz → 200: body\/status must be equal to constant/]);
  t.match(checkResponse({ ...ok, status: 418 }), [/status not documented/]);
  t.match(checkResponse({ ...ok, route: '/nowhere' }), [/not in openapi.yaml/]);
  t.match(checkResponse({ ...ok, route: '/auth/:provider/callback', status: 302 }), [/a JSON body, but openapi.yaml documents none/]);
  // $refs to components/responses and components/schemas are followed; fastify's :param is OpenAPI's {param}
  const admin = { method: 'GET', route: '/admin/users/:id', status: 404, contentType: json };
  t.same(checkResponse({ ...admin, body: '{"error":"not_found","error_description":"No such user."}' }), []);
  t.match(checkResponse({ ...admin, body: '{"error":"not_found"}' }), [/must have required property 'error_description'/]);
  const detail = { ...admin, status: 200, body: JSON.stringify({ id: 'x', identities: [] }) };
  t.ok(checkResponse(detail).length > 0, 'a partial user');
  t.same(
    checkResponse({ method: 'POST', route: '/auth/logout', status: 204, contentType: json, body: 'null' }),
    [],
    'a 204 has no body on the wire',
  );
});
