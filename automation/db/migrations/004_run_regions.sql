-- Region routing of stack runs (automation/runs/regions.ts, docs/control-plane.md): every run
-- belongs to its stack's region and goes to that region's pg-boss queue (stack-run-<region>);
-- only a worker serving the region (TENANCY_WORKER_REGIONS) may claim it, because only that
-- region's runner has a network path to the region's databases (docs/network.md).
ALTER TABLE runs ADD COLUMN region text;
-- The queue the run's current job (job_id) was sent to: jobs sent before this migration are on
-- the single queue of before, 'stack-run', and are cancelled there.
ALTER TABLE runs ADD COLUMN job_queue text;
UPDATE runs SET job_queue = 'stack-run' WHERE job_id IS NOT NULL;

-- Backfill what the stack name says: platform-<region>, and a cell's region code
-- (shared-<env>-<code>-..., code = infra/model/naming.ts regionCode of an AWS region). A
-- dedicated stack's name has no region (its tenant file has): the control plane fills those at
-- start-up from the repository (RunStore.backfillRegions), before its workers start.
UPDATE runs SET region = substr(stack, length('platform-') + 1) WHERE region IS NULL AND stack ~ '^platform-[a-z]{2}-[a-z]+-[0-9]+$';
WITH aws(region) AS (
  VALUES ('us-east-1'), ('us-east-2'), ('us-west-1'), ('us-west-2'), ('ca-central-1'), ('ca-west-1'),
         ('eu-west-1'), ('eu-west-2'), ('eu-west-3'), ('eu-central-1'), ('eu-central-2'), ('eu-north-1'),
         ('eu-south-1'), ('eu-south-2'), ('ap-south-1'), ('ap-south-2'), ('ap-northeast-1'), ('ap-northeast-2'),
         ('ap-northeast-3'), ('ap-southeast-1'), ('ap-southeast-2'), ('ap-southeast-3'), ('ap-southeast-4'),
         ('ap-east-1'), ('sa-east-1'), ('me-south-1'), ('me-central-1'), ('af-south-1'), ('il-central-1')
), coded AS (
  -- regionCode: geo + direction letters (northeast ne, southeast se, north n, ..., central c) + number.
  SELECT region,
         split_part(region, '-', 1)
           || CASE split_part(region, '-', 2)
                WHEN 'northeast' THEN 'ne' WHEN 'southeast' THEN 'se' WHEN 'northwest' THEN 'nw' WHEN 'southwest' THEN 'sw'
                WHEN 'north' THEN 'n' WHEN 'south' THEN 's' WHEN 'east' THEN 'e' WHEN 'west' THEN 'w' WHEN 'central' THEN 'c'
              END
           || split_part(region, '-', 3) AS code
    FROM aws
)
UPDATE runs r SET region = c.region FROM coded c
 WHERE r.region IS NULL AND r.stack ~ '^shared-' AND substring(r.stack FROM '^shared-[^-]+-([a-z]{2,4}[0-9])-') = c.code;

CREATE INDEX runs_queued_region ON runs (region) WHERE state = 'queued';

-- The stack-run workers alive now and the regions each serves, refreshed every heartbeat
-- (automation/runs/worker.ts): a queued run of a region no live worker serves is visible as
-- such (tenancy_runs_unserved) instead of waiting silently.
CREATE TABLE run_workers (
  worker_id text PRIMARY KEY,
  regions   text[] NOT NULL,
  seen_at   timestamptz NOT NULL DEFAULT now()
);
