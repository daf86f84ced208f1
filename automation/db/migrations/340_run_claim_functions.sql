-- A run's claim and finish as server-side functions (automation/runs/oneTrip.ts; docs/control-plane.md,
-- "Per-run overhead"). The claim and the finish were each one statement of about 2.5 kB sent in a
-- simple-protocol query, so PostgreSQL parsed and planned it afresh every time: about 1 ms of the
-- server's time per run at no load, more than the statement's execution and five times a committed
-- one-row UPDATE. A trip of 32 claims (groupCommit.ts) spent 30 to 50 ms in one backend doing that.
-- PL/pgSQL prepares each statement of a function once per session and reuses its plan
-- (https://www.postgresql.org/docs/17/plpgsql-implementation.html#PLPGSQL-PLAN-CACHING); the trip's
-- statements become short calls. The semantics are those of the statements they replace: every
-- statement of a VOLATILE function takes a new snapshot under READ COMMITTED, so the checks still
-- see everything committed by whoever held the stacks' advisory locks before the trip took them.

-- The finished updates of a stack, newest first: the program in force's last rule reads the newest
-- (runs_stack_created would scan every run the stack ever had, a claim at a time).
CREATE INDEX runs_stack_last_update ON runs (stack, finished_at DESC) WHERE operation = 'up' AND state = 'succeeded';

-- The program in force for a stack (automation/rollouts/inForce.ts has the rules and why): the
-- commit of the rollout whose run of the stack succeeded last; else the newest succeeded rollout's;
-- else the program of the stack's newest successful update; else the head the run read. A platform
-- stack (its name starts with p_platform_prefix) is never rolled out: the head.
CREATE FUNCTION tenancy_program_in_force(p_stack text, p_head text, p_platform_prefix text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v text;
BEGIN
  IF starts_with(p_stack, p_platform_prefix) THEN
    RETURN p_head;
  END IF;
  SELECT r.commit INTO v
    FROM rollout_stacks rs JOIN rollouts r ON r.id = rs.rollout_id JOIN runs u ON u.id = rs.run_id
   WHERE rs.stack = p_stack AND u.state = 'succeeded'
   ORDER BY u.finished_at DESC LIMIT 1;
  IF v IS NOT NULL THEN
    RETURN v;
  END IF;
  SELECT commit INTO v FROM rollouts WHERE state = 'succeeded' ORDER BY finished_at DESC LIMIT 1;
  IF v IS NOT NULL THEN
    RETURN v;
  END IF;
  SELECT COALESCE(u.program_commit, u.commit_sha) INTO v FROM runs u
   WHERE u.stack = p_stack AND u.operation = 'up' AND u.state = 'succeeded' AND COALESCE(u.program_commit, u.commit_sha) IS NOT NULL
   ORDER BY u.finished_at DESC LIMIT 1;
  RETURN COALESCE(v, p_head);
END $$;

-- The stacks a run occupies (its own and a move's source), sorted by code point as
-- automation/runs/oneTrip.ts runStacks sorts them.
CREATE FUNCTION tenancy_run_stacks(p_stack text, p_operation text, p_options jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY(SELECT s FROM (SELECT DISTINCT s FROM unnest(ARRAY[p_stack, CASE WHEN p_operation = 'move' THEN p_options->>'source' END]) s
                WHERE s IS NOT NULL) d ORDER BY s COLLATE "C")
$$;

-- The claim: a queued run whose job (p_job) still owns it, of a served region, whose stacks are
-- p_stacks (the job's), none of them running a run and none held (a move is never held), becomes
-- running for p_worker, with a new attempt in its log (an open earlier attempt marked lost), the
-- head recorded as its commit unless it has a program pin, and the program in force pinned when
-- p_pin_platform_prefix is given; its listeners are told (p_channel). No row: nothing changed, the
-- caller decides in a transaction (oneTrip.ts).
CREATE FUNCTION tenancy_claim_run(p_run uuid, p_job uuid, p_stacks text[], p_worker text, p_runner text, p_regions text[],
                                  p_head text, p_pin_platform_prefix text, p_started_at text, p_channel text)
RETURNS SETOF runs LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_stack text;
BEGIN
  SELECT r.stack INTO v_stack FROM runs r
   WHERE r.id = p_run AND r.job_id = p_job AND r.state = 'queued' AND r.region = ANY(p_regions)
     AND tenancy_run_stacks(r.stack, r.operation, r.options) = p_stacks
     AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.state = 'running'
                      AND (b.stack = ANY(p_stacks) OR (b.operation = 'move' AND b.options->>'source' = ANY(p_stacks))))
     AND (r.operation = 'move' OR NOT EXISTS (SELECT 1 FROM stack_holds h WHERE h.stack = ANY(p_stacks)))
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY
  UPDATE runs r SET state = 'running', attempts = r.attempts + 1, worker = p_worker, runner = p_runner, heartbeat_at = now(), handover_due_at = NULL,
         started_at = COALESCE(r.started_at, now()),
         commit_sha = CASE WHEN r.program_commit IS NULL AND p_head IS NOT NULL THEN p_head ELSE r.commit_sha END,
         program_commit = CASE WHEN p_pin_platform_prefix IS NOT NULL AND p_head IS NOT NULL
                               THEN COALESCE(r.program_commit, tenancy_program_in_force(v_stack, p_head, p_pin_platform_prefix))
                               ELSE r.program_commit END,
         attempt_log = (SELECT COALESCE(jsonb_agg(CASE WHEN e->>'outcome' IS NULL THEN e || '{"outcome":"lost","message":"worker stopped sending heartbeats"}'::jsonb ELSE e END), '[]'::jsonb)
                          FROM jsonb_array_elements(r.attempt_log) e)
                       || jsonb_build_array(jsonb_build_object('attempt', r.attempts + 1, 'worker', p_worker, 'startedAt', p_started_at))
   WHERE r.id = p_run
  RETURNING r.*;
  PERFORM pg_notify(p_channel, p_run::text);
END $$;

-- The finish: the owner (p_worker) records its running run's outcome, closing the attempt's log
-- entry with p_done, when no queued run without a job waits for its stacks (that case needs the
-- transaction, which gives the waiting run its job); its listeners are told. False: nothing changed.
CREATE FUNCTION tenancy_finish_run(p_run uuid, p_worker text, p_stacks text[], p_state text, p_output jsonb, p_error text,
                                   p_done jsonb, p_channel text)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  UPDATE runs SET state = p_state, output = p_output, error = p_error, finished_at = now(), heartbeat_at = NULL, handover_due_at = NULL,
         attempt_log = CASE WHEN jsonb_array_length(attempt_log) = 0 THEN attempt_log
                            ELSE jsonb_set(attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text], (attempt_log -> -1) || p_done) END
   WHERE id = p_run AND worker = p_worker AND state = 'running'
     AND tenancy_run_stacks(stack, operation, options) = p_stacks
     AND NOT EXISTS (SELECT 1 FROM runs q WHERE q.state = 'queued' AND q.job_id IS NULL
                      AND (q.stack = ANY(p_stacks) OR (q.operation = 'move' AND q.options->>'source' = ANY(p_stacks))));
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pg_notify(p_channel, p_run::text);
  RETURN true;
END $$;
