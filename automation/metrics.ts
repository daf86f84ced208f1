/**
 * Prometheus metrics (prom-client), served at GET /metrics. Counters and the duration histogram
 * are this process's; run states and queue depth are read from PostgreSQL at scrape time, so
 * they are the fleet-wide truth whichever process is scraped.
 */
import client from "prom-client";
import type { Pool } from "pg";
import type { PlannedWave } from "../infra/model/rings.ts";
import { ROLLOUT_STATES } from "./rollouts/engine.ts";
import { rolloutTiming, type RolloutTiming } from "./rollouts/timing.ts";
import { QUEUES, stackRunQueues } from "./queue.ts";
import type { RunStore } from "./runs/store.ts";
import { currentLags } from "./lifecycle/pg/cdc/lag.ts";

export class Metrics {
  readonly registry = new client.Registry();
  readonly eventsReceived = new client.Counter({
    name: "tenancy_billing_events_received_total",
    help: "Stripe webhook events whose signature verified, by event type.",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly eventsDeduplicated = new client.Counter({
    name: "tenancy_billing_events_deduplicated_total",
    help: "Stripe events received again (same event id); nothing was enqueued for them.",
    registers: [this.registry],
  });
  readonly eventsRejected = new client.Counter({
    name: "tenancy_billing_events_rejected_total",
    help: "Webhook deliveries or events rejected, by stage: signature (missing, bad, stale or re-serialized), payload (signed but not JSON, or not a usable event), stale (older than applied state), change (resulting tenant spec invalid or not applicable).",
    labelNames: ["stage"] as const,
    registers: [this.registry],
  });
  readonly runDuration = new client.Histogram({
    name: "tenancy_run_duration_seconds",
    help: "Duration of stack runs finished by this process, by final state.",
    labelNames: ["state"] as const,
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 10800],
    registers: [this.registry],
  });

  readonly rolloutHalts = new client.Counter({
    name: "tenancy_rollout_halts_total",
    help: "Rollouts halted by this process because a wave's failures exceeded its budget.",
    registers: [this.registry],
  });

  readonly schemaMigrations = new client.Counter({
    name: "tenancy_schema_migrations_total",
    help: "Tenant schemas migrated or rolled back by this process, by action and outcome (succeeded, failed, skipped: the tenant moved since the migration was planned).",
    labelNames: ["action", "outcome"] as const,
    registers: [this.registry],
  });
  readonly schemaMigrationHalts = new client.Counter({
    name: "tenancy_schema_migration_halts_total",
    help: "Fleet schema migrations halted by this process because a wave's failed schemas exceeded its budget.",
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: "tenancy_process_" });
    new client.Gauge({
      name: "tenancy_cdc_slot_lag_bytes",
      help: "Change captures of upgrades run by this process: WAL bytes the cell wrote past the position applied to the dedicated copy, as last measured; the slot keeps that WAL on the cell's disk. Absent once the slot is dropped.",
      labelNames: ["tenant", "env", "slot"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const l of currentLags()) this.set(l.labels, l.bytes);
      },
    });
  }

  /** Rollout gauges, read from the database on every scrape. */
  attachRollouts(pool: Pool): void {
    new client.Gauge({
      name: "tenancy_rollouts",
      help: "Rollouts by state (all processes).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      async collect() {
        const { rows } = await pool.query<{ state: string; n: string }>("SELECT state, count(*) AS n FROM rollouts GROUP BY state");
        for (const state of ROLLOUT_STATES) this.set({ state }, Number(rows.find((r) => r.state === state)?.n ?? 0));
      },
    });
    new client.Gauge({
      name: "tenancy_rollout_stacks",
      help: "Stacks of the active rollout (running, paused or halted) by state and wave (1-based); 0 when none is active.",
      labelNames: ["state", "wave"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const { rows } = await pool.query<{ state: string; wave: number; n: string }>(
          `SELECT s.state, s.wave, count(*) AS n FROM rollout_stacks s JOIN rollouts r ON r.id = s.rollout_id
            WHERE r.state IN ('running', 'paused', 'halted') GROUP BY s.state, s.wave`,
        );
        for (const r of rows) this.set({ state: r.state, wave: String(r.wave + 1) }, Number(r.n));
      },
    });
    this.attachRolloutTiming(pool);
  }

  /**
   * Timing of the latest rollout (the active one, else the newest), read from the database on
   * every scrape (automation/rollouts/timing.ts); absent while there is none or the figure is not
   * known yet (the canary phase not done, no run recorded).
   */
  attachRolloutTiming(pool: Pool): void {
    // One query for the four gauges of a scrape.
    let memo: { at: number; value: Promise<{ id: string; t: RolloutTiming } | undefined> } | undefined;
    const latest = (): Promise<{ id: string; t: RolloutTiming } | undefined> => {
      if (memo && Date.now() - memo.at < 1000) return memo.value;
      const value = pool
        .query<{ id: string; wave: number; waves: PlannedWave[] }>(
          "SELECT id, wave, waves FROM rollouts ORDER BY (state IN ('running', 'paused', 'halted')) DESC, created_at DESC LIMIT 1",
        )
        .then(async ({ rows }) => (rows[0] ? { id: rows[0].id, t: await rolloutTiming(pool, rows[0]) } : undefined));
      memo = { at: Date.now(), value };
      return value;
    };
    // Labelled by the rollout's id (one series at a time): an unlabelled gauge would show 0 for "not known".
    const gauge = (name: string, help: string, set: (g: client.Gauge<"rollout" | "quantile">, rollout: string, t: RolloutTiming) => void, quantiles = false) =>
      new client.Gauge({
        name, help, labelNames: quantiles ? ["rollout", "quantile"] : ["rollout"], registers: [this.registry],
        async collect() {
          this.reset();
          const l = await latest();
          if (l) set(this, l.id, l.t);
        },
      });
    gauge("tenancy_rollout_canary_seconds", "Latest rollout (the active one, else the newest): from its first stack's start until every stack of its canary phase (the leading waves with a failure budget of 0) succeeded; absent until then.", (g, rollout, t) => {
      if (t.canaryMs !== null) g.set({ rollout }, t.canaryMs / 1000);
    });
    gauge("tenancy_rollout_canary_failed_stacks", "Latest rollout: stacks of its canary phase whose last run failed.", (g, rollout, t) => g.set({ rollout }, t.canaryFailed));
    gauge("tenancy_rollout_stacks_started_ahead", "Latest rollout: stacks of waves after its current one that started (0 unless the engine is wrong: a halt stops every later wave).", (g, rollout, t) => g.set({ rollout }, t.startedAhead));
    gauge("tenancy_rollout_overhead_seconds", "Latest rollout: control-plane time per succeeded stack (started -> outcome recorded, minus the update the CLI reported), median and p99.", (g, rollout, t) => {
      if (!t.overheadPerRunMs) return;
      g.set({ rollout, quantile: "0.5" }, t.overheadPerRunMs.median / 1000);
      g.set({ rollout, quantile: "0.99" }, t.overheadPerRunMs.p99 / 1000);
    }, true);
  }

  /** Schemas of the active fleet schema migration by state, read from the database on every scrape. */
  attachSchemaMigrations(pool: Pool): void {
    new client.Gauge({
      name: "tenancy_schema_migration_schemas",
      help: "Tenant schemas of the active schema migration (running or halted) by state and wave (1-based); absent when none is active.",
      labelNames: ["state", "wave"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const { rows } = await pool.query<{ state: string; wave: number; n: string }>(
          `SELECT s.state, s.wave, count(*) AS n FROM db_migration_schemas s JOIN db_migrations m ON m.id = s.migration_id
            WHERE m.state IN ('running', 'halted') GROUP BY s.state, s.wave`,
        );
        for (const r of rows) this.set({ state: r.state, wave: String(r.wave + 1) }, Number(r.n));
      },
    });
  }

  /** Drift verdicts, read from the database on every scrape. */
  attachDrift(pool: Pool): void {
    new client.Gauge({
      name: "tenancy_stack_drift",
      help: "Last drift verdict per stack: 0 clean, 1 drifted, -1 the check failed (while a check runs, the previous verdict; never-checked stacks absent).",
      labelNames: ["stack"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const { rows } = await pool.query<{ stack: string; verdict: string | null }>(
          "SELECT stack, CASE WHEN state = 'checking' THEN previous ELSE state END AS verdict FROM stack_drift",
        );
        for (const r of rows) {
          if (r.verdict === "clean" || r.verdict === "drifted" || r.verdict === "failed") this.set({ stack: r.stack }, r.verdict === "clean" ? 0 : r.verdict === "drifted" ? 1 : -1);
        }
      },
    });
  }

  /** Gauges read from the database on every scrape; `regions`: the platform regions (one stack-run queue each). */
  attach(runs: RunStore, pool: Pool, regions: readonly string[] = []): void {
    const queues = [QUEUES.reconcile, ...stackRunQueues(regions)];
    new client.Gauge({
      name: "tenancy_runs",
      help: "Stack runs by state (all processes).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      async collect() {
        const counts = await runs.countByState();
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    // Waiting work and deferred jobs apart: a grace-period re-check of a past_due subscription
    // sits in the reconcile queue for days (startAfter), and is not a backlog.
    const queueCounts = async (): Promise<Map<string, { ready: number; deferred: number }>> => {
      const { rows } = await pool.query<{ name: string; ready: string; deferred: string }>(
        `SELECT name, count(*) FILTER (WHERE start_after <= now()) AS ready, count(*) FILTER (WHERE start_after > now()) AS deferred
           FROM pgboss.job WHERE name = ANY($1) AND state IN ('created', 'retry') GROUP BY name`,
        [queues],
      );
      return new Map(rows.map((r) => [r.name, { ready: Number(r.ready), deferred: Number(r.deferred) }]));
    };
    new client.Gauge({
      name: "tenancy_queue_depth",
      help: "Jobs ready to be worked on in each pg-boss queue (created or retry, due now); deferred jobs are in tenancy_queue_deferred.",
      labelNames: ["queue"] as const,
      registers: [this.registry],
      async collect() {
        const counts = await queueCounts();
        for (const q of queues) this.set({ queue: q }, counts.get(q)?.ready ?? 0);
      },
    });
    new client.Gauge({
      name: "tenancy_queue_deferred",
      help: "Jobs scheduled for later in each pg-boss queue (e.g. the grace-period re-check of a past_due subscription); not waiting work.",
      labelNames: ["queue"] as const,
      registers: [this.registry],
      async collect() {
        const counts = await queueCounts();
        for (const q of queues) this.set({ queue: q }, counts.get(q)?.deferred ?? 0);
      },
    });
    new client.Gauge({
      name: "tenancy_runs_unserved",
      help: "Queued stack runs of a region that no live stack-run worker serves (TENANCY_WORKER_REGIONS): they wait until a runner of that region starts. Region \"unknown\": runs older than region routing whose stack no file places.",
      labelNames: ["region"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of regions) this.set({ region: r }, 0);
        for (const u of await runs.unserved()) this.set({ region: u.region ?? "unknown" }, u.queued);
      },
    });
  }
}
