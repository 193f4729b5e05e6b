// `npm start`: the gateway on the embedded database with a local demo OpenID provider ("Demo ID", a real
// oidc-provider with a sign-in page) configured as a provider, and the demo page at the gateway's root.
// Real providers are configured through the environment as usual and appear next to the demo one.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createUpstream, type Interaction } from './upstream.js';

// This launcher is a development tool outside src/: it reads the few settings it needs to wire the two together
// and passes everything else through to the gateway, whose config module validates it.
const env = process.env;
const port = Number(env.PORT ?? 3000);
const publicUrl = (env.PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
const demoPort = Number(env.DEMO_PROVIDER_PORT ?? port + 1);
const issuer = `http://localhost:${demoPort}`;
const clientId = 'auth-gateway-demo';
const clientSecret = randomBytes(24).toString('base64url');

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

const upstream = await createUpstream({
  issuer,
  clients: [{ clientId, clientSecret, redirectUris: [`${publicUrl}/auth/demo/callback`] }],
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

const server = createServer((req, res) => {
  upstream.handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String((err as Error).message ?? err));
  });
});
await new Promise<void>((resolve) => server.listen(demoPort, env.HOST === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0', resolve));

const providers = (env.AUTH_PROVIDERS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const gateway = spawn(process.execPath, ['--import=tsx', fileURLToPath(new URL('../src/server.ts', import.meta.url))], {
  stdio: 'inherit',
  env: {
    ...env,
    PORT: String(port),
    PUBLIC_URL: publicUrl,
    AUTH_PROVIDERS: ['demo', ...providers.filter((p) => p !== 'demo')].join(','),
    PROVIDER_DEMO_TYPE: 'oidc',
    PROVIDER_DEMO_NAME: 'Demo ID',
    PROVIDER_DEMO_ISSUER: issuer,
    PROVIDER_DEMO_CLIENT_ID: clientId,
    PROVIDER_DEMO_CLIENT_SECRET: clientSecret,
    PROVIDER_DEMO_TRUST_EMAIL: 'true',
    DEMO_PAGE: env.DEMO_PAGE ?? 'true',
  },
});
process.stderr.write(`demo provider "Demo ID" at ${issuer}; open ${publicUrl}/ to sign in\n`);

const stop = (signal: NodeJS.Signals) => gateway.kill(signal);
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
gateway.on('exit', (code, signal) => {
  server.close();
  server.closeAllConnections();
  process.exit(code ?? (signal ? 0 : 1));
});
