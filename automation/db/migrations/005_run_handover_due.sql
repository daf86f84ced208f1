-- When a run whose worker died may be taken over (RunStore.reapStale, docs/control-plane.md "Runs"):
-- after repeated losses the handover waits, and that time used to be written into heartbeat_at,
-- which then showed a heartbeat in the future. heartbeat_at keeps the last heartbeat of the worker
-- that died; handover_due_at says when the new job is due (NULL once a worker claims the run).
ALTER TABLE runs ADD COLUMN handover_due_at timestamptz;
UPDATE runs SET handover_due_at = heartbeat_at, heartbeat_at = NULL
 WHERE state = 'running' AND worker IS NULL AND heartbeat_at > now();
