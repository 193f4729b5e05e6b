// Shared by the benchmarks: servers in processes of their own (the real gateway on a Postgres database of its own,
// a Fastify hello-world, the node-oidc-provider peer), autocannon in this process, and the meter: CPU time per
// operation of each server process and of the Postgres backends serving its database, read from /proc, for rounds
// that alternate between the systems so that all of them see the same machine.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { type App, buildApp } from '../src/app.js';
import { type Config, parseConfig } from '../src/config.js';
import { openStorage, type Storage } from '../src/storage/db.js';
import { migrate } from '../src/storage/migrator.js';
import { freePort } from '../fixtures/ports.js';

export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** seconds per round of a path */
export const DURATION = Number(process.env.BENCH_DURATION ?? 8);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** rounds of every path, alternating between the systems; the figures are medians over rounds */
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** seconds of unmeasured load on every path before the first round (JIT, caches, pools) */
export const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
/** application_name of this process's own database connections: the meter leaves their backends out */
const HARNESS = 'bench-harness';

for (const [name, value] of Object.entries({ BENCH_DURATION: DURATION, BENCH_CONNECTIONS: CONNECTIONS, BENCH_ROUNDS: ROUNDS }))
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error('BENCH_WARMUP must be a whole number of seconds');

/** Compiles the gateway (`npm run build`) so benchmarks measure the production start: node dist/src/server.js. */
export function build(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}

/** A server process under measurement: its pid, and the database whose backends serve it (if any). */
export interface Server {
  url: string;
  pid: number;
  /** the datname of its database in pg_stat_activity */
  database?: string;
  close(): Promise<void>;
}

/**
 * Starts a node process on a free port and resolves once `readyPath` answers 200: compiled JavaScript as is,
 * TypeScript through tsx.
 */
