// Refresh-token rotation throughput against real Postgres: every request is a real rotation.
import { baseline, build, CONNECTIONS, openSessions, report, rotationRequests, run, startGateway } from './common.js';

build();

const bench = await startGateway({
  RATE_LIMIT_REFRESH: '0',
  ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
});
try {
  const queue = await openSessions(bench, CONNECTIONS * 2);
  const base = await baseline();
  const figures = await run({ url: bench.url, requests: rotationRequests(queue) });
  report('refresh', 'rotations', figures, base);
  if (figures.non2xx || figures.errors) process.exitCode = 1;
} finally {
  await bench.close();
}
