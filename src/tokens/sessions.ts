// Sessions and their refresh-token chain: open, rotate (with reuse detection and a grace window for concurrent
// refreshes), check for linking, revoke.
//
// A session row holds the generation of its current refresh token (refresh_gen); a refresh token names its
// session and generation under a MAC (refresh-token.ts). A rotation is ONE prepared UPDATE of that row, which
// only matches while the presented generation is the current one: two concurrent rotations of one token queue on
// the row lock and the second no longer matches (Postgres re-checks the row after the lock), so exactly one
// rotates. Any older generation of a valid chain is reuse (RFC 9700 section 4.14.2) and revokes the session,
// except the just-rotated predecessor within REFRESH_GRACE_PERIOD while its successor is unused (two tabs
// refreshing at once): it is answered with that same successor, and nothing is revoked.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { recordAudit } from '../audit.js';
import type { Config } from '../config.js';
import { AppError, invalidGrant } from '../errors.js';
import type { Database } from '../storage/schema.js';
import type { Storage } from '../storage/db.js';
import { preparedQuery } from '../storage/prepared.js';
import type { RefreshTokenCodec, RefreshTokenClaims } from './refresh-token.js';
import type { TokenService } from './tokens.js';

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
  /** an OP client's grant: what its access token carries */
  grant?: GrantClaims;
}

/** What a token needs of its user. */
export interface TokenUser {
  id: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  roles: string[];
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

/** A session a login opens, with where it came from. */
export interface NewSession {
  id: string;
  userId: string;
  provider: string | null;
  ip: string | null;
  userAgent: string | null;
  expiresAt: Date;
  idleExpiresAt: Date;
}

/** The columns a new session row is written with (by open() and by the login's one statement). */
export const NEW_SESSION_COLUMNS = [
  'id',
  'user_id',
  'provider',
  'user_agent',
  'ip',
  'created_at',
  'auth_time',
  'last_used_at',
  'idle_expires_at',
  'expires_at',
] as const;

export function newSessionRow(s: NewSession, now: Date): Record<(typeof NEW_SESSION_COLUMNS)[number], string | Date | null> {
  return {
    id: s.id,
    user_id: s.userId,
    provider: s.provider,
    user_agent: s.userAgent?.slice(0, 512) ?? null,
    ip: s.ip,
    created_at: now,
    auth_time: now,
    last_used_at: now,
    idle_expires_at: s.idleExpiresAt,
    expires_at: s.expiresAt,
  };
}

/** What an OP client's grant puts in its access tokens. */
export interface GrantClaims {
  clientId: string;
  scope: string;
  /** the aud of its access tokens; empty: ACCESS_TOKEN_AUDIENCE */
  audience: string[];
}

/** What one refresh of an OP grant's tokens asks for instead of the whole grant (never more than it). */
export interface GrantNarrowing {
  scope?: string;
  audience?: string[];
}

export type RefreshOutcome = 'ok' | 'grace' | 'reuse' | 'expired' | 'revoked' | 'invalid' | 'disabled';

interface RotatedRow {
  user_id: string;
  auth_time: Date;
  refresh_gen: number;
  idle_expires_at: Date;
  client_id: string | null;
  scope: string | null;
  audience: string[] | null;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  roles: string[];
}

const MESSAGES: Record<Exclude<RefreshOutcome, 'ok' | 'grace'>, string> = {
  invalid: 'The refresh token is invalid.',
  reuse: 'The refresh token was already used; the session has been revoked.',
  revoked: 'The session has been revoked.',
  expired: 'The session has expired.',
  disabled: 'The user is disabled.',
};

export interface SessionServiceDeps {
  storage: Storage;
  tokens: TokenService;
  codec: RefreshTokenCodec;
  config: Pick<Config, 'refreshTokenTtl' | 'sessionMaxAge' | 'refreshGracePeriod'>;
  now: () => Date;
  log: FastifyBaseLogger;
  /** told every refresh outcome (metrics) */
  onRefresh?: (outcome: RefreshOutcome) => void;
}

/** A session a refresh token proves, for linking: its current token, live. */
export interface CurrentSession {
  sessionId: string;
  userId: string;
  provider: string | null;
  authTime: Date;
}

/**
 * The rotation, one prepared statement: it matches only a live session of an active user whose current
 * generation is the presented one, moves it to the next generation and extends its idle expiry.
 */
const rotation = (db: Kysely<Database>) =>
  preparedQuery<'sid' | 'gen' | 'now' | 'idle' | 'client', RotatedRow>('gw_rotate_refresh', (slot) =>
    db
      .updateTable('sessions as s')
      .from('users as u')
      .set((eb) => ({
        refresh_gen: eb('s.refresh_gen', '+', 1),
        rotated_at: slot('now'),
        last_used_at: slot('now'),
        idle_expires_at: eb.fn<Date>('least', [sql`${slot('idle')}::timestamptz`, eb.ref('s.expires_at')]),
      }))
      .whereRef('u.id', '=', 's.user_id')
      .where('s.id', '=', slot('sid'))
      .where('s.refresh_gen', '=', slot('gen'))
      // a family is used only by whom it was issued to: '' is the gateway's own browser session
      .where(sql<string>`coalesce(s.client_id, '')`, '=', slot('client'))
      .where('s.revoked_at', 'is', null)
      .where('s.expires_at', '>', slot('now'))
      .where('s.idle_expires_at', '>', slot('now'))
      .where('u.status', '=', 'active')
      .returning([
        's.user_id',
        's.auth_time',
        's.refresh_gen',
        's.idle_expires_at',
        's.client_id',
        's.scope',
        's.audience',
        'u.email',
        'u.email_verified',
        'u.name',
        'u.roles',
      ]),
  );

export class SessionService {
  readonly #db: Kysely<Database>;
  readonly #rotate: ReturnType<typeof rotation>;

