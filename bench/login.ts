// The full login callback against a local upstream (the tests' fake OpenID provider, in this process, which issues
// codes at once): flow check, code exchange over HTTP, ID token verification, identity linking, session, cookie.
// Before each round BENCH_LOGINS logins are started (their own flow cookie, state and code), and the round
// completes each of them once: a new user, identity and session per login.
import { type FakeOidc, startFakeOidc } from '../fixtures/fake-oidc.js';
import { type BenchGateway, CONNECTIONS, type Scenario } from './common.js';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 1500);
// autocannon gives every connection at least one request
if (!Number.isInteger(LOGINS) || LOGINS < CONNECTIONS) throw new Error('BENCH_LOGINS must be a whole number, at least BENCH_CONNECTIONS');

/** The fake upstream, and the gateway settings that make it a login provider. */
export async function loginUpstream(): Promise<{ fake: FakeOidc; env: Record<string, string> }> {
  const fake = await startFakeOidc();
  let n = 0;
  // a different user for every login
  fake.idToken = (claims) => fake.sign({ ...claims, sub: `user-${++n}`, email: `user-${n}@example.com`, email_verified: true });
  return {
    fake,
    env: {
      PUBLIC_URL: 'http://localhost:3000',
      AUTH_PROVIDERS: 'fake',
      PROVIDER_FAKE_ISSUER: fake.issuer,
      PROVIDER_FAKE_CLIENT_ID: fake.clientId,
      PROVIDER_FAKE_CLIENT_SECRET: fake.clientSecret,
      PROVIDER_FAKE_TRUST_EMAIL: 'true',
      RATE_LIMIT_LOGIN: '0',
    },
  };
}

async function startLogin(gw: BenchGateway, fake: FakeOidc): Promise<{ path: string; cookie: string }> {
  const start = await fetch(`${gw.url}/auth/fake/login`, { redirect: 'manual' });
  const cookie = start.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const location = start.headers.get('location');
  if (start.status !== 302 || !location) throw new Error(`login start answered ${start.status}`);
  const callback = await fake.authorize(new URL(location));
  return { path: callback.pathname + callback.search, cookie };
}

async function countSessions(gw: BenchGateway): Promise<number> {
  const { n } = await gw.storage.db
    .selectFrom('sessions')
    .where('provider', '=', 'fake')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(n);
}

export function loginScenario(gw: BenchGateway, fake: FakeOidc): Scenario {
  let before = 0;
  return {
    key: 'login',
    label: 'login callback',
    system: 'gateway',
    server: gw,
    // success is a 302 to return_to with the session cookie
    okStatus: 302,
    prepare: async (purpose) => {
      const n = purpose === 'warmup' ? Math.max(CONNECTIONS, Math.ceil(LOGINS / 5)) : LOGINS;
      const prepared: { path: string; cookie: string }[] = [];
      for (let i = 0; i < n; i += 10)
        prepared.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => startLogin(gw, fake)))));
      before = await countSessions(gw);
      return {
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
      };
    },
    verify: async (round) => {
      const made = (await countSessions(gw)) - before;
      return made === round.ok && round.ok === LOGINS ? undefined : `${made} sessions from ${round.ok} of ${LOGINS} logins`;
    },
  };
}
