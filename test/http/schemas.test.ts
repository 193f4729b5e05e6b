// Request validators and response serializers are compiled on first use (src/http/validation.ts,
// src/http/serialization.ts), not when the app starts: so that a schema that cannot be compiled still fails here
// rather than at its route's first request, this compiles every schema of every route, with the app's own
// validator compiler (its Ajv instances and options) and with fast-json-stringify as the app's serializer does.
import fastJsonStringify, { type Schema } from 'fast-json-stringify';
import type { FastifySchema } from 'fastify';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { testConfig } from '../helpers/app.js';
import { testDatabase } from '../helpers/db.js';

const PARTS = ['body', 'querystring', 'params', 'headers'] as const;

t.test('every route schema compiles', async (t) => {
  const { storage } = await testDatabase(t);
  const app = buildApp(testConfig({ DEMO_PAGE: 'true' }), { storage });
  t.teardown(() => app.close());
  const routes: { method: string; url: string; schema: FastifySchema }[] = [];
  app.addHook('onRoute', (route) => {
    if (route.schema) routes.push({ method: [route.method].flat().join(','), url: route.url ?? '', schema: route.schema });
  });
  await app.ready();
  t.ok(routes.length > 40, `${routes.length} routes with schemas`);

  const compile = app.validatorCompiler!;
  let validators = 0;
  let serializers = 0;
  for (const { method, url, schema } of routes) {
    for (const httpPart of PARTS) {
      const part = schema[httpPart];
      if (part === undefined) continue;
      // a validator compiles its schema when it is first called
      t.doesNotThrow(() => compile({ schema: part, method, url, httpPart })(undefined), `${method} ${url} ${httpPart}`);
      validators++;
    }
    for (const [status, response] of Object.entries((schema.response ?? {}) as Record<string, { content?: unknown }>)) {
      const bodies = response.content
        ? Object.values(response.content as Record<string, { schema: Schema }>).map((c) => c.schema)
        : [response as Schema];
      for (const body of bodies) {
        t.doesNotThrow(() => fastJsonStringify(body), `${method} ${url} ${status}`);
        serializers++;
      }
    }
  }
  t.ok(validators > 10, `${validators} request schemas`);
  t.ok(serializers > 100, `${serializers} response schemas`);
});
