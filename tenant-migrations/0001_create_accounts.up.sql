-- Example application migration for the example fleet (docs/schema-migrations.md): the accounts
-- table. Runs as the tenant's role with search_path pinned to its schema: names are unqualified.
CREATE TABLE accounts (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email      text NOT NULL UNIQUE,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
