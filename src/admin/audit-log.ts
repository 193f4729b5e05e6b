// Admin: the audit log, newest first.
import { Type } from '@sinclair/typebox';
import type { App } from '../context.js';
import { invalidRequest } from '../errors.js';
import { perMinute } from '../http/rate-limit.js';
import { afterCursor, cursorTime, decodeCursor, keysetPage } from './cursor.js';
import { AuditEventBody, adminErrors, CursorParam, iso, Limit, Timestamp, Uuid } from './schemas.js';

const Query = Type.Object(
  {
    user_id: Type.Optional(Uuid),
    type: Type.Optional(Type.String({ pattern: '^[a-z][a-z_.]*$', maxLength: 64 })),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(CursorParam),
  },
  { additionalProperties: false },
);

const date = (name: string, value: string | undefined): Date | undefined => {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw invalidRequest(`${name} is not a valid date-time.`);
  return d;
};

export async function auditRoutes(app: App): Promise<void> {
  const { config, storage } = app.ctx;

  app.get(
    '/admin/audit',
    {
      config: perMinute(config.rateLimits.admin),
      schema: {
        querystring: Query,
        response: {
          200: Type.Object({ events: Type.Array(AuditEventBody), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const { user_id: userId, type, outcome, cursor } = request.query;
      const since = date('since', request.query.since);
      const until = date('until', request.query.until);
      const limit = request.query.limit ?? 50;
      const before = cursor ? decodeCursor(cursor) : undefined;
      let query = storage.db.selectFrom('audit_events').selectAll().select(cursorTime('audit_events.created_at').as('cursor_at'));
      if (userId) query = query.where('user_id', '=', userId);
      if (type) query = query.where('type', '=', type);
      if (outcome) query = query.where('outcome', '=', outcome);
      // since inclusive, until exclusive
      if (since) query = query.where('created_at', '>=', since);
      if (until) query = query.where('created_at', '<', until);
      if (before) query = query.where(afterCursor('audit_events', before, 'desc'));
      const rows = await query
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .execute();
      const { items, next_cursor } = keysetPage(rows, limit, (e) => ({ ...e, created_at: iso(e.created_at) }));
      return { events: items, next_cursor };
    },
  );
}
