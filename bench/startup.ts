// Start to ready on Postgres (spawn → /readyz 200, median of runs) and idle memory (RSS after start and a few
// requests), for the compiled production server (built by the caller).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/ports.js';
import { benchDatabase, median } from './common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('BENCH_RUNS must be a positive integer');
const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Startup {
  runs: number;
  /** spawn → /readyz 200, ms; the first run migrates the fresh database */
  readyMs: { median: number; min: number; max: number };
  /** after the last start and a few requests */
  idleRssMb: number;
}

export async function measureStartup(): Promise<Startup> {
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
      try {
        for (;;) {
          if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}`);
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
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }
  } finally {
    await database.drop();
  }
  return {
    runs: RUNS,
    readyMs: { median: median(times), min: Math.min(...times), max: Math.max(...times) },
    idleRssMb: rss,
  };
}
