-- Example application migration (docs/schema-migrations.md): documents owned by accounts, with a
-- status enum and an index for the per-account listing.
CREATE TYPE document_status AS ENUM ('draft', 'published', 'archived');
CREATE TABLE documents (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  title      text NOT NULL,
  status     document_status NOT NULL DEFAULT 'draft',
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_account_idx ON documents (account_id, updated_at DESC);
