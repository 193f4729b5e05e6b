import { Writable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { pino } from 'pino';
import t from 'tap';
import { AppError, invalidGrant } from '../src/errors.js';
import { loggerOptions, redactUrl } from '../src/logger.js';
import { buildApp } from '../src/app.js';
import { testConfig } from './helpers/app.js';
import { testDatabase } from './helpers/db.js';

function logSink(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, sink };
}

t.test('typed errors, validation errors, 404 and 500', async (t) => {
  const { storage } = await testDatabase(t);
  const { sink } = logSink();
  const app = buildApp(testConfig(), { storage, logger: pino(loggerOptions('info'), sink) });
  t.teardown(() => app.close());
  app.get('/typed', async () => {
    throw invalidGrant('refresh token expired');
  });
  app.get('/boom', async () => {
    throw new Error('secret internals: password=hunter2');
  });
  app.post('/strict', { schema: { body: Type.Object({ n: Type.Integer() }, { additionalProperties: false }) } }, async () => ({}));
  app.get('/teapot', async () => {
    throw new AppError('conflict', 409, 'already there');
  });
  await app.ready();

  const typed = await app.inject('/typed');
  t.equal(typed.statusCode, 401);
  t.same(typed.json(), { error: 'invalid_grant', error_description: 'refresh token expired' });
  t.equal(typed.headers['cache-control'], 'no-store');

  const boom = await app.inject('/boom');
  t.equal(boom.statusCode, 500);
  t.same(boom.json(), { error: 'server_error', error_description: 'An unexpected error occurred.' });
  t.notMatch(boom.body, /hunter2|stack|at /, 'a 5xx never leaks a message or a stack');

  const invalid = await app.inject({ method: 'POST', url: '/strict', payload: { n: 'x' } });
  t.equal(invalid.statusCode, 400);
  t.equal(invalid.json().error, 'invalid_request');
  const badJson = await app.inject({ method: 'POST', url: '/strict', payload: '{', headers: { 'content-type': 'application/json' } });
  t.equal(badJson.statusCode, 400);
  t.equal(badJson.json().error, 'invalid_request');

  t.equal((await app.inject('/teapot')).statusCode, 409);

  const missing = await app.inject('/nowhere');
  t.equal(missing.statusCode, 404);
  t.same(missing.json(), { error: 'not_found', error_description: 'No route GET /nowhere' });
});

t.test('secrets never reach a log line', async (t) => {
  const { storage } = await testDatabase(t);
  const { lines, sink } = logSink();
  const logger = pino(loggerOptions('info'), sink);
  const app = buildApp(testConfig(), { storage, logger });
  t.teardown(() => app.close());
  app.post('/echo', async (request) => {
    request.log.info({ body: request.body, headers: request.headers }, 'echo');
    return {};
  });
  await app.ready();
  await app.inject({
    method: 'POST',
    url: '/echo?code=CODE-SECRET&state=STATE-SECRET&ok=visible',
    headers: { authorization: 'Bearer BEARER-SECRET', cookie: 'gw_session=COOKIE-SECRET' },
    payload: { refresh_token: 'REFRESH-SECRET', client_secret: 'CLIENT-SECRET', nested: { id_token: 'ID-SECRET' } },
  });
  logger.info({ token: 'TOKEN-SECRET', user: { password: 'PW-SECRET' } }, 'direct');
  const all = lines.join('');
  t.match(all, /visible/, 'harmless parameters are logged');
  t.match(all, /\[REDACTED\]/);
  for (const secret of ['CODE', 'STATE', 'BEARER', 'COOKIE', 'REFRESH', 'CLIENT', 'ID', 'TOKEN', 'PW']) {
    t.notMatch(all, `${secret}-SECRET`, `${secret} is redacted`);
  }
  t.equal(redactUrl('/a?x=1&code=2'), '/a?x=1&code=[REDACTED]');
  t.equal(redactUrl('/a'), '/a');
});
