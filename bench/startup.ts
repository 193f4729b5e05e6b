// Start to ready on Postgres (spawn → /readyz 200, median of runs) and idle memory (RSS after start and a few
// requests), for the compiled production server.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/ports.js';
import { benchDatabase, build } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

build();
const database = await benchDatabase();
const secret = randomBytes(32).toString('base64');
const times: number[] = [];
let rss = 0;
try {
  for (let i = 0; i < RUNS; i++) {
    const port = await freePort();
    const started = performance.now();
    const child = spawn(process.execPath, ['dist/src/server.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: database.url,
        SECRET_KEY: secret,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.once('exit', r));
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (performance.now() - started > 30_000) throw new Error('not ready within 30 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    times.push(performance.now() - started);
    if (i === RUNS - 1) {
      for (const path of ['/healthz', '/.well-known/jwks.json', '/.well-known/openid-configuration', '/metrics'])
        await fetch(`http://127.0.0.1:${port}${path}`);
      await new Promise((r) => setTimeout(r, 2000));
      rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
    }
    child.kill('SIGTERM');
    await exited;
  }
} finally {
  await database.drop();
}
times.sort((a, b) => a - b);
process.stdout.write(
  [
    `start to ready on Postgres (${RUNS} runs, the first one migrates): median ${times[Math.floor(times.length / 2)].toFixed(0)} ms, ` +
      `min ${times[0].toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms`,
    `idle RSS after start and a few requests: ${rss.toFixed(0)} MB`,
    '',
  ].join('\n'),
);
