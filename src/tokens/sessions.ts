// Sessions and their refresh tokens: open, rotate (with reuse detection), revoke.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { recordAudit } from '../audit.js';
import type { Config } from '../config.js';
import { invalidGrant } from '../errors.js';
import type { Database } from '../storage/schema.js';
import { type RefreshClaims, type TokenService, TokenRejected } from './tokens.js';

interface RotatedRow {
  session_id: string;
  user_id: string;
  session_created_at: Date;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  roles: string[];
  new_jti: string;
  refresh_expires_at: Date;
}

export interface ClientMeta {
  ip?: string | null;
  userAgent?: string | null;
}

export interface IssuedTokens {
  sessionId: string;
  userId: string;
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  /** seconds until the refresh token (and so the session cookie) expires */
  refreshExpiresIn: number;
}

/**
 * The session `sid` of user `sub`, joined with its user (`s`, `u`), when it is live: not revoked, within its idle
 * and absolute lifetime, its user active. The one definition of "this token's session still counts" for every
 * route that accepts a token (userinfo, admin, linking); callers add the columns they need.
 */
export function liveSession(db: Kysely<Database>, sid: string, sub: string, now: Date) {
  return db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .where('s.id', '=', sid)
    .where('s.user_id', '=', sub)
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', now)
    .where('s.idle_expires_at', '>', now)
    .where('u.status', '=', 'active');
}

export type RefreshOutcome = 'ok' | 'reuse' | 'expired' | 'revoked' | 'invalid' | 'disabled';

