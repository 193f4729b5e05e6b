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
  /** OP grants: the client this session is a grant of (null: the gateway's own browser session) */
  client_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** OP grants: the browser session the grant came from; it ends with it */
  parent_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** OP grants: the granted scope */
  scope: ColumnType<string | null, string | null | undefined, string | null>;
  /** OP grants: the aud of its access tokens */
  audience: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
}

export interface ClientsTable {
  /** the client_id */
  id: string;
  /** 'file': a CLIENTS_FILE client; its row only anchors its grants (metadata and secret come from the file) */
  source: ColumnType<'api' | 'file', 'api' | 'file' | undefined, 'api' | 'file'>;
  client_name: string | null;
  /** "sha256:<base64url>"; null for public clients and for file clients */
  secret_hash: string | null;
  redirect_uris: Generated<string[]>;
  post_logout_redirect_uris: Generated<string[]>;
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: string;
  /** space-separated */
  scope: Generated<string>;
  audience: Generated<string[]>;
  id_token_signed_response_alg: Generated<string>;
  created_at: Timestamp;
  updated_at: Timestamp;
  secret_rotated_at: NullableTimestamp;
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

export interface AuthorizationRequestsTable {
  id_hash: string;
  browser_binding: string;
  client_id: string;
  params: Json;
  login_after: NullableTimestamp;
  created_at: Timestamp;
  expires_at: ColumnType<Date, Date | string, Date | string>;
}

export interface AuthorizationCodesTable {
  code_hash: string;
  client_id: string;
  session_id: string;
  user_id: string;
  redirect_uri: string;
  code_challenge: string | null;
  nonce: string | null;
  scope: string;
  audience: string[];
  auth_time: ColumnType<Date, Date | string, Date | string>;
  created_at: ColumnType<Date, Date | string, Date | string>;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  used_at: NullableTimestamp;
  grant_id: string | null;
}

export interface RevokedAccessTokensTable {
  jti: string;
  expires_at: ColumnType<Date, Date | string, Date | string>;
}

export interface Database {
  users: UsersTable;
  identities: IdentitiesTable;
  login_flows: LoginFlowsTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  audit_events: AuditEventsTable;
  authorization_requests: AuthorizationRequestsTable;
  authorization_codes: AuthorizationCodesTable;
  revoked_access_tokens: RevokedAccessTokensTable;
  clients: ClientsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type Identity = Selectable<IdentitiesTable>;
export type LoginFlow = Selectable<LoginFlowsTable>;
export type Session = Selectable<SessionsTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type AuditEvent = Selectable<AuditEventsTable>;
export type ClientRow = Selectable<ClientsTable>;
