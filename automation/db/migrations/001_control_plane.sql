-- Control-plane schema: billing intake, subscription state, tenant changes, stack runs.
-- pg-boss keeps its own schema (pgboss) and migrates it itself.

-- One row per Stripe event ever accepted by the signature check. The primary key is the
-- deduplication key: a redelivered event conflicts and nothing is enqueued for it.
CREATE TABLE billing_events (
  id              text PRIMARY KEY,
  type            text NOT NULL,
  created         bigint NOT NULL,              -- event.created, Unix seconds (Stripe's clock)
  subscription_id text,
  payload         jsonb NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  -- accepted: applied to the subscription state and its work enqueued
  -- stale: older than the state already applied; ignored: not a type we act on
  -- rejected: signed but unusable (reason says why)
  outcome         text NOT NULL CHECK (outcome IN ('accepted', 'stale', 'ignored', 'rejected')),
  reason          text,
  job_id          uuid,
  -- What reconciliation did with it (change id, commit, or why nothing changed).
  result          jsonb,
  processed_at    timestamptz
);
CREATE INDEX billing_events_subscription ON billing_events (subscription_id, created);

-- Latest known state of each Stripe subscription, applied in `created` order.
CREATE TABLE subscriptions (
  id                   text PRIMARY KEY,
  customer_id          text,
  tenant_id            text,
  price_id             text,
  status               text NOT NULL,
  metadata             jsonb NOT NULL DEFAULT '{}',
  last_event_id        text NOT NULL,
  last_event_created   bigint NOT NULL,
  -- Set once, never cleared: a deleted subscription is never provisioned again.
  deleted_at           bigint,
  -- First event time of the current past_due/unpaid stretch; null when paid up.
  delinquent_since     bigint,
  -- The tenant's current suspension was made by billing (so billing may lift it).
  suspended_by_billing boolean NOT NULL DEFAULT false,
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id);

-- Every change the control plane made (or refused to make) to tenant files.
CREATE TABLE changes (
  id           uuid PRIMARY KEY,
  tenant_id    text NOT NULL,
  summary      text NOT NULL,
  source       text NOT NULL,                 -- stripe | api | workflow
  cause_ids    text[] NOT NULL DEFAULT '{}',  -- event ids / request ids
  route        text NOT NULL CHECK (route IN ('main', 'branch')),
  state        text NOT NULL CHECK (state IN ('planned', 'committed', 'proposed', 'rejected', 'failed')),
  paths        text[] NOT NULL,
  stacks       text[] NOT NULL DEFAULT '{}',
  commit_sha   text,
  branch       text,
  pull_request jsonb,
  pushed       boolean,
  note         text,
  problems     jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_tenant ON changes (tenant_id, created_at DESC);
CREATE INDEX changes_planned ON changes (state) WHERE state = 'planned';

-- Stack runs (`pulumi up`, or `pulumi destroy` for offboarding). At most one queued and one
-- running run per stack: later changes to a stack join its queued run of the same operation
-- (the run applies the branch head when it starts, so it includes them).
CREATE TABLE runs (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  stack               text NOT NULL,
  operation           text NOT NULL DEFAULT 'up' CHECK (operation IN ('up', 'destroy')),
  -- destroy: { "unprotect": true, "release": { ... } } when protection may be lifted (offboarding).
  options             jsonb NOT NULL DEFAULT '{}',
  state               text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
  runner              text,
  change_ids          uuid[] NOT NULL DEFAULT '{}',
  reasons             text[] NOT NULL DEFAULT '{}',
  commit_sha          text,
  job_id              uuid,
  worker              text,
  attempts            integer NOT NULL DEFAULT 0,
  attempt_log         jsonb NOT NULL DEFAULT '[]',
  heartbeat_at        timestamptz,
  cancel_requested_at timestamptz,
  output              jsonb,
  error               text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  finished_at         timestamptz
);
CREATE UNIQUE INDEX runs_one_queued_per_stack ON runs (stack) WHERE state = 'queued';
CREATE UNIQUE INDEX runs_one_running_per_stack ON runs (stack) WHERE state = 'running';
CREATE INDEX runs_stack_created ON runs (stack, created_at DESC);
CREATE INDEX runs_running_heartbeat ON runs (heartbeat_at) WHERE state = 'running';

-- Engine events of a run, in arrival order, kept with the run (its progress and its record).
CREATE TABLE run_events (
  id      bigserial PRIMARY KEY,
  run_id  uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  at      timestamptz NOT NULL DEFAULT now(),
  event   jsonb NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
