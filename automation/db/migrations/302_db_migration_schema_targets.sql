-- A wave's rollback takes each schema back to the version it had before that wave
-- (automation/schemaMigrations/fleetEngine.ts rollbackWave): the target is per schema, NULL
-- meaning the migration's target_version.
ALTER TABLE db_migration_schemas ADD COLUMN target_version integer CHECK (target_version >= 0);
