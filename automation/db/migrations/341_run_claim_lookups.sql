-- The run's claim and finish functions (340_run_claim_functions.sql) find the run by its primary key
-- whatever the planner believes of the table. Their single checking statement let the planner pick
-- an index for the other conditions: on a table without statistics (a new database, or before
-- autovacuum's first analyze) a claim scanned every queued run of the region (runs_queued_region)
-- and evaluated the run's stacks (a function planned at every call) for each. Measured with a
-- backend's own CPU time (/proc/<pid>/schedstat), trips of 32 claims among 200 queued runs and
-- 1,000 finished ones, alternating, load 8: 0.50 to 1.38 ms a claim before, 0.35 to 0.71 ms after,
-- 0.09 to 0.19 ms for a one-row UPDATE (docs/control-plane.md, "Per-run overhead"). Now the row is
-- read and locked by id, the conditions are checked on that row, and the checks of other runs go
-- through indexes of their own (a move's source included), so a claim's and a finish's cost does not
-- grow with the queue or the fleet. What they decide is unchanged; the row is checked as locked
-- (its newest version), as the transactional path does.

-- A queued or running state move, by the stack it moves out of (the source occupies it too).
CREATE INDEX runs_queued_move_source ON runs ((options->>'source')) WHERE operation = 'move' AND state = 'queued';
CREATE INDEX runs_running_move_source ON runs ((options->>'source')) WHERE operation = 'move' AND state = 'running';

-- The stacks a run occupies, sorted by code point: an expression, which the planner inlines (the
-- former body's subquery made it a function call planned at every statement).
CREATE OR REPLACE FUNCTION tenancy_run_stacks(p_stack text, p_operation text, p_options jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN p_operation <> 'move' OR p_options->>'source' IS NULL OR p_options->>'source' = p_stack THEN ARRAY[p_stack]
    WHEN (p_options->>'source') COLLATE "C" < p_stack COLLATE "C" THEN ARRAY[p_options->>'source', p_stack]
    ELSE ARRAY[p_stack, p_options->>'source']
  END
$$;

CREATE OR REPLACE FUNCTION tenancy_claim_run(p_run uuid, p_job uuid, p_stacks text[], p_worker text, p_runner text, p_regions text[],
                                             p_head text, p_pin_platform_prefix text, p_started_at text, p_channel text)
RETURNS SETOF runs LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v runs;
BEGIN
  SELECT * INTO v FROM runs WHERE id = p_run FOR UPDATE;
  IF NOT FOUND OR v.job_id IS DISTINCT FROM p_job OR v.state <> 'queued' OR v.region IS NULL OR NOT (v.region = ANY(p_regions))
     OR tenancy_run_stacks(v.stack, v.operation, v.options) IS DISTINCT FROM p_stacks THEN
    RETURN;
  END IF;
  -- A running run occupies one of the stacks (its own, or a move's source).
  IF EXISTS (SELECT 1 FROM runs WHERE state = 'running' AND stack = ANY(p_stacks))
     OR EXISTS (SELECT 1 FROM runs WHERE state = 'running' AND operation = 'move' AND options->>'source' = ANY(p_stacks)) THEN
    RETURN;
  END IF;
  IF v.operation <> 'move' AND EXISTS (SELECT 1 FROM stack_holds WHERE stack = ANY(p_stacks)) THEN
    RETURN;
  END IF;
  RETURN QUERY
  UPDATE runs r SET state = 'running', attempts = r.attempts + 1, worker = p_worker, runner = p_runner, heartbeat_at = now(), handover_due_at = NULL,
         started_at = COALESCE(r.started_at, now()),
         commit_sha = CASE WHEN r.program_commit IS NULL AND p_head IS NOT NULL THEN p_head ELSE r.commit_sha END,
         program_commit = CASE WHEN p_pin_platform_prefix IS NOT NULL AND p_head IS NOT NULL
                               THEN COALESCE(r.program_commit, tenancy_program_in_force(r.stack, p_head, p_pin_platform_prefix))
                               ELSE r.program_commit END,
         attempt_log = (SELECT COALESCE(jsonb_agg(CASE WHEN e->>'outcome' IS NULL THEN e || '{"outcome":"lost","message":"worker stopped sending heartbeats"}'::jsonb ELSE e END), '[]'::jsonb)
                          FROM jsonb_array_elements(r.attempt_log) e)
                       || jsonb_build_array(jsonb_build_object('attempt', r.attempts + 1, 'worker', p_worker, 'startedAt', p_started_at))
   WHERE r.id = p_run
  RETURNING r.*;
  PERFORM pg_notify(p_channel, p_run::text);
END $$;

CREATE OR REPLACE FUNCTION tenancy_finish_run(p_run uuid, p_worker text, p_stacks text[], p_state text, p_output jsonb, p_error text,
                                              p_done jsonb, p_channel text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v runs;
BEGIN
  SELECT * INTO v FROM runs WHERE id = p_run FOR UPDATE;
  IF NOT FOUND OR v.worker IS DISTINCT FROM p_worker OR v.state <> 'running'
     OR tenancy_run_stacks(v.stack, v.operation, v.options) IS DISTINCT FROM p_stacks THEN
    RETURN false;
  END IF;
  -- A queued run without a job waits for these stacks: the transaction records the outcome and gives it its job.
  IF EXISTS (SELECT 1 FROM runs WHERE state = 'queued' AND job_id IS NULL AND stack = ANY(p_stacks))
     OR EXISTS (SELECT 1 FROM runs WHERE state = 'queued' AND job_id IS NULL AND operation = 'move' AND options->>'source' = ANY(p_stacks)) THEN
    RETURN false;
  END IF;
  UPDATE runs SET state = p_state, output = p_output, error = p_error, finished_at = now(), heartbeat_at = NULL, handover_due_at = NULL,
         attempt_log = CASE WHEN jsonb_array_length(attempt_log) = 0 THEN attempt_log
                            ELSE jsonb_set(attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text], (attempt_log -> -1) || p_done) END
   WHERE id = p_run;
  PERFORM pg_notify(p_channel, p_run::text);
  RETURN true;
END $$;
