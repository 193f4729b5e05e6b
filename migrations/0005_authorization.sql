-- The OpenID Provider: a client's grant is a row of sessions (its own refresh-token chain) that came from a
-- browser session (parent_id) and ends with it; pending authorization requests wait for an upstream login;
-- authorization codes are one-time; revoked access tokens are remembered until they expire.

ALTER TABLE sessions
  ADD COLUMN parent_id uuid REFERENCES sessions (id) ON DELETE CASCADE,
  -- OP grants: what the client was granted, and the aud of its access tokens
  ADD COLUMN scope     text,
  ADD COLUMN audience  text[];
CREATE INDEX sessions_parent_idx ON sessions (parent_id) WHERE parent_id IS NOT NULL;

-- An authorization request that needs the user to sign in upstream first (or again): kept until the login comes
-- back to /oauth2/authorize/resume, bound to the browser like a login flow. Stored by a keyed hash of its id.
CREATE TABLE authorization_requests (
  id_hash         text PRIMARY KEY,
  browser_binding text NOT NULL,
  client_id       text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  params          jsonb NOT NULL,
  -- prompt=login or max_age: the session must have authenticated at or after this
  login_after     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL
);
CREATE INDEX authorization_requests_expires_idx ON authorization_requests (expires_at);

-- Authorization codes, stored by hash, one-time, short-lived, bound to client, redirect URI, PKCE challenge,
-- nonce and the browser session (RFC 6749 section 4.1.2, RFC 7636).
CREATE TABLE authorization_codes (
  code_hash      text PRIMARY KEY,
  client_id      text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  session_id     uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  redirect_uri   text NOT NULL,
  code_challenge text,
  nonce          text,
  scope          text NOT NULL,
  audience       text[] NOT NULL,
  auth_time      timestamptz NOT NULL,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  used_at        timestamptz,
  -- the grant the first redemption opened: a second redemption revokes it (RFC 6749 section 4.1.2)
  grant_id       uuid REFERENCES sessions (id) ON DELETE SET NULL
);
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);

-- Access tokens revoked before they expire (RFC 7009): introspection and userinfo refuse them until then.
CREATE TABLE revoked_access_tokens (
  jti        uuid PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);