export async function startProcess(
  script: string,
  env: Record<string, string>,
  readyPath = '/',
): Promise<{ url: string; child: ChildProcess }> {
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
    if (i > 300) {
      child.kill('SIGTERM');
      throw new Error(`${script} did not become ready`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A fresh Postgres database for one benchmark, and how to drop it. */
export async function benchDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `gw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL, application_name: HARNESS });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.href,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

export interface BenchGateway extends Server {
  database: string;
  /** an in-process app on the same database and SECRET_KEY, for preparing data (sessions, users) */
  app: App;
  storage: Storage;
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
    RATE_LIMIT_TOKEN: '0',
    ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
    ...env,
  };
  // this process's connections are named, so that the meter counts only the gateway's backends
  const harnessUrl = new URL(database.url);
  harnessUrl.searchParams.set('application_name', HARNESS);
  const storage = await openStorage({ databaseUrl: harnessUrl.href, poolSize: 4 });
  await migrate(storage.db);
  const app = buildApp(parseConfig({ ...gatewayEnv, LOG_LEVEL: 'silent' }) as Config & { secretKey: Buffer }, { storage });
  await app.ready();
  const { url, child } = await startProcess('dist/src/server.js', gatewayEnv, '/readyz');
  return {
    url,
    pid: child.pid!,
    database: database.name,
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

/** A Fastify hello-world in its own process: the baseline every throughput is divided by. */
export async function startHello(): Promise<Server> {
  const { url, child } = await startProcess('bench/hello.ts', {});
  return { url, pid: child.pid!, close: () => stopProcess(child) };
}

/** n users, each with a session opened by the gateway's own code. */
export async function openSessions(gw: BenchGateway, n: number): Promise<{ accessToken: string; refreshToken: string }[]> {
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
  return Promise.all(users.map((u) => gw.app.ctx.sessions.open(u.id, { provider: 'bench' })));
}

/**
 * autocannon options in which every connection carries a state of its own (states[i] for the i-th connection) from
 * one request to the next: `request(state)` builds a connection's request list, and its `onResponse` may update the
 * state, e.g. keep the refresh token its previous request returned. (autocannon resets the shared per-request
 * context whenever a connection loops over its request list, so per-connection state lives in these closures.)
 */
export function perConnection<S>(states: S[], request: (state: S) => autocannon.Request): Load {
  let next = 0;
  return {
    connections: states.length,
    setupClient: (client) => {
      const state = states[next++];
      if (state === undefined) throw new Error('more connections than prepared states');
      client.setRequests([request(state)]);
    },
  };
}

/** POST /auth/refresh with a real rotation on every request: each connection rotates its own session's token. */
export function rotations(refreshTokens: string[]): Load {
  return perConnection(
    refreshTokens.map((token) => ({ token })),
    (state) => ({
      method: 'POST',
      path: '/auth/refresh',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: state.token }) }),
      onResponse: (status, body) => {
        if (status === 200) state.token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
      },
    }),
  );
}

// ---- the meter ----

let ticksPerSecond: number | undefined;
/** USER_HZ, the unit of the CPU times in /proc */
function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/**
 * CPU time (user + system, µs) a process has used, from /proc/<pid>/stat: the whole thread group, so the libuv
 * threadpool (where WebCrypto, zlib and DNS work runs) and V8's threads count too, including threads that have
 * exited. With `thread`, /proc/<pid>/task/<thread>/stat: one thread only (the main thread when thread === pid).
 * undefined when the process is gone.
 */
export function processCpuUs(pid: number, thread?: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // field 2 (comm) is parenthesised and may hold spaces: fields[0] is field 3, so utime (14) and stime (15)
  // are fields[11] and fields[12]
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks();
}

/** Busy and total CPU time (µs, summed over all CPUs) of the whole machine, from /proc/stat. */
function machineCpuUs(): { busy: number; total: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  const scale = 1e6 / clockTicks();
  return { busy: busy * scale, total: (busy + idle + iowait) * scale };
}

/**
 * The CPU time of the Postgres backends serving one database (client backends and their parallel workers, not
 * this process's own connections), summed over a window: the backends alive at its start are read then, those
 * that connect later count from zero, and all are read again every second so one that exits still counts up to its
 * last reading. Autovacuum and the cluster's shared background processes are left out.
 */
class BackendMeter {
  private readonly start = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly admin: pg.Client,
    private readonly database: string,
  ) {}

  private async pids(): Promise<number[]> {
    const { rows } = await this.admin.query<{ pid: number }>(
      `select pid from pg_stat_activity
       where datname = $1 and backend_type in ('client backend', 'parallel worker') and application_name <> $2`,
      [this.database, HARNESS],
    );
    return rows.map((r) => r.pid);
  }

  async begin(): Promise<void> {
    for (const pid of await this.pids()) {
      const cpu = processCpuUs(pid);
      if (cpu === undefined) continue;
      this.start.set(pid, cpu);
      this.last.set(pid, cpu);
    }
  }

  /** reads every backend again (calls are serialised) */
  poll(): Promise<void> {
    this.chain = this.chain.then(async () => {
      for (const pid of await this.pids()) {
        const cpu = processCpuUs(pid);
        if (cpu === undefined) continue;
        if (!this.start.has(pid)) this.start.set(pid, 0);
        this.last.set(pid, cpu);
      }
    });
    return this.chain;
  }

  /** µs used in the window so far, and by how many backends */
  used(): { us: number; backends: number } {
    let us = 0;
    let backends = 0;
    for (const [pid, cpu] of this.last) {
      const delta = cpu - (this.start.get(pid) ?? 0);
      us += delta;
      if (delta > 0) backends++;
    }
    return { us, backends };
  }
}

/** One measured round of one path. */
export interface Round {
  /** completed operations (responses with the expected status) per second */
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  /** responses with another status */
  failed: number;
  /** connection errors and timeouts */
  errors: number;
  seconds: number;
  /** CPU µs per completed operation: the server process (all threads), its main thread, its Postgres backends */
  serverUs: number;
  mainThreadUs: number;
  postgresUs: number;
  /** Postgres backends that did work */
  backends: number;
  /** shares of the machine's CPU capacity over the round: this process (autocannon), everything not measured */
  loadGeneratorShare: number;
  otherShare: number;
  /** 1-minute load average at the end of the round */
  load1: number;
}

/** autocannon options for one round; url defaults to the server's */
export type Load = Partial<autocannon.Options>;

export interface Meter {
  /** runs autocannon against the server and measures it; okStatus is what a completed operation answers */
  round(server: Server, load: Load, okStatus?: number): Promise<Round>;
  close(): Promise<void>;
}

export async function openMeter(): Promise<Meter> {
  const admin = new pg.Client({ connectionString: ADMIN_URL, application_name: HARNESS });
  await admin.connect();
  return {
    async round(server, load, okStatus = 200) {
      const backends = server.database ? new BackendMeter(admin, server.database) : undefined;
      await backends?.begin();
      const machine0 = machineCpuUs();
      const server0 = processCpuUs(server.pid)!;
      const main0 = processCpuUs(server.pid, server.pid)!;
      const self0 = process.cpuUsage();
      // a failed reading leaves the chain rejected: the last poll below reports it
      const timer = setInterval(() => void backends?.poll().catch(() => {}), 1000);
      let r: autocannon.Result;
      try {
        r = await autocannon({ url: server.url, connections: CONNECTIONS, ...(load.amount ? {} : { duration: DURATION }), ...load });
      } finally {
        clearInterval(timer);
      }
      // the requests in flight when autocannon stopped finish on the server: count their CPU, not their responses
      await new Promise((resolve) => setTimeout(resolve, 100));
      await backends?.poll();
      const server1 = processCpuUs(server.pid);
      const main1 = processCpuUs(server.pid, server.pid);
      if (server1 === undefined || main1 === undefined) throw new Error(`the server at ${server.url} exited during the round`);
      const self = process.cpuUsage(self0);
      const machine1 = machineCpuUs();

      const ok = r.statusCodeStats?.[`${okStatus}`]?.count ?? 0;
      const responses = Object.values(r.statusCodeStats ?? {}).reduce((n, s) => n + (s.count ?? 0), 0);
      const pgUsed = backends?.used() ?? { us: 0, backends: 0 };
      const serverUsed = server1 - server0;
      const selfUsed = self.user + self.system;
      const capacity = machine1.total - machine0.total;
      const perOp = (us: number) => (ok ? us / ok : NaN);
      return {
        rps: ok / r.duration,
        p50: r.latency.p50,
        p99: r.latency.p99,
        ok,
        failed: responses - ok,
        errors: r.errors + r.timeouts,
        seconds: r.duration,
        serverUs: perOp(serverUsed),
        mainThreadUs: perOp(main1 - main0),
        postgresUs: perOp(pgUsed.us),
        backends: pgUsed.backends,
        loadGeneratorShare: selfUsed / capacity,
        otherShare: Math.max(0, machine1.busy - machine0.busy - serverUsed - pgUsed.us - selfUsed) / capacity,
        load1: loadavg()[0],
      };
    },
    close: () => admin.end(),
  };
}

// ---- alternating rounds ----

/** One path of one system, measured in every round. */
export interface Scenario {
  key: string;
  label: string;
  system: 'hello' | 'gateway' | 'oidc-provider';
  server: Server;
  okStatus?: number;
  /** the key of the scenario whose throughput this one is also divided by (the peer doing the same job) */
  peer?: string;
  /** prepares one round (outside the measured window: sessions, logins) and returns its autocannon options; a
   * warm-up may be prepared smaller */
  prepare(purpose: 'warmup' | 'round'): Promise<Load>;
  /** checks a round's effects (e.g. that every login made a session); returns what went wrong */
  verify?(round: Round): Promise<string | undefined>;
}

export interface PathResult {
  key: string;
  label: string;
  system: Scenario['system'];
  /** medians over rounds */
  rps: number;
  p50: number;
  p99: number;
  serverCpuUsPerOp: number;
  mainThreadCpuUsPerOp: number;
  postgresCpuUsPerOp: number | null;
  /** median over rounds of this round's throughput / the hello world's in the same round */
  ratioToHello: number;
  /** likewise against the peer (node-oidc-provider doing the same job) */
  ratioToPeer: number | null;
  failed: number;
  errors: number;
  /** what verify() reported */
  problems: string[];
  rounds: Round[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs every scenario once per round, in order, for `rounds` rounds (hello, gateway, oidc-provider, hello, …), and
 * summarises each by medians. Ratios are taken within a round, so a machine that gets busier or quieter between
 * rounds moves both sides of a ratio alike.
 */
export async function alternate(meter: Meter, scenarios: Scenario[], rounds = ROUNDS): Promise<PathResult[]> {
  const measured = new Map<string, Round[]>(scenarios.map((s) => [s.key, []]));
  const problems = new Map<string, string[]>(scenarios.map((s) => [s.key, []]));
  if (WARMUP)
    for (const s of scenarios) {
      process.stderr.write(`warm-up: ${s.label}\n`);
      const load = await s.prepare('warmup');
      await autocannon({ url: s.server.url, connections: CONNECTIONS, ...load, duration: WARMUP });
    }
  for (let i = 1; i <= rounds; i++) {
    for (const s of scenarios) {
      const options = await s.prepare('round');
      process.stderr.write(`round ${i}/${rounds}: ${s.label} … `);
      const round = await meter.round(s.server, options, s.okStatus);
      process.stderr.write(
        `${round.rps.toFixed(0)}/s, ${round.serverUs.toFixed(0)} + ${s.server.database ? round.postgresUs.toFixed(0) : '–'} µs/op` +
          `${round.failed || round.errors ? `, ${round.failed} failed, ${round.errors} errors` : ''}\n`,
      );
      measured.get(s.key)!.push(round);
      const problem = await s.verify?.(round);
      if (problem) {
        problems.get(s.key)!.push(`round ${i}: ${problem}`);
        process.stderr.write(`round ${i}/${rounds}: ${s.label}: ${problem}\n`);
      }
    }
  }
  const ratio = (of: Round[], to: Round[] | undefined) => (to ? median(of.map((r, i) => r.rps / to[i].rps)) : null);
  const hello = scenarios.find((s) => s.system === 'hello');
  return scenarios.map((s) => {
    const rs = measured.get(s.key)!;
    const m = (pick: (r: Round) => number) => median(rs.map(pick));
    return {
      key: s.key,
      label: s.label,
      system: s.system,
      rps: m((r) => r.rps),
      p50: m((r) => r.p50),
      p99: m((r) => r.p99),
      serverCpuUsPerOp: m((r) => r.serverUs),
      mainThreadCpuUsPerOp: m((r) => r.mainThreadUs),
      postgresCpuUsPerOp: s.server.database ? m((r) => r.postgresUs) : null,
      ratioToHello: ratio(rs, hello && measured.get(hello.key))!,
      ratioToPeer: ratio(rs, s.peer ? measured.get(s.peer) : undefined),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      problems: problems.get(s.key)!,
      rounds: rs,
    };
  });
}

/** How busy the machine was: what a reader needs to judge the throughput figures. */
export function machineSummary(results: PathResult[], loadBefore: number[]) {
  const rounds = results.flatMap((r) => r.rounds);
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg(),
    /** share of the machine's CPU capacity used by processes the benchmark does not measure, over its rounds */
    otherProcessesShare: { median: median(rounds.map((r) => r.otherShare)), max: Math.max(...rounds.map((r) => r.otherShare)) },
    loadGeneratorShare: { median: median(rounds.map((r) => r.loadGeneratorShare)) },
  };
}

const fmt = (n: number | null, digits = 0) => (n === null || Number.isNaN(n) ? '–' : n.toFixed(digits));
const us = (n: number | null) => (n === null || Number.isNaN(n) ? '–' : `${Math.round(n).toLocaleString('en')} µs`);

/** The results as a table, one line per path. */
export function table(results: PathResult[]): string {
  const head = ['path', 'server CPU/op', 'Postgres CPU/op', 'ops/s', 'p50', 'p99', '× hello', '× oidc-provider'];
  const rows = results.map((r) => [
    r.label,
    us(r.serverCpuUsPerOp),
    us(r.postgresCpuUsPerOp),
    fmt(r.rps),
    `${fmt(r.p50)} ms`,
    `${fmt(r.p99)} ms`,
    fmt(r.ratioToHello, 3),
    fmt(r.ratioToPeer, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
