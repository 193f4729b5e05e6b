-- Refresh tokens become opaque: a token names its session and its place in the session's chain (a generation
-- number) under a MAC keyed by SECRET_KEY, so nothing about a token is stored but the session's current
-- generation. A rotation is one UPDATE of one session row; any older token of the chain is reuse.
-- Tokens issued before this migration (JWTs) are no longer accepted: their sessions end, users sign in again.

ALTER TABLE sessions
  ADD COLUMN refresh_gen integer NOT NULL DEFAULT 0,
  -- when the current generation was issued (the grace window for a concurrent refresh counts from it)
  ADD COLUMN rotated_at  timestamptz,
  -- when the user last authenticated upstream for this session (login, or a re-authentication)
  ADD COLUMN auth_time   timestamptz;
UPDATE sessions SET auth_time = created_at, revoked_at = coalesce(revoked_at, now()),
  revoked_reason = coalesce(revoked_reason, 'token_format_upgrade');
ALTER TABLE sessions ALTER COLUMN auth_time SET NOT NULL;

DROP TABLE refresh_tokens;

-- what a login asked of the provider (checked again at the callback), and what it is for: a sign-in, linking an
-- identity to the session's user, or that user authenticating again (before a link)
ALTER TABLE login_flows
  ADD COLUMN purpose    text NOT NULL DEFAULT 'login' CHECK (purpose IN ('login', 'link', 'reauth')),
  ADD COLUMN session_id uuid REFERENCES sessions (id) ON DELETE CASCADE,
  -- reauth: where the browser continues once the user authenticated again (the link request); return_to stays
  -- where a failure is reported
  ADD COLUMN next_url   text,
  ADD COLUMN prompt     text,
  ADD COLUMN max_age    integer;
