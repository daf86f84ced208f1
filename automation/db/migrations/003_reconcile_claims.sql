-- Which control-plane process is reconciling which billing-reconcile job (pg-boss keeps no owner).
-- The owner holds a session advisory lock on its id while it lives (automation/billing/claims.ts):
-- a claim whose owner's lock is free belongs to a process that died, and its job is retried at
-- once instead of waiting out the job's expiry.
CREATE TABLE reconcile_claims (
  job_id     uuid PRIMARY KEY,
  owner      uuid NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconcile_claims_owner ON reconcile_claims (owner);
