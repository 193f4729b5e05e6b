import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createVerifier, type DecodedJwt } from 'fast-jwt';
import buildGetJwks from 'get-jwks';
import t from 'tap';
import type { SigningAlg } from '../../src/config.js';
import { DatabaseKeyStore } from '../../src/tokens/key-store.js';
import { KeyManager } from '../../src/tokens/keys.js';
import { SecretBox } from '../../src/tokens/secret-box.js';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { testDatabase } from '../helpers/db.js';
import { signedIn } from '../helpers/users.js';

const HOUR = 3600;
const ENV = { KEY_ROTATION_INTERVAL: String(24 * HOUR), JWKS_MAX_AGE: '300', ACCESS_TOKEN_TTL: '600', REFRESH_TOKEN_TTL: String(HOUR) };

t.test('the first start makes one active key; the JWKS publishes only public parts', async (t) => {
  const { app, storage } = await buildTestApp(t, { env: ENV });
  const keys = await storage.db.selectFrom('signing_keys').selectAll().execute();
  t.equal(keys.length, 1);
  t.equal(keys[0].state, 'active');
  t.equal(keys[0].alg, 'ES256');
  t.notMatch(keys[0].private_jwk_enc, /"d"/, 'the private key is encrypted at rest');
  t.notOk('d' in keys[0].public_jwk, 'the public column holds no private member');

  const res = await app.inject('/.well-known/jwks.json');
  t.equal(res.statusCode, 200);
  t.equal(res.headers['cache-control'], 'public, max-age=300');
  const jwks = res.json() as { keys: Record<string, unknown>[] };
  t.equal(jwks.keys.length, 1);
  t.match(jwks.keys[0], { kty: 'EC', crv: 'P-256', kid: keys[0].kid, alg: 'ES256', use: 'sig' });
  for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) t.notOk(m in jwks.keys[0], `no "${m}"`);

  const etag = res.headers.etag as string;
  t.ok(etag);
  const again = await app.inject({ url: '/.well-known/jwks.json', headers: { 'if-none-match': etag } });
  t.equal(again.statusCode, 304);
  t.equal(again.body, '');

  const ready = await app.inject('/readyz');
  t.match(ready.json(), { checks: { database: 'ok', signing_key: 'ok' } });

  const oidc = (await app.inject('/.well-known/openid-configuration')).json();
  t.match(oidc, {
    issuer: 'http://localhost:3000',
    jwks_uri: 'http://localhost:3000/.well-known/jwks.json',
    userinfo_endpoint: 'http://localhost:3000/oauth2/userinfo',
    // OIDC Core's default, and SIGNING_ALG
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
    access_token_signing_alg_values_supported: ['ES256'],
  });
});

t.test('a SECRET_KEY that cannot open the stored keys leaves the instance unready', async (t) => {
  const { storage } = await testDatabase(t);
  await buildTestApp(t, { storage, env: ENV });
  const other = await buildTestApp(t, { storage, env: { ...ENV, SECRET_KEY: 'pwKyIBOvHV/buUORfoKK8CVag4wrIftJybppHxSco1A=' } });
  const ready = await other.app.inject('/readyz');
  t.equal(ready.statusCode, 503);
  t.match(ready.json().checks.signing_key, /cannot be decrypted with SECRET_KEY/);
  const refresh = await other.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x.y.z' } });
  t.equal(refresh.statusCode, 401, 'nothing is signed or accepted with keys it cannot use');
});

