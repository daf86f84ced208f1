-- Holds on stacks (automation/runs/holds.ts): while a lifecycle switch's write window is open, no
-- update, destroy or drift check of the tenant's stacks may start (docs/lifecycle.md, "No stack run
-- in the window"). A run that arrives meanwhile stays queued without a job and gets one when the
-- last hold on its stacks is released; a running run is not stopped (the holder waits for it).
-- State moves are not held: they change no cloud resource, and the switch itself hands state over.
CREATE TABLE stack_holds (
  stack text NOT NULL,
  holder text NOT NULL,
  reason text NOT NULL,
  since timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stack, holder)
);

-- A state move and an update of one stack may now be queued side by side (one queued run per stack
-- and lane): a switch hands state over while its stacks are held, and an update queued meanwhile
-- (by the phase commit itself) must not stand in the move's way. They never run at once: a run
-- starts only when no run of its stacks is running (runs_one_running_per_stack, RunStore.start).
DROP INDEX runs_one_queued_per_stack;
CREATE UNIQUE INDEX runs_one_queued_per_stack ON runs (stack, (operation = 'move')) WHERE state = 'queued';
