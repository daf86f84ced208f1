-- An operator's cancel of a workflow whose step is running in some control-plane process
-- (automation/lifecycle/engine/cancelWatch.ts; docs/lifecycle.md, "Cancelling a workflow"): the
-- request is recorded here, the process running the step learns it (NOTIFY on
-- lifecycle_workflow_cancel, and its polling as a safety net), stops the step if it can be
-- interrupted, runs the workflow's clean-up and ends it cancelled. A process that dies meanwhile
-- leaves the request: the next run of the workflow ends it cancelled instead of resuming it.
ALTER TABLE lifecycle_workflows ADD COLUMN cancel_requested_at timestamptz;
ALTER TABLE lifecycle_workflows ADD COLUMN cancel_note text;
