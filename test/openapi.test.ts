// openapi.yaml and the routes stay in step: a route missing from the file, or documented but absent, fails.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parse } from 'yaml';
import { buildApp } from '../src/app.js';
import { testConfig } from './helpers/app.js';
import { testDatabase } from './helpers/db.js';
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
