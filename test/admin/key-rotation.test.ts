// POST /admin/keys/rotate records key.rotation_requested in the rotation's own transaction (a failed audit insert
// leaves no rotated key behind), and the event says what the request did: a request that found the next key
// already due is not recorded as if it had rotated.
import { sql } from 'kysely';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { buildTestApp, TestClock, testConfig } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { testDatabase } from '../helpers/db.js';

const ENV = { ADMIN_TOKEN, JWKS_MAX_AGE: '300', KEY_ROTATION_INTERVAL: String(24 * 3600) };

t.test('a failing audit insert undoes the rotation', async (t) => {
  const { storage } = await testDatabase(t);
  // built without the openapi check of buildTestApp: this test provokes an (undocumented) 500 on purpose
  const app = buildApp(testConfig(ENV), { storage, now: new TestClock().now });
  t.teardown(() => app.close());
  await app.ready();
  const stored = async () => (await storage.db.selectFrom('signing_keys').select(['kid', 'state']).execute()).map((k) => k.state).sort();
  t.same(await stored(), ['active']);

  // the audit log refuses exactly this event, as a full disk or a broken constraint would
  await sql`create function refuse_rotation_audit() returns trigger language plpgsql as $$
    begin
      if new.type = 'key.rotation_requested' then raise exception 'audit insert failed'; end if;
      return new;
    end $$`.execute(storage.db);
  await sql`create trigger refuse_rotation_audit before insert on audit_events
    for each row execute function refuse_rotation_audit()`.execute(storage.db);

  const res = await adminCall(app)('POST', '/admin/keys/rotate');
  t.equal(res.statusCode, 500);
  t.same(await stored(), ['active'], 'no next key was left behind');
  t.equal(app.ctx.keys.jwks().keys.length, 1, 'nothing new published');
  const events = await storage.db.selectFrom('audit_events').select('type').where('type', 'like', 'key.%').execute();
  t.notOk(
    events.some((e) => e.type === 'key.rotation_requested'),
    'and no event',
  );
  t.equal(events.filter((e) => e.type === 'key.created').length, 1, 'only the first key was ever created');

  await sql`drop trigger refuse_rotation_audit on audit_events`.execute(storage.db);
  const again = await adminCall(app)('POST', '/admin/keys/rotate');
  t.equal(again.statusCode, 200, 'works once the audit log takes events again');
  t.same(await stored(), ['active', 'next']);
});

t.test('the event says what the request did', async (t) => {
  const clock = new TestClock();
  const { storage } = await testDatabase(t);
  const requested = async () =>
    (
      await storage.db
        .selectFrom('audit_events')
        .select(['details', 'actor'])
        .where('type', '=', 'key.rotation_requested')
        .orderBy('created_at')
        .execute()
    ).map((e) => e.details);

  // an instance with a long JWKS cache period schedules the next key far out
  const slow = await buildTestApp(t, { storage, clock, env: { ...ENV, JWKS_MAX_AGE: '3000' } });
  const created = await adminCall(slow.app)('POST', '/admin/keys/rotate');
  t.equal(created.statusCode, 200);
  const { kid } = created.json();
  const t0 = clock.now().getTime();
  const far = new Date(t0 + 3_000_000).toISOString();
  t.same(created.json(), { kid, activate_at: far, result: 'created' });

  clock.advance(1);
  const again = await adminCall(slow.app)('POST', '/admin/keys/rotate');
  t.same(again.json(), { kid, activate_at: far, result: 'already_scheduled' }, 'asking again changes nothing');

  // one configured with a shorter period (after a configuration change) may bring it forward
  const quick = await buildTestApp(t, { storage, clock, env: ENV });
  // the earliest safe moment: one (new) JWKS cache period after the key was published
  const near = new Date(t0 + 300_000).toISOString();
  clock.advance(1);
  const forward = await adminCall(quick.app)('POST', '/admin/keys/rotate');
  t.same(forward.json(), { kid, activate_at: near, result: 'brought_forward' });

  t.same(await requested(), [
    { kid, activate_at: far, result: 'created' },
    { kid, activate_at: far, result: 'already_scheduled' },
    { kid, activate_at: near, result: 'brought_forward', previous_activate_at: far },
  ]);
});
