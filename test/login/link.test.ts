// Linking another upstream identity to the signed-in user (?link=1): the session's current refresh token and a
// recent authentication are required, and the link is audited where an admin sees it.
import t from 'tap';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { startUpstreamOidc } from '../helpers/upstream-oidc.js';
import { cookiesOf } from '../helpers/users.js';

const PUBLIC_URL = 'http://localhost:3000';
const ADMIN_TOKEN = 'a'.repeat(40);

class Browser {
  cookies = new Map<string, string>();
  constructor(private readonly gw: TestApp) {}
  async get(url: string) {
    const u = new URL(url, PUBLIC_URL);
    const res = await this.gw.app.inject({ url: u.pathname + u.search, cookies: Object.fromEntries(this.cookies) });
    for (const [name, c] of cookiesOf(res)) {
      if (c.value) this.cookies.set(name, c.value);
      else this.cookies.delete(name);
    }
    return res;
  }
}

t.test('linking an identity', async (t) => {
  const corp = await startUpstreamOidc({ redirectUris: [`${PUBLIC_URL}/auth/corp/callback`] });
  const other = await startUpstreamOidc({ redirectUris: [`${PUBLIC_URL}/auth/other/callback`], clientId: 'gw-other' });
  t.teardown(() => Promise.all([corp.close(), other.close()]));
  const gw = await buildTestApp(t, {
    env: {
      AUTH_PROVIDERS: 'corp,other',
      PROVIDER_CORP_ISSUER: corp.issuer,
      PROVIDER_CORP_CLIENT_ID: corp.clientId,
      PROVIDER_CORP_CLIENT_SECRET: corp.clientSecret!,
      PROVIDER_OTHER_ISSUER: other.issuer,
      PROVIDER_OTHER_CLIENT_ID: other.clientId,
      PROVIDER_OTHER_CLIENT_SECRET: other.clientSecret!,
      LINK_MAX_AUTH_AGE: '300',
      ADMIN_TOKEN,
    },
  });
  const { app, storage } = gw;
  const db = storage.db;
  let n = 0;

  /** a browser signed in through corp as a fresh account */
  const signIn = async () => {
    const account = `user-${++n}`;
    corp.setAccount({ accountId: account, claims: { email: `${account}@corp.example`, email_verified: true, name: account } });
    const browser = new Browser(gw);
    const login = await browser.get('/auth/corp/login?return_to=/app');
    const done = await browser.get((await corp.followLogin(login.headers.location as string)).href);
    t.equal(done.headers.location, `${PUBLIC_URL}/app`);
    const sessionId = app.ctx.refreshTokens.parse(browser.cookies.get('gw_session'))!.sessionId;
    const { user_id: userId } = await db.selectFrom('sessions').select('user_id').where('id', '=', sessionId).executeTakeFirstOrThrow();
    return { browser, sessionId, userId, account };
  };
  const linkAtOther = async (browser: Browser, account: string) => {
    other.setAccount({ accountId: account, claims: { email: `${account}@other.example`, email_verified: true } });
    const start = await browser.get('/auth/other/login?link=1&return_to=/settings');
    t.equal(start.statusCode, 302);
    t.equal(new URL(start.headers.location as string).origin, new URL(other.issuer).origin, 'straight to the other provider');
    return browser.get((await other.followLogin(start.headers.location as string)).href);
  };
  const identitiesOf = (userId: string) =>
    db.selectFrom('identities').select(['provider', 'subject']).where('user_id', '=', userId).orderBy('created_at').execute();
  const audit = (userId: string, type: string) =>
    app.inject({ url: `/admin/audit?user_id=${userId}&type=${type}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });

  t.test('a fresh session links at once, and the admin API shows the event', async (t) => {
    const { browser, userId, sessionId } = await signIn();
    const done = await linkAtOther(browser, 'o-1');
    t.equal(done.headers.location, `${PUBLIC_URL}/settings?linked=other`);
    t.same(
      (await identitiesOf(userId)).map((i) => i.provider),
      ['corp', 'other'],
    );
    const events = (await audit(userId, 'identity.linked')).json().events;
    t.equal(events.length, 1);
    t.match(events[0], { user_id: userId, session_id: sessionId, provider: 'other', actor: `user:${userId}` });
    t.match(events[0].details, { subject: 'o-1', linked_by: 'explicit' });
  });

  t.test('a rotated (used) refresh token is reuse: the session is revoked, nothing is linked', async (t) => {
    const { browser, userId, sessionId } = await signIn();
    const stale = browser.cookies.get('gw_session')!;
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gw_session: stale } });
    t.equal(refreshed.statusCode, 200);
    // an attacker holding the old token, after the grace period for concurrent refreshes
    gw.clock.advance(30);
    const attacker = new Browser(gw);
    attacker.cookies.set('gw_session', stale);
    const res = await attacker.get('/auth/other/login?link=1&return_to=/settings');
    t.equal(res.statusCode, 401);
    t.equal(res.json().error, 'login_required');
    const session = await db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirstOrThrow();
    t.equal(session.revoked_reason, 'refresh_reuse', 'the session ends');
    t.equal((await audit(userId, 'refresh.reuse_detected')).json().events.length, 1, 'and the reuse is audited');
    t.same(
      (await identitiesOf(userId)).map((i) => i.provider),
      ['corp'],
    );
    const newest = cookiesOf(refreshed).get('gw_session')!.value;
    t.equal(
      (await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gw_session: newest } })).statusCode,
      401,
      'for the victim too',
    );
  });

  t.test('an old session authenticates again at its own provider first, then links', async (t) => {
    const { browser, userId, sessionId, account } = await signIn();
    await db
      .updateTable('sessions')
      .set({ auth_time: new Date(gw.clock.now().getTime() - 600_000) })
      .where('id', '=', sessionId)
      .execute();
    const start = await browser.get('/auth/other/login?link=1&return_to=/settings');
    t.equal(start.statusCode, 302);
    const reauth = new URL(start.headers.location as string);
    t.equal(reauth.origin, new URL(corp.issuer).origin, 'to the session’s own provider');
    t.equal(reauth.searchParams.get('prompt'), 'login');
    t.equal(reauth.searchParams.get('max_age'), '300');
    corp.setAccount({ accountId: account, claims: { email: `${account}@corp.example`, email_verified: true } });
    const back = await browser.get((await corp.followLogin(reauth)).href);
    t.equal(back.headers.location, `${PUBLIC_URL}/auth/other/login?link=1&return_to=/settings`, 'back to the link request');
    const session = await db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirstOrThrow();
    t.ok(session.auth_time.getTime() > Date.now() - 60_000, 'the session was authenticated again');
    t.equal(session.revoked_at, null);
    t.equal((await audit(userId, 'session.reauthenticated')).json().events.length, 1);
    const done = await linkAtOther(browser, 'o-3');
    t.equal(done.headers.location, `${PUBLIC_URL}/settings?linked=other`);
    t.same(
      (await identitiesOf(userId)).map((i) => i.provider),
      ['corp', 'other'],
    );
  });

  t.test('authenticating again as someone else links nothing and changes nothing', async (t) => {
    const { browser, userId, sessionId } = await signIn();
    const old = new Date(gw.clock.now().getTime() - 600_000);
    await db.updateTable('sessions').set({ auth_time: old }).where('id', '=', sessionId).execute();
    const start = await browser.get('/auth/other/login?link=1&return_to=/settings');
    corp.setAccount({ accountId: 'mallory', claims: { email: 'mallory@corp.example', email_verified: true } });
    const back = await browser.get((await corp.followLogin(start.headers.location as string)).href);
    t.equal(back.headers.location, `${PUBLIC_URL}/settings?error=login_failed`);
    const session = await db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirstOrThrow();
    t.same(session.auth_time, old, 'not re-authenticated');
    const failures = await db.selectFrom('audit_events').selectAll().where('reason', '=', 'reauth_other_user').execute();
    t.equal(failures.length, 1);
    t.equal(failures[0].user_id, userId);
    t.equal(await db.selectFrom('identities').select('id').where('subject', '=', 'mallory').executeTakeFirst(), undefined, 'no user made');
  });

  t.test('no session, or no provider to authenticate again at: login_required', async (t) => {
    t.equal((await app.inject('/auth/other/login?link=1')).statusCode, 401);
    const { browser, sessionId } = await signIn();
    await db
      .updateTable('sessions')
      .set({ auth_time: new Date(gw.clock.now().getTime() - 600_000), provider: 'gone' })
      .where('id', '=', sessionId)
      .execute();
    const res = await browser.get('/auth/other/login?link=1&return_to=/settings');
    t.equal(res.statusCode, 401);
    t.equal(res.json().error, 'login_required');
  });
});
