-- Registered OAuth clients of the gateway as an OpenID Provider (RFC 7591 metadata names). The id is the
-- client_id. A confidential client's secret is stored only as "sha256:<base64url>" of a 256-bit random secret.
--
-- Clients from CLIENTS_FILE get a row too (source 'file'), written at start-up, so that their grants can reference
-- them; their metadata and secret are read from the file, never from this row (secret_hash stays null).

CREATE TABLE clients (
  id                           text PRIMARY KEY,
  source                       text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file')),
  client_name                  text,
  secret_hash                  text,
  redirect_uris                text[] NOT NULL DEFAULT '{}',
  post_logout_redirect_uris    text[] NOT NULL DEFAULT '{}',
  grant_types                  text[] NOT NULL,
  response_types               text[] NOT NULL,
  token_endpoint_auth_method   text NOT NULL
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
  -- space-separated scopes the client may ask for
  scope                        text NOT NULL DEFAULT '',
  -- the aud of its access tokens; the RFC 8707 resource values it may request
  audience                     text[] NOT NULL DEFAULT '{}',
  id_token_signed_response_alg text NOT NULL DEFAULT 'RS256',
  created_at                   timestamptz NOT NULL DEFAULT now(),
  updated_at                   timestamptz NOT NULL DEFAULT now(),
  secret_rotated_at            timestamptz,
  -- a client registered through the API has a secret exactly when it is confidential
  CONSTRAINT clients_secret_iff_confidential
    CHECK (source = 'file' OR (secret_hash IS NULL) = (token_endpoint_auth_method = 'none'))
);
-- stable cursor order for listing
CREATE INDEX clients_created_idx ON clients (created_at, id);

-- A session with a client_id is a grant the OpenID Provider made to that client; null: the gateway's own browser
-- session. Deleting a client revokes its grants first (the admin API), then this sets them to null.
ALTER TABLE sessions ADD COLUMN client_id text REFERENCES clients (id) ON DELETE SET NULL;
CREATE INDEX sessions_client_idx ON sessions (client_id) WHERE client_id IS NOT NULL;
