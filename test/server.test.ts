import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, ROOT, startGateway, startProcess } from './helpers/process.js';

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
  t.match(out, /PORT must be a whole number from 1 to 65535, got "x"/);
  t.match(out, /SECRET_KEY is required/);
  t.match(out, /PROVIDER_CORP_CLIENT_ID is required/);
  t.notMatch(out, /at .*\.ts:\d+/, 'no stack trace');
});

t.test('the tests, and the processes they start, run on a supported Node.js: the release .ci/run chose', async (t) => {
  const { engines } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const [, major, minor] = /^>=(\d+)\.(\d+)$/.exec(engines.node)!.map(Number);
  const [ourMajor, ourMinor] = process.versions.node.split('.').map(Number);
  t.ok(ourMajor > major || (ourMajor === major && ourMinor >= minor), `${process.version} satisfies engines ${engines.node}`);
  const child = startProcess(['-p', 'process.version'], {});
  t.equal(await child.exited, 0);
  t.equal(child.output().trim(), process.version, 'a process a test starts runs on the same Node.js');
  const ci = process.env.AUTH_GATEWAY_CI_NODE_VERSION;
  if (ci) t.equal(process.version, `v${ci}`, 'the release .ci/run fetched, also in tap’s child processes');
  else t.comment('outside .ci/run (AUTH_GATEWAY_CI_NODE_VERSION unset): any supported release');
});
