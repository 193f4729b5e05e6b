// Admin: users, their identities and sessions. One function per route (or pair of routes on one path); the
// queries and the last-admin rule are in user-store.ts.
import { type Static, Type } from '@sinclair/typebox';
import type { App } from '../context.js';
import { recordAudit } from '../audit.js';
import { conflict, notFound } from '../errors.js';
import { perMinute } from '../http/rate-limit.js';
import { ErrorBody } from '../schemas.js';
import { AdminUserStore, type UserRow } from './user-store.js';
import { AdminSession, AdminUser, adminErrors, CursorParam, Limit, Role, UserDetail, Uuid } from './schemas.js';

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

/** What every route here shares. */
interface Deps {
  app: App;
  users: AdminUserStore;
  /** route options: the admin rate limit */
  limited: { config: ReturnType<typeof perMinute> };
}

export async function userRoutes(app: App): Promise<void> {
  const deps: Deps = {
    app,
    users: new AdminUserStore(app.ctx.storage.db, app.ctx.now),
    limited: { config: perMinute(app.ctx.config.rateLimits.admin) },
  };
  listUsersRoute(deps);
  getUserRoute(deps);
  patchUserRoute(deps);
  deleteUserRoute(deps);
  unlinkIdentityRoute(deps);
  userSessionsRoutes(deps);
  revokeSessionRoute(deps);
}

function listUsersRoute({ app, users, limited }: Deps): void {
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
    async (request) => users.list(request.query),
  );
}

function getUserRoute({ app, users, limited }: Deps): void {
  app.get(
    '/admin/users/:id',
    { ...limited, schema: { params: IdParams, response: { 200: UserDetail, ...adminErrors, 404: ErrorBody } } },
    async (request) => users.detail(request.params.id),
  );
}

type Changes = Record<string, { from: unknown; to: unknown }>;

/** The fields the patch really changes, with their values before and after. */
function changesOf(user: UserRow, patch: Static<typeof Patch>): Changes {
  const changes: Changes = {};
  if (patch.status !== undefined && patch.status !== user.status) changes.status = { from: user.status, to: patch.status };
  if (patch.roles !== undefined && !sameSet(patch.roles, user.roles)) changes.roles = { from: user.roles, to: patch.roles };
  if (patch.name !== undefined && patch.name !== user.name) changes.name = { from: user.name, to: patch.name };
  return changes;
}

function patchUserRoute({ app, users, limited }: Deps): void {
  const { storage, sessions, config } = app.ctx;
  app.patch(
    '/admin/users/:id',
    {
      ...limited,
      schema: { params: IdParams, body: Patch, response: { 200: UserDetail, ...adminErrors, 404: ErrorBody, 409: ErrorBody } },
    },
    async (request) => {
      const { id } = request.params;
      const patch = { ...request.body, ...(request.body.name === '' ? { name: null } : {}) };
      const actor = request.adminActor;
      await storage.db.transaction().execute(async (trx) => {
        if (patch.status !== undefined || patch.roles !== undefined) await users.lockAdminSet(trx);
        const user = await users.require(id, trx, true);
        const changes = changesOf(user, patch);
        if (Object.keys(changes).length === 0) return;
        if (!config.adminToken)
          await users.keepAnAdmin(trx, user, { status: patch.status ?? user.status, roles: patch.roles ?? user.roles });
        const now = app.ctx.now();
        await trx
          .updateTable('users')
          .set({
            ...(changes.status ? { status: patch.status } : {}),
            ...(changes.roles ? { roles: patch.roles } : {}),
            ...(changes.name ? { name: patch.name } : {}),
            updated_at: now,
          })
          .where('id', '=', id)
          .execute();
        // a disabled user loses every session in the same transaction: its refresh tokens stop working at once
        const revoked =
          changes.status && patch.status === 'disabled'
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
      return users.detail(id);
    },
  );
}

function deleteUserRoute({ app, users, limited }: Deps): void {
  const { storage, config } = app.ctx;
  app.delete(
    '/admin/users/:id',
    { ...limited, schema: { params: IdParams, response: { 204: Type.Null(), ...adminErrors, 404: ErrorBody, 409: ErrorBody } } },
    async (request, reply) => {
      const { id } = request.params;
      await storage.db.transaction().execute(async (trx) => {
        await users.lockAdminSet(trx);
        const user = await users.require(id, trx, true);
        if (!config.adminToken) await users.keepAnAdmin(trx, user, 'deleted');
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
}

function unlinkIdentityRoute({ app, users, limited }: Deps): void {
  const { storage } = app.ctx;
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
      await storage.db.transaction().execute(async (trx) => {
        // the user's row lock serialises concurrent unlinks, so two of them cannot remove the last two at once
        await users.require(id, trx, true);
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
}

function userSessionsRoutes({ app, users, limited }: Deps): void {
  const { storage, sessions } = app.ctx;
  app.get(
    '/admin/users/:id/sessions',
    {
      ...limited,
      schema: { params: IdParams, response: { 200: Type.Object({ sessions: Type.Array(AdminSession) }), ...adminErrors, 404: ErrorBody } },
    },
    async (request) => {
      await users.require(request.params.id);
      return { sessions: await users.liveSessions(request.params.id) };
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
      const revoked = await storage.db.transaction().execute(async (trx) => {
        await users.require(id, trx, true);
        return sessions.revokeAllForUser(id, { reason: 'admin_revoked', actor: request.adminActor, ip: request.ip }, trx);
      });
      return { revoked };
    },
  );
}

function revokeSessionRoute({ app, limited }: Deps): void {
  const { storage, sessions } = app.ctx;
  app.delete(
    '/admin/sessions/:id',
    { ...limited, schema: { params: IdParams, response: { 204: Type.Null(), ...adminErrors, 404: ErrorBody } } },
    async (request, reply) => {
      const { id } = request.params;
      const known = await storage.db.selectFrom('sessions').select('id').where('id', '=', id).executeTakeFirst();
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
