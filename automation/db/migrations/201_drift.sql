-- Drift detection (automation/drift, docs/drift.md): `pulumi preview --refresh` per stack on a
-- schedule. A check is a run of operation 'preview', queued on its stack like any other run, so
-- it never overlaps an update of that stack; it changes nothing.
ALTER TABLE runs DROP CONSTRAINT runs_operation_check;
ALTER TABLE runs ADD CONSTRAINT runs_operation_check CHECK (operation IN ('up', 'destroy', 'move', 'preview'));

-- The latest drift verdict per stack of the fleet. unchecked: never checked yet; checking: a
-- check run is queued or running (run_id); then clean, drifted or failed. due_at: when the next
-- check is due (first checks are spread over one period by a hash of the stack name).
CREATE TABLE stack_drift (
  stack       text PRIMARY KEY,
  state       text NOT NULL CHECK (state IN ('unchecked', 'checking', 'clean', 'drifted', 'failed')),
  -- The last finished verdict while a new check runs, else NULL.
  previous    text CHECK (previous IN ('clean', 'drifted', 'failed')),
  run_id      uuid,
  -- [{ urn, type, op, diffs }] of the last finished check.
  resources   jsonb NOT NULL DEFAULT '[]',
  error       text,
  checked_at  timestamptz,
  due_at      timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stack_drift_due ON stack_drift (due_at) WHERE state <> 'checking';
