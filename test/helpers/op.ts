// The gateway as an OpenID Provider on a real port, with real upstream providers and clients registered through
// the admin API, and a browser to walk the authorization flow. For tests of the /oauth2 endpoints.
import type { Test } from 'tap';
import { freePort } from '../../fixtures/ports.js';
import { buildTestApp, type TestApp } from './app.js';
import { HttpBrowser } from './http-browser.js';
import { startUpstreamOidc, type UpstreamOidc } from './upstream-oidc.js';

export const ADMIN_TOKEN = 'op-test-admin-token-0123456789abcdefghijklmn';
/** where the test clients are sent back to: nothing listens there, the browser stops before it */
export const CLIENT_CB = 'http://127.0.0.1:7/cb';

export interface OpGateway extends TestApp {
  url: string;
  upstreams: Record<string, UpstreamOidc>;
  /** registers a client through the admin API: its client_id and (confidential) secret */
  register(metadata: Record<string, unknown>): Promise<{ client_id: string; client_secret?: string }>;
  /** a browser that signs in upstream as `account` whenever a provider asks */
  browser(): HttpBrowser;
  /** walks an authorization URL to the client's redirect (returned, not requested) */
  authorize(browser: HttpBrowser, url: URL | string): Promise<URL>;
}

export async function startOpGateway(t: Test, o: { providers?: string[]; env?: Record<string, string> } = {}): Promise<OpGateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ids = o.providers ?? ['corp'];
  const upstreams: Record<string, UpstreamOidc> = {};
  const env: Record<string, string> = { PUBLIC_URL: url, AUTH_PROVIDERS: ids.join(','), ADMIN_TOKEN };
  for (const id of ids) {
    const up = await startUpstreamOidc({ redirectUris: [`${url}/auth/${id}/callback`], clientId: `gw-${id}` });
    t.teardown(() => up.close());
    upstreams[id] = up;
    const p = `PROVIDER_${id.toUpperCase()}_`;
    Object.assign(env, {
      [`${p}ISSUER`]: up.issuer,
      [`${p}CLIENT_ID`]: up.clientId,
      [`${p}CLIENT_SECRET`]: up.clientSecret!,
      [`${p}NAME`]: `${id} SSO`,
      [`${p}TRUST_EMAIL`]: 'true',
    });
  }
  // the test's own settings last: they may rename a provider, say
  Object.assign(env, o.env);
  const gw = await buildTestApp(t, { env });
  await gw.app.listen({ port, host: '127.0.0.1' });
  const register = async (metadata: Record<string, unknown>) => {
    const res = await fetch(`${url}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });
    const body = (await res.json()) as { client_id: string; client_secret?: string };
    if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const authorize = async (browser: HttpBrowser, start: URL | string) => {
    const end = await browser.follow(start, (u) => `${u.origin}${u.pathname}` === CLIENT_CB);
    if (end.response)
      throw new Error(`the flow stopped at ${end.url.href} with ${end.response.status}: ${(await end.response.text()).slice(0, 300)}`);
    return end.url;
  };
  return { ...gw, url, upstreams, register, browser: () => new HttpBrowser(), authorize };
}
