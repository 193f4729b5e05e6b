// Request and response shapes of the admin API (mirrored in openapi.yaml).
import { type TSchema, Type } from '@sinclair/typebox';
import { ErrorBody } from '../schemas.js';

/** A UUID exactly as Postgres stores it (ajv's "uuid" format would also let "urn:uuid:…" through). */
export const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  // the words of a validation message (src/http/validation.ts)
  description: 'a UUID such as 6f1c2d3e-0000-4000-8000-000000000000',
});
export const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 50 });
export const CursorParam = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' });
export const Role = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });

export const AdminUser = Type.Object({
  id: Type.String(),
  email: Nullable(Type.String()),
  email_verified: Type.Boolean(),
  name: Nullable(Type.String()),
  picture: Nullable(Type.String()),
  roles: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const AdminIdentity = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  subject: Type.String(),
  email: Nullable(Type.String()),
  email_verified: Type.Boolean(),
  name: Nullable(Type.String()),
  created_at: Timestamp,
  last_login_at: Timestamp,
});

export const AdminSession = Type.Object({
  id: Type.String(),
  /** an OpenID Provider client's grant: the client, and the browser session it came from */
  client_id: Nullable(Type.String()),
  parent_id: Nullable(Type.String()),
  scope: Nullable(Type.String()),
  provider: Nullable(Type.String()),
  user_agent: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  created_at: Timestamp,
  last_used_at: Timestamp,
  idle_expires_at: Timestamp,
  expires_at: Timestamp,
});

export const UserDetail = Type.Object({
  ...AdminUser.properties,
  identities: Type.Array(AdminIdentity),
  sessions: Type.Array(AdminSession),
});

export const SigningKeyInfo = Type.Object({
  kid: Type.String(),
  alg: Type.String(),
  state: Type.Union([Type.Literal('next'), Type.Literal('active'), Type.Literal('retired')]),
  created_at: Timestamp,
  publish_at: Timestamp,
  activate_at: Timestamp,
  activated_at: Nullable(Timestamp),
  retired_at: Nullable(Timestamp),
  remove_at: Nullable(Timestamp),
});

export const AuditEventBody = Type.Object({
  id: Type.String(),
  created_at: Timestamp,
  type: Type.String(),
  outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
  reason: Nullable(Type.String()),
  user_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  provider: Nullable(Type.String()),
  actor: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
});

/** The error answers every admin route can give, next to its own. */
export const adminErrors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody };

export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
