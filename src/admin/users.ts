// Admin: users, their identities and sessions.
import { Type } from '@sinclair/typebox';
import { type Kysely, sql } from 'kysely';
import type { App } from '../context.js';
import { recordAudit } from '../audit.js';
import { conflict, notFound } from '../errors.js';
import { perMinute } from '../http/rate-limit.js';
import { ErrorBody } from '../schemas.js';
import type { Database, Identity, Session, User } from '../storage/schema.js';
import { afterCursor, cursorTime, decodeCursor, encodeCursor } from './cursor.js';
import { AdminSession, AdminUser, adminErrors, CursorParam, iso, Limit, Role, UserDetail, Uuid } from './schemas.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });
const ListQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
    provider: Type.Optional(Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 64 })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(CursorParam),
  },
  { additionalProperties: false },
);
const Patch = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
    roles: Type.Optional(Type.Array(Role, { maxItems: 32, uniqueItems: true })),
    // null or "" clears the name (as documented); nothing is coerced, so "" is turned into null by the route
    name: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const USER_COLUMNS = ['id', 'email', 'email_verified', 'name', 'picture', 'roles', 'status', 'created_at', 'updated_at'] as const;
const SESSION_COLUMNS = ['id', 'provider', 'user_agent', 'ip', 'created_at', 'last_used_at', 'idle_expires_at', 'expires_at'] as const;

type UserRow = Pick<User, (typeof USER_COLUMNS)[number]>;
type SessionRow = Pick<Session, (typeof SESSION_COLUMNS)[number]>;

const userBody = (u: UserRow) => ({ ...u, created_at: iso(u.created_at), updated_at: iso(u.updated_at) });
const sessionBody = (s: SessionRow) => ({
  ...s,
  created_at: iso(s.created_at),
  last_used_at: iso(s.last_used_at),
  idle_expires_at: iso(s.idle_expires_at),
  expires_at: iso(s.expires_at),
});
const identityBody = (
  i: Pick<Identity, 'id' | 'provider' | 'subject' | 'email' | 'email_verified' | 'name' | 'created_at' | 'last_login_at'>,
) => ({
  ...i,
  created_at: iso(i.created_at),
  last_login_at: iso(i.last_login_at),
});

/** A LIKE pattern for "starts with q"; backslash is LIKE's default escape character. */
const prefixPattern = (q: string) => `${q.replace(/[\\%_]/g, '\\$&')}%`;

