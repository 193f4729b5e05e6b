// Start-up failures an operator can fix end the process with one clear message and exit 1, never a stack trace:
// settings checked together, a DATA_DIR that cannot be used, a Postgres that cannot be reached (retried first),
// a port in use.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TEST_SECRET } from './helpers/app.js';
import { createPostgresDatabase, postgresUrl } from './helpers/db.js';
import { exitOf, freePort, startGateway, waitFor, waitForOutput } from './helpers/process.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const STACK = /^\s+at .*:\d+:\d+\)?$/m;

t.test('TRUST_PROXY and HOST are checked with the rest: one message, no stack trace', async (t) => {
  const { code, output } = await exitOf(
    startGateway({ TRUST_PROXY: 'yes', HOST: 'localhost:43100', SECRET_KEY: TEST_SECRET, DATA_DIR: '/nonexistent' }),
  );
  t.equal(code, 1);
  t.match(output, /^Invalid configuration:\n/);
  t.match(output, /TRUST_PROXY must be the number of proxies/);
  t.match(output, /HOST must be an IP address or a host name .*got "localhost:43100"/);
  t.notMatch(output, STACK, 'no stack trace');
});

t.test('a DATA_DIR that cannot be used stops start-up at once, naming it and why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-server-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'a-file');
  await writeFile(file, '');
  // /proc: the file system answers ENOENT for a new directory, where Node's recursive mkdir never returned
  for (const [dataDir, reason] of [
    ['/proc/gw-data', /DATA_DIR \/proc\/gw-data cannot be created: /],
    [join(file, 'data'), /DATA_DIR .*a-file\/data cannot be used: a part of the path is a file, not a directory \(ENOTDIR\)/],
    [file, /DATA_DIR .*a-file cannot be used: .*a-file is a file, not a directory/],
  ] as const) {
    const port = await freePort();
    const { code, output } = await exitOf(startGateway({ DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' }));
    t.equal(code, 1, dataDir);
    t.match(output, reason, dataDir);
    t.notMatch(output, STACK, 'no stack trace');
  }
});

t.test('a Postgres that cannot be reached: retried with backoff for DATABASE_CONNECT_TIMEOUT, then exit 1 without a stack', async (t) => {
  const dbPort = await freePort(); // nothing listens there
  const gw = startGateway({
    DATABASE_URL: `postgres://gw:sw0rdfish-secret@127.0.0.1:${dbPort}/gw`,
    DATABASE_CONNECT_TIMEOUT: '2',
    SECRET_KEY: TEST_SECRET,
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
  });
  const { code, output } = await exitOf(gw);
  t.equal(code, 1);
  t.match(
    output,
    new RegExp(`cannot connect to Postgres at 127\\.0\\.0\\.1:${dbPort}: .*ECONNREFUSED.*; retrying in`),
    'each retry is logged',
  );
  t.match(
    output,
    new RegExp(
      `\\ncannot connect to Postgres at 127\\.0\\.0\\.1:${dbPort}: .*ECONNREFUSED.* \\(gave up after 2 s of retries; DATABASE_CONNECT_TIMEOUT sets how long\\)\\n$`,
    ),
  );
  t.notMatch(output, /sw0rdfish/, 'never the password');
  t.notMatch(output, /MigrationError|migration {2}failed/);
  t.notMatch(output, STACK, 'no stack trace');
});

t.test('a Postgres that comes up while the gateway retries: it starts', { skip: postgresUrl ? false : 'needs Postgres' }, async (t) => {
  const target = new URL(await createPostgresDatabase(t));
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  const proxyPort = await freePort();
  const viaProxy = new URL(target.href);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxyPort);
  const port = await freePort();
  const gw = startGateway({
    DATABASE_URL: viaProxy.href,
    DATABASE_CONNECT_TIMEOUT: '600',
    SECRET_KEY: TEST_SECRET,
    PORT: String(port),
    HOST: '127.0.0.1',
  });
  t.teardown(() => gw.child.kill('SIGKILL'));
  await waitForOutput(gw, /cannot connect to Postgres at 127\.0\.0\.1:\d+: .*; retrying in/);
  await proxy.start(proxyPort);
  t.teardown(() => proxy.stop());
  await waitFor(`http://127.0.0.1:${port}/readyz`);
  gw.child.kill('SIGTERM');
  t.equal((await exitOf(gw)).code, 0);
});

t.test('a port in use: one line saying so, exit 1', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-server-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const database: Record<string, string> = postgresUrl ? { DATABASE_URL: await createPostgresDatabase(t) } : { DATA_DIR: dataDir };
  const { code, output } = await exitOf(startGateway({ ...database, PORT: String(port), HOST: '127.0.0.1', SECRET_KEY: TEST_SECRET }));
  t.equal(code, 1);
  t.match(output, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(PORT, HOST\\)`));
  t.notMatch(output, STACK, 'no stack trace');
});
