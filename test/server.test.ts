import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, startGateway } from './helpers/process.js';

// The first start on an empty DATA_DIR, exactly as a newcomer runs it: PGlite's initdb included (the other process
// tests start from a prepared data directory). A cold start takes seconds, longer on a busy machine: the wait is
// for the answer, with a ceiling far above that.
t.test('with no settings the process serves health on the embedded database and stops on SIGTERM', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-server-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const gw = startGateway({ DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });
  t.teardown(() => gw.child.kill('SIGKILL'));
  await gw.answers(`http://127.0.0.1:${port}/readyz`);
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { status: string };
  t.equal(ready.status, 'ready');
  gw.child.kill('SIGTERM');
  t.equal(await gw.exited, 0, 'exits cleanly');
  t.match(gw.output(), /generated a development key/);
  t.match(gw.output(), /"database":"pglite"/);
  t.match(gw.output(), /"msg":"stopped"/);
});

t.test('a bad configuration stops start-up with one message listing every problem', async (t) => {
  const gw = startGateway({ NODE_ENV: 'production', PORT: 'x', AUTH_PROVIDERS: 'corp' });
  t.equal(await gw.exited, 1);
  const out = gw.output();
  t.match(out, /^Invalid configuration:\n/);
  t.match(out, /PORT must be a whole number/);
  t.match(out, /SECRET_KEY is required/);
  t.match(out, /PROVIDER_CORP_CLIENT_ID is required/);
  t.notMatch(out, /at .*\.ts:\d+/, 'no stack trace');
});
