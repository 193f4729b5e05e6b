// What the OpenID Provider keeps between requests: pending authorization requests (waiting for an upstream
// login), authorization codes, and revoked access tokens. Secrets are stored only as keyed hashes.
import { createHash, randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../storage/schema.js';
import type { AuthorizationRequest } from './authorize.js';

/** RFC 6749 section 4.1.2: a maximum authorization code lifetime of 10 minutes is RECOMMENDED; ours is 60 s. */
export const CODE_TTL_S = 60;

const random = () => randomBytes(32).toString('base64url');
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** An authorization request waiting for the user to sign in upstream, bound to the browser. */
export class PendingRequests {
  constructor(
    private readonly db: Kysely<Database>,
    /** keyed hashes, shared with the login flows (the same browser binding) */
    private readonly hash: (kind: string, value: string) => string,
    private readonly ttlSeconds: number,
  ) {}

  async create(request: AuthorizationRequest, browserSecret: string, loginAfter: Date | null, now: Date): Promise<string> {
    const id = random();
    await this.db
      .insertInto('authorization_requests')
      .values({
        id_hash: this.hash('authorization_request', id),
        browser_binding: this.hash('browser', browserSecret),
        client_id: request.clientId,
        params: JSON.stringify(request),
        login_after: loginAfter,
        created_at: now,
        expires_at: new Date(now.getTime() + this.ttlSeconds * 1000),
      })
      .execute();
    return id;
  }

  /** The request, when it is this browser's and unexpired (not consumed: the sign-in page reads it too). */
  async find(id: string | undefined, browserSecret: string | undefined, now: Date) {
    if (!id || !browserSecret || id.length > 128) return undefined;
    const row = await this.db
      .selectFrom('authorization_requests')
      .select(['params', 'login_after', 'client_id'])
      .where('id_hash', '=', this.hash('authorization_request', id))
      .where('browser_binding', '=', this.hash('browser', browserSecret))
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row ? { request: row.params as unknown as AuthorizationRequest, loginAfter: row.login_after } : undefined;
  }

  /** Takes the request once (the resumed authorization). */
  async consume(id: string | undefined, browserSecret: string | undefined, now: Date) {
    if (!id || !browserSecret || id.length > 128) return undefined;
    const row = await this.db
      .deleteFrom('authorization_requests')
      .where('id_hash', '=', this.hash('authorization_request', id))
      .where('browser_binding', '=', this.hash('browser', browserSecret))
      .where('expires_at', '>', now)
      .returning(['params', 'login_after'])
      .executeTakeFirst();
    return row ? { request: row.params as unknown as AuthorizationRequest, loginAfter: row.login_after } : undefined;
  }
}

export interface CodeGrant {
  clientId: string;
  sessionId: string;
  userId: string;
  redirectUri: string;
  codeChallenge: string | null;
  nonce: string | null;
  scope: string;
  audience: string[];
  authTime: Date;
}

/** Authorization codes: random, stored hashed, one-time, CODE_TTL_S long. */
export class AuthorizationCodes {
  constructor(private readonly db: Kysely<Database>) {}

  async issue(grant: CodeGrant, now: Date): Promise<string> {
    const code = random();
    await this.db
      .insertInto('authorization_codes')
      .values({
        code_hash: sha256(code),
        client_id: grant.clientId,
        session_id: grant.sessionId,
        user_id: grant.userId,
        redirect_uri: grant.redirectUri,
        code_challenge: grant.codeChallenge,
        nonce: grant.nonce,
        scope: grant.scope,
        audience: grant.audience,
        auth_time: grant.authTime,
        created_at: now,
        expires_at: new Date(now.getTime() + CODE_TTL_S * 1000),
      })
      .execute();
    return code;
  }

  /**
   * Marks the code used, once, for its own client: what it was issued for, or why not. A code of another client
   * is refused without being spent (that client cannot burn it); a second use is `reused` and names the grant
   * the first one opened, to be revoked (RFC 6749 section 4.1.2).
   */
  async redeem(
    code: string,
    clientId: string,
    now: Date,
  ): Promise<{ kind: 'ok'; grant: CodeGrant; codeHash: string } | { kind: 'reused'; grantId: string | null } | { kind: 'invalid' }> {
    if (code.length > 256) return { kind: 'invalid' };
    const codeHash = sha256(code);
    const row = await this.db
      .updateTable('authorization_codes')
      .set({ used_at: now })
      .where('code_hash', '=', codeHash)
      .where('client_id', '=', clientId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .executeTakeFirst();
    if (row) {
      return {
        kind: 'ok',
        codeHash,
        grant: {
          clientId: row.client_id,
          sessionId: row.session_id,
          userId: row.user_id,
          redirectUri: row.redirect_uri,
          codeChallenge: row.code_challenge,
          nonce: row.nonce,
          scope: row.scope,
          audience: row.audience,
          authTime: row.auth_time,
        },
      };
    }
    const used = await this.db
      .selectFrom('authorization_codes')
      .select(['grant_id', 'used_at'])
      .where('code_hash', '=', codeHash)
      .where('client_id', '=', clientId)
      .executeTakeFirst();
    return used?.used_at ? { kind: 'reused', grantId: used.grant_id } : { kind: 'invalid' };
  }
}

/** Access tokens revoked before their expiry (RFC 7009): remembered by jti until then. */
export class RevokedAccessTokens {
  constructor(private readonly db: Kysely<Database>) {}

  async add(jti: string, expiresAt: Date): Promise<void> {
    await this.db
      .insertInto('revoked_access_tokens')
      .values({ jti, expires_at: expiresAt })
      .onConflict((oc) => oc.column('jti').doNothing())
      .execute();
  }

  async has(jti: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('revoked_access_tokens')
      .select(sql`1`.as('one'))
      .where('jti', '=', jti)
      .executeTakeFirst();
    return row !== undefined;
  }
}