t.test('rotation across the whole key lifecycle, seen by a sibling service through the JWKS URL only', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: ENV, clock });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const jwksUrl = `${address}/.well-known/jwks.json`;

  // an independent verifier (fast-jwt + get-jwks), knowing nothing but the issuer and the JWKS
  // (it caches keys by kid and fetches the JWKS again for a kid it has not seen, as sibling services do)
  const getJwks = buildGetJwks({ jwksPath: '/.well-known/jwks.json', providerDiscovery: false });
  const sibling = (token: string) =>
    createVerifier({
      key: async ({ header }: DecodedJwt) => getJwks.getPublicKey({ domain: address, kid: header.kid, alg: header.alg }),
      allowedIss: 'http://localhost:3000',
      allowedAud: 'http://localhost:3000',
      algorithms: ['ES256'],
      clockTimestamp: clock.now().getTime(),
    })(token);
  const jwks = async () => ((await (await fetch(jwksUrl)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  const state = async () =>
    Object.fromEntries((await storage.db.selectFrom('signing_keys').select(['kid', 'state']).execute()).map((k) => [k.kid, k.state]));

  const user = await signedIn(app);
  const k1 = decodeProtectedHeader(user.tokens.accessToken).kid!;
  t.match(await sibling(user.tokens.accessToken), { sub: user.id });
  t.same(await jwks(), [k1]);

  // a day minus the JWKS cache period later: the next key is published but does not sign yet
  clock.advance(24 * HOUR - 300);
  await app.ctx.keys.tick();
  const s1 = await state();
  const k2 = Object.keys(s1).find((k) => k !== k1)!;
  t.same(s1, { [k1]: 'active', [k2]: 'next' });
  t.same(await jwks(), [k1, k2], 'published before it signs');
  const stillOld = await signedIn(app);
  t.equal(decodeProtectedHeader(stillOld.tokens.accessToken).kid, k1, 'the old key still signs');

  // one JWKS cache period later it signs; the old key is retired but stays published
  clock.advance(300);
  await app.ctx.keys.tick();
  t.same(await state(), { [k1]: 'retired', [k2]: 'active' });
  t.same(await jwks(), [k2, k1]);
  const fresh = await signedIn(app);
  t.equal(decodeProtectedHeader(fresh.tokens.accessToken).kid, k2, 'the new key signs');
  t.match(await sibling(fresh.tokens.accessToken), { sub: fresh.id });
  t.match(await sibling(stillOld.tokens.accessToken), { sub: stillOld.id }, 'tokens of the retired key still verify');

  // refresh tokens are signed by no key: sessions carry on, and their next access token is the new key's
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: stillOld.tokens.refreshToken } });
  t.equal(refreshed.statusCode, 200);
  t.equal(decodeProtectedHeader(refreshed.json().access_token).kid, k2);

  // once every token the retired key signed has expired (ACCESS_TOKEN_TTL), it leaves the JWKS
  clock.advance(600 + 60);
  await app.ctx.keys.tick();
  t.same(await jwks(), [k2, k1], 'still published until the longest token lifetime plus a margin has passed');
  clock.advance(120);
  await app.ctx.keys.tick();
  t.same(await jwks(), [k2]);
  t.same(await state(), { [k2]: 'active' }, 'removed');

  const events = await storage.db.selectFrom('audit_events').select(['type']).where('type', 'like', 'key.%').execute();
  t.same(events.map((e) => e.type).sort(), ['key.created', 'key.created', 'key.rotated', 'key.rotated']);
});

t.test('rotate now publishes a key that signs after one JWKS cache period', async (t) => {
  const clock = new TestClock();
  const { app } = await buildTestApp(t, { env: ENV, clock });
  const before = app.ctx.keys.signingKey().kid;
  const { kid, activateAt } = await app.ctx.keys.rotateNow();
  t.equal(activateAt.getTime() - clock.now().getTime(), 300_000);
  t.equal(app.ctx.keys.signingKey().kid, before, 'not yet');
  t.ok(
    app.ctx.keys.jwks().keys.some((k) => k.kid === kid),
    'but published',
  );
  t.same(await app.ctx.keys.rotateNow(), { kid, activateAt, result: 'already_scheduled' }, 'asking twice schedules nothing more');
  clock.advance(300);
  await app.ctx.keys.tick();
  t.equal(app.ctx.keys.signingKey().kid, kid);
});

t.test('instances sharing a database never make two active keys', async (t) => {
  const clock = new TestClock();
  const { storage } = await testDatabase(t);
  const instances = await Promise.all([1, 2, 3].map(() => buildTestApp(t, { storage, env: ENV, clock })));
  const count = async (state: string) =>
    (
      await storage.db
        .selectFrom('signing_keys')
        .select('kid')
        .where('state', '=', state as 'active')
        .execute()
    ).length;
  t.equal(await count('active'), 1, 'one active key after three concurrent first starts');
  const kids = new Set(instances.map((i) => i.app.ctx.keys.signingKey().kid));
  t.equal(kids.size, 1, 'all sign with it');

  clock.advance(24 * HOUR);
  await Promise.all(instances.map((i) => i.app.ctx.keys.tick()));
  t.equal(await count('next'), 1, 'one next key however many instances noticed');
  clock.advance(300);
  await Promise.all(instances.map((i) => i.app.ctx.keys.tick()));
  t.equal(await count('active'), 1);
  t.equal(await count('retired'), 1);
  const signing = new Set(instances.map((i) => i.app.ctx.keys.signingKey().kid));
  t.equal(signing.size, 1, 'every instance signs with the same new key');

  // a token signed by one instance is accepted by the others
  const user = await signedIn(instances[0].app);
  for (const i of instances.slice(1)) {
    const res = await i.app.inject({ url: '/auth/userinfo', headers: { authorization: `Bearer ${user.tokens.accessToken}` } });
    t.equal(res.statusCode, 200);
  }
});

