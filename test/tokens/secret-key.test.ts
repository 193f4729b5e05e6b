// Changing SECRET_KEY: what stops working, what says so, SECRET_KEY_PREVIOUS (nobody is signed out), and the
// command that drops keys whose SECRET_KEY was lost.
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { openStorage } from '../../src/storage/db.js';
import { migrate } from '../../src/storage/migrator.js';
import { RefreshTokenCodec } from '../../src/tokens/refresh-token.js';
import { SecretBox } from '../../src/tokens/secret-box.js';
import { buildTestApp } from '../helpers/app.js';
import { postgresUrl, testDatabase } from '../helpers/db.js';
import { ROOT } from '../helpers/process.js';
import { signedIn } from '../helpers/users.js';

// fixed random keys (a repeated byte would be refused as too weak)
const k1 = Buffer.from('c5c935c7ad760605213d1a57a8138ae2db58425ca3ab5687d23b36222bb44b7f', 'hex');
const k2 = Buffer.from('bad724148eeaec139386bbe160447caa8dbd10870da009b553a7c668c625ff43', 'hex');
const k3 = Buffer.from('172b79e8340a6bade741b970cb831c790d3992c96cd23f543ab02aea274e4e4d', 'hex');
const b64 = (k: Buffer) => k.toString('base64');

/** a logger whose lines the test can read */
function capturingLogger() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => text };
}

t.test('a SECRET_KEY change, with and without SECRET_KEY_PREVIOUS', async (t) => {
  const { storage } = await testDatabase(t);
  const first = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k1) } });
  const user = await signedIn(first.app);
  const oldKid = first.app.ctx.keys.signingKey().kid;
  await first.app.close();

  t.test('a new SECRET_KEY alone: not ready, and the log says what to do', async (t) => {
    const log = capturingLogger();
    const { app } = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k2) }, deps: { logger: log.logger } });
    const ready = await app.inject('/readyz');
    t.equal(ready.statusCode, 503);
    t.match(ready.json().checks.signing_key, /cannot be decrypted with SECRET_KEY/);
    t.match(log.lines(), /restore the previous SECRET_KEY/);
    t.match(log.lines(), /SECRET_KEY_PREVIOUS/);
    t.match(log.lines(), /npm run keys -- drop-unreadable/);
    const refused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.tokens.refreshToken } });
    t.equal(refused.statusCode, 401, 'the old key’s refresh tokens are not readable either');
    await app.close();
  });

  t.test('SECRET_KEY_PREVIOUS: keys are re-encrypted, sessions keep working, the next token is under the new key', async (t) => {
    const { app } = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k2), SECRET_KEY_PREVIOUS: b64(k1) } });
    t.equal((await app.inject('/readyz')).statusCode, 200);
    t.equal(app.ctx.keys.signingKey().kid, oldKid, 'the same signing key');
    const res = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.tokens.refreshToken } });
    t.equal(res.statusCode, 200, 'a refresh token of the previous key still works');
    const next = res.json().refresh_token;
    t.ok(new RefreshTokenCodec([k2]).parse(next), 'its successor is under the new key');
    t.notOk(new RefreshTokenCodec([k1]).parse(next));
    const rows = await storage.db.selectFrom('signing_keys').select(['kid', 'private_jwk_enc']).execute();
    t.ok(
      rows.every((r) => new SecretBox([k2], 'signing keys').tryOpen(r.private_jwk_enc, r.kid)?.current),
      'every key is sealed under the new SECRET_KEY',
    );
    await app.close();

    const { app: later } = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k2) } });
    t.equal((await later.inject('/readyz')).statusCode, 200, 'then SECRET_KEY_PREVIOUS can go');
    t.equal((await later.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: next } })).statusCode, 200);
    const stale = new RefreshTokenCodec([k1]).mint(user.tokens.sessionId, 1);
    t.equal((await later.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: stale } })).statusCode, 401);
  });

  t.test('SECRET_KEY_PREVIOUS needs a SECRET_KEY, and a real one', async (t) => {
    const { parseConfig } = await import('../../src/config.js');
    t.throws(() => parseConfig({ SECRET_KEY_PREVIOUS: b64(k1) }), /SECRET_KEY_PREVIOUS is only read together with a new SECRET_KEY/);
    t.throws(() => parseConfig({ SECRET_KEY: b64(k2), SECRET_KEY_PREVIOUS: 'short' }), /SECRET_KEY_PREVIOUS must be/);
  });
});

t.test('npm run keys -- drop-unreadable, after the previous SECRET_KEY was lost', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'gw-keys-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  let url: string | undefined;
  if (postgresUrl) ({ url } = await testDatabase(t, { migrate: false }));
  const open = () => openStorage(url ? { databaseUrl: url } : { pgliteDir: dataDir });
  const env = { ...(url ? { DATABASE_URL: url } : { DATA_DIR: dataDir }), LOG_LEVEL: 'silent' };

  let storage = await open();
  await migrate(storage.db);
  const before = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k1) } });
  const lostKid = before.app.ctx.keys.signingKey().kid;
  await before.app.close();
  await storage.close();

  const cli = (args: string[], extra: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import=tsx', 'src/keys-cli.ts', ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, ...extra },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('exit', (code) => resolve({ code, out }));
    });

  const listed = await cli(['list'], { SECRET_KEY: b64(k3) });
  t.equal(listed.code, 0, listed.out);
  t.match(listed.out, new RegExp(`${lostKid}\\tES256\\tactive\\tunreadable`));
  const dropped = await cli(['drop-unreadable'], { SECRET_KEY: b64(k3) });
  t.equal(dropped.code, 0, dropped.out);
  t.match(dropped.out, /dropped 1 unreadable signing key/);
  t.equal((await cli(['bogus'], { SECRET_KEY: b64(k3) })).code, 2, 'an unknown command is refused');

  storage = await open();
  t.teardown(() => storage.close());
  const after = await buildTestApp(t, { storage, env: { SECRET_KEY: b64(k3) } });
  t.equal((await after.app.inject('/readyz')).statusCode, 200, 'ready with a new key');
  t.not(after.app.ctx.keys.signingKey().kid, lostKid);
});