  constructor(private readonly deps: SessionServiceDeps) {
    this.#db = deps.storage.db;
    this.#rotate = rotation(this.#db);
  }

  /** Opens a session for an active user and issues its first tokens, in one statement. */
  async open(userId: string, meta: ClientMeta & { provider?: string | null }, db: Kysely<Database> = this.#db): Promise<IssuedTokens> {
    const now = this.deps.now();
    const sessionId = randomUUID();
    const { expiresAt, idleExpiresAt } = this.lifetimes(now);
    const row = newSessionRow(
      {
        id: sessionId,
        userId,
        provider: meta.provider ?? null,
        ip: meta.ip ?? null,
        userAgent: meta.userAgent ?? null,
        expiresAt,
        idleExpiresAt,
      },
      now,
    );
    const user = await db
      .with('s', (q) =>
        q
          .insertInto('sessions')
          .columns(NEW_SESSION_COLUMNS)
          .expression((eb) =>
            eb
              .selectFrom('users')
              .select((e) => NEW_SESSION_COLUMNS.map((c) => e.val(row[c]).as(c)))
              .where('id', '=', userId)
              .where('status', '=', 'active'),
          )
          .returning('user_id'),
      )
      .selectFrom('s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['u.id', 'u.email', 'u.email_verified', 'u.name', 'u.roles'])
      .executeTakeFirst();
    if (!user) throw invalidGrant('The user is disabled.');
    return this.issue({ user, sessionId, authTime: now, generation: 0, idleExpiresAt, now });
  }

  /**
   * Opens an OP client's grant from a browser session (an authorization code's redemption), in one statement:
   * only while that session is live and its user active. The grant is a refresh family of its own, bound to the
   * client, and ends with the browser session. Returns undefined when the session or user is gone.
   */
  async openGrant(
    g: {
      parentSessionId: string;
      userId: string;
      clientId: string;
      scope: string;
      audience: string[];
      authTime: Date;
      meta: ClientMeta;
      /** the authorization code redeemed: it remembers the grant, so a second redemption can revoke it */
      codeHash: string;
    },
    now: Date,
  ): Promise<{ grantId: string; idleExpiresAt: Date; user: TokenUser & { picture: string | null } } | undefined> {
    const grantId = randomUUID();
    const { expiresAt, idleExpiresAt } = this.lifetimes(now);
    const user = await this.#db
      .with('g', (q) =>
        q
          .insertInto('sessions')
          .columns([...NEW_SESSION_COLUMNS, 'client_id', 'parent_id', 'scope', 'audience'])
          .expression((eb) =>
            eb
              .selectFrom('sessions as p')
              .innerJoin('users as u', 'u.id', 'p.user_id')
              .select((e) => [
                e.val(grantId).as('id'),
                'p.user_id',
                'p.provider',
                e.val(g.meta.userAgent?.slice(0, 512) ?? null).as('user_agent'),
                e.val(g.meta.ip ?? null).as('ip'),
                e.val(now).as('created_at'),
                e.val(g.authTime).as('auth_time'),
                e.val(now).as('last_used_at'),
                e.val(idleExpiresAt).as('idle_expires_at'),
                e.val(expiresAt).as('expires_at'),
                e.val(g.clientId).as('client_id'),
                'p.id as parent_id',
                e.val(g.scope).as('scope'),
                sql<string[]>`${g.audience}::text[]`.as('audience'),
              ])
              .where('p.id', '=', g.parentSessionId)
              .where('p.user_id', '=', g.userId)
              .where('p.revoked_at', 'is', null)
              .where('p.expires_at', '>', now)
              .where('p.idle_expires_at', '>', now)
              .where('u.status', '=', 'active'),
          )
          .returning(['id', 'user_id']),
      )
      .with('c', (q) =>
        q
          .updateTable('authorization_codes')
          .set((eb) => ({ grant_id: eb.selectFrom('g').select('g.id') }))
          .where('code_hash', '=', g.codeHash)
          .where((w) => w.exists(w.selectFrom('g').select('g.id'))),
      )
      .selectFrom('g')
      .innerJoin('users as u', 'u.id', 'g.user_id')
      .select(['u.id', 'u.email', 'u.email_verified', 'u.name', 'u.roles', 'u.picture'])
      .executeTakeFirst();
    return user ? { grantId, idleExpiresAt, user } : undefined;
  }

  /** The absolute and the first idle expiry of a session opened now. */
  lifetimes(now: Date): { expiresAt: Date; idleExpiresAt: Date } {
    const expiresAt = new Date(now.getTime() + this.deps.config.sessionMaxAge * 1000);
    // idle expiry, never past the absolute session lifetime
    const idleExpiresAt = new Date(Math.min(now.getTime() + this.deps.config.refreshTokenTtl * 1000, expiresAt.getTime()));
    return { expiresAt, idleExpiresAt };
  }

  /**
   * Rotates a refresh token: the hot path is one prepared statement; refusals are explained (and reuse revokes).
   * `clientId`: the OP client presenting it (a grant's token is refused to anyone else), or null for the
   * gateway's own browser sessions.
   */
  async refresh(
    token: string,
    meta: ClientMeta,
    clientId: string | null = null,
    /** an OP grant's refresh asking for less (RFC 6749 section 6, RFC 8707 section 2.2), checked by the caller */
    narrow?: GrantNarrowing,
  ): Promise<IssuedTokens> {
    const claims = this.deps.codec.parse(token);
    if (!claims) return this.#refuse('invalid');
    const now = this.deps.now();
    const idleExpiry = new Date(now.getTime() + this.deps.config.refreshTokenTtl * 1000);
    const [row] = await this.#rotate.run(this.deps.storage, {
      sid: claims.sessionId,
      gen: claims.generation,
      now,
      idle: idleExpiry,
      client: clientId ?? '',
    });
    if (row) {
      this.deps.onRefresh?.('ok');
      return this.#issueCurrent(claims.sessionId, row, now, narrow);
    }
    return this.#explainRefusal(claims, now, meta, clientId, narrow);
  }

