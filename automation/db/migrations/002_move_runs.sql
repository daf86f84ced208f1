-- Runs may also move resources' state between stacks (`pulumi state move`, the ownership
-- hand-over of an upgrading tenant): operation 'move', queued on the destination stack like any
-- other run so it never overlaps another run of that stack. options holds the move:
-- { "source": "<stack the resources leave>", "urns": ["urn:pulumi:<source>::...", ...] };
-- output.summary the outcome (moved / alreadyMoved / missing), as for the other operations.
-- 001's inline CHECK got PostgreSQL's default name, runs_operation_check.
ALTER TABLE runs DROP CONSTRAINT runs_operation_check;
ALTER TABLE runs ADD CONSTRAINT runs_operation_check CHECK (operation IN ('up', 'destroy', 'move'));
-- A move run without its source or URNs could only fail when it starts; refuse it when queued.
-- COALESCE: an absent key makes the comparisons NULL, and a CHECK that is NULL passes.
ALTER TABLE runs ADD CONSTRAINT runs_move_options CHECK (
  operation <> 'move'
  OR COALESCE(
    jsonb_typeof(options -> 'source') = 'string'
    AND options ->> 'source' <> stack
    -- CASE, not AND: PostgreSQL does not promise to evaluate AND's operands in order, and
    -- jsonb_array_length raises on a non-array.
    AND CASE WHEN jsonb_typeof(options -> 'urns') = 'array' THEN jsonb_array_length(options -> 'urns') > 0 ELSE false END,
    false)
);
