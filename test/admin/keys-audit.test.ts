// Admin signing keys (list, rotate now) and the audit log (filters, newest-first cursor pages).
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { type AuditType, recordAudit } from '../../src/audit.js';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall } from '../helpers/admin.js';
import { signedIn } from '../helpers/users.js';

const ENV = { ADMIN_TOKEN, JWKS_MAX_AGE: '300', KEY_ROTATION_INTERVAL: String(24 * 3600) };

t.test('signing keys', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: ENV, clock });
  const call = adminCall(app);
  const listKeys = async () => (await call('GET', '/admin/keys')).json().keys as Record<string, unknown>[];

  const [first] = await listKeys();
  t.match(first, { alg: 'ES256', state: 'active', activated_at: clock.now().toISOString(), retired_at: null, remove_at: null });
  t.same(Object.keys(first).sort(), [
    'activate_at',
    'activated_at',
    'alg',
    'created_at',
    'kid',
    'publish_at',
    'remove_at',
    'retired_at',
    'state',
  ]);
  const raw = (await call('GET', '/admin/keys')).body;
  t.notMatch(raw, /private|"d"|"x"|"y"/, 'no key material at all');

  const rotated = await call('POST', '/admin/keys/rotate');
  t.equal(rotated.statusCode, 200);
  const { kid, activate_at: activateAt } = rotated.json();
  t.not(kid, first.kid);
  t.equal(activateAt, new Date(clock.now().getTime() + 300_000).toISOString(), 'signs one JWKS cache period later');
  const jwks = (await app.inject('/.well-known/jwks.json')).json().keys.map((k: { kid: string }) => k.kid);
  t.ok(jwks.includes(kid), 'published at once');
  t.equal(app.ctx.keys.signingKey().kid, first.kid, 'the old key still signs');
  t.same(
    (await listKeys()).map((k) => [k.kid, k.state]),
    [
      [kid, 'next'],
      [first.kid, 'active'],
    ],
    'newest first',
  );

  const [event] = await storage.db.selectFrom('audit_events').selectAll().where('type', '=', 'key.rotation_requested').execute();
  t.match(event, { actor: 'admin-token', ip: '127.0.0.1' });
  t.same(event.details, { kid, activate_at: activateAt, result: 'created' });

  const again = await call('POST', '/admin/keys/rotate', {});
  t.same(again.json(), { kid, activate_at: activateAt, result: 'already_scheduled' }, 'a rotation already scheduled is not doubled');
  t.equal((await call('POST', '/admin/keys/rotate', { now: true })).statusCode, 400, 'unknown fields');

  clock.advance(301);
  await app.ctx.keys.tick();
  const after = await listKeys();
  t.match(after[0], { kid, state: 'active', activated_at: clock.now().toISOString() });
  t.match(after[1], { kid: first.kid, state: 'retired', retired_at: clock.now().toISOString() });
  t.type(after[1].remove_at, 'string');
});