  /** The slow path: why was nothing rotated? A grace answer, or a refusal (reuse revokes the session). */
  async #explainRefusal(
    claims: RefreshTokenClaims,
    now: Date,
    meta: ClientMeta,
    clientId: string | null,
    narrow: GrantNarrowing | undefined,
  ): Promise<IssuedTokens> {
    const result = await this.#db.transaction().execute(async (trx) => {
      const row = await this.#lockSession(trx, claims.sessionId);
      // another client's token (or a browser session's at the token endpoint) is not this caller's to use
      if (!row || claims.generation > row.refresh_gen || row.client_id !== clientId) return { outcome: 'invalid' as const };
      if (row.revoked_at) return { outcome: 'revoked' as const };
      if (row.expires_at <= now || row.idle_expires_at <= now) return { outcome: 'expired' as const };
      if (row.status !== 'active') return { outcome: 'disabled' as const };
      if (this.#inGrace(claims, row, now)) return { outcome: 'grace' as const, row };
      if (claims.generation < row.refresh_gen) {
        await this.#revokeReused(trx, row, now, meta);
        return { outcome: 'reuse' as const, row };
      }
      // current and live a moment ago, but not rotated: a concurrent change (e.g. the user was just re-enabled)
      return { outcome: 'invalid' as const };
    });
    if (result.outcome !== 'grace') return this.#refuse(result.outcome);
    this.deps.onRefresh?.('grace');
    return this.#issueCurrent(claims.sessionId, result.row, now, narrow);
  }

  /** The tokens of a session's current generation, from its row joined with its user. */
  #issueCurrent(sessionId: string, row: RotatedRow, now: Date, narrow?: GrantNarrowing): IssuedTokens {
    return this.issue({
      user: { id: row.user_id, email: row.email, email_verified: row.email_verified, name: row.name, roles: row.roles },
      sessionId,
      authTime: row.auth_time,
      generation: row.refresh_gen,
      idleExpiresAt: row.idle_expires_at,
      now,
      ...(row.client_id
        ? {
            grant: {
              clientId: row.client_id,
              scope: narrow?.scope ?? row.scope ?? '',
              audience: narrow?.audience ?? row.audience ?? [],
            },
          }
        : {}),
    });
  }

  /** The predecessor of the current token, presented again within the grace period: its successor is unused. */
  #inGrace(claims: RefreshTokenClaims, row: { refresh_gen: number; rotated_at: Date | null }, now: Date): boolean {
    const grace = this.deps.config.refreshGracePeriod * 1000;
    return (
      grace > 0 && claims.generation === row.refresh_gen - 1 && row.rotated_at !== null && now.getTime() - row.rotated_at.getTime() <= grace
    );
  }

  #lockSession(trx: Kysely<Database>, sessionId: string) {
    return trx
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select([
        's.id',
        's.user_id',
        's.provider',
        's.refresh_gen',
        's.rotated_at',
        's.revoked_at',
        's.expires_at',
        's.idle_expires_at',
        's.auth_time',
        's.client_id',
        's.scope',
        's.audience',
        'u.status',
        'u.email',
        'u.email_verified',
        'u.name',
        'u.roles',
      ])
      .where('s.id', '=', sessionId)
      .forUpdate('s')
      .executeTakeFirst();
  }

  /** RFC 9700 section 4.14.2: a rotated token came back, so someone holds a copy: the session ends. */
  async #revokeReused(trx: Kysely<Database>, row: { id: string; user_id: string }, now: Date, meta: ClientMeta): Promise<void> {
    await this.#revokeIn(trx, row.id, 'refresh_reuse', now);
    await recordAudit(trx, {
      type: 'refresh.reuse_detected',
      outcome: 'failure',
      reason: 'refresh_token_reused',
      userId: row.user_id,
      sessionId: row.id,
      actor: 'system',
      ip: meta.ip,
      at: now,
    });
    this.deps.log.warn({ sessionId: row.id, userId: row.user_id }, 'refresh token reuse detected: session revoked');
  }

  #refuse(outcome: Exclude<RefreshOutcome, 'ok' | 'grace'>): never {
    this.deps.onRefresh?.(outcome);
    throw invalidGrant(MESSAGES[outcome]);
  }

  /**
   * The live session whose CURRENT refresh token this is, for linking an identity to it. An older token of the
   * chain is reuse (the session is revoked, as on refresh); the just-rotated predecessor within the grace period
   * is refused without revoking (or, with allowGrace, accepted: single sign-on only reads the session). Throws
   * 401 login_required otherwise.
   */
  async current(token: string | undefined, meta: ClientMeta, options: { allowGrace?: boolean } = {}): Promise<CurrentSession> {
    const claims = this.deps.codec.parse(token);
    const refused = (why: string) => new AppError('login_required', 401, why);
    if (!claims) throw refused('Linking an identity needs a signed-in session.');
    const now = this.deps.now();
    const result = await this.#db.transaction().execute(async (trx) => {
      const row = await this.#lockSession(trx, claims.sessionId);
      if (!row || row.client_id !== null || claims.generation > row.refresh_gen || row.revoked_at) return 'gone' as const;
      if (row.expires_at <= now || row.idle_expires_at <= now || row.status !== 'active') return 'gone' as const;
      if (claims.generation === row.refresh_gen) return row;
      // the just-rotated predecessor: the browser is refreshing in another tab at this very moment
      if (this.#inGrace(claims, row, now)) return options.allowGrace ? row : ('stale' as const);
      await this.#revokeReused(trx, row, now, meta);
      return 'reuse' as const;
    });
    if (result === 'gone') throw refused('Linking an identity needs a signed-in session.');
    if (result === 'stale') throw refused('The session was refreshed meanwhile; try again.');
    if (result === 'reuse') {
      this.deps.onRefresh?.('reuse');
      throw refused('The refresh token was already used; the session has been revoked.');
    }
    return { sessionId: result.id, userId: result.user_id, provider: result.provider, authTime: result.auth_time };
  }

  /** Revokes a session. Returns false when it was not active. */
  async revoke(
    sessionId: string,
    e: { reason: string; actor: string; ip?: string | null; auditType?: 'logout' | 'session.revoked' },
    db: Kysely<Database> = this.#db,
  ): Promise<boolean> {
    const now = this.deps.now();
    const run = async (trx: Kysely<Database>) => {
      const session = await this.#revokeIn(trx, sessionId, e.reason, now);
      if (!session) return false;
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
    db: Kysely<Database> = this.#db,
  ): Promise<number> {
    const sessions = await db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    let n = 0;
    for (const s of sessions) if (await this.revoke(s.id, e, db)) n++;
    return n;
  }

  /**
   * Ends a session: its refresh tokens, every generation, stop working with it, and so do the OP grants that
   * came from it (a browser session's logout ends every app's grant made from it).
   */
  async #revokeIn(trx: Kysely<Database>, sessionId: string, reason: string, now: Date) {
    const rows = await trx
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where((eb) => eb.or([eb('id', '=', sessionId), eb('parent_id', '=', sessionId)]))
      .where('revoked_at', 'is', null)
      .returning(['id', 'user_id'])
      .execute();
    return rows.find((r) => r.id === sessionId);
  }

  /** The access token and the refresh token of `generation` for a session (or an OP client's grant). */
  issue(p: {
    user: TokenUser;
    sessionId: string;
    authTime: Date;
    generation: number;
    idleExpiresAt: Date;
    now: Date;
    grant?: GrantClaims;
  }): IssuedTokens {
    const access = this.deps.tokens.signAccess({
      userId: p.user.id,
      sessionId: p.sessionId,
      authTime: p.authTime,
      email: p.user.email,
      emailVerified: p.user.email_verified,
      name: p.user.name,
      roles: p.user.roles,
      ...(p.grant ? { grant: p.grant } : {}),
    });
    return {
      sessionId: p.sessionId,
      userId: p.user.id,
      accessToken: access.token,
      expiresIn: access.expiresIn,
      ...this.issueRefresh(p),
      ...(p.grant ? { grant: p.grant } : {}),
    };
  }

  /**
   * The refresh token of `generation` alone, for a caller that hands out no access token (the login callback
   * sets the session cookie and redirects; the frontend refreshes for its first access token).
   */
  issueRefresh(p: { sessionId: string; generation: number; idleExpiresAt: Date; now: Date }): {
    refreshToken: string;
    refreshExpiresIn: number;
  } {
    return {
      refreshToken: this.deps.codec.mint(p.sessionId, p.generation),
      refreshExpiresIn: Math.floor((p.idleExpiresAt.getTime() - p.now.getTime()) / 1000),
    };
  }
}
