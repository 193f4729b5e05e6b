// SIGTERM under load: requests the process accepted finish; new connections are refused; the exit is clean.
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { postgresUrl, createPostgresDatabase } from '../helpers/db.js';
import { seedDataDir } from '../helpers/pglite-template.js';
import { freePort, startGateway } from '../helpers/process.js';
import { eventually } from '../helpers/wait.js';

/** One request on its own connection: its status, or the error code of a failed one. */
function get(port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERR'));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'ERR'));
    req.end();
  });
}

t.test('SIGTERM under load: readiness drains first, no request fails, clean exit', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-shutdown-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  // The drain period is wall-clock time by design (SHUTDOWN_DELAY): 3 s is 60 health-check intervals, so the
  // checker below sees the 503 long before the listener closes even when every request is slow.
  const env: Record<string, string> = { PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, SHUTDOWN_DELAY: '3' };
  if (postgresUrl) env.DATABASE_URL = await createPostgresDatabase(t);
  else await seedDataDir(dataDir); // initdb is not what this test is about
  const gw = startGateway(env);
  t.teardown(() => gw.child.kill('SIGKILL'));
  await gw.answers(`http://127.0.0.1:${port}/readyz`);

  // a load balancer: a health check every 50 ms, and traffic until the health check fails
  let drained = false;
  let saw503 = false;
  const checker = (async () => {
    while (!drained) {
      const r = await get(port, '/readyz');
      saw503 ||= r === 503;
      // out of rotation on a 503, or when the instance is gone (the assertions below tell which it was)
      if (r === 503 || r === 'ECONNREFUSED') drained = true;
      else await new Promise((res) => setTimeout(res, 50));
    }
  })();
  const outcomes = new Map<number | string, number>();
  let sent = 0;
  let answered = 0;
  const clients = Array.from({ length: 16 }, async () => {
    while (!drained) {
      sent++;
      const r = await get(port, '/.well-known/jwks.json');
      answered++;
      outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
    }
  });
  // SIGTERM once the load is really running (however long the first hundred answers take)
  await eventually(() => answered >= 100, { what: '100 answered requests' });
  const before = sent;
  gw.child.kill('SIGTERM');
  await Promise.all([checker, ...clients]);
  const code = await gw.exited;
  t.equal(code, 0, 'a clean exit');
  t.ok(saw503, 'the health check saw readiness turn 503 while the listener was still open');
  t.ok(sent > before, `traffic went on during the drain (${before} requests before SIGTERM, ${sent} in all)`);
  t.same([...outcomes.keys()], [200], 'every request, also those during the drain, was answered 200');
  t.equal(await get(port, '/healthz'), 'ECONNREFUSED', 'the listener is closed');
  t.match(gw.output(), /draining: readiness is 503/);
  t.match(gw.output(), /"msg":"stopped"/);
});
