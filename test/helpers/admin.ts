// Admin API calls for tests: the bootstrap token, and identities added the way a login would leave them.
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import type { App } from '../../src/app.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef0123456789';

/** inject() with `Authorization: Bearer <token>` (the ADMIN_TOKEN unless told otherwise). */
export function adminCall(app: App, token = ADMIN_TOKEN) {
  return (method: InjectOptions['method'], url: string, payload?: InjectOptions['payload'], extra: Partial<InjectOptions> = {}) =>
    app.inject({ method, url, payload, ...extra, headers: { authorization: `Bearer ${token}`, ...extra.headers } });
}

export async function addIdentity(app: App, userId: string, provider: string, subject: string = randomUUID()): Promise<string> {
  const id = randomUUID();
  await app.ctx.storage.db
    .insertInto('identities')
    .values({
      id,
      user_id: userId,
      provider,
      subject,
      email: null,
      name: null,
      picture: null,
      raw_claims: '{}',
      created_at: app.ctx.now(),
      last_login_at: app.ctx.now(),
    })
    .execute();
  return id;
}