export class SessionService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenService,
    private readonly config: Config,
    private readonly now: () => Date,
    private readonly log: FastifyBaseLogger,
    /** told every refresh outcome (metrics) */
    private readonly onRefresh: (outcome: RefreshOutcome) => void = () => {},
  ) {}

  /** Opens a session for a user and issues its first tokens. Runs in `db` (a transaction when given one). */
  async open(userId: string, meta: ClientMeta & { provider?: string | null }, db: Kysely<Database> = this.db): Promise<IssuedTokens> {
    const now = this.now();
    const sessionId = randomUUID();
    const jti = randomUUID();
    const expiresAt = new Date(now.getTime() + this.config.sessionMaxAge * 1000);
    const refreshExpiresAt = this.#refreshExpiry(now, expiresAt);
    const user = await db
      .selectFrom('users')
      .select(['id', 'email', 'email_verified', 'name', 'roles', 'status'])
      .where('id', '=', userId)
      .executeTakeFirstOrThrow();
    if (user.status !== 'active') throw invalidGrant('The user is disabled.');
    await db
      .insertInto('sessions')
      .values({
        id: sessionId,
        user_id: userId,
        provider: meta.provider ?? null,
        user_agent: meta.userAgent?.slice(0, 512) ?? null,
        ip: meta.ip ?? null,
        created_at: now,
        last_used_at: now,
        idle_expires_at: refreshExpiresAt,
        expires_at: expiresAt,
      })
      .execute();
    await db.insertInto('refresh_tokens').values({ jti, session_id: sessionId, created_at: now, expires_at: refreshExpiresAt }).execute();
    return this.#issue({ user, sessionId, authTime: now, jti, refreshExpiresAt, now });
  }

  /**
   * Rotates a refresh token (RFC 9700 section 4.14.2): the presented token is marked used and its successor
   * stored in one transaction. A token that was already used revokes its whole session.
   */
  async refresh(token: string, meta: ClientMeta): Promise<IssuedTokens> {
    let claims;
    try {
      claims = await this.tokens.verifyRefresh(token);
    } catch (err) {
      const outcome = err instanceof TokenRejected && err.reason === 'expired' ? 'expired' : 'invalid';
      this.onRefresh(outcome);
      throw invalidGrant(outcome === 'expired' ? 'The refresh token has expired.' : 'The refresh token is invalid.');
    }
    const now = this.now();
    const rotated = await this.#rotate(claims, now);
    const result = rotated ?? (await this.#explainRefusal(claims, now, meta));
    this.onRefresh(result.outcome);
    if (result.outcome === 'reuse') {
      this.log.warn({ sessionId: result.sessionId, userId: result.userId }, 'refresh token reuse detected: session revoked');
    }
    if (result.outcome !== 'ok') {
      const messages: Record<Exclude<RefreshOutcome, 'ok'>, string> = {
        invalid: 'The refresh token is invalid.',
        reuse: 'The refresh token was already used; the session has been revoked.',
        revoked: 'The session has been revoked.',
        expired: 'The session has expired.',
        disabled: 'The user is disabled.',
      };
      throw invalidGrant(messages[result.outcome]);
    }
    const { row } = result;
    return this.#issue({
      user: { id: row.user_id, email: row.email, email_verified: row.email_verified, name: row.name, roles: row.roles },
      sessionId: row.session_id,
      authTime: row.session_created_at,
      jti: row.new_jti,
      refreshExpiresAt: row.refresh_expires_at,
      now,
    });
  }

  /**
   * The hot path, in ONE statement (so one transaction and one round trip): marks the presented token used,
   * stores its successor and touches the session, only if the token is unused, unrevoked and unexpired, its
   * session live and its user active. Two concurrent rotations of one token queue on the token's row lock and
   * the second one's `used_at is null` no longer holds (Postgres re-checks the row after the lock): exactly
   * one wins. Returns undefined when nothing was rotated.
   */
  async #rotate(claims: RefreshClaims, now: Date): Promise<{ outcome: 'ok'; row: RotatedRow } | undefined> {
    const newJti = randomUUID();
    const ttlMs = this.config.refreshTokenTtl * 1000;
    const idleExpiry = new Date(now.getTime() + ttlMs);
    const { rows } = await sql<RotatedRow>`
      with claimed as (
        update refresh_tokens rt set used_at = ${now}
        from sessions s join users u on u.id = s.user_id
        where rt.jti = ${claims.jti} and rt.session_id = s.id and s.id = ${claims.sid} and s.user_id = ${claims.sub}
          and rt.used_at is null and rt.revoked_at is null and rt.expires_at > ${now}
          and s.revoked_at is null and s.expires_at > ${now} and u.status = 'active'
        returning rt.jti, s.id as session_id, s.user_id, s.created_at as session_created_at,
          s.expires_at as session_expires_at, u.email, u.email_verified, u.name, u.roles
      ), successor as (
        insert into refresh_tokens (jti, session_id, parent_jti, created_at, expires_at)
        select ${newJti}, session_id, jti, ${now}, least(${idleExpiry}::timestamptz, session_expires_at) from claimed
        returning jti, expires_at
      ), touched as (
        update sessions set last_used_at = ${now}, idle_expires_at = (select expires_at from successor)
        where id = (select session_id from claimed)
      )
      select claimed.session_id, claimed.user_id, claimed.session_created_at, claimed.email, claimed.email_verified,
        claimed.name, claimed.roles, successor.jti as new_jti, successor.expires_at as refresh_expires_at
      from claimed, successor`.execute(this.db);
    return rows[0] ? { outcome: 'ok', row: rows[0] } : undefined;
  }

  /** The slow path: why was nothing rotated? A token that was already used revokes its session. */
  async #explainRefusal(
    claims: RefreshClaims,
    now: Date,
    meta: ClientMeta,
  ): Promise<{ outcome: Exclude<RefreshOutcome, 'ok'>; userId?: string; sessionId?: string }> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('refresh_tokens as rt')
        .innerJoin('sessions as s', 's.id', 'rt.session_id')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .select([
          'rt.used_at',
          'rt.revoked_at',
          'rt.expires_at',
          's.id as session_id',
          's.user_id',
          's.expires_at as session_expires_at',
          's.revoked_at as session_revoked_at',
          'u.status',
        ])
        .where('rt.jti', '=', claims.jti)
        .forUpdate(['rt', 's'])
        .executeTakeFirst();
      if (!row || row.session_id !== claims.sid || row.user_id !== claims.sub) return { outcome: 'invalid' as const };
      if (row.used_at) {
        // RFC 9700 section 4.14.2: a rotated token came back, so someone holds a copy. Revoke the session and
        // every token of it.
        if (!row.session_revoked_at) {
          await this.#revokeIn(trx, row.session_id, 'refresh_reuse', now);
          await recordAudit(trx, {
            type: 'refresh.reuse_detected',
            outcome: 'failure',
            reason: 'refresh_token_reused',
            userId: row.user_id,
            sessionId: row.session_id,
            actor: 'system',
            ip: meta.ip,
            at: now,
          });
        }
        return { outcome: 'reuse' as const, userId: row.user_id, sessionId: row.session_id };
      }
      if (row.revoked_at || row.session_revoked_at) return { outcome: 'revoked' as const };
      if (row.session_expires_at <= now || row.expires_at <= now) return { outcome: 'expired' as const };
      if (row.status !== 'active') return { outcome: 'disabled' as const };
      // valid a moment ago but not rotated: a concurrent change (e.g. the user was just re-enabled); refuse
      return { outcome: 'invalid' as const };
    });
  }

  /** Revokes a session and every refresh token of it. Returns false when it was not active. */
  async revoke(
    sessionId: string,
    e: { reason: string; actor: string; ip?: string | null; auditType?: 'logout' | 'session.revoked' },
    db: Kysely<Database> = this.db,
  ): Promise<boolean> {
    const now = this.now();
    const run = async (trx: Kysely<Database>) => {
      const session = await trx
        .selectFrom('sessions')
        .select(['user_id'])
        .where('id', '=', sessionId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (!session) return false;
      await this.#revokeIn(trx, sessionId, e.reason, now);
      await recordAudit(trx, {
        type: e.auditType ?? 'session.revoked',
        reason: e.reason,
        userId: session.user_id,
        sessionId,
        actor: e.actor,
        ip: e.ip,
        at: now,
      });
      return true;
    };
    return db.isTransaction ? run(db) : db.transaction().execute(run);
  }

  /** Revokes every active session of a user (disabling, admin). Returns how many. */
  async revokeAllForUser(
    userId: string,
    e: { reason: string; actor: string; ip?: string | null },
    db: Kysely<Database> = this.db,
  ): Promise<number> {
    const sessions = await db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    let n = 0;
    for (const s of sessions) if (await this.revoke(s.id, e, db)) n++;
    return n;
  }

  async #revokeIn(trx: Kysely<Database>, sessionId: string, reason: string, now: Date): Promise<void> {
    await trx
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('id', '=', sessionId)
      .where('revoked_at', 'is', null)
      .execute();
    await trx
      .updateTable('refresh_tokens')
      .set({ revoked_at: now })
      .where('session_id', '=', sessionId)
      .where('revoked_at', 'is', null)
      .execute();
  }

  #refreshExpiry(now: Date, sessionExpiresAt: Date): Date {
    // idle expiry, never past the absolute session lifetime
    return new Date(Math.min(now.getTime() + this.config.refreshTokenTtl * 1000, sessionExpiresAt.getTime()));
  }

  async #issue(p: {
    user: { id: string; email: string | null; email_verified: boolean; name: string | null; roles: string[] };
    sessionId: string;
    authTime: Date;
    jti: string;
    refreshExpiresAt: Date;
    now: Date;
  }): Promise<IssuedTokens> {
    // WebCrypto signs asynchronously: both at once
    const [access, refreshToken] = await Promise.all([
      this.tokens.signAccess({
        userId: p.user.id,
        sessionId: p.sessionId,
        authTime: p.authTime,
        email: p.user.email,
        emailVerified: p.user.email_verified,
        name: p.user.name,
        roles: p.user.roles,
      }),
      this.tokens.signRefresh({ userId: p.user.id, sessionId: p.sessionId, jti: p.jti, expiresAt: p.refreshExpiresAt }),
    ]);
    return {
      sessionId: p.sessionId,
      userId: p.user.id,
      accessToken: access.token,
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: Math.floor((p.refreshExpiresAt.getTime() - p.now.getTime()) / 1000),
    };
  }
}
