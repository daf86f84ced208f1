-- The program revision a run applies (docs/rollouts.md, "Which commit a run applies"): a rollout's
-- run applies the program (infra/, policy/, Pulumi.yaml, packages) of the rollout's commit with the
-- fleet files (tenants/, stacks/) of the main branch's head, so a later program commit never
-- reaches a later wave of an earlier rollout. NULL: the run applies the head as it is.
ALTER TABLE runs ADD COLUMN program_commit text;
