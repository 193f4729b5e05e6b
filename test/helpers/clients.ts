// OAuth clients for tests: registered through the admin API, Basic credentials as RFC 6749 section 2.3.1 builds
// them, and grants (sessions rows with a client_id) as the OpenID Provider will leave them.
import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.js';
import { adminCall } from './admin.js';
import { createUser } from './users.js';

/** A confidential client with the authorization_code grant, unless `metadata` says otherwise. */
export async function registerClient(
  app: App,
  metadata: Record<string, unknown> = {},
): Promise<{ clientId: string; secret: string | undefined; body: Record<string, unknown> }> {
  const res = await adminCall(app)('POST', '/admin/clients', { redirect_uris: ['https://app.example.com/callback'], ...metadata });
  if (res.statusCode !== 201) throw new Error(`registration failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as Record<string, unknown>;
  return { clientId: body.client_id as string, secret: body.client_secret as string | undefined, body };
}

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

/** RFC 6749 section 2.3.1: base64(urlencode(client_id) ":" urlencode(client_secret)) */
export const basicAuth = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;

/** A live grant of `clientId` to a new user: a sessions row with that client_id. Returns the session id. */
export async function insertGrant(app: App, clientId: string, userId?: string): Promise<string> {
  const user = userId ?? (await createUser(app)).id;
  const now = app.ctx.now();
  const id = randomUUID();
  const { expiresAt, idleExpiresAt } = app.ctx.sessions.lifetimes(now);
  await app.ctx.storage.db
    .insertInto('sessions')
    .values({
      id,
      user_id: user,
      provider: 'test',
      created_at: now,
      auth_time: now,
      last_used_at: now,
      expires_at: expiresAt,
      idle_expires_at: idleExpiresAt,
      client_id: clientId,
    })
    .execute();
  return id;
}
