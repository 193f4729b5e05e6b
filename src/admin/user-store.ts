// The admin API's reads and checks on users: lists, details, row locks, and the rule that keeps at least one
// active admin. Routes (users.ts) run them inside their own transactions.
import { type Kysely, sql } from 'kysely';
import { conflict, notFound } from '../errors.js';
import type { Database, Identity, Session, User } from '../storage/schema.js';
import { ADMIN_ROLE } from './auth.js';
import { afterCursor, cursorTime, decodeCursor, keysetPage } from './cursor.js';
import { iso } from './schemas.js';

const USER_COLUMNS = ['id', 'email', 'email_verified', 'name', 'picture', 'roles', 'status', 'created_at', 'updated_at'] as const;
const SESSION_COLUMNS = [
  'id',
  'client_id',
  'parent_id',
  'scope',
  'provider',
  'user_agent',
  'ip',
  'created_at',
  'last_used_at',
  'idle_expires_at',
  'expires_at',
] as const;
const IDENTITY_COLUMNS = ['id', 'provider', 'subject', 'email', 'email_verified', 'name', 'created_at', 'last_login_at'] as const;

export type UserRow = Pick<User, (typeof USER_COLUMNS)[number]>;
type SessionRow = Pick<Session, (typeof SESSION_COLUMNS)[number]>;
type IdentityRow = Pick<Identity, (typeof IDENTITY_COLUMNS)[number]>;

/** arbitrary constant: the advisory lock that serialises changes to who is an active admin */
const ADMIN_SET_LOCK = 0x6164_6d6e;

export const userBody = (u: UserRow) => ({ ...u, created_at: iso(u.created_at), updated_at: iso(u.updated_at) });
export const sessionBody = (s: SessionRow) => ({
  ...s,
  created_at: iso(s.created_at),
  last_used_at: iso(s.last_used_at),
  idle_expires_at: iso(s.idle_expires_at),
  expires_at: iso(s.expires_at),
});
const identityBody = (i: IdentityRow) => ({ ...i, created_at: iso(i.created_at), last_login_at: iso(i.last_login_at) });

/** A LIKE pattern for "starts with q"; backslash is LIKE's default escape character. */
const prefixPattern = (q: string) => `${q.replace(/[\\%_]/g, '\\$&')}%`;

export interface UserListQuery {
  q?: string;
  status?: 'active' | 'disabled';
  provider?: string;
  limit?: number;
  cursor?: string;
}

const isActiveAdmin = (u: Pick<User, 'status' | 'roles'>) => u.status === 'active' && u.roles.includes(ADMIN_ROLE);

export class AdminUserStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date,
  ) {}

  /** One page of users, oldest first, after the cursor. */
  async list({ q, status, provider, limit = 50, cursor }: UserListQuery) {
    const after = cursor ? decodeCursor(cursor) : undefined;
    let query = this.db.selectFrom('users').select([...USER_COLUMNS, cursorTime('users.created_at').as('cursor_at')]);
    if (q) {
      const pattern = prefixPattern(q);
      query = query.where((eb) =>
        eb.or([eb(sql`lower(email)`, 'like', sql`lower(${pattern})`), eb(sql`lower(name)`, 'like', sql`lower(${pattern})`)]),
      );
    }
    if (status) query = query.where('status', '=', status);
    if (provider) {
      query = query.where((eb) =>
        eb.exists(
          eb
            .selectFrom('identities as i')
            .select(sql`1`.as('one'))
            .whereRef('i.user_id', '=', 'users.id')
            .where('i.provider', '=', provider),
        ),
      );
    }
    if (after) query = query.where(afterCursor('users', after, 'asc'));
    const rows = await query
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const { items, next_cursor } = keysetPage(rows, limit, userBody);
    return { users: items, next_cursor };
  }

  /** The user, or 404; `lock` takes its row lock (inside a transaction) so concurrent changes queue. */
  async require(id: string, trx: Kysely<Database> = this.db, lock = false): Promise<UserRow> {
    let query = trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', id);
    if (lock) query = query.forUpdate();
    const user = await query.executeTakeFirst();
    if (!user) throw notFound('No such user.');
    return user;
  }

  /** Live sessions only: not revoked, not past either expiry; newest first. */
  async liveSessions(userId: string) {
    const now = this.now();
    const rows = await this.db
      .selectFrom('sessions')
      .select(SESSION_COLUMNS)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .where('idle_expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(sessionBody);
  }

  /** The user with its identities and live sessions. */
  async detail(id: string) {
    const user = await this.require(id);
    const [identities, sessions] = await Promise.all([
      this.db.selectFrom('identities').select(IDENTITY_COLUMNS).where('user_id', '=', id).orderBy('created_at').orderBy('id').execute(),
      this.liveSessions(id),
    ]);
    return { ...userBody(user), identities: identities.map(identityBody), sessions };
  }

  /**
   * Takes the lock every change of the set of active admins holds (first, before any row lock, so two changes
   * never wait on each other's rows): two admins removing each other at once are then checked one after the
   * other, and the second sees the first one's result.
   */
  async lockAdminSet(trx: Kysely<Database>): Promise<void> {
    await sql`select pg_advisory_xact_lock(${ADMIN_SET_LOCK})`.execute(trx);
  }

  /**
   * Refuses (409) a change after which `user` is no longer an active admin when no other active admin exists:
   * without ADMIN_TOKEN nobody could use the admin API any more. Call with lockAdminSet held.
   */
  async keepAnAdmin(trx: Kysely<Database>, user: UserRow, after: Pick<User, 'status' | 'roles'> | 'deleted'): Promise<void> {
    if (!isActiveAdmin(user) || (after !== 'deleted' && isActiveAdmin(after))) return;
    const other = await trx
      .selectFrom('users')
      .select('id')
      .where('id', '<>', user.id)
      .where('status', '=', 'active')
      .where(sql<boolean>`${ADMIN_ROLE} = any(roles)`)
      .limit(1)
      .executeTakeFirst();
    if (!other) {
      throw conflict('This change would leave no active admin: grant the role admin to another user first, or set ADMIN_TOKEN.');
    }
  }
}
