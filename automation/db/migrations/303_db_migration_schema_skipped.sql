-- A schema unit of a fleet migration whose tenant moved since the migration was planned (its
-- schema is no longer in that stack's database: a pooled -> dedicated upgrade finished, or the
-- upgrade was rolled back) is skipped, with the reason in `error`: not run against the old
-- location, not counted against the wave's failure budget (automation/schemaMigrations/fleetEngine.ts).
ALTER TABLE db_migration_schemas DROP CONSTRAINT db_migration_schemas_state_check;
ALTER TABLE db_migration_schemas ADD CONSTRAINT db_migration_schemas_state_check CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped'));