export async function userRoutes(app: App): Promise<void> {
  const { config, storage, sessions } = app.ctx;
  const db = storage.db;
  const limited = { config: perMinute(config.rateLimits.admin) };

  /** Live sessions only: not revoked, not past either expiry. */
  const activeSessions = (userId: string, now: Date) =>
    db
      .selectFrom('sessions')
      .select(SESSION_COLUMNS)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .where('idle_expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();

  const requireUser = async (id: string, trx: Kysely<Database> = db, lock = false) => {
    let query = trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', id);
    if (lock) query = query.forUpdate();
    const user = await query.executeTakeFirst();
    if (!user) throw notFound('No such user.');
    return user;
  };

  const detail = async (id: string) => {
    const user = await requireUser(id);
    const [identities, live] = await Promise.all([
      db
        .selectFrom('identities')
        .select(['id', 'provider', 'subject', 'email', 'email_verified', 'name', 'created_at', 'last_login_at'])
        .where('user_id', '=', id)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
      activeSessions(id, app.ctx.now()),
    ]);
    return { ...userBody(user), identities: identities.map(identityBody), sessions: live.map(sessionBody) };
  };

  app.get(
    '/admin/users',
    {
      ...limited,
      schema: {
        querystring: ListQuery,
        response: {
          200: Type.Object({ users: Type.Array(AdminUser), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const { q, status, provider, cursor } = request.query;
      const limit = request.query.limit ?? 50;
      const after = cursor ? decodeCursor(cursor) : undefined;
      let query = db.selectFrom('users').select([...USER_COLUMNS, cursorTime('users.created_at').as('cursor_at')]);
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
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        users: page.map(({ cursor_at: _, ...u }) => userBody(u)),
        next_cursor: rows.length > limit ? encodeCursor({ at: last.cursor_at, id: last.id }) : null,
      };
    },
  );

  app.get(
    '/admin/users/:id',
    { ...limited, schema: { params: IdParams, response: { 200: UserDetail, ...adminErrors, 404: ErrorBody } } },
    async (request) => detail(request.params.id),
  );

  app.patch(
    '/admin/users/:id',
    { ...limited, schema: { params: IdParams, body: Patch, response: { 200: UserDetail, ...adminErrors, 404: ErrorBody } } },
    async (request) => {
      const { id } = request.params;
      const body = { ...request.body, ...(request.body.name === '' ? { name: null } : {}) };
      await db.transaction().execute(async (trx) => {
        const user = await requireUser(id, trx, true);
        const changes: Record<string, { from: unknown; to: unknown }> = {};
        if (body.status !== undefined && body.status !== user.status) changes.status = { from: user.status, to: body.status };
        if (body.roles !== undefined && !sameSet(body.roles, user.roles)) changes.roles = { from: user.roles, to: body.roles };
        if (body.name !== undefined && body.name !== user.name) changes.name = { from: user.name, to: body.name };
        if (Object.keys(changes).length === 0) return;
        const now = app.ctx.now();
        await trx
          .updateTable('users')
          .set({
            ...(changes.status ? { status: body.status } : {}),
            ...(changes.roles ? { roles: body.roles } : {}),
            ...(changes.name ? { name: body.name } : {}),
            updated_at: now,
          })
          .where('id', '=', id)
          .execute();
        const actor = request.adminActor;
        // a disabled user loses every session in the same transaction: its refresh tokens stop working at once
        const revoked =
          body.status === 'disabled' && changes.status
            ? await sessions.revokeAllForUser(id, { reason: 'user_disabled', actor, ip: request.ip }, trx)
            : 0;
        await recordAudit(trx, {
          type: 'user.updated',
          userId: id,
          actor,
          ip: request.ip,
          details: { changes, ...(revoked ? { sessions_revoked: revoked } : {}) },
          at: now,
        });
      });
      return detail(id);
    },
  );

  app.delete(
    '/admin/users/:id',
    { ...limited, schema: { params: IdParams, response: { 204: Type.Null(), ...adminErrors, 404: ErrorBody } } },
    async (request, reply) => {
      const { id } = request.params;
      await db.transaction().execute(async (trx) => {
        await requireUser(id, trx, true);
        const [{ identities }] = await trx
          .selectFrom('identities')
          .select((eb) => eb.fn.countAll<string>().as('identities'))
          .where('user_id', '=', id)
          .execute();
        // identities, sessions, refresh tokens and login flows go with the user (ON DELETE CASCADE)
        await trx.deleteFrom('users').where('id', '=', id).execute();
        // no email or name here: the audit log outlives the user it no longer names
        await recordAudit(trx, {
          type: 'user.deleted',
          userId: id,
          actor: request.adminActor,
          ip: request.ip,
          details: { identities: Number(identities) },
          at: app.ctx.now(),
        });
      });
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/admin/users/:id/identities/:identityId',
    {
      ...limited,
      schema: {
        params: Type.Object({ id: Uuid, identityId: Uuid }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...adminErrors, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      const { id, identityId } = request.params;
      await db.transaction().execute(async (trx) => {
        // the user's row lock serialises concurrent unlinks, so two of them cannot remove the last two at once
        await requireUser(id, trx, true);
        const identities = await trx.selectFrom('identities').select(['id', 'provider', 'subject']).where('user_id', '=', id).execute();
        const identity = identities.find((i) => i.id === identityId);
        if (!identity) throw notFound('The user has no such identity.');
        if (identities.length === 1)
          throw conflict('This is the last identity of the user: the user could no longer log in. Delete the user instead.');
        await trx.deleteFrom('identities').where('id', '=', identityId).execute();
        await recordAudit(trx, {
          type: 'identity.unlinked',
          userId: id,
          provider: identity.provider,
          actor: request.adminActor,
          ip: request.ip,
          details: { identity_id: identity.id, subject: identity.subject },
          at: app.ctx.now(),
        });
      });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/admin/users/:id/sessions',
    {
      ...limited,
      schema: { params: IdParams, response: { 200: Type.Object({ sessions: Type.Array(AdminSession) }), ...adminErrors, 404: ErrorBody } },
    },
    async (request) => {
      await requireUser(request.params.id);
      return { sessions: (await activeSessions(request.params.id, app.ctx.now())).map(sessionBody) };
    },
  );

  app.delete(
    '/admin/users/:id/sessions',
    {
      ...limited,
      schema: { params: IdParams, response: { 200: Type.Object({ revoked: Type.Integer() }), ...adminErrors, 404: ErrorBody } },
    },
    async (request) => {
      const { id } = request.params;
      const revoked = await db.transaction().execute(async (trx) => {
        await requireUser(id, trx, true);
        return sessions.revokeAllForUser(id, { reason: 'admin_revoked', actor: request.adminActor, ip: request.ip }, trx);
      });
      return { revoked };
    },
  );

  app.delete(
    '/admin/sessions/:id',
    { ...limited, schema: { params: IdParams, response: { 204: Type.Null(), ...adminErrors, 404: ErrorBody } } },
    async (request, reply) => {
      const { id } = request.params;
      const known = await db.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst();
      if (!known) throw notFound('No such session.');
      // an already revoked or expired session stays as it is (no second audit event): the answer is the same
      await sessions.revoke(id, { reason: 'admin_revoked', actor: request.adminActor, ip: request.ip });
      return reply.code(204).send(null);
    },
  );
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
