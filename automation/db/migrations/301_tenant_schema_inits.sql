-- New tenant schemas brought to the template version after their stack's first successful run
-- (automation/schemaMigrations/newTenants.ts, docs/schema-migrations.md). One row per tenant
-- schema (a stack's database and a tenant): a 'succeeded' row means it was done and is never done
-- again by a later run of that stack (fleet migrations take over from there); a 'failed' row
-- is tried again by the stack's next successful run.
CREATE TABLE tenant_schema_inits (
  stack         text NOT NULL,
  tenant        text NOT NULL,
  state         text NOT NULL CHECK (state IN ('succeeded', 'failed')),
  -- 'migrated' (it was at version 0 and got the template version) or 'adopted' (it already had
  -- versions: a schema that existed before this table, or a copy an upgrade brought along).
  outcome       text CHECK (outcome IN ('migrated', 'adopted')),
  -- The stack run whose success brought it there (the last one that tried, when failed).
  run_id        uuid NOT NULL,
  from_version  integer,
  to_version    integer,
  error         text,
  code          text,
  attempts      integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stack, tenant)
);
