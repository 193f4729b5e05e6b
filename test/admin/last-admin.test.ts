// Without ADMIN_TOKEN the active admins are the only way into the admin API: a change that would leave none
// (removing the last admin's role, disabling or deleting it) answers 409, also when two such changes race.
import t from 'tap';
import { buildTestApp } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { testDatabase } from '../helpers/db.js';
import { createUser, signedIn } from '../helpers/users.js';

const { storage } = await testDatabase(t);
const db = storage.db;

/** Every admin of the shared database loses the role, so each test starts from the admins it makes. */
async function noAdmins(): Promise<void> {
  await db.updateTable('users').set({ roles: [] }).execute();
}

const activeAdmins = async () =>
  (await db.selectFrom('users').select(['id', 'roles', 'status']).where('status', '=', 'active').execute()).filter((u) =>
    u.roles.includes('admin'),
  ).length;

t.test('without ADMIN_TOKEN the last active admin cannot remove itself', async (t) => {
  await noAdmins();
  const { app } = await buildTestApp(t, { storage });
  const admin = await signedIn(app, { roles: ['admin', 'ops'] });
  const asAdmin = adminCall(app, admin.tokens.accessToken);
  const url = `/admin/users/${admin.id}`;

  for (const [name, method, payload] of [
    ['removing its role', 'PATCH', { roles: ['ops'] }],
    ['removing every role', 'PATCH', { roles: [] }],
    ['disabling itself', 'PATCH', { status: 'disabled' }],
    ['disabling itself while renaming', 'PATCH', { status: 'disabled', name: 'Gone' }],
    ['deleting itself', 'DELETE', undefined],
  ] as const) {
    const res = await asAdmin(method, url, payload);
    t.equal(res.statusCode, 409, name);
    t.equal(res.json().error, 'conflict', name);
    t.match(res.json().error_description, /no active admin/, `${name}: says why`);
    t.match(res.json().error_description, /ADMIN_TOKEN|another/, `${name}: says what to do`);
  }
  const me = (await asAdmin('GET', url)).json();
  t.match(me, { roles: ['admin', 'ops'], status: 'active', name: 'Test User' }, 'nothing changed');
  t.equal(me.sessions.length, 1, 'its session lives on');
  t.equal(
    (await db.selectFrom('audit_events').select('id').where('user_id', '=', admin.id).where('type', 'like', 'user.%').execute()).length,
    0,
    'nothing audited',
  );

  t.equal((await asAdmin('PATCH', url, { roles: ['admin'], name: 'Root' })).statusCode, 200, 'a change that keeps the role is fine');
  const disabledAdmin = await createUser(app, { roles: ['admin'], status: 'disabled' });
  t.equal((await asAdmin('PATCH', url, { roles: [] })).statusCode, 409, 'a disabled admin does not count');
  t.equal((await asAdmin('PATCH', `/admin/users/${disabledAdmin.id}`, { roles: [] })).statusCode, 200, 'a disabled admin may lose it');

  const second = await signedIn(app, { roles: ['admin'] });
  t.equal((await asAdmin('PATCH', url, { roles: [] })).statusCode, 200, 'with another active admin it may go');
  const asSecond = adminCall(app, second.tokens.accessToken);
  t.equal((await asSecond('DELETE', `/admin/users/${second.id}`)).statusCode, 409, 'now the second one is the last');
  t.equal((await asSecond('PATCH', `/admin/users/${admin.id}`, { roles: ['admin'] })).statusCode, 200, 'granting is always fine');
  t.equal((await asSecond('DELETE', `/admin/users/${second.id}`)).statusCode, 204, 'and then the second one may go');
  t.equal(await activeAdmins(), 1);
});

t.test('with ADMIN_TOKEN set the last admin may go: the token still opens the admin API', async (t) => {
  await noAdmins();
  const { app } = await buildTestApp(t, { storage, env: { ADMIN_TOKEN } });
  const admin = await signedIn(app, { roles: ['admin'] });
  const res = await adminCall(app, admin.tokens.accessToken)('PATCH', `/admin/users/${admin.id}`, { status: 'disabled' });
  t.equal(res.statusCode, 200);
  t.equal(await activeAdmins(), 0);
  t.equal((await adminCall(app)('GET', '/admin/users')).statusCode, 200, 'the token gets in');
});

t.test('two admins removing each other at once: one of them stays', async (t) => {
  const { app } = await buildTestApp(t, { storage });
  for (let round = 0; round < 8; round++) {
    await noAdmins();
    const a = await signedIn(app, { roles: ['admin'] });
    const b = await signedIn(app, { roles: ['admin'] });
    const [first, second] = await Promise.all([
      adminCall(app, a.tokens.accessToken)('PATCH', `/admin/users/${b.id}`, round % 2 ? { status: 'disabled' } : { roles: [] }),
      round % 3 === 0
        ? adminCall(app, b.tokens.accessToken)('DELETE', `/admin/users/${a.id}`)
        : adminCall(app, b.tokens.accessToken)('PATCH', `/admin/users/${a.id}`, { roles: [] }),
    ]);
    const codes = [first.statusCode, second.statusCode].sort();
    // the loser is refused because no admin would remain (409), or because the winner had already taken its role
    // (403) or its session (401: disabled or deleted) when it was authenticated
    t.ok(codes[0] < 300 && [401, 403, 409].includes(codes[1]), `round ${round}: one change went through (${codes.join(', ')})`);
    t.equal(await activeAdmins(), 1, `round ${round}: one active admin left`);
  }
});