t.test('the audit log', async (t) => {
  const clock = new TestClock(Date.parse('2026-03-01T12:00:00Z'));
  const { app, storage } = await buildTestApp(t, { env: ENV, clock });
  const call = adminCall(app);
  const events = async (query: string) => {
    const res = await call('GET', `/admin/audit?${query}`);
    t.equal(res.statusCode, 200, query);
    return res.json() as { events: Record<string, unknown>[]; next_cursor: string | null };
  };
  const alice = randomUUID();
  const bob = randomUUID();
  const seeded: { type: AuditType; userId: string; outcome?: 'failure'; at: string }[] = [
    { type: 'login', userId: alice, at: '2026-02-01T10:00:00.000Z' },
    { type: 'login', userId: alice, outcome: 'failure', at: '2026-02-02T10:00:00.000Z' },
    { type: 'logout', userId: alice, at: '2026-02-03T10:00:00.000Z' },
    { type: 'login', userId: bob, at: '2026-02-03T10:00:00.000Z' },
    { type: 'identity.linked', userId: bob, at: '2026-02-04T10:00:00.000Z' },
  ];
  for (const e of seeded) {
    await recordAudit(storage.db, {
      type: e.type,
      userId: e.userId,
      outcome: e.outcome,
      reason: e.outcome ? 'id_token_expired' : undefined,
      provider: 'corp',
      actor: 'system',
      details: { n: 1, nested: { ok: true } },
      at: new Date(e.at),
    });
  }

  t.test('filters', async (t) => {
    const mine = await events(`user_id=${alice}`);
    t.same(
      mine.events.map((e) => e.created_at),
      ['2026-02-03T10:00:00.000Z', '2026-02-02T10:00:00.000Z', '2026-02-01T10:00:00.000Z'],
      'newest first',
    );
    t.match(mine.events[1], {
      type: 'login',
      outcome: 'failure',
      reason: 'id_token_expired',
      provider: 'corp',
      actor: 'system',
      user_id: alice,
      session_id: null,
      ip: null,
    });
    t.same(mine.events[0].details, { n: 1, nested: { ok: true } });
    t.equal(mine.next_cursor, null);
    t.same((await events(`type=login&user_id=${alice}`)).events.length, 2);
    t.same(
      (await events('type=login&outcome=failure')).events.map((e) => e.user_id),
      [alice],
    );
    const window = await events('since=2026-02-02T10:00:00Z&until=2026-02-04T10:00:00Z');
    t.same(window.events.map((e) => e.type).sort(), ['login', 'login', 'logout'], 'since inclusive, until exclusive');
    t.same((await events('since=2026-02-03T11:00:00%2B01:00&until=2026-02-03T11:00:00.001%2B01:00')).events.length, 2, 'offsets');
    t.same((await events('type=user.deleted')).events, []);
  });

  t.test('admin actions appear with their actor', async (t) => {
    const user = await signedIn(app);
    const admin = await signedIn(app, { roles: ['admin'] });
    clock.advance(1);
    await adminCall(app, admin.tokens.accessToken)('PATCH', `/admin/users/${user.id}`, { status: 'disabled' });
    const { events: latest } = await events(`user_id=${user.id}&limit=5`);
    t.same(latest.map((e) => [e.type, e.actor]).sort(), [
      ['session.revoked', `user:${admin.id}`],
      ['user.updated', `user:${admin.id}`],
    ]);
  });

  t.test('cursor pages, newest first, stable across ties and new events', async (t) => {
    const same = new Date('2026-01-15T00:00:00.000Z');
    for (let i = 0; i < 9; i++) await recordAudit(storage.db, { type: 'logout', actor: 'page-test', details: { i }, at: same });
    const expected = await storage.db
      .selectFrom('audit_events')
      .select('id')
      .where('actor', '=', 'page-test')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    const seen: unknown[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await events(`until=2026-01-16T00:00:00Z&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.events.map((e) => e.id));
      cursor = page.next_cursor;
      // an event written meanwhile is newer than every page already seen: it does not shift later pages
      await recordAudit(storage.db, { type: 'logout', actor: 'page-test-late', at: new Date('2026-01-15T12:00:00.000Z') });
    } while (cursor && ++pages < 10);
    t.same(
      seen,
      expected.map((r) => r.id),
      'every event once, in order',
    );
    t.equal(pages, 2, 'two pages with a next_cursor, then the last one: 4, 4, 1');
    t.equal((await events('until=2026-01-16T00:00:00Z&limit=50')).events.length, 12, 'the late events are there, on top');
  });

  t.test('bad queries are 400', async (t) => {
    for (const q of [
      'user_id=alice',
      'since=yesterday',
      'until=2026-02-30',
      'type=DROP%20TABLE',
      'outcome=maybe',
      'limit=500',
      'cursor=abc',
      'cursor=%3D%3D',
      `cursor=${Buffer.from(`2026-01-01T25:00:00.000000Z|${randomUUID()}`).toString('base64url')}`,
      'order=asc',
    ]) {
      const res = await call('GET', `/admin/audit?${q}`);
      t.equal(res.statusCode, 400, q);
      t.equal(res.json().error, 'invalid_request', q);
    }
  });
});
