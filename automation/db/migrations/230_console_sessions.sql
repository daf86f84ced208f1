-- Operator console sessions (automation/console, docs/console.md): an API key exchanged at the
-- login page for a session cookie. Only a SHA-256 digest of the cookie's token is stored, with the
-- key's name and id (never the key), the CSRF token every console action must carry, and the expiry.
-- A session whose key is no longer in TENANCY_API_KEYS, or has expired, is refused.
CREATE TABLE console_sessions (
  token_sha256 bytea PRIMARY KEY,
  key_name     text NOT NULL,
  key_id       text,
  csrf_token   text NOT NULL,
  client       text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
