// Refresh-token rotation throughput against real Postgres. Every response's refresh_token goes back into a
// queue that later requests take from, and each token is taken once: every request is a real rotation.
// (autocannon resets its per-connection context after each request of a one-request list, so a queue it is.)
import { randomUUID } from 'node:crypto';
import { baseline, build, CONNECTIONS, report, run, startGateway } from './common.js';

build();

const bench = await startGateway({ RATE_LIMIT_REFRESH: '0', ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}) });
try {
  const { app } = bench;
  const now = new Date();
  const users = Array.from({ length: CONNECTIONS * 2 }, () => ({
    id: randomUUID(),
    email: `bench-${randomUUID()}@example.com`,
    name: 'Bench',
    picture: null,
    created_at: now,
    updated_at: now,
  }));
  await app.ctx.storage.db.insertInto('users').values(users).execute();
  const queue = (await Promise.all(users.map((u) => app.ctx.sessions.open(u.id, { provider: 'bench' })))).map((s) => s.refreshToken);

  const base = await baseline();
  const figures = await run({
    url: bench.url,
    requests: [
      {
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: queue.shift() }) }),
        onResponse: (status, body) => {
          if (status === 200) queue.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
        },
      },
    ],
  });
  report('refresh', 'rotations', figures, base);
  if (figures.non2xx || figures.errors) process.exitCode = 1;
} finally {
  await bench.close();
}
