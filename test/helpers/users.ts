// Test data: users and sessions created through the same code paths the app uses.
import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.js';
import type { IssuedTokens } from '../../src/tokens/sessions.js';

export interface TestUser {
  id: string;
  email: string;
}

export async function createUser(
  app: App,
  fields: { email?: string; name?: string; roles?: string[]; status?: 'active' | 'disabled'; emailVerified?: boolean } = {},
): Promise<TestUser> {
  const id = randomUUID();
  const email = fields.email ?? `user-${id.slice(0, 8)}@example.com`;
  await app.ctx.storage.db
    .insertInto('users')
    .values({
      id,
      email,
      email_verified: fields.emailVerified ?? true,
      name: fields.name ?? 'Test User',
      picture: null,
      roles: fields.roles ?? [],
      status: fields.status ?? 'active',
      created_at: app.ctx.now(),
      updated_at: app.ctx.now(),
    })
    .execute();
  return { id, email };
}

/** A user with an open session: what a successful login leaves behind. */
export async function signedIn(app: App, fields: Parameters<typeof createUser>[1] = {}): Promise<TestUser & { tokens: IssuedTokens }> {
  const user = await createUser(app, fields);
  const tokens = await app.ctx.sessions.open(user.id, { provider: 'test', ip: '127.0.0.1', userAgent: 'tap' });
  return { ...user, tokens };
}

/** Parses Set-Cookie headers of an inject() response into name → { value, attributes }. */
export function cookiesOf(res: { headers: Record<string, unknown> }): Map<string, { value: string; attrs: string }> {
  const raw = res.headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? (raw as string[]) : [raw as string];
  const out = new Map<string, { value: string; attrs: string }>();
  for (const c of list) {
    const [pair, ...attrs] = c.split(';');
    const i = pair.indexOf('=');
    out.set(pair.slice(0, i).trim(), { value: decodeURIComponent(pair.slice(i + 1)), attrs: attrs.join(';').trim() });
  }
  return out;
}
