// `npm start`: the gateway on the embedded database (or DATABASE_URL) with a local demo OpenID provider ("Demo ID",
// a real oidc-provider with a sign-in page) as its only provider, and the demo page at the gateway's root.
//
// Demo ID signs anyone in with any name and email they type. So that this can never reach a real account, the
// launcher refuses to run in production, next to real providers, or on a database holding users who did not sign
// in through the demo; Demo ID listens on 127.0.0.1 only, and the gateway never links its logins by email.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { loadConfig, nodeEnvOf, parseConfig, providerEnvPrefix, providerIdsOf } from '../src/config.js';
import { listenError, runGateway } from '../src/gateway.js';
import type { Storage } from '../src/storage/db.js';
import { exitOnStartupFailure, StartupError } from '../src/startup.js';
import { type DemoApp, startDemoApp } from './app.js';
import { createUpstream, type Interaction } from './upstream.js';

const PROVIDER_ID = 'demo';
/** the Demo App's registration; its secret arrives in NPM_START_DEMO_APP_SECRET */
const CLIENTS_FILE = fileURLToPath(new URL('clients.yaml', import.meta.url));
const DEMO_APP_CLIENT_ID = 'demo-app';
const DEMO_PREFIX = providerEnvPrefix(PROVIDER_ID);
const INSTEAD =
  'Demo ID signs anyone in with any name and email, so npm start only runs where no real account can be reached.\n' +
  'Run the gateway without the demo instead: npm run gateway (or node dist/src/server.js), with your AUTH_PROVIDERS and PROVIDER_* settings.';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function signInPage(i: Interaction): void {
  const client = escape(String(i.details.params.client_id ?? ''));
  i.res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://localhost:*",
    'cache-control': 'no-store',
  });
  i.res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo ID — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#f4f1ea;display:grid;place-items:center;min-height:100vh;margin:0}
