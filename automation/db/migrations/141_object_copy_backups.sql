-- A final backup may be a copy of a tenant's objects (its dedicated bucket, or its prefix of a cell
-- bucket) beside its schema dump or RDS snapshot (automation/lifecycle/workflows/backup.ts).
ALTER TABLE lifecycle_backups DROP CONSTRAINT lifecycle_backups_kind_check;
ALTER TABLE lifecycle_backups ADD CONSTRAINT lifecycle_backups_kind_check
  CHECK (kind IN ('schema-dump', 'rds-snapshot', 'object-copy'));
