// Shared by the benchmarks: the real gateway process on a Postgres database of its own, autocannon in this
// process, and a Fastify hello-world process measured in the same run as the baseline.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { type App, buildApp } from '../src/app.js';
import { type Config, parseConfig } from '../src/config.js';
import { openStorage, type Storage } from '../src/storage/db.js';
import { migrate } from '../src/storage/migrator.js';
import { freePort } from '../fixtures/ports.js';

export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const DURATION = Number(process.env.BENCH_DURATION ?? 10);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Compiles the gateway (`npm run build`) so benchmarks measure the production start: node dist/src/server.js. */
export function build(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}

/**
 * Starts a node process on a free port and resolves once `readyPath` answers 200: compiled JavaScript as is,
 * TypeScript through tsx.
 */
async function startProcess(script: string, env: Record<string, string>, readyPath = '/'): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  // BENCH_PROFILE=dir: the gateway writes a V8 CPU profile there when it exits
  const profile =
    process.env.BENCH_PROFILE && script.startsWith('dist/') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const loader = script.endsWith('.ts') ? ['--import=tsx'] : [];
  const child = spawn(process.execPath, [...profile, ...loader, script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, PORT: String(port) },
    // its logs go nowhere: writing them is part of its cost, reading them would be ours
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}`);
    const ok = await fetch(url + readyPath).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, child };
    if (i > 300) throw new Error(`${script} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export interface BenchGateway {
  url: string;
  /** an in-process app on the same database and SECRET_KEY, for preparing data (sessions, users) */
  app: App;
  storage: Storage;
  close(): Promise<void>;
}

/** A fresh Postgres database for one benchmark, and how to drop it. */
export async function benchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** The real, compiled gateway in its own process, on a fresh Postgres database dropped on close. */
export async function startGateway(env: Record<string, string> = {}): Promise<BenchGateway> {
  const database = await benchDatabase();
  const gatewayEnv = {
    DATABASE_URL: database.url,
    SECRET_KEY: randomBytes(32).toString('base64'),
    HOST: '127.0.0.1',
    // the in-process app and the process (on a port of its own) must agree on the issuer of the tokens they mint
    PUBLIC_URL: 'http://localhost:3000',
    // every request comes from one client IP: a per-IP limit would measure itself, not the route
    RATE_LIMIT_REFRESH: '0',
    RATE_LIMIT_SESSION: '0',
    RATE_LIMIT_DISCOVERY: '0',
    RATE_LIMIT_OPERATIONS: '0',
    ...env,
  };
  const storage = await openStorage({ databaseUrl: database.url, poolSize: 4 });
  await migrate(storage.db);
  const app = buildApp(parseConfig({ ...gatewayEnv, LOG_LEVEL: 'silent' }) as Config & { secretKey: Buffer }, { storage });
  await app.ready();
  const { url, child } = await startProcess('dist/src/server.js', gatewayEnv, '/readyz');
  return {
    url,
    app,
    storage,
    close: async () => {
      await stopProcess(child);
      await app.close();
      await storage.close();
      await database.drop();
    },
  };
}

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
}

export async function run(opts: autocannon.Options): Promise<Figures> {
  const r = await autocannon({ connections: CONNECTIONS, ...(opts.amount ? {} : { duration: DURATION }), ...opts });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    total: r.requests.total,
  };
}

/** A Fastify hello-world in its own process: the baseline every figure is divided by. */
export async function baseline(): Promise<Figures> {
  const { url, child } = await startProcess('bench/hello.ts', {});
  try {
    return await run({ url });
  } finally {
    await stopProcess(child);
  }
}

export function report(name: string, unit: string, f: Figures, base: Figures): void {
  const line = (label: string, x: Figures, u: string) =>
    `${label.padEnd(22)} ${x.rps.toFixed(0).padStart(7)} ${u}/s   p50 ${String(x.p50).padStart(4)} ms   p99 ${String(x.p99).padStart(4)} ms   non-2xx ${x.non2xx}   errors ${x.errors}`;
  process.stdout.write(
    [
      `${name} (${CONNECTIONS} connections, ${DURATION} s each, same run)`,
      line('hello-world baseline', base, 'req'),
      line(name, f, unit),
      `ratio ${name}/baseline: ${((f.rps / base.rps) * 100).toFixed(1)}%`,
      '',
    ].join('\n'),
  );
}

/**
 * autocannon requests that each rotate one refresh token: every response's refresh_token goes back into the
 * queue later requests take from, and each token is taken once, so every request is a real rotation.
 * (autocannon resets its per-connection context after each request of a one-request list, so a queue it is.)
 */
export function rotationRequests(queue: string[]): autocannon.Request[] {
  return [
    {
      method: 'POST',
      path: '/auth/refresh',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: queue.shift() }) }),
      onResponse: (status, body) => {
        if (status === 200) queue.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
      },
    },
  ];
}

/** n users, each with a session opened by the gateway's own code; returns their refresh tokens. */
export async function openSessions(gw: BenchGateway, n: number): Promise<string[]> {
  const now = new Date();
  const users = Array.from({ length: n }, () => ({
    id: randomUUID(),
    email: null,
    name: 'Bench',
    picture: null,
    created_at: now,
    updated_at: now,
  }));
  await gw.storage.db.insertInto('users').values(users).execute();
  const sessions = await Promise.all(users.map((u) => gw.app.ctx.sessions.open(u.id, { provider: 'bench' })));
  return sessions.map((s) => s.refreshToken);
}
