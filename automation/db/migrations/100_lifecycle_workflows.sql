-- Lifecycle workflows (automation/lifecycle): upgrade pooled -> dedicated, rollback, suspend,
-- resume, offboard. Versions 100-199 are the lifecycle's, so they never collide with the
-- control plane's own migrations.

-- One row per workflow. At most one unfinished workflow per tenant (the partial unique index):
-- a second request for a tenant with a workflow under way is refused, or supersedes it where
-- that is allowed (rollback before cutover, resume during an offboarding's grace period).
CREATE TABLE lifecycle_workflows (
  id           uuid PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('upgrade', 'rollback', 'suspend', 'resume', 'offboard')),
  tenant_id    text NOT NULL,
  params       jsonb NOT NULL DEFAULT '{}',
  -- pending: not started; running: a worker is on it or it waits to be retried (wake_at);
  -- waiting: a step waits for a time (grace period, retention, snapshot); then succeeded,
  -- failed (needs an operator: last_error says why) or cancelled (superseded, see note).
  state        text NOT NULL CHECK (state IN ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled')),
  current_step text,
  wake_at      timestamptz,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  note         text,
  requested_by text,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  finished_at  timestamptz
);
CREATE UNIQUE INDEX lifecycle_one_open_per_tenant ON lifecycle_workflows (tenant_id)
  WHERE state IN ('pending', 'running', 'waiting');
CREATE INDEX lifecycle_due ON lifecycle_workflows (wake_at) WHERE state IN ('pending', 'running', 'waiting');
CREATE INDEX lifecycle_tenant ON lifecycle_workflows (tenant_id, created_at DESC);

-- A completed step, written once, in the same transaction as the step's records in this
-- database (backups below). A step without a row here runs (again) when the workflow resumes.
CREATE TABLE lifecycle_steps (
  workflow_id  uuid NOT NULL REFERENCES lifecycle_workflows (id),
  step         text NOT NULL,
  ordinal      integer NOT NULL,
  output       jsonb NOT NULL DEFAULT '{}',
  completed_at timestamptz NOT NULL,
  PRIMARY KEY (workflow_id, step)
);

-- What was kept where before anything was deleted: schema dumps in a cell bucket, RDS
-- snapshots. Destructive steps refuse to run unless a backup of every environment is here.
CREATE TABLE lifecycle_backups (
  id           bigserial PRIMARY KEY,
  workflow_id  uuid NOT NULL REFERENCES lifecycle_workflows (id),
  tenant_id    text NOT NULL,
  env          text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('schema-dump', 'rds-snapshot')),
  location     text NOT NULL,
  bytes        bigint,
  sha256       text,
  detail       jsonb NOT NULL DEFAULT '{}',
  recorded_at  timestamptz NOT NULL,
  UNIQUE (workflow_id, env, kind)
);
CREATE INDEX lifecycle_backups_tenant ON lifecycle_backups (tenant_id, recorded_at DESC);
