// `npm start` checks its settings with the gateway's own parsing and messages, says plainly when a port is taken,
// and prints "open …" only once the gateway is ready, never when start-up then fails.
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createPostgresDatabase, postgresUrl } from '../helpers/db.js';
import { exitOf, freePort, startLauncher, waitForOutput } from '../helpers/process.js';

const STACK = /^\s+at .*:\d+:\d+\)?$/m;
const OPEN = /open (http:\/\/localhost:\d+)\/ to sign in/;

/** A database of the launcher's own: Postgres when the suite runs on it (quicker to start), else DATA_DIR's PGlite. */
async function database(t: Test): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-demo-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  return postgresUrl ? { DATA_DIR: dataDir, DATABASE_URL: await createPostgresDatabase(t) } : { DATA_DIR: dataDir };
}

async function busyPort(t: Test): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

for (const port of ['abc', '-5']) {
  t.test(`PORT=${port}: the gateway's message, no stack trace`, async (t) => {
    const { code, output } = await exitOf(startLauncher({ PORT: port, DATA_DIR: '/nonexistent' }));
    t.equal(code, 1);
    t.equal(output, `Invalid configuration:\n  - PORT must be a whole number from 1 to 65535, got "${port}"\n`);
  });
}

t.test('a busy demo provider port: one line saying so, and no "open" line', async (t) => {
  const taken = await busyPort(t);
  const { code, output } = await exitOf(
    startLauncher({
      ...(await database(t)),
      PORT: String(await freePort()),
      DEMO_PROVIDER_PORT: String(taken),
      DEMO_APP_PORT: String(await freePort()),
    }),
  );
  t.equal(code, 1);
  t.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken} for Demo ID: the address is already in use \\(DEMO_PROVIDER_PORT`));
  t.notMatch(output, STACK, 'no stack trace');
  t.notMatch(output, OPEN);
});

t.test('a busy Demo App port: one line saying so, and no "open" line', async (t) => {
  const taken = await busyPort(t);
  const { code, output } = await exitOf(
    startLauncher({
      ...(await database(t)),
      PORT: String(await freePort()),
      DEMO_PROVIDER_PORT: String(await freePort()),
      DEMO_APP_PORT: String(taken),
    }),
  );
  t.equal(code, 1);
  t.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken} for the Demo App: the address is already in use \\(DEMO_APP_PORT`));
  t.notMatch(output, STACK, 'no stack trace');
  t.notMatch(output, OPEN);
});

t.test('a busy gateway port: one line saying so, and no "open" line', async (t) => {
  const taken = await busyPort(t);
  const { code, output } = await exitOf(
    startLauncher({
      ...(await database(t)),
      PORT: String(taken),
      DEMO_PROVIDER_PORT: String(await freePort()),
      DEMO_APP_PORT: String(await freePort()),
    }),
  );
  t.equal(code, 1);
  t.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}: the address is already in use \\(PORT, HOST\\)`));
  t.notMatch(output, STACK, 'no stack trace');
  t.notMatch(output, OPEN);
});

t.test('"open …" is printed once the gateway is ready', async (t) => {
  const port = await freePort();
  const appPort = await freePort();
  const launcher = startLauncher({
    ...(await database(t)),
    PORT: String(port),
    DEMO_PROVIDER_PORT: String(await freePort()),
    DEMO_APP_PORT: String(appPort),
  });
  t.teardown(() => launcher.child.kill('SIGKILL'));
  const [, url] = await waitForOutput(launcher, OPEN);
  t.equal(url, `http://localhost:${port}`);
  // asked right after the line appeared: no waiting, no retry
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  t.equal(ready.status, 200, 'ready by the time it says so');
  const { providers } = (await (await fetch(`http://127.0.0.1:${port}/auth/providers`)).json()) as { providers: { id: string }[] };
  t.same(
    providers.map((p) => p.id),
    ['demo'],
  );
  // the Demo App is up too, and the gateway knows it as the client of demo/clients.yaml
  const app = await fetch(`http://127.0.0.1:${appPort}/`);
  t.equal(app.status, 200);
  t.match(await app.text(), /Sign in with Auth Gateway/);
  const authorize = await fetch(
    `http://127.0.0.1:${port}/oauth2/authorize?client_id=demo-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`http://127.0.0.1:${appPort}/callback`)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
    { redirect: 'manual' },
  );
  t.equal(authorize.status, 302, 'the Demo App is a registered client: the request goes on to sign-in');
  launcher.child.kill('SIGTERM');
  const { code, output } = await exitOf(launcher);
  t.equal(code, 0, 'stops cleanly');
  t.notMatch(output, /NPM_START_DEMO_APP_SECRET|CLIENTS_FILE/, 'no warning about the settings npm start makes itself');
  t.equal(output.match(/open http/g)?.length, 1, 'said once');
});
