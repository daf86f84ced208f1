-- The rollback of a cell move before its switch (automation/lifecycle/workflows/moveRollback.ts) is a lifecycle workflow kind.
ALTER TABLE lifecycle_workflows DROP CONSTRAINT lifecycle_workflows_kind_check;
ALTER TABLE lifecycle_workflows ADD CONSTRAINT lifecycle_workflows_kind_check
  CHECK (kind IN ('upgrade', 'rollback', 'suspend', 'resume', 'offboard', 'rotate', 'move', 'move-rollback'));
