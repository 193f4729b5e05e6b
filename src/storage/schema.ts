// Kysely table types; they mirror migrations/*.sql.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Json = ColumnType<Record<string, unknown>, string | undefined, string>;

export interface UsersTable {
  id: string;
  email: string | null;
  email_verified: Generated<boolean>;
  name: string | null;
  picture: string | null;
  roles: Generated<string[]>;
  status: Generated<'active' | 'disabled'>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IdentitiesTable {
  id: string;
  user_id: string;
  provider: string;
  subject: string;
  email: string | null;
  email_verified: Generated<boolean>;
  name: string | null;
  picture: string | null;
  raw_claims: Json;
  created_at: Timestamp;
  last_login_at: Timestamp;
}

export interface LoginFlowsTable {
  state_hash: string;
  provider: string;
  browser_binding: string;
  nonce: string | null;
  code_verifier: string;
  return_to: string;
  link_user_id: string | null;
  purpose: Generated<'login' | 'link' | 'reauth'>;
  /** link and reauth: the session the flow acts for */
  session_id: string | null;
  /** reauth: where the browser continues after a successful re-authentication */
  next_url: string | null;
  prompt: 'login' | 'none' | 'select_account' | null;
  max_age: number | null;
  created_at: Timestamp;
  expires_at: ColumnType<Date, Date | string, Date | string>;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  provider: string | null;
  user_agent: string | null;
  ip: string | null;
  created_at: Timestamp;
  last_used_at: Timestamp;
  idle_expires_at: ColumnType<Date, Date | string, Date | string>;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  revoked_at: NullableTimestamp;
  revoked_reason: string | null;
  /** the generation of the session's current refresh token; every rotation adds one */
  refresh_gen: Generated<number>;
  /** when the current generation was issued (null: never rotated) */
  rotated_at: NullableTimestamp;
  /** when the user last authenticated upstream for this session */
  auth_time: Timestamp;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  state: 'next' | 'active' | 'retired';
  public_jwk: Json;
  private_jwk_enc: string;
  created_at: Timestamp;
  publish_at: Timestamp;
  activate_at: ColumnType<Date, Date | string, Date | string>;
  activated_at: NullableTimestamp;
  retired_at: NullableTimestamp;
  remove_at: NullableTimestamp;
}

export interface AuditEventsTable {
  id: string;
  created_at: Timestamp;
  type: string;
  outcome: Generated<'success' | 'failure'>;
  reason: string | null;
  user_id: string | null;
  session_id: string | null;
  provider: string | null;
  actor: string | null;
  ip: string | null;
  details: Json;
}

export interface Database {
  users: UsersTable;
  identities: IdentitiesTable;
  login_flows: LoginFlowsTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type Identity = Selectable<IdentitiesTable>;
export type LoginFlow = Selectable<LoginFlowsTable>;
export type Session = Selectable<SessionsTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type AuditEvent = Selectable<AuditEventsTable>;
