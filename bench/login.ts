// The full login callback against a local upstream (the tests' fake OpenID provider, which issues codes at once):
// flow check, code exchange over HTTP, ID token verification, identity linking, session, cookie. Each request
// completes one prepared login (its own flow cookie, state and code).
import { startFakeOidc } from '../fixtures/fake-oidc.js';
import { baseline, build, report, run, startGateway } from './common.js';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 3000);

build();
const fake = await startFakeOidc();
const gw = await startGateway({
  PUBLIC_URL: 'http://localhost:3000',
  AUTH_PROVIDERS: 'fake',
  PROVIDER_FAKE_ISSUER: fake.issuer,
  PROVIDER_FAKE_CLIENT_ID: fake.clientId,
  PROVIDER_FAKE_CLIENT_SECRET: fake.clientSecret,
  PROVIDER_FAKE_TRUST_EMAIL: 'true',
  RATE_LIMIT_LOGIN: '0',
});
try {
  let n = 0;
  // a different user for every login: each one creates a user, an identity and a session
  fake.idToken = (claims) => fake.sign({ ...claims, sub: `user-${++n}`, email: `user-${n}@example.com`, email_verified: true });
  const prepared: { path: string; cookie: string }[] = [];
  for (let i = 0; i < LOGINS; i++) {
    const start = await fetch(`${gw.url}/auth/fake/login`, { redirect: 'manual' });
    const cookie = start.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const callback = await fake.authorize(new URL(start.headers.get('location')!));
    prepared.push({ path: callback.pathname + callback.search, cookie });
  }
  const base = await baseline();
  const figures = await run({
    url: gw.url,
    amount: prepared.length,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => {
          const next = prepared.shift()!;
          return { ...req, path: next.path, headers: { cookie: next.cookie } };
        },
      },
    ],
  });
  // success is a 302 to return_to with the session cookie
  report('login callback', 'logins', { ...figures, non2xx: 0 }, base);
  const sessions = await gw.storage.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  process.stdout.write(`sessions created: ${sessions.n} of ${LOGINS} logins\n`);
  if (Number(sessions.n) !== LOGINS) process.exitCode = 1;
} finally {
  await gw.close();
  await fake.close();
}
