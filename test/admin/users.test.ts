// Admin users, identities and sessions: happy paths, validation, 404s, pagination, and what a change does to
// the user's tokens.
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { sql } from 'kysely';
import t from 'tap';
import { buildTestApp, TestClock } from '../helpers/app.js';
import { ADMIN_TOKEN, adminCall, addIdentity } from '../helpers/admin.js';
import { createUser, signedIn } from '../helpers/users.js';

const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

t.test('admin users', async (t) => {
  const clock = new TestClock();
  const { app, storage } = await buildTestApp(t, { env: { ADMIN_TOKEN }, clock });
  const db = storage.db;
  const call = adminCall(app);
  const refresh = (token: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } });
  const auditOf = (type: string, userId: string) =>
    db.selectFrom('audit_events').selectAll().where('type', '=', type).where('user_id', '=', userId).orderBy('created_at').execute();

  /** Every page of a list, following next_cursor. */
  const allPages = async (query: string) => {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const res = await call('GET', `/admin/users?${query}${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(res.statusCode, 200);
      pages.push(res.json().users.map((u: { email: string }) => u.email));
      cursor = res.json().next_cursor;
    } while (cursor && pages.length < 20);
    return pages;
  };

  t.test('get a user with its identities and live sessions', async (t) => {
    const user = await signedIn(app, { name: 'Ada Lovelace', roles: ['ops'] });
    const identityId = await addIdentity(app, user.id, 'corp', 'ada-1');
    const ended = await app.ctx.sessions.open(user.id, { provider: 'corp' });
    await app.ctx.sessions.revoke(ended.sessionId, { reason: 'test', actor: 'test' });
    const res = await call('GET', `/admin/users/${user.id}`);
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.match(body, {
      id: user.id,
      email: user.email,
      email_verified: true,
      name: 'Ada Lovelace',
      picture: null,
      roles: ['ops'],
      status: 'active',
    });
    t.equal(body.created_at, clock.now().toISOString());
    t.same(
      body.identities.map((i: { id: string; provider: string; subject: string }) => [i.id, i.provider, i.subject]),
      [[identityId, 'corp', 'ada-1']],
    );
    t.same(
      body.sessions.map((s: { id: string }) => s.id),
      [user.tokens.sessionId],
      'the revoked session is not listed',
    );
    t.match(body.sessions[0], { provider: 'test', ip: '127.0.0.1', user_agent: 'tap' });
    t.notOk('raw_claims' in body.identities[0], 'no raw upstream claims');

    const sessions = await call('GET', `/admin/users/${user.id}/sessions`);
    t.same(sessions.json(), { sessions: body.sessions });
  });

  t.test('bad ids, unknown fields and unknown users', async (t) => {
    const user = await createUser(app);
    const unknown = randomUUID();
    for (const [method, url, payload] of [
      ['GET', '/admin/users/not-a-uuid'],
      ['GET', `/admin/users/urn:uuid:${unknown}`],
      ['GET', `/admin/users/${unknown}x`],
      ['PATCH', `/admin/users/${user.id}`, { status: 'active', admin: true }],
      ['PATCH', `/admin/users/${user.id}`, {}],
      ['PATCH', `/admin/users/${user.id}`, { status: 'banned' }],
      ['PATCH', `/admin/users/${user.id}`, { roles: ['ad min'] }],
      ['PATCH', `/admin/users/${user.id}`, { roles: ['a', 'a'] }],
      ['PATCH', `/admin/users/${user.id}`, { name: 'x'.repeat(201) }],
      ['DELETE', `/admin/users/${user.id}/identities/nope`],
      ['DELETE', '/admin/sessions/123'],
      ['GET', '/admin/users?limit=0'],
      ['GET', '/admin/users?limit=201'],
      ['GET', '/admin/users?limit=ten'],
      ['GET', '/admin/users?status=gone'],
      ['GET', '/admin/users?provider=Corp'],
      ['GET', '/admin/users?sort=email'],
      ['GET', '/admin/users?cursor=***'],
      ['GET', `/admin/users?cursor=${cursorOf('hello')}`],
      ['GET', `/admin/users?cursor=${cursorOf(`2026-02-30T00:00:00.000000Z|${unknown}`)}`],
      ['GET', `/admin/users?cursor=${cursorOf(`2026-01-01T00:00:00.000Z|${unknown}`)}`],
      ['GET', `/admin/users?cursor=${cursorOf(`2026-01-01T00:00:00.000000Z|${unknown}'--`)}`],
    ] as const) {
      const res = await call(method, url, payload);
      t.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(payload ?? '')}`);
      t.equal(res.json().error, 'invalid_request');
    }
    const wellFormed = await call('GET', `/admin/users?cursor=${cursorOf(`2026-01-01T00:00:00.000000Z|${unknown}`)}`);
    t.equal(wellFormed.statusCode, 200, 'a well-formed cursor for a row that is gone still works');
    for (const [method, url, payload] of [
      ['GET', `/admin/users/${unknown}`],
      ['PATCH', `/admin/users/${unknown}`, { status: 'disabled' }],
      ['DELETE', `/admin/users/${unknown}`],
      ['GET', `/admin/users/${unknown}/sessions`],
      ['DELETE', `/admin/users/${unknown}/sessions`],
      ['DELETE', `/admin/users/${unknown}/identities/${randomUUID()}`],
      ['DELETE', `/admin/users/${user.id}/identities/${randomUUID()}`],
      ['DELETE', `/admin/sessions/${unknown}`],
    ] as const) {
      const res = await call(method, url, payload);
      t.equal(res.statusCode, 404, `${method} ${url}`);
      t.equal(res.json().error, 'not_found');
    }
  });

  t.test('search by email or name prefix, status and provider', async (t) => {
    const ana = await createUser(app, { email: 'Ana.Search@Example.org', name: 'Ana Search' });
    const bob = await createUser(app, { email: 'bob.search@example.org', name: 'Search Bob', status: 'disabled' });
    const pct = await createUser(app, { email: '100%_search@example.org', name: null as unknown as string });
    const other = await createUser(app, { email: '1000_search@example.org', name: 'x' });
    await addIdentity(app, ana.id, 'github');
    await addIdentity(app, bob.id, 'corp');
    await addIdentity(app, other.id, 'github');
    const ids = async (query: string) => (await call('GET', `/admin/users?${query}`)).json().users.map((u: { id: string }) => u.id);
    t.same(await ids('q=ana.s'), [ana.id], 'email prefix, case-insensitive');
    t.same(await ids('q=SEARCH%20B'), [bob.id], 'name prefix, case-insensitive');
    t.same(await ids('q=search'), [bob.id], 'a prefix, not a substring');
    t.same(await ids(`q=${encodeURIComponent('100%_')}`), [pct.id], 'LIKE wildcards match themselves');
    t.same(await ids('q=1%25'), [], '% is not a wildcard');
    t.same(await ids('q=1_0'), [], '_ is not a wildcard');
    t.same(await ids('q=bob.search&status=active'), []);
    t.same(await ids('q=bob.search&status=disabled'), [bob.id]);
    const github = await ids('provider=github');
    t.ok(github.includes(ana.id) && github.includes(other.id) && !github.includes(bob.id), 'only users with an identity at the provider');
    t.same(await ids('provider=github&q=ana'), [ana.id]);
    t.same(await ids('provider=nowhere'), []);
  });

  t.test('cursor pages are stable: every user exactly once, in (created_at, id) order', async (t) => {
    // seven users in the same millisecond (ties broken by id), then three that differ by microseconds only
    for (let i = 0; i < 7; i++) await createUser(app, { email: `same-ms-${i}@pages.test` });
    for (const us of ['123458', '123456', '123457']) {
      await sql`insert into users (id, email, created_at, updated_at)
        values (${randomUUID()}, ${`micro-${us}@pages.test`}, ${`2030-01-01T00:00:00.${us}Z`}::timestamptz, now())`.execute(db);
    }
    const expected = await db
      .selectFrom('users')
      .select('email')
      .where('email', 'like', '%@pages.test')
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    for (const limit of [1, 3, 50]) {
      const pages = await allPages(`q=&limit=${limit}`.replace('q=&', ''));
      const seen = pages.flat().filter((e) => e.endsWith('@pages.test'));
      t.same(
        seen,
        expected.map((r) => r.email),
        `limit ${limit}: all, once, in order`,
      );
      t.ok(
        pages.every((p) => p.length <= limit),
        `limit ${limit} respected`,
      );
    }
    const micro = (await allPages('q=micro-&limit=1')).flat();
    t.same(micro, ['micro-123456@pages.test', 'micro-123457@pages.test', 'micro-123458@pages.test'], 'microseconds are not rounded away');
    const last = await call('GET', '/admin/users?q=micro-&limit=3');
    t.equal(last.json().next_cursor, null, 'no cursor after the last page');
    t.equal((await call('GET', '/admin/users?q=micro-')).json().users.length, 3, 'default limit');
    // a page boundary survives a new user and a deleted one
    const first = await call('GET', '/admin/users?q=same-ms-&limit=2');
    clock.advance(1);
    await createUser(app, { email: 'same-ms-late@pages.test' });
    const [, second] = first.json().users;
    await call('DELETE', `/admin/users/${second.id}`);
    const next = await call('GET', `/admin/users?q=same-ms-&limit=50&cursor=${first.json().next_cursor}`);
    const rest = next.json().users.map((u: { email: string }) => u.email);
    t.equal(rest.length, 6, 'the five remaining seven-group users and the late one');
    t.equal(rest.at(-1), 'same-ms-late@pages.test');
  });

  t.test('disabling a user revokes its sessions at once: its refresh token fails right after', async (t) => {
    const user = await signedIn(app);
    const second = await app.ctx.sessions.open(user.id, { provider: 'corp' });
    const res = await call('PATCH', `/admin/users/${user.id}`, { status: 'disabled' });
    t.equal(res.statusCode, 200);
    t.match(res.json(), { status: 'disabled', sessions: [] });
    t.equal(res.json().updated_at, clock.now().toISOString());
    const refused = await refresh(user.tokens.refreshToken);
    t.equal(refused.statusCode, 401);
    t.equal(refused.json().error, 'invalid_grant');
    t.equal((await refresh(second.refreshToken)).statusCode, 401);
    const userinfo = await app.inject({ url: '/auth/userinfo', headers: { authorization: `Bearer ${user.tokens.accessToken}` } });
    t.equal(userinfo.statusCode, 401, 'its access tokens are refused by the gateway too');

    const [updated] = await auditOf('user.updated', user.id);
    t.match(updated, { actor: 'admin-token', ip: '127.0.0.1', outcome: 'success' });
    t.same(updated.details, { changes: { status: { from: 'active', to: 'disabled' } }, sessions_revoked: 2 });
    const revoked = await auditOf('session.revoked', user.id);
    t.same(revoked.map((e) => [e.reason, e.actor]).sort(), [
      ['user_disabled', 'admin-token'],
      ['user_disabled', 'admin-token'],
    ]);

    const again = await call('PATCH', `/admin/users/${user.id}`, { status: 'disabled' });
    t.equal(again.statusCode, 200);
    t.equal((await auditOf('user.updated', user.id)).length, 1, 'no change, no event');
    const enabled = await call('PATCH', `/admin/users/${user.id}`, { status: 'active' });
    t.equal(enabled.json().status, 'active');
    t.equal((await refresh(user.tokens.refreshToken)).statusCode, 401, 're-enabling does not bring revoked sessions back');
  });

  t.test('a role granted by PATCH is in the next refreshed access token', async (t) => {
    const user = await signedIn(app, { roles: ['reader'] });
    const res = await call('PATCH', `/admin/users/${user.id}`, { roles: ['reader', 'admin'], name: 'Grace' });
    t.equal(res.statusCode, 200);
    t.match(res.json(), { roles: ['reader', 'admin'], name: 'Grace' });
    const refreshed = await refresh(user.tokens.refreshToken);
    t.equal(refreshed.statusCode, 200);
    const claims = decodeJwt(refreshed.json().access_token);
    t.same(claims.roles, ['reader', 'admin']);
    t.equal(claims.name, 'Grace');
    const [event] = await auditOf('user.updated', user.id);
    t.same(event.details, { changes: { roles: { from: ['reader'], to: ['reader', 'admin'] }, name: { from: 'Test User', to: 'Grace' } } });
    const asAdmin = await adminCall(app, refreshed.json().access_token)('GET', `/admin/users/${user.id}`);
    t.equal(asAdmin.statusCode, 200, 'and the new admin can use the admin API');
    const cleared = await call('PATCH', `/admin/users/${user.id}`, { roles: [], name: null });
    t.match(cleared.json(), { roles: [], name: null });
    await call('PATCH', `/admin/users/${user.id}`, { name: 'Grace' });
    t.match((await call('PATCH', `/admin/users/${user.id}`, { name: '' })).json(), { name: null }, 'an empty name clears it too');
  });

  t.test('delete removes the user and everything linked to it', async (t) => {
    const user = await signedIn(app);
    await addIdentity(app, user.id, 'corp');
    await addIdentity(app, user.id, 'github');
    await app.ctx.flows.create(
      {
        provider: 'corp',
        returnTo: '/',
        purpose: 'link',
        sessionId: user.tokens.sessionId,
        linkUserId: user.id,
        secrets: { state: 's', nonce: 'n', codeVerifier: 'v' },
      },
      app.ctx.flows.newBrowserSecret(),
    );
    const res = await call('DELETE', `/admin/users/${user.id}`);
    t.equal(res.statusCode, 204);
    t.equal(res.body, '');
    for (const table of ['identities', 'sessions'] as const) {
      t.equal((await db.selectFrom(table).select('id').where('user_id', '=', user.id).execute()).length, 0, `no ${table}`);
    }
    t.equal(
      (await db.selectFrom('login_flows').select('state_hash').where('link_user_id', '=', user.id).execute()).length,
      0,
      'no login flows',
    );
    t.equal((await refresh(user.tokens.refreshToken)).statusCode, 401);
    t.equal((await call('GET', `/admin/users/${user.id}`)).statusCode, 404);
    const [event] = await auditOf('user.deleted', user.id);
    t.match(event, { actor: 'admin-token' });
    t.same(event.details, { identities: 2 });
    t.notMatch(JSON.stringify(event), user.email, 'the audit log does not keep the email of a deleted user');
    t.equal((await call('DELETE', `/admin/users/${user.id}`)).statusCode, 404);
  });

  t.test('unlink an identity, but never the last one', async (t) => {
    const user = await createUser(app);
    const corp = await addIdentity(app, user.id, 'corp', 'c-1');
    const github = await addIdentity(app, user.id, 'github', 'g-1');
    const stranger = await createUser(app);
    const theirs = await addIdentity(app, stranger.id, 'corp');
    t.equal((await call('DELETE', `/admin/users/${user.id}/identities/${theirs}`)).statusCode, 404, "another user's identity");
    const res = await call('DELETE', `/admin/users/${user.id}/identities/${corp}`);
    t.equal(res.statusCode, 204);
    const [event] = await auditOf('identity.unlinked', user.id);
    t.match(event, { provider: 'corp', actor: 'admin-token' });
    t.same(event.details, { identity_id: corp, subject: 'c-1' });
    const last = await call('DELETE', `/admin/users/${user.id}/identities/${github}`);
    t.equal(last.statusCode, 409);
    t.equal(last.json().error, 'conflict');
    const left = (await call('GET', `/admin/users/${user.id}`)).json().identities;
    t.same(
      left.map((i: { id: string }) => i.id),
      [github],
    );
  });

  t.test('revoke all sessions of a user, or one', async (t) => {
    const user = await signedIn(app);
    const other = await app.ctx.sessions.open(user.id, {});
    const third = await app.ctx.sessions.open(user.id, {});
    const one = await call('DELETE', `/admin/sessions/${third.sessionId}`);
    t.equal(one.statusCode, 204);
    t.equal((await refresh(third.refreshToken)).statusCode, 401);
    t.equal((await refresh(user.tokens.refreshToken)).statusCode, 200, 'the other sessions live on');
    t.equal((await call('DELETE', `/admin/sessions/${third.sessionId}`)).statusCode, 204, 'revoking twice answers the same');
    const events = await auditOf('session.revoked', user.id);
    t.same(
      events.map((e) => [e.session_id, e.reason, e.actor]),
      [[third.sessionId, 'admin_revoked', 'admin-token']],
      'audited once',
    );

    const all = await call('DELETE', `/admin/users/${user.id}/sessions`);
    t.equal(all.statusCode, 200);
    t.same(all.json(), { revoked: 2 });
    t.equal((await refresh(other.refreshToken)).statusCode, 401);
    t.same((await call('GET', `/admin/users/${user.id}/sessions`)).json(), { sessions: [] });
    t.same((await call('DELETE', `/admin/users/${user.id}/sessions`)).json(), { revoked: 0 });
  });
});
