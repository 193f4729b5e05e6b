// Refresh cost with 10k and then 1M stored sessions: the CPU per rotation must not grow with the table.
// `npm run bench:scale` (not part of `npm run bench`: a million rows take a while).
// The bulk sessions (a session row holds its refresh chain) are written with one SQL statement; the benchmarked
// sessions are opened by the gateway's own code.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { build, CONNECTIONS, openMeter, openSessions, rotations, startGateway } from './common.js';

const SIZES = (process.env.BENCH_SIZES ?? '10000,1000000').split(',').map(Number);

build();
const gw = await startGateway({ RATE_LIMIT_REFRESH: '0' });
const meter = await openMeter();
try {
  const db = gw.storage.db;
  const now = new Date();
  const owner = randomUUID();
  await db
    .insertInto('users')
    .values({ id: owner, email: 'bulk@example.com', name: 'Bulk', picture: null, created_at: now, updated_at: now })
    .execute();

  const measure = async () => meter.round(gw, rotations((await openSessions(gw, CONNECTIONS)).map((s) => s.refreshToken)));

  // unmeasured: JIT, pools
  await measure();
  let stored = 0;
  const rows: string[] = [];
  for (const size of SIZES) {
    const add = size - stored;
    const t0 = Date.now();
    for (let done = 0; done < add; done += 100_000) {
      const n = Math.min(100_000, add - done);
      await sql`
        insert into sessions (id, user_id, provider, created_at, auth_time, last_used_at, idle_expires_at, expires_at)
        select gen_random_uuid(), ${owner}, 'bulk', now(), now(), now(), now() + interval '14 days', now() + interval '30 days'
        from generate_series(1, ${n})`.execute(db);
    }
    await sql`analyze sessions`.execute(db);
    stored = size;
    process.stderr.write(`stored ${size} sessions (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    const f = await measure();
    rows.push(
      `${String(size).padStart(8)} sessions  gateway ${f.serverUs.toFixed(0).padStart(5)} µs + Postgres ${f.postgresUs.toFixed(0).padStart(5)} µs ` +
        `per rotation  ${f.rps.toFixed(0).padStart(6)} rotations/s  p50 ${f.p50} ms  p99 ${f.p99} ms  failed ${f.failed}  errors ${f.errors}`,
    );
    if (f.failed || f.errors) process.exitCode = 1;
  }
  process.stdout.write([`refresh by stored sessions (${CONNECTIONS} connections, CPU per rotation from /proc)`, ...rows, ''].join('\n'));
} finally {
  await meter.close();
  await gw.close();
}
