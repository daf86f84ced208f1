/**
 * Scheduled drift detection (docs/drift.md): every stack of the fleet gets a `pulumi preview
 * --refresh` once per period, at most `concurrency` at a time, as a run of operation `preview` on
 * the run queue (so it never overlaps an update of that stack and a queued update makes it give
 * way). First checks are spread over one period by a stable hash of the stack name, so a new
 * fleet does not saturate the runner. Drift is reported, never fixed: remediation is a normal
 * run a person starts.
 */
import { createHash } from "node:crypto";
import type { Pool } from "pg";
import { withTransaction, lockKey } from "../db/tx.ts";
import type { DriftCheckSummary } from "../runs/contract.ts";
import { RunConflictError, SUPERSEDED_PREVIEW, type RunStore } from "../runs/store.ts";
import type { DriftedResource } from "./events.ts";
import type { DriftSettings } from "./settings.ts";

export const DRIFT_STATES = ["unchecked", "checking", "clean", "drifted", "failed"] as const;
export type DriftState = (typeof DRIFT_STATES)[number];
const TICK_LOCK = lockKey("tenancy:drift:tick");

export interface StackDrift {
  stack: string;
  state: DriftState;
  /** While a check runs: the verdict before it. */
  previous: "clean" | "drifted" | "failed" | null;
  runId: string | null;
  resources: DriftedResource[];
  error: string | null;
  checkedAt: string | null;
  dueAt: string;
}

interface Row {
  stack: string; state: DriftState; previous: StackDrift["previous"]; run_id: string | null; resources: DriftedResource[];
  error: string | null; checked_at: Date | null; due_at: Date;
}
const toDrift = (r: Row): StackDrift => ({
  stack: r.stack, state: r.state, previous: r.previous, runId: r.run_id, resources: r.resources, error: r.error,
  checkedAt: r.checked_at?.toISOString() ?? null, dueAt: r.due_at.toISOString(),
});

/** A stack's first check: a stable point within the first period. */
export function firstCheckOffsetMs(stack: string, periodMs: number): number {
  return createHash("sha256").update(stack).digest().readUInt32BE(0) % Math.max(1, Math.floor(periodMs));
}

export class DriftScheduler {
  constructor(
    private readonly pool: Pool,
    private readonly runs: RunStore,
    /** The fleet's stacks right now (the working copy's stack files). */
    private readonly stacks: () => readonly string[] | Promise<readonly string[]>,
    private readonly settings: DriftSettings,
  ) {}

  /** Records finished checks, then queues the due ones within the concurrency. Returns the stacks queued. */
  async tick(): Promise<string[]> {
    const stacks = [...new Set(await this.stacks())].sort();
    const started = await withTransaction(this.pool, async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [TICK_LOCK]);
      // New stacks get a row, due within the first period; stacks gone from the fleet lose theirs.
      await c.query(
        `INSERT INTO stack_drift (stack, state, due_at)
         SELECT s, 'unchecked', now() + make_interval(secs => o / 1000.0) FROM unnest($1::text[], $2::bigint[]) AS x(s, o)
         ON CONFLICT (stack) DO NOTHING`,
        [stacks, stacks.map((s) => firstCheckOffsetMs(s, this.settings.periodMs))],
      );
      await c.query("DELETE FROM stack_drift WHERE NOT (stack = ANY($1::text[])) AND state <> 'checking'", [stacks]);

      // Finished checks.
      const done = (await c.query<{ stack: string; previous: StackDrift["previous"]; state: "succeeded" | "failed"; error: string | null; output: { summary?: DriftCheckSummary } | null }>(
        `SELECT d.stack, d.previous, r.state, r.error, r.output FROM stack_drift d JOIN runs r ON r.id = d.run_id
          WHERE d.state = 'checking' AND r.state IN ('succeeded', 'failed')`,
      )).rows;
      for (const d of done) {
        if (d.state === "failed" && d.error?.startsWith(SUPERSEDED_PREVIEW)) {
          // Gave way to an update: nothing was checked; due again at once.
          await c.query("UPDATE stack_drift SET state = COALESCE(previous, 'unchecked'), previous = NULL, run_id = NULL, due_at = now(), updated_at = now() WHERE stack = $1", [d.stack]);
          continue;
        }
        const resources = d.state === "succeeded" ? (d.output?.summary?.resources ?? []) : [];
        const verdict = d.state === "failed" ? "failed" : resources.length > 0 ? "drifted" : "clean";
        await c.query(
          `UPDATE stack_drift SET state = $2, previous = NULL, resources = $3::jsonb, error = $4, checked_at = now(),
             due_at = now() + make_interval(secs => $5::double precision / 1000), updated_at = now() WHERE stack = $1`,
          [d.stack, verdict, JSON.stringify(resources), d.state === "failed" ? d.error : null, this.settings.periodMs],
        );
      }

      // Due checks, oldest due first, within the concurrency.
      const inFlight = Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM stack_drift WHERE state = 'checking'")).rows[0]!.n);
      let free = this.settings.concurrency - inFlight;
      if (free <= 0) return [];
      const due = (await c.query<{ stack: string; state: DriftState }>(
        `SELECT d.stack, d.state FROM stack_drift d
          WHERE d.state <> 'checking' AND d.due_at <= now()
            AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.stack = d.stack AND r.state IN ('queued', 'running'))
          ORDER BY d.due_at, d.stack LIMIT $1`,
        [free],
      )).rows;
      const queued: string[] = [];
      for (const d of due) {
        if (free <= 0) break;
        await c.query("SAVEPOINT drift_enqueue");
        try {
          const { runId } = await this.runs.enqueue(c, d.stack, { operation: "preview", reason: "drift check (scheduled)" });
          await c.query(
            "UPDATE stack_drift SET state = 'checking', previous = $2, run_id = $3, updated_at = now() WHERE stack = $1",
            [d.stack, d.state === "unchecked" ? null : d.state, runId],
          );
          await c.query("RELEASE SAVEPOINT drift_enqueue");
          queued.push(d.stack);
          free--;
        } catch (err) {
          await c.query("ROLLBACK TO SAVEPOINT drift_enqueue");
          if (!(err instanceof RunConflictError)) throw err;
        }
      }
      return queued;
    });
    if (started.length > 0) this.runs.jobsSent();
    return started;
  }

  /** Makes a stack's check due now (a person asked); false when one is already under way or the stack is unknown. */
  async checkNow(stack: string): Promise<boolean> {
    const { rowCount } = await this.pool.query("UPDATE stack_drift SET due_at = now(), updated_at = now() WHERE stack = $1 AND state <> 'checking'", [stack]);
    return (rowCount ?? 0) > 0;
  }

  async list(filter: { stacks?: readonly string[] } = {}): Promise<StackDrift[]> {
    const { rows } = filter.stacks
      ? await this.pool.query<Row>("SELECT * FROM stack_drift WHERE stack = ANY($1::text[]) ORDER BY stack", [filter.stacks])
      : await this.pool.query<Row>("SELECT * FROM stack_drift ORDER BY stack");
    return rows.map(toDrift);
  }
}
