import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { signedIn } from './helpers/users.js';

t.test('GET /metrics in Prometheus text', async (t) => {
  // no grace period: the second use of a token is reuse at once
  const { app } = await buildTestApp(t, { env: { REFRESH_GRACE_PERIOD: '0' } });
  const user = await signedIn(app);
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.tokens.refreshToken } });
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.tokens.refreshToken } });
  await app.inject('/healthz');
  const res = await app.inject('/metrics');
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  t.match(text, /gateway_refreshes_total\{outcome="ok"\} 1/);
  t.match(text, /gateway_refreshes_total\{outcome="reuse"\} 1/);
  t.match(text, /gateway_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} 1/);
  t.match(text, /gateway_http_request_duration_seconds_bucket\{le="0.005",method="POST",route="\/auth\/refresh",status_code="401"\} \d/);
  t.match(text, /gateway_signing_keys\{state="active"\} 1/);
  t.match(text, /gateway_signing_key_last_rotation_timestamp_seconds \d+/);
  t.match(text, /gateway_db_pool_connections\{state="total"\} \d+/);
  t.match(text, /gateway_process_resident_memory_bytes \d+/);
});

t.test('METRICS_TOKEN protects /metrics', async (t) => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: 'metrics-token-0123456789' } });
  t.equal((await app.inject('/metrics')).statusCode, 401);
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456789' } })).statusCode, 200);
});