for (const alg of ['EdDSA', 'RS256'] as const) {
  t.test(`SIGNING_ALG=${alg} signs tokens that verify against the JWKS`, async (t) => {
    const { app } = await buildTestApp(t, { env: { ...ENV, SIGNING_ALG: alg } });
    const user = await signedIn(app);
    const jwks = (await app.inject('/.well-known/jwks.json')).json();
    t.equal(jwks.keys[0].alg, alg);
    const { payload, protectedHeader } = await jwtVerify(user.tokens.accessToken, createLocalJWKSet(jwks), {
      issuer: 'http://localhost:3000',
      audience: 'http://localhost:3000',
      typ: 'at+jwt',
      currentDate: app.ctx.now(),
    });
    t.equal(protectedHeader.alg, alg);
    t.equal(payload.sub, user.id);
  });
}

t.test('changing SIGNING_ALG rotates to a key of the new algorithm', async (t) => {
  const clock = new TestClock();
  const { storage } = await testDatabase(t);
  await buildTestApp(t, { storage, env: ENV, clock });
  const { app } = await buildTestApp(t, { storage, env: { ...ENV, SIGNING_ALG: 'EdDSA' }, clock });
  t.equal(app.ctx.keys.signingKey().alg, 'ES256', 'the old key signs until the new one is safely published');
  clock.advance(300);
  await app.ctx.keys.tick();
  t.equal(app.ctx.keys.signingKey().alg, 'EdDSA');
});

t.test('ID-token algorithms get keys of their own, each rotating on its own; an unused one retires', async (t) => {
  const clock = new TestClock();
  const { storage } = await testDatabase(t);
  const { app } = await buildTestApp(t, { storage, env: ENV, clock });
  const log = app.log;
  let idTokenAlgs: SigningAlg[] = ['RS256'];
  const keys = new KeyManager(new DatabaseKeyStore(storage.db), new SecretBox(app.ctx.config.secretKey, 'signing keys'), {
    alg: 'ES256',
    rotationInterval: 24 * HOUR,
    jwksMaxAge: 300,
    maxTokenLifetime: 600,
    now: clock.now,
    log,
    idTokenAlgs: async () => idTokenAlgs,
  });
  await keys.tick();
  const rows = async () =>
    (await storage.db.selectFrom('signing_keys').select(['alg', 'state']).orderBy('alg').orderBy('state').execute()).map(
      (k) => `${k.alg}:${k.state}`,
    );
  t.same(await rows(), ['ES256:active', 'RS256:active'], 'the first key of an ID-token algorithm signs at once');
  const rs = await keys.signingKeyFor('RS256');
  t.equal(rs.alg, 'RS256');
  t.equal(keys.signingKey().alg, 'ES256', 'access tokens keep SIGNING_ALG');
  t.same(
    keys
      .jwks()
      .keys.map((k) => k.alg)
      .sort(),
    ['ES256', 'RS256'],
    'both published',
  );

  clock.advance(24 * HOUR - 300);
  await keys.tick();
  t.same(await rows(), ['ES256:active', 'ES256:next', 'RS256:active', 'RS256:next'], 'each publishes its next key in time');
  clock.advance(300);
  await keys.tick();
  t.same(await rows(), ['ES256:active', 'ES256:retired', 'RS256:active', 'RS256:retired']);
  t.not((await keys.signingKeyFor('RS256')).kid, rs.kid, 'RS256 rotated');

  idTokenAlgs = [];
  await keys.tick();
  t.same(await rows(), ['ES256:active', 'ES256:retired', 'RS256:retired', 'RS256:retired'], 'no client asks for RS256: it retires');
  await t.rejects(keys.signingKeyFor('RS256'), { name: 'AppError', message: 'No RS256 signing key is loaded.' });
  t.equal(keys.jwks().keys.filter((k) => k.alg === 'RS256').length, 2, 'still published until what it signed has expired');
});