main{background:#fff;padding:2rem 2.5rem;border-radius:12px;box-shadow:0 2px 12px #0002;width:20rem}
h1{margin:0 0 .25rem;font-size:1.4rem}p{color:#555;margin:.25rem 0 1.25rem}label{display:block;margin:.75rem 0 .25rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}.row{display:flex;gap:.5rem;margin-top:1.25rem}
button{flex:1;padding:.6rem;font-size:1rem;border-radius:6px;border:1px solid #333;cursor:pointer}
button[value=login]{background:#1d4ed8;color:#fff;border-color:#1d4ed8}
</style></head>
<body><main>
<h1>Demo ID</h1>
<p>A local OpenID provider for trying the gateway. <b>${client}</b> asks you to sign in.</p>
<form method="post" action="/interaction/${escape(i.details.uid)}">
<label for="name">Name</label><input id="name" name="name" value="Ada Lovelace" required>
<label for="email">Email</label><input id="email" name="email" type="email" value="ada@example.com" required>
<div class="row"><button name="action" value="deny" formnovalidate>Deny</button><button name="action" value="login">Sign in</button></div>
</form></main></body></html>`);
}

/** Why npm start must not run with these settings, before anything is started; undefined when it may. */
function settingsRefusal(env: NodeJS.ProcessEnv): string | undefined {
  if (nodeEnvOf(env) === 'production') return 'NODE_ENV=production';
  const real = providerIdsOf(env).filter((id) => id !== PROVIDER_ID);
  if (real.length) return `AUTH_PROVIDERS configures real providers (${real.join(', ')})`;
  return undefined;
}

/**
 * Refuses a database holding users who did not come through the demo. A user counts as the demo's when it has at
 * least one identity and every identity it has is at provider `demo`: a user with an identity anywhere else, or
 * with none (made through the admin API or by hand), is a real account.
 */
async function refuseRealUsers(storage: Storage): Promise<void> {
  const { rows } = await sql<{ users: string | null }>`select to_regclass('users')::text as users`.execute(storage.db);
  if (!rows[0]?.users) return; // a database the gateway has never migrated holds no users of ours
  const real = await storage.db
    .selectFrom('users as u')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where((eb) =>
      eb.or([
        eb.not(eb.exists(eb.selectFrom('identities as i').select('i.id').whereRef('i.user_id', '=', 'u.id'))),
        eb.exists(
          eb.selectFrom('identities as i').select('i.id').whereRef('i.user_id', '=', 'u.id').where('i.provider', '<>', PROVIDER_ID),
        ),
      ]),
    )
    .executeTakeFirstOrThrow();
  const count = Number(real.count);
  if (count === 0) return;
  const providers = (
    await storage.db
      .selectFrom('identities')
      .select('provider')
      .distinct()
      .where('provider', '<>', PROVIDER_ID)
      .orderBy('provider')
      .execute()
  ).map((r) => r.provider);
  const without = await storage.db
    .selectFrom('users as u')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where((eb) => eb.not(eb.exists(eb.selectFrom('identities as i').select('i.id').whereRef('i.user_id', '=', 'u.id'))))
    .executeTakeFirstOrThrow();
  const kinds = [
    ...(providers.length ? [`identities at ${providers.join(', ')}`] : []),
    ...(Number(without.count) ? [`${without.count} without any identity`] : []),
  ];
  throw new StartupError(
    `npm start refuses to run: the database (${storage.location}) holds ${count} user${count === 1 ? '' : 's'} who did not sign in through the demo (${kinds.join('; ')}).\n` +
      `${INSTEAD}\nOr try the demo on a database of its own: unset DATABASE_URL and set DATA_DIR to an empty directory.`,
  );
}

async function main(): Promise<void> {
  // the demo provider is configured here and nowhere else: settings for it from the environment are dropped
  const env: NodeJS.ProcessEnv = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith(DEMO_PREFIX) || name === 'CLIENTS_FILE') dropped.push(name);
    else env[name] = value;
  }
  const refusal = settingsRefusal(env);
  if (refusal) throw new StartupError(`npm start refuses to run: ${refusal}.\n${INSTEAD}`);

  const clientId = 'auth-gateway-demo';
  const clientSecret = randomBytes(24).toString('base64url');
  const demoProvider = (issuer: string) => ({
    AUTH_PROVIDERS: PROVIDER_ID,
    [`${DEMO_PREFIX}TYPE`]: 'oidc',
    [`${DEMO_PREFIX}NAME`]: 'Demo ID',
    [`${DEMO_PREFIX}ISSUER`]: issuer,
    [`${DEMO_PREFIX}CLIENT_ID`]: clientId,
    [`${DEMO_PREFIX}CLIENT_SECRET`]: clientSecret,
    // anyone can type any email at Demo ID: it must never make a login land on the user who has that email
    [`${DEMO_PREFIX}TRUST_EMAIL`]: 'false',
  });
  // the gateway's own parsing and messages for PORT, HOST, PUBLIC_URL, DEMO_PROVIDER_PORT and everything else
  // (first for the ports, which the demo provider's issuer needs); the demo listens on this machine only unless
  // HOST says otherwise
  // the Demo App is the one registered client (demo/clients.yaml), with a secret made now
  const demoAppSecret = randomBytes(32).toString('base64url');
  const base = { HOST: '127.0.0.1', DEMO_PAGE: 'true', ...env };
  const { publicUrl, demoProviderPort, demoAppPort } = parseConfig({ ...base, ...demoProvider('http://localhost') });
  const issuer = `http://localhost:${demoProviderPort}`;
  const loaded = await loadConfig({ ...base, ...demoProvider(issuer), CLIENTS_FILE, NPM_START_DEMO_APP_SECRET: demoAppSecret });

  let server: Server | undefined;
  const startDemoProvider = async () => {
    const upstream = await createUpstream({
      issuer,
      clients: [{ clientId, clientSecret, redirectUris: [`${publicUrl}/auth/${PROVIDER_ID}/callback`] }],
      conformIdTokenClaims: false,
      async interact(i) {
        if (i.details.prompt.name === 'consent') return i.consent(); // a demo: no consent screen
        if (i.req.method !== 'POST') return signInPage(i);
        const f = await form(i.req);
        if (f.get('action') !== 'login') return i.deny();
        const email = (f.get('email') ?? '').trim().toLowerCase();
        const name = (f.get('name') ?? '').trim() || email;
        // the same email is the same demo account
        return i.login({ accountId: `demo-${Buffer.from(email).toString('base64url')}`, claims: { email, email_verified: true, name } });
      },
    });
    const s = createServer((req, res) => {
      upstream.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String((err as Error).message ?? err));
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err) =>
        reject(listenError(err, `127.0.0.1:${demoProviderPort} for Demo ID`, 'DEMO_PROVIDER_PORT, or PORT+1 by default')),
      );
      s.listen(demoProviderPort, '127.0.0.1', () => resolve());
    });
    server = s;
  };
  let app: DemoApp | undefined;
  const startApp = async () => {
    app = await startDemoApp({
      issuer: publicUrl,
      clientId: DEMO_APP_CLIENT_ID,
      clientSecret: demoAppSecret,
      port: demoAppPort,
      gatewayPage: `${publicUrl}/`,
    }).catch((err: unknown) => {
      throw listenError(err, `127.0.0.1:${demoAppPort} for the Demo App`, 'DEMO_APP_PORT, or PORT+2 by default');
    });
  };
  const stopDemoProvider = async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await app?.close();
  };

  let gateway;
  try {
    gateway = await runGateway(loaded, {
      beforeMigrate: refuseRealUsers,
      beforeListen: async (log) => {
        for (const name of dropped) log.warn(`${name} is ignored: npm start configures the demo provider itself`);
        await startDemoProvider();
        await startApp();
      },
      onStop: stopDemoProvider,
    });
  } catch (err) {
    await stopDemoProvider();
    throw err;
  }
  await gateway.ready();
  process.stderr.write(
    `Demo ID (the demo provider) is at ${issuer}; open ${publicUrl}/ to sign in\n` +
      `The Demo App, a downstream application signing in through the gateway as its OpenID Provider, is at ${app!.url}/\n`,
  );
}

main().catch(exitOnStartupFailure);
