-- Rollouts (automation/rollouts): a program, policy or platform change applied to the fleet's
-- stacks in ordered waves (docs/rollouts.md). Versions 200-299 are the rollouts'.

-- One row per rollout. waves: the planned waves ([{ index, ring, parallelism, bakeMs,
-- failureBudgetPercent, stacks }]), fixed when the rollout is created. At most one rollout is
-- active (running, paused or halted) at a time: the partial unique index; a later one waits.
CREATE TABLE rollouts (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name          text NOT NULL,
  commit        text NOT NULL,
  -- waiting: queued behind the active rollout; running; paused (by a person: no new stack
  -- starts); halted (a wave's failures exceeded its budget: no new stack starts until a person
  -- resumes); then succeeded, aborted or superseded (a later rollout took over).
  state         text NOT NULL CHECK (state IN ('waiting', 'running', 'paused', 'halted', 'succeeded', 'aborted', 'superseded')),
  waves         jsonb NOT NULL,
  wave          integer NOT NULL DEFAULT 0,
  -- When the current wave's last stack finished: the bake time runs from here.
  wave_done_at  timestamptz,
  halt_reason   text,
  supersede     boolean NOT NULL DEFAULT false,
  requested_by  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
CREATE UNIQUE INDEX rollouts_one_active ON rollouts ((true)) WHERE state IN ('running', 'paused', 'halted');
CREATE INDEX rollouts_open ON rollouts (created_at) WHERE state IN ('waiting', 'running', 'paused', 'halted');

-- One row per stack of a rollout. A stack is started (its run queued through the run queue, so
-- per-stack serialization holds) in the same transaction that marks it running and records the
-- run: a crash never starts a stack twice or loses one.
CREATE TABLE rollout_stacks (
  rollout_id  uuid NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
  wave        integer NOT NULL,
  stack       text NOT NULL,
  state       text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
  run_id      uuid,
  -- How many times the stack was started (a resume after a halt starts a failed stack again).
  attempts    integer NOT NULL DEFAULT 0,
  error       text,
  started_at  timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (rollout_id, stack)
);
CREATE INDEX rollout_stacks_wave ON rollout_stacks (rollout_id, wave, state);
