// `npm run bench [path…]`: every path of the gateway, the Fastify hello world and node-oidc-provider's refresh in
// alternating rounds of one run, with CPU time per operation from /proc; prints a table and writes the same
// figures to bench/results/latest.json. Paths: startup refresh token userinfo jwks login (default: all of them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  alternate,
  build,
  CONNECTIONS,
  DURATION,
  machineSummary,
  openMeter,
  ROUNDS,
  type Scenario,
  type Server,
  startGateway,
  startHello,
  table,
} from './common.js';
import { jwksScenario } from './jwks.js';
import { loginScenario, loginUpstream } from './login.js';
import { startPeer } from './peer.js';
import { peerRefreshScenario, refreshScenario } from './refresh.js';
import { measureStartup, type Startup } from './startup.js';
import { tokenScenarios } from './token.js';
import { userinfoScenario } from './userinfo.js';

const PATHS = ['startup', 'refresh', 'token', 'userinfo', 'jwks', 'login'] as const;
const args = process.argv.slice(2);
for (const a of args) if (!(PATHS as readonly string[]).includes(a)) throw new Error(`unknown path ${a}; one of ${PATHS.join(', ')}`);
const wanted = (p: (typeof PATHS)[number]) => args.length === 0 || args.includes(p);
const RESULTS = fileURLToPath(new URL('results/', import.meta.url));

build();
const loadBefore = loadavg();
const date = new Date().toISOString();
// first, while no other benchmark server runs
const startup: Startup | undefined = wanted('startup') ? await measureStartup() : undefined;

const open: { close(): Promise<void> }[] = [];
let failed = false;
try {
  const rounds = PATHS.some((p) => p !== 'startup' && wanted(p));
  const scenarios: Scenario[] = [];
  if (rounds) {
    const meter = await openMeter();
    open.push(meter);
    const hello = await startHello();
    open.push(hello);
    scenarios.push({ key: 'hello', label: 'Fastify hello world', system: 'hello', server: hello, prepare: async () => ({}) });
    const upstream = await loginUpstream();
    open.push(upstream.fake);
    const gw = await startGateway(upstream.env);
    open.push(gw);
    if (wanted('refresh')) {
      const peer: Server = await startPeer();
      open.push(peer);
      scenarios.push(refreshScenario(gw), peerRefreshScenario(peer));
    }
    if (wanted('token')) scenarios.push(...(await tokenScenarios(gw)));
    if (wanted('userinfo')) scenarios.push(userinfoScenario(gw));
    if (wanted('jwks')) scenarios.push(jwksScenario(gw));
    if (wanted('login')) scenarios.push(loginScenario(gw, upstream.fake));

    const results = await alternate(meter, scenarios);
    const machine = machineSummary(results, loadBefore);
    const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
    process.stdout.write(
      [
        '',
        `${date}: ${CONNECTIONS} connections, ${ROUNDS} alternating rounds of ${DURATION} s (login: a fixed number of logins), medians`,
        `machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`,
        '',
        table(results),
        '',
        'server CPU/op: the server process, all its threads; Postgres CPU/op: the backends serving its database;',
        '× hello, × oidc-provider: throughput divided by theirs in the same round (median of the rounds)',
        `how busy the machine was: load average ${machine.loadAverageBefore.map((l) => l.toFixed(2)).join(' ')} before, ` +
          `${machine.loadAverageAfter.map((l) => l.toFixed(2)).join(' ')} after; processes not measured used ` +
          `${pct(machine.otherProcessesShare.median)} of the CPU capacity (median of rounds, max ${pct(machine.otherProcessesShare.max)}); ` +
          `the load generator (autocannon, this process) ${pct(machine.loadGeneratorShare.median)}`,
        ...(machine.otherProcessesShare.median > 0.25
          ? ['the machine was busy with other work: throughput and latency suffer from it, and CPU per operation rises too']
          : []),
        ...results.flatMap((r) =>
          r.failed || r.errors || r.problems.length
            ? [`${r.label}: ${r.failed} responses with another status, ${r.errors} errors${r.problems.map((p) => `; ${p}`).join('')}`]
            : [],
        ),
        '',
      ].join('\n'),
    );
    failed = results.some((r) => r.failed || r.errors || r.problems.length);
    writeResults({ date, settings: settings(), machine, startup, paths: results });
  } else {
    writeResults({ date, settings: settings(), startup });
  }
  if (startup)
    process.stdout.write(
      `start to ready on Postgres (${startup.runs} runs, the first one migrates): median ${startup.readyMs.median.toFixed(0)} ms, ` +
        `min ${startup.readyMs.min.toFixed(0)} ms, max ${startup.readyMs.max.toFixed(0)} ms\n` +
        `idle RSS after start and a few requests: ${startup.idleRssMb.toFixed(0)} MB\n`,
    );
  process.stdout.write(`figures written to ${RESULTS}latest.json\n`);
} finally {
  for (const o of open.reverse()) await o.close();
}
if (failed) process.exitCode = 1;

function settings() {
  return { durationSeconds: DURATION, connections: CONNECTIONS, rounds: ROUNDS, paths: PATHS.filter(wanted) };
}

function writeResults(results: Record<string, unknown>): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}latest.json`, JSON.stringify(results, null, 2) + '\n');
}
