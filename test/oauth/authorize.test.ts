// The authorization endpoint refuses what it must (RFC 6749 4.1.2.1, OIDC Core 3.1.2, RFC 7636, RFC 8707, RFC 9207,
// RFC 9700): an unknown client or a redirect URI that is not registered is an HTML page and never a redirect;
// everything else goes back to the redirect URI with error, error_description, state and iss. GET and POST alike.
// Then the authentication rules: prompt=login and max_age force a new upstream login, and a resumed request is
// one-time and bound to its browser.
import t from 'tap';
import type { Test } from 'tap';
import {
  authorizePost,
  authorizeUrl,
  claimsOf,
  codeFor,
  NO_RATE_LIMITS,
  redeem,
  registerClient,
  signIn,
  validRequest,
  walk,
} from '../helpers/op-requests.js';
import { ADMIN_TOKEN, CLIENT_CB, startOpGateway } from '../helpers/op.js';

type Params = Record<string, string | string[]>;

t.test('the authorization endpoint', async (t) => {
  const op = await startOpGateway(t, { env: NO_RATE_LIMITS });
  const web = await registerClient(op, {
    client_name: 'Web',
    redirect_uris: [CLIENT_CB, 'https://app.example.com/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile',
    audience: ['https://api.example.com', 'urn:example:orders'],
  });
  const spa = await registerClient(op, {
    client_name: 'SPA',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
  });
  const other = await registerClient(op, {
    client_name: 'Other',
    redirect_uris: ['https://other.example.com/cb'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  // a client with a redirect URI but without the code grant (it had one once)
  const service = await registerClient(op, {
    client_name: 'Service',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  });
  const patched = await op.app.inject({
    method: 'PATCH',
    url: `/admin/clients/${service.id}`,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    payload: { grant_types: ['client_credentials'] },
  });
  t.equal(patched.statusCode, 200, 'the service keeps its redirect URI without the code grant');

  /** GET with the query string, or POST with the same parameters form-encoded */
  const send = (how: 'GET' | 'POST', params: Params) =>
    how === 'GET' ? fetch(authorizeUrl(op, params), { redirect: 'manual' }) : authorizePost(op, params);

  /** RFC 6749 section 4.1.2.1: shown to the user, never redirected */
  const isPage = async (t: Test, res: Response, why: RegExp, name: string) => {
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers.get('location'), null, `${name}: no Location, never a redirect`);
    t.match(res.headers.get('content-type'), /^text\/html/, `${name}: an HTML page`);
    t.match(await res.text(), why, `${name}: the page says why`);
  };

  /** RFC 6749 section 4.1.2.1 + RFC 9207: the error at the redirect URI, with state and iss */
  const isRedirect = async (t: Test, res: Response, error: string, o: { state?: string; redirectUri?: string; name: string }) => {
    await res.arrayBuffer();
    t.equal(res.status, 302, `${o.name}: redirected`);
    const location = new URL(res.headers.get('location') ?? 'about:blank', op.url);
    t.equal(`${location.origin}${location.pathname}`, o.redirectUri ?? CLIENT_CB, `${o.name}: to the redirect URI`);
    t.equal(location.searchParams.get('error'), error, `${o.name}: error=${error}`);
    t.ok(location.searchParams.get('error_description'), `${o.name}: with error_description`);
    t.equal(location.searchParams.get('state'), o.state ?? null, `${o.name}: state echoed`);
    t.equal(location.searchParams.get('iss'), op.url, `${o.name}: iss (RFC 9207)`);
    t.notOk(location.searchParams.has('code'), `${o.name}: no code`);
  };

  for (const how of ['GET', 'POST'] as const) {
    t.test(`${how}: errors about the client or the redirect URI are a page, never a redirect`, async (t) => {
      const base = validRequest(web).params;
      const without = (name: string) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== name));
      await isPage(t, await send(how, without('client_id')), /no client_id/, 'no client_id');
      await isPage(t, await send(how, { ...base, client_id: 'no-such-client' }), /not registered/, 'unknown client_id');
      await isPage(t, await send(how, { ...base, client_id: [web.id, web.id] }), /more than once/, 'client_id twice');
      await isPage(t, await send(how, { ...base, client_id: [web.id, other.id] }), /more than once/, 'two client_ids');
      // OIDC Core 3.1.2.1: redirect_uri is REQUIRED
      await isPage(t, await send(how, without('redirect_uri')), /no redirect_uri/, 'no redirect_uri');
      await isPage(t, await send(how, { ...base, redirect_uri: [CLIENT_CB, CLIENT_CB] }), /more than once/, 'redirect_uri twice');
      await isPage(
        t,
        await send(how, { ...base, redirect_uri: [CLIENT_CB, 'https://app.example.com/cb'] }),
        /more than once/,
        'two registered redirect_uris',
      );
      // RFC 9700 section 4.1.1: exact string match; each look-alike is refused
      const lookAlikes = [
        'http://127.0.0.1:7/other',
        'http://127.0.0.1:7/cb/',
        'http://127.0.0.1:7/cb/..',
        'http://127.0.0.1:7/CB',
        'http://127.0.0.1:7/cb?x=1',
        'http://127.0.0.1:7/cb?',
        'http://127.0.0.1:7/cb#frag',
        'http://localhost:7/cb',
        'http://127.0.0.2:7/cb',
        'http://127.0.0.1.evil.example.com:7/cb',
        'http://127.0.0.1:7@evil.example.com/cb',
        'https://127.0.0.1:7/cb',
        'https://evil.example.com/cb',
        'http://app.example.com/cb',
        'https://app.example.com:8443/cb',
        'https://app.example.com:443/cb',
        'https://app.example.com/cb/',
        'https://APP.example.com/cb',
        'https://app.example.com.evil.example.com/cb',
        'https://app.example.com@evil.example.com/cb',
        'https://evil.example.com/?https://app.example.com/cb',
        'https://app.example.com/cb?next=https://evil.example.com',
        'https://app.example.com/cb#',
        '//app.example.com/cb',
        '/cb',
        // another client's redirect URI
        'https://other.example.com/cb',
      ];
      for (const uri of lookAlikes) {
        await isPage(t, await send(how, { ...base, redirect_uri: uri }), /not registered/, `redirect_uri ${uri}`);
      }
      // a control character where the client is looked up: still a page, not a server error
      await isPage(t, await send(how, { ...base, client_id: `${web.id}\u0000` }), /not registered/, 'client_id with NUL');
      await isPage(t, await send(how, { ...base, client_id: `\u0000` }), /not registered/, 'client_id NUL only');
      await isPage(t, await send(how, { ...base, redirect_uri: `${CLIENT_CB}\u0000` }), /not registered/, 'redirect_uri with NUL');
      await isPage(t, await send(how, { ...base, redirect_uri: `${CLIENT_CB}\n` }), /not registered/, 'redirect_uri with a newline');
    });

    t.test(`${how}: a loopback redirect URI matches with any port (RFC 8252 7.3), nothing else does`, async (t) => {
      for (const uri of ['http://127.0.0.1:54321/cb', 'http://127.0.0.1/cb', 'http://127.0.0.1:65535/cb']) {
        const { params, state } = validRequest(web, { redirect_uri: uri, prompt: 'none' });
        const res = await send(how, params);
        // a fresh browser: prompt=none answers login_required, at the URI with the other port
        await isRedirect(t, res, 'login_required', { state, redirectUri: uri.replace(/\?.*/, ''), name: uri });
        t.equal(new URL(res.headers.get('location')!).host, new URL(uri).host, `${uri}: the port asked for`);
      }
      await isPage(t, await send(how, { ...validRequest(web).params, redirect_uri: 'http://127.0.0.1:0/cb' }), /not registered/, 'port 0');
      await isPage(
        t,
        await send(how, { ...validRequest(web).params, redirect_uri: 'http://127.0.0.1:65536/cb' }),
        /not registered/,
        'port 65536',
      );
      await isPage(
        t,
        await send(how, { ...validRequest(web).params, redirect_uri: 'http://[::1]:7/cb' }),
        /not registered/,
        'another loopback host',
      );
    });

    t.test(`${how}: every other error goes back to the redirect URI with state and iss`, async (t) => {
      const cases: [string, Params, string][] = [
        // RFC 6749 section 4.1.1: response_type is REQUIRED; only code (section 3.1.1)
        ['no response_type', { response_type: '' }, 'invalid_request'],
        ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
        ['response_type=id_token', { response_type: 'id_token' }, 'unsupported_response_type'],
        ['response_type=code id_token', { response_type: 'code id_token' }, 'unsupported_response_type'],
        ['response_type twice', { response_type: ['code', 'code'] }, 'invalid_request'],
        // OAuth 2.0 Multiple Response Types: query is the only mode
        ['response_mode=fragment', { response_mode: 'fragment' }, 'invalid_request'],
        ['response_mode=form_post', { response_mode: 'form_post' }, 'invalid_request'],
        ['response_mode=jwt', { response_mode: 'jwt' }, 'invalid_request'],
        // RFC 6749 section 3.3
        ['unknown scope', { scope: 'openid admin' }, 'invalid_scope'],
        ['scope of another client', { scope: 'openid orders:write' }, 'invalid_scope'],
        // RFC 7636 section 4.3 and RFC 9700 section 2.1.1: S256 only
        ['code_challenge_method=plain', { code_challenge_method: 'plain' }, 'invalid_request'],
        ['code_challenge_method=s256', { code_challenge_method: 's256' }, 'invalid_request'],
        ['challenge without a method', { code_challenge_method: '' }, 'invalid_request'],
        ['a method without a challenge', { code_challenge: '' }, 'invalid_request'],
        ['challenge too short', { code_challenge: 'a'.repeat(42) }, 'invalid_request'],
        ['challenge too long for S256', { code_challenge: 'a'.repeat(44) }, 'invalid_request'],
        ['challenge with + and /', { code_challenge: `${'a'.repeat(41)}+/` }, 'invalid_request'],
        ['challenge with padding', { code_challenge: `${'a'.repeat(42)}=` }, 'invalid_request'],
        // OIDC Core 3.1.2.1
        ['prompt=none login', { prompt: 'none login' }, 'invalid_request'],
        ['prompt=none consent', { prompt: 'consent none' }, 'invalid_request'],
        ['unknown prompt', { prompt: 'bogus' }, 'invalid_request'],
        ['max_age negative', { max_age: '-1' }, 'invalid_request'],
        ['max_age not a number', { max_age: 'soon' }, 'invalid_request'],
        ['max_age fractional', { max_age: '1.5' }, 'invalid_request'],
        ['max_age with a sign', { max_age: '+60' }, 'invalid_request'],
        ['max_age huge', { max_age: '99999999999999999999' }, 'invalid_request'],
        ['unknown provider', { provider: 'nope' }, 'invalid_request'],
        // RFC 8707 section 2
        ['resource not allowed', { resource: 'https://evil.example.com' }, 'invalid_target'],
        ['resource of the default audience', { resource: op.config.accessTokenAudience[0] }, 'invalid_target'],
        ['resource not absolute', { resource: '/api' }, 'invalid_target'],
        ['resource with a fragment', { resource: 'https://api.example.com#x' }, 'invalid_target'],
        // OIDC Core 6.1 and 6.2
        ['request object', { request: 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.' }, 'request_not_supported'],
        ['request_uri', { request_uri: 'https://app.example.com/request.jwt' }, 'request_uri_not_supported'],
        // RFC 6749 section 3.1: no parameter twice
        ['scope twice', { scope: ['openid', 'openid email'] }, 'invalid_request'],
        ['nonce twice', { nonce: ['a', 'b'] }, 'invalid_request'],
        // no control characters anywhere (U+0000 cannot even be stored)
        ['NUL in nonce', { nonce: 'a\u0000b' }, 'invalid_request'],
        ['NUL in login_hint', { login_hint: '\u0000' }, 'invalid_request'],
        ['a control character in scope', { scope: 'openid\u0001' }, 'invalid_request'],
        ['DEL in the challenge', { code_challenge: `${'a'.repeat(42)}\u007f` }, 'invalid_request'],
        ['a newline in the resource', { resource: 'https://api.example.com\n' }, 'invalid_request'],
        ['NUL in an unknown parameter', { extra: '\u0000' }, 'invalid_request'],
        // bounded: what is stored with the code
        ['nonce too long', { nonce: 'n'.repeat(513) }, 'invalid_request'],
      ];
      for (const [name, change, error] of cases) {
        const { params, state } = validRequest(web, change);
        await isRedirect(t, await send(how, params), error, { state, name });
      }
      // PKCE is REQUIRED for a public client (RFC 9700 section 2.1.1)
      {
        const { params, state } = validRequest(spa, { code_challenge: '', code_challenge_method: '' });
        await isRedirect(t, await send(how, params), 'invalid_request', { state, name: 'public client without PKCE' });
      }
      // RFC 6749 section 4.1.2.1: unauthorized_client, with state as every other redirected error
      {
        const { params, state } = validRequest(service);
        await isRedirect(t, await send(how, params), 'unauthorized_client', { state, name: 'a client without the code grant' });
      }
      // OIDC Core 3.1.2.6: prompt=none without a session
      {
        const { params, state } = validRequest(web, { prompt: 'none' });
        await isRedirect(t, await send(how, params), 'login_required', { state, name: 'prompt=none without a session' });
      }
      {
        const { params } = validRequest(web, { state: 's'.repeat(2049) });
        await isRedirect(t, await send(how, params), 'invalid_request', { state: 's'.repeat(2049), name: 'state too long' });
      }
      // no state sent: none in the answer
      {
        const { params } = validRequest(web, { response_type: 'token', state: '' });
        await isRedirect(t, await send(how, params), 'unsupported_response_type', { name: 'without state' });
      }
      // the redirect goes to the redirect URI of the request, loopback port included
      {
        const { params, state } = validRequest(web, { redirect_uri: 'https://app.example.com/cb', scope: 'openid admin' });
        await isRedirect(t, await send(how, params), 'invalid_scope', {
          state,
          redirectUri: 'https://app.example.com/cb',
          name: 'to the other registered URI',
        });
      }
    });
  }

  t.test('what is valid goes on: a code, with state and iss, for GET and POST', async (t) => {
    const browser = op.browser();
    const first = await codeFor(op, browser, web);
    t.equal(first.back.searchParams.get('state'), first.state);
    t.equal(first.back.searchParams.get('iss'), op.url, 'RFC 9207');
    t.equal(first.upstream.length, 1, 'one upstream login');
    // POST with the same browser: single sign-on
    const req = validRequest(web, { resource: 'urn:example:orders', max_age: '600', response_mode: 'query' });
    const res = await authorizePost(op, req.params, browser);
    t.equal(res.status, 302);
    const back = new URL(res.headers.get('location')!);
    t.equal(`${back.origin}${back.pathname}`, CLIENT_CB);
    t.equal(back.searchParams.get('state'), req.state);
    const tokens = await redeem(op, web, back.searchParams.get('code')!, req.verifier);
    t.equal(tokens.status, 200);
    t.equal(claimsOf(tokens.body.access_token as string).aud, 'urn:example:orders', 'the resource asked for (RFC 8707)');
    // RFC 8707 section 2: several resources, one audience each
    const both = validRequest(web, { resource: ['https://api.example.com', 'urn:example:orders'] });
    const bothBack = new URL((await authorizePost(op, both.params, browser)).headers.get('location')!);
    const bothTokens = await redeem(op, web, bothBack.searchParams.get('code')!, both.verifier);
    t.same(claimsOf(bothTokens.body.access_token as string).aud, ['https://api.example.com', 'urn:example:orders'], 'both audiences');
    const oneBad = validRequest(web, { resource: ['https://api.example.com', 'https://evil.example.com'] });
    const oneBadBack = new URL((await authorizePost(op, oneBad.params, browser)).headers.get('location')!);
    t.equal(oneBadBack.searchParams.get('error'), 'invalid_target', 'each of them must be allowed');
    // the public client with PKCE
    const spaCode = await codeFor(op, browser, spa);
    t.equal((await redeem(op, spa, spaCode.code, spaCode.verifier)).status, 200);
  });
});

t.test('authentication: prompt=login, max_age, and the resumed request', async (t) => {
  // an operator's default audience need not be a URI: it is no RFC 8707 resource
  const op = await startOpGateway(t, { env: { ...NO_RATE_LIMITS, ACCESS_TOKEN_AUDIENCE: 'gateway-api,https://api.internal/#x' } });
  const web = await registerClient(op, {
    client_name: 'Web',
    redirect_uris: [CLIENT_CB],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid email profile',
  });
  const authTime = (tokens: { id_token?: string }) => claimsOf(tokens.id_token!).auth_time as number;
  const nowS = () => Math.floor(op.clock.now().getTime() / 1000);

  t.test('a live session is single sign-on; prompt=login asks upstream again, even a moment later', async (t) => {
    const browser = op.browser();
    const first = await codeFor(op, browser, web);
    t.equal(first.upstream.length, 1, 'the first sign-in goes upstream');
    t.notOk(first.upstream[0].searchParams.has('prompt'), 'without prompt');
    const t0 = authTime((await redeem(op, web, first.code, first.verifier)).body);
    t.equal(t0, nowS());

    const sso = await codeFor(op, browser, web);
    t.equal(sso.upstream.length, 0, 'single sign-on: no upstream login');

    // OIDC Core 3.1.2.1: prompt=login, at the very instant of the last login: still a new authentication
    const again = await codeFor(op, browser, web, { prompt: 'login' });
    t.equal(again.upstream.length, 1, 'prompt=login: upstream again');
    t.equal(again.upstream[0]?.searchParams.get('prompt'), 'login', 'and the upstream is told prompt=login');

    op.clock.advance(90);
    const later = await codeFor(op, browser, web, { prompt: 'login' });
    t.equal(later.upstream[0]?.searchParams.get('prompt'), 'login');
    const tokens = (await redeem(op, web, later.code, later.verifier)).body;
    t.equal(authTime(tokens), t0 + 90, 'the ID token says when the new login happened');
    // and that login is now the session's: the next request is single sign-on with the new auth_time
    const next = await signIn(op, browser, web);
    t.equal(authTime(next), t0 + 90);
  });

  t.test('max_age: an older authentication goes upstream again; a recent enough one does not', async (t) => {
    const browser = op.browser();
    const t0 = authTime(await signIn(op, browser, web));
    op.clock.advance(120);
    const recent = await codeFor(op, browser, web, { max_age: '600' });
    t.equal(recent.upstream.length, 0, 'max_age=600 after 120 s: single sign-on');
    t.equal(authTime((await redeem(op, web, recent.code, recent.verifier)).body), t0, 'auth_time of the session (OIDC Core 2)');

    const old = await codeFor(op, browser, web, { max_age: '60' });
    t.equal(old.upstream.length, 1, 'max_age=60 after 120 s: upstream again');
    t.equal(old.upstream[0]?.searchParams.get('prompt'), 'login', 'with prompt=login');
    const t1 = authTime((await redeem(op, web, old.code, old.verifier)).body);
    t.equal(t1, t0 + 120, 'the new auth_time');

    // OIDC Core 3.1.2.1 (errata set 2): max_age=0 is prompt=login, however recent the session
    const zero = await codeFor(op, browser, web, { max_age: '0' });
    t.equal(zero.upstream.length, 1, 'max_age=0: upstream again');

    // prompt=none with a session too old for max_age: login_required, nothing shown
    op.clock.advance(120);
    const req = validRequest(web, { prompt: 'none', max_age: '60' });
    const { back, upstream } = await walk(op, browser, authorizeUrl(op, req.params));
    t.equal(upstream.length, 0);
    t.equal(back.searchParams.get('error'), 'login_required');
    t.equal(back.searchParams.get('state'), req.state);
    t.equal(back.searchParams.get('iss'), op.url);
    // and with a recent enough one, a code
    const ok = await walk(op, browser, authorizeUrl(op, validRequest(web, { prompt: 'none', max_age: '600' }).params));
    t.ok(ok.back.searchParams.get('code'), 'prompt=none with a recent enough session: a code');
  });

  t.test('skipping the upstream login does not satisfy prompt=login or max_age', async (t) => {
    const browser = op.browser();
    await signIn(op, browser, web);
    op.clock.advance(5);
    const forcing: Record<string, string>[] = [{ prompt: 'login' }, { max_age: '1' }];
    for (const extra of forcing) {
      const req = validRequest(web, extra);
      // stop where the gateway sends the browser to sign in upstream, and go straight back instead
      const end = await browser.follow(authorizeUrl(op, req.params), (u) => u.pathname === '/auth/corp/login');
      const resume = new URL(end.url.searchParams.get('return_to')!, op.url);
      t.equal(resume.pathname, '/oauth2/authorize/resume');
      const res = await browser.request(resume);
      t.equal(res.status, 302);
      const back = new URL(res.headers.get('location')!, op.url);
      t.equal(back.searchParams.get('error'), 'login_required', `${JSON.stringify(extra)}: the old session does not count`);
      t.notOk(back.searchParams.has('code'), `${JSON.stringify(extra)}: no code`);
      t.equal(back.searchParams.get('state'), req.state);
    }
  });

  t.test('resource: only an absolute URI without a fragment, even when the default audience holds others', async (t) => {
    const plain = await registerClient(op, {
      client_name: 'No audience of its own',
      redirect_uris: [CLIENT_CB],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    for (const resource of ['gateway-api', 'https://api.internal/#x']) {
      const { params, state } = validRequest(plain, { resource, prompt: 'none' });
      const res = await fetch(authorizeUrl(op, params), { redirect: 'manual' });
      const back = new URL(res.headers.get('location')!, op.url);
      t.equal(back.searchParams.get('error'), 'invalid_target', `${resource}: invalid_target`);
      t.equal(back.searchParams.get('state'), state);
    }
  });

  t.test('a resumed request is one-time and bound to the browser that started it', async (t) => {
    const browser = op.browser();
    const req = validRequest(web);
    // walk up to the resumption, and stop before it
    const end = await browser.follow(authorizeUrl(op, req.params), (u) => u.pathname === '/oauth2/authorize/resume');
    t.notOk(end.response, 'the upstream login came back to the resumption');
    const resume = end.url;
    t.ok(resume.searchParams.get('request'));

    // another browser, with a flow cookie of its own, and one with no cookie at all
    const thief = op.browser();
    await thief.follow(authorizeUrl(op, validRequest(web).params), (u) => u.origin !== op.url);
    t.ok(thief.cookie(op.url, 'gw_flow'), 'the other browser has a flow cookie of its own');
    for (const [name, b] of [
      ['another browser', thief],
      ['no cookie', op.browser()],
    ] as const) {
      const res = await b.request(resume);
      t.equal(res.status, 400, `${name}: refused`);
      t.equal(res.headers.get('location'), null, `${name}: no redirect`);
      t.match(await res.text(), /expired or was already completed/, `${name}: the error page`);
    }
    // another browser that stole the session cookie but not the flow cookie is refused too
    const halfThief = op.browser();
    halfThief.setCookie(op.url, 'gw_session', browser.cookie(op.url, 'gw_session')!);
    t.equal((await halfThief.request(resume)).status, 400, 'the session cookie alone does not resume');

    // the browser that started it: a code, once
    const res = await browser.request(resume);
    t.equal(res.status, 302);
    const back = new URL(res.headers.get('location')!);
    t.equal(back.searchParams.get('state'), req.state);
    t.equal((await redeem(op, web, back.searchParams.get('code')!, req.verifier)).status, 200);
    const twice = await browser.request(resume);
    t.equal(twice.status, 400, 'a second use: refused');
    t.equal(twice.headers.get('location'), null, 'a second use: no redirect');
    t.match(await twice.text(), /expired or was already completed/);
    // its cancel link is one-time too
    const cancel = new URL(resume);
    cancel.searchParams.set('error', 'access_denied');
    t.equal((await browser.request(cancel)).status, 400, 'the cancel of a used request: refused');
  });

  t.test('a resumed request without a session after the login: login_required, not another round', async (t) => {
    const browser = op.browser();
    const req = validRequest(web);
    const end = await browser.follow(authorizeUrl(op, req.params), (u) => u.pathname === '/oauth2/authorize/resume');
    // the session the login opened is gone by the time the browser comes back
    browser.jar.get(new URL(op.url).host)!.delete('gw_session');
    const res = await browser.request(end.url);
    t.equal(res.status, 302);
    const back = new URL(res.headers.get('location')!, op.url);
    t.equal(`${back.origin}${back.pathname}`, CLIENT_CB, 'back to the client');
    t.equal(back.searchParams.get('error'), 'login_required');
    t.equal(back.searchParams.get('state'), req.state);
    t.equal(back.searchParams.get('iss'), op.url);
  });

  t.test('a sign-in the user refused upstream, or cancelled: access_denied with state', async (t) => {
    const browser = op.browser();
    op.upstreams.corp.denyNext();
    const req = validRequest(web);
    const { back } = await walk(op, browser, authorizeUrl(op, req.params));
    t.equal(back.searchParams.get('error'), 'access_denied');
    t.equal(back.searchParams.get('state'), req.state);
    t.equal(back.searchParams.get('iss'), op.url);
    t.notOk(back.searchParams.has('code'));
  });

  t.test('a pending request expires with its login flow', async (t) => {
    const browser = op.browser();
    const end = await browser.follow(authorizeUrl(op, validRequest(web).params), (u) => u.pathname === '/oauth2/authorize/resume');
    op.clock.advance(op.config.loginFlowTtl + 1);
    const res = await browser.request(end.url);
    t.equal(res.status, 400);
    t.equal(res.headers.get('location'), null);
  });
});
