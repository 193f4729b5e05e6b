import t from 'tap';
import { IdentityService, LinkRefused } from '../../src/identity/linking.js';
import type { NormalizedIdentity } from '../../src/providers/types.js';
import { buildTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/users.js';

t.test('identity linking policy', async (t) => {
  const { app, storage } = await buildTestApp(t);
  const db = storage.db;
  const service = new IdentityService(storage, app.ctx.now);
  let n = 0;
  const identity = (fields: Partial<NormalizedIdentity> = {}): NormalizedIdentity => ({
    provider: 'corp',
    subject: `sub-${++n}`,
    email: `person${n}@example.com`,
    emailVerified: true,
    name: 'Person',
    picture: null,
    claims: { sub: `sub-${n}` },
    ...fields,
  });
  const user = (id: string) => db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  t.test('a new identity makes a new user; the same identity finds it again and refreshes the profile', async (t) => {
    const id = identity({ name: 'Old Name' });
    const first = await service.resolve(id, { trustEmail: true, linkUserId: null });
    t.equal(first.linkedBy, 'new');
    t.match(await user(first.userId), { email: id.email, email_verified: true, name: 'Old Name' });
    const again = await service.resolve(
      { ...id, name: 'New Name', picture: 'https://img.example.com/p.png' },
      { trustEmail: true, linkUserId: null },
    );
    t.same(again, { ...first, linkedBy: 'existing' });
    t.match(await user(first.userId), { name: 'New Name', picture: 'https://img.example.com/p.png' });
    const row = await db.selectFrom('identities').selectAll().where('id', '=', first.identityId).executeTakeFirstOrThrow();
    t.equal(row.name, 'New Name', 'the identity row follows too');
  });

  t.test('a verified email from a trusted provider links to the user with that verified email', async (t) => {
    const existing = await createUser(app, { email: 'Alice@Example.com', emailVerified: true });
    const r = await service.resolve(identity({ provider: 'google', email: 'alice@example.com' }), { trustEmail: true, linkUserId: null });
    t.equal(r.linkedBy, 'email');
    t.equal(r.userId, existing.id);
  });

  t.test('no automatic link when any condition is missing', async (t) => {
    const verified = await createUser(app, { email: 'bob@example.com', emailVerified: true });
    const untrusted = await service.resolve(identity({ provider: 'microsoft', email: 'bob@example.com' }), {
      trustEmail: false,
      linkUserId: null,
    });
    t.not(untrusted.userId, verified.id, 'provider not trusted for email');
    t.equal((await user(untrusted.userId)).email_verified, false, 'and its email does not count as verified');
    const unverifiedClaim = await service.resolve(identity({ email: 'bob@example.com', emailVerified: false }), {
      trustEmail: true,
      linkUserId: null,
    });
    t.not(unverifiedClaim.userId, verified.id, 'email not verified by the provider');
    const unverifiedUser = await createUser(app, { email: 'carol@example.com', emailVerified: false });
    const r = await service.resolve(identity({ email: 'carol@example.com' }), { trustEmail: true, linkUserId: null });
    t.not(r.userId, unverifiedUser.id, "existing user's email not verified");
  });

  t.test('an untrusted provider cannot plant an email a trusted login would later link to', async (t) => {
    const planted = await service.resolve(identity({ provider: 'microsoft', email: 'victim@example.com' }), {
      trustEmail: false,
      linkUserId: null,
    });
    const victim = await service.resolve(identity({ provider: 'google', email: 'victim@example.com' }), {
      trustEmail: true,
      linkUserId: null,
    });
    t.not(victim.userId, planted.userId);
    t.equal(victim.linkedBy, 'new');
  });

  t.test('explicit linking attaches to the signed-in user; an identity of another user is refused', async (t) => {
    const me = await createUser(app);
    const other = await createUser(app);
    const r = await service.resolve(identity({ provider: 'github' }), { trustEmail: false, linkUserId: me.id });
    t.same([r.userId, r.linkedBy], [me.id, 'explicit']);
    const theirs = identity({ provider: 'github' });
    await service.resolve(theirs, { trustEmail: false, linkUserId: other.id });
    await t.rejects(service.resolve(theirs, { trustEmail: false, linkUserId: me.id }), new LinkRefused('identity_linked_to_another_user'));
  });

  t.test('a disabled user cannot log in', async (t) => {
    const id = identity();
    const r = await service.resolve(id, { trustEmail: true, linkUserId: null });
    await db.updateTable('users').set({ status: 'disabled' }).where('id', '=', r.userId).execute();
    await t.rejects(service.resolve(id, { trustEmail: true, linkUserId: null }), new LinkRefused('user_disabled'));
    const byEmail = identity({ provider: 'other', email: id.email });
    await t.rejects(service.resolve(byEmail, { trustEmail: true, linkUserId: null }), new LinkRefused('user_disabled'));
  });

  t.test('concurrent first logins of one identity make one user', async (t) => {
    const id = identity();
    const results = await Promise.all([1, 2, 3].map(() => service.resolve(id, { trustEmail: true, linkUserId: null })));
    t.equal(new Set(results.map((r) => r.userId)).size, 1);
    const rows = await db.selectFrom('identities').select('id').where('subject', '=', id.subject).execute();
    t.equal(rows.length, 1);
  });
});
