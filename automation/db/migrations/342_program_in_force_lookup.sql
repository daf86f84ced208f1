-- The program in force's first rule reads the stack's rollout entries first, whatever the planner
-- believes of the tables (tenancy_program_in_force, 340_run_claim_functions.sql; every claim of a
-- run that is not a rollout's calls it). Its join of rollout_stacks, rollouts and runs let the
-- planner start from runs: PL/pgSQL switches to a generic plan after a session's fifth call
-- (https://www.postgresql.org/docs/17/sql-prepare.html, "plan_cache_mode"), and on a table without
-- statistics (a new database, or before autovacuum's first analyze) the generic plan scanned every
-- succeeded run and probed rollout_stacks for each: a claim's cost grew with the run history
-- (EXPLAIN with 400 succeeded runs: 400 rows read, 0.45 ms; pg_stat_statements in the run-overhead
-- bench: 0.14 ms of every claim's 0.3 with no rollout at all). Now the runs are read through a
-- LATERAL subquery of the stack's rollout entries (OFFSET 0 keeps the planner from flattening it
-- into a join it may reorder): one index probe of runs by primary key per rollout that touched the
-- stack. What the function answers is unchanged.
CREATE OR REPLACE FUNCTION tenancy_program_in_force(p_stack text, p_head text, p_platform_prefix text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v text;
BEGIN
  IF starts_with(p_stack, p_platform_prefix) THEN
    RETURN p_head;
  END IF;
  SELECT r.commit INTO v
    FROM rollout_stacks rs
    CROSS JOIN LATERAL (SELECT u.finished_at FROM runs u WHERE u.id = rs.run_id AND u.state = 'succeeded' OFFSET 0) u
    JOIN rollouts r ON r.id = rs.rollout_id
   WHERE rs.stack = p_stack
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
