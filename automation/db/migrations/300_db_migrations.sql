-- Fleet schema migrations (automation/schemaMigrations): the application's migrations applied to
-- every tenant schema through the rollout rings (docs/schema-migrations.md). Versions 300-399
-- are the schema migrations'.

-- One row per fleet migration (or a one-tenant rollback). waves: the planned stack waves
-- ([{ index, ring, parallelism, bakeMs, failureBudgetPercent, stacks }]) fixed at creation; the
-- schemas of a wave are the tenant schemas of its stacks (db_migration_schemas). At most one is
-- active (running or halted): the partial unique index.
CREATE TABLE db_migrations (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  action         text NOT NULL CHECK (action IN ('migrate', 'rollback')),
  target_version integer NOT NULL CHECK (target_version >= 0),
  -- running; halted (a wave's failed schemas exceeded its budget: nothing more starts until a
  -- person resumes); succeeded; aborted.
  state          text NOT NULL CHECK (state IN ('running', 'halted', 'succeeded', 'aborted')),
  waves          jsonb NOT NULL,
  wave           integer NOT NULL DEFAULT 0,
  wave_done_at   timestamptz,
  halt_reason    text,
  requested_by   text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);
CREATE UNIQUE INDEX db_migrations_one_active ON db_migrations ((true)) WHERE state IN ('running', 'halted');

-- One row per tenant schema of a fleet migration. A schema is claimed (state running, lease set)
-- in a short transaction and migrated outside it in its own transaction on the tenant database; a
-- claim whose lease ran out (the control plane died) goes back to pending. Re-running a schema is
-- safe: its schema_migrations rows say what it has.
CREATE TABLE db_migration_schemas (
  migration_id  uuid NOT NULL REFERENCES db_migrations (id) ON DELETE CASCADE,
  wave          integer NOT NULL,
  stack         text NOT NULL,
  tenant        text NOT NULL,
  state         text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
  from_version  integer,
  to_version    integer,
  error         text,
  -- SQLSTATE of the failure when PostgreSQL gave one (42501: the file reached outside the schema).
  code          text,
  attempts      integer NOT NULL DEFAULT 0,
  lease_until   timestamptz,
  started_at    timestamptz,
  finished_at   timestamptz,
  PRIMARY KEY (migration_id, stack, tenant)
);
CREATE INDEX db_migration_schemas_wave ON db_migration_schemas (migration_id, wave, state);
CREATE INDEX db_migration_schemas_tenant ON db_migration_schemas (tenant, finished_at);
