-- The program in force for a stack (automation/rollouts/inForce.ts, docs/rollouts.md "Which commit a
-- run applies") is looked up by stack when each run outside a rollout starts: the rollouts that
-- reached the stack, newest first.
CREATE INDEX rollout_stacks_stack ON rollout_stacks (stack);
