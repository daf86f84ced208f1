/**
 * Stack runs: the durable record of every `pulumi up`, destroy and state move the control plane
 * asks for.
 *
 * Serialization per stack lives here, in PostgreSQL: partial unique indexes allow one queued and
 * one running run per stack, and every decision about a stack (enqueue, start, finish, take over)
 * holds a transaction-scoped advisory lock on the stack's name. A run gets its pg-boss job only
 * when its stack is free, so any worker that fetches a job can start it at once; different
 * stacks run in parallel up to the number of worker slots.
 *
 * A change that arrives while its stack already has a queued run joins that run: the run applies
 * the main branch's head when it starts, which includes every change committed before it. A
 * rollout's run is pinned to the rollout's program commit (`programCommit`): it applies that
 * commit's program with the head's fleet files (GitWriter.checkout); a change joining a pinned run
 * keeps the pin, a pinned request joining an unpinned run pins it (the newest pin wins).
 *
 * Every run has its stack's region (migration 004) and its job goes to that region's queue,
 * `stack-run-<region>`; a worker claims only runs of the regions it serves (docs/control-plane.md,
 * "Region routing"): only a region's runner can reach the region's databases.
 *
 * Around it: what a run record is (records.ts), reading runs and the worker registry (queries.ts,
 * which RunStore extends), takeovers' timing and conditions (takeover.ts), holds (holds.ts), the
 * one-trip claim and finish (oneTrip.ts) and their group commit (groupCommit.ts). What those
 * files define is exported from here as well: importers of the store need no other path.
 */
import type { Pool, PoolClient } from "pg";
import type { PgBoss } from "pg-boss";
import { lockKey, withTransaction, type Queryable } from "../db/tx.ts";
import { executor, type StackRunJob } from "../queue.ts";
import type { CliProcess } from "./cliProcess.ts";
import { LEGACY_STACK_RUN_QUEUE, StackRegionError, stackRunQueue } from "./regions.ts";
import { deleteHolds, describeHold, heldStacks, holdApplies, insertHolds, stacksHeldBy, type StackHold } from "./holds.ts";
import { TripBatcher } from "./groupCommit.ts";
import { claimItem, finishItem, runStacks } from "./oneTrip.ts";
import { RunQueries } from "./queries.ts";
import {
  RUN_EVENTS_CHANNEL, RUN_STATE_CHANNEL, RunConflictError, SUPERSEDED_PREVIEW, toRecord,
  type AttemptRecord, type EnqueuedRun, type RunCause, type RunOperation, type RunRecord, type RunRow, type StartDecision,
} from "./records.ts";
import { HANDOVER_NOT_FETCHED, runTakeoverDelaySeconds, SILENT_FOR_TIMEOUT, type ReapedRun } from "./takeover.ts";

export {
  RUN_EVENTS_CHANNEL, RUN_STATE_CHANNEL, RUN_STATES, RunConflictError, stateMoveOf, stateMoveSummaryOf, SUPERSEDED_PREVIEW,
  type AttemptRecord, type EnqueuedRun, type RunCause, type RunEventRow, type RunOperation, type RunOptions, type RunRecord, type RunState,
  type StartDecision, type StateMoveSummary,
} from "./records.ts";
export { IMMEDIATE_TAKEOVERS, MAX_TAKEOVER_DELAY_SECONDS, runTakeoverDelaySeconds, type ReapedRun } from "./takeover.ts";
export type { UnservedRegion } from "./queries.ts";

export interface RunStoreOptions {
  runExpireHours: number;
  heartbeatTimeoutSeconds: number;
  /** The platform regions: each has its queue (automation/queue.ts ensureQueues). */
  regions: readonly string[];
  /** The region of a stack (automation/runs/regions.ts stackRegion on the working copy); throws when unknown. */
  regionOf: (stack: string) => string;
  /**
   * Whether a run claimed in one round trip records the program in force for its stack
   * (automation/rollouts/inForce.ts) as its program commit in the claim (oneTrip.ts). Absent or
   * false: the claim pins nothing (the run worker's pinProgram, if any, pins after the claim).
   */
  pinPrograms?: boolean;
}

export class RunStore extends RunQueries {
  private queuedListeners = new Set<() => void>();

  /** The one-trip claims and finishes of this process, committed together when they coincide (groupCommit.ts). */
  readonly trips: TripBatcher;

  constructor(
    pool: Pool,
    private readonly boss: PgBoss,
    private readonly opts: RunStoreOptions,
  ) {
    super(pool, opts.heartbeatTimeoutSeconds);
    this.trips = new TripBatcher(pool);
  }

  /** Called after a transaction that sent run jobs commits (in-process workers fetch at once). */
  onJobsSent(listener: () => void): () => void {
    this.queuedListeners.add(listener);
    return () => this.queuedListeners.delete(listener);
  }

  private finishedListeners = new Set<(runId: string) => void>();

  /**
   * Called after a run's outcome is committed (in this process): the rollout engine ticks at once
   * instead of at its next interval, so a wave's next stack starts as soon as a slot frees.
   */
  onRunFinished(listener: (runId: string) => void): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  /** Tell in-process workers that run jobs were committed; callers of enqueue() call it after their commit. */
  jobsSent(): void {
    for (const l of this.queuedListeners) l();
  }

  private async lockStack(client: Queryable, stack: string): Promise<void> {
    await client.query("SELECT pg_advisory_xact_lock($1)", [lockKey(`stack:${stack}`)]);
  }

  /**
   * The stacks a run occupies while it runs: its own, and for a state move its source too (an
   * update of the source during the move could write the moved resources back). Locked in order.
   */
  private async lockRunStacks(client: Queryable, runId: string): Promise<string[] | undefined> {
    const pre = await client.query<{ stack: string; operation: RunOperation; source: string | null }>(
      "SELECT stack, operation, options->>'source' AS source FROM runs WHERE id = $1",
      [runId],
    );
    const row = pre.rows[0];
    if (!row) return undefined;
    const stacks = [...new Set([row.stack, ...(row.operation === "move" && row.source ? [row.source] : [])])].sort();
    for (const stack of stacks) await this.lockStack(client, stack);
    return stacks;
  }

  /** Whether a run is running on `stack`, or a running state move takes `stack` as its source. */
  private async busy(client: Queryable, stack: string): Promise<boolean> {
    const r = await client.query(
      "SELECT 1 FROM runs WHERE state = 'running' AND (stack = $1 OR (operation = 'move' AND options->>'source' = $1)) LIMIT 1",
      [stack],
    );
    return (r.rowCount ?? 0) > 0;
  }

  private async anyBusy(client: Queryable, stacks: readonly string[]): Promise<boolean> {
    for (const stack of stacks) if (await this.busy(client, stack)) return true;
    return false;
  }

  /**
   * The run's job goes to its region's queue (a run of unknown region: the legacy queue, which
   * every worker drains and reroutes from), due after `delaySeconds` (a takeover's backoff).
   */
  private async sendJob(client: Queryable, runId: string, delaySeconds = 0): Promise<string> {
    const { rows } = await client.query<{ region: string | null; stack: string; operation: string; source: string | null }>(
      "SELECT region, stack, operation, options->>'source' AS source FROM runs WHERE id = $1",
      [runId],
    );
    const queue = stackRunQueue(rows[0]?.region ?? null);
    const data: StackRunJob = { runId, ...(rows[0] ? { stacks: runStacks(rows[0].stack, rows[0].operation, rows[0].source) } : {}) };
    const jobId = await this.boss.send(queue, data, {
      db: executor(client),
      expireInSeconds: this.opts.runExpireHours * 3600,
      ...(delaySeconds > 0 ? { startAfter: new Date(Date.now() + delaySeconds * 1000) } : {}),
    });
    if (!jobId) throw new Error(`pg-boss did not create a job for run ${runId} on queue ${queue}`);
    await client.query("UPDATE runs SET job_id = $2, job_queue = $3 WHERE id = $1", [runId, jobId, queue]);
    return jobId;
  }

  /** Cancels a run's pending job on the queue it was sent to. */
  private async cancelJob(client: Queryable, run: Pick<RunRow, "job_id" | "job_queue">): Promise<void> {
    if (run.job_id) await this.boss.cancel(run.job_queue ?? LEGACY_STACK_RUN_QUEUE, run.job_id, { db: executor(client) });
  }

  /** The region of `stack`, one of the platform regions, or a StackRegionError saying why not. */
  regionOf(stack: string): string {
    const region = this.opts.regionOf(stack);
    if (!this.opts.regions.includes(region)) {
      throw new StackRegionError(`stack ${stack} is in ${region}, which is not a platform region (${this.opts.regions.join(", ")}): no runner can reach its databases; add the region to Pulumi.yaml's platform regions first`);
    }
    return region;
  }

  /**
   * Queues a run of `stack` inside the caller's transaction (so the change that needs the run and
   * the run commit together), or joins the stack's queued run.
   */
  async enqueue(client: PoolClient, stack: string, cause: RunCause): Promise<EnqueuedRun> {
    const operation = cause.operation ?? "up";
    const source = operation === "move" && typeof cause.options?.source === "string" ? cause.options.source : undefined;
    const region = this.regionOf(stack);
    for (const s of [...new Set([stack, ...(source ? [source] : [])])].sort()) await this.lockStack(client, s);
    // One queued run per stack and lane (state moves, everything else: migration 321).
    const queued = await client.query<{ id: string; operation: RunOperation; same: boolean }>(
      "SELECT id, operation, (operation = $2 AND options = $3::jsonb) AS same FROM runs WHERE stack = $1 AND state = 'queued' AND (operation = 'move') = ($2 = 'move')",
      [stack, operation, JSON.stringify(cause.options ?? {})],
    );
    let other = queued.rows[0];
    // A queued drift check gives way to a real change: the update is what matters, and the check
    // is scheduled again (automation/drift). It ends failed with a reason the scheduler knows.
    if (other && !other.same && other.operation === "preview" && operation !== "preview") {
      await client.query(
        "UPDATE runs SET state = 'failed', error = $2, finished_at = now() WHERE id = $1 AND state = 'queued'",
        [other.id, `${SUPERSEDED_PREVIEW}: ${stack} has an ${operation} queued; the drift check runs again later`],
      );
      await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, other.id]);
      other = undefined;
    }
    // Join the queued run only when it does the same thing.
    if (other && !other.same) {
      throw new RunConflictError(`stack ${stack} already has a queued ${other.operation} run ${other.id} with other options; retry once it has started`);
    }
    const { rows } = await client.query<{ id: string; inserted: boolean }>(
      `INSERT INTO runs (stack, operation, options, state, change_ids, reasons, api_keys, region, program_commit) VALUES ($1, $2, $3::jsonb, 'queued', $4::uuid[], $5::text[], $6::text[], $7, $8)
       ON CONFLICT (stack, (operation = 'move')) WHERE state = 'queued'
       DO UPDATE SET change_ids = runs.change_ids || EXCLUDED.change_ids, reasons = runs.reasons || EXCLUDED.reasons,
                     api_keys = runs.api_keys || ARRAY(SELECT k FROM unnest(EXCLUDED.api_keys) k WHERE k <> ALL (runs.api_keys)),
                     program_commit = COALESCE(EXCLUDED.program_commit, runs.program_commit)
       RETURNING id, (xmax = 0) AS inserted`,
      [stack, operation, JSON.stringify(cause.options ?? {}), cause.changeId ? [cause.changeId] : [], [cause.reason], cause.apiKey ? [cause.apiKey] : [], region, cause.programCommit ?? null],
    );
    const row = rows[0]!;
    if (row.inserted) {
      // A busy or held stack's queued run gets its job when the running run finishes (finish()) or the hold is released.
      if (!(await this.anyBusy(client, [stack, ...(source ? [source] : [])])) && !(await this.held(client, operation, [stack]))) await this.sendJob(client, row.id);
    }
    await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, row.id]);
    return { runId: row.id, stack, coalesced: !row.inserted };
  }

  /** Queues runs of several stacks in one transaction. */
  async enqueueAll(stacks: readonly string[], cause: RunCause): Promise<EnqueuedRun[]> {
    const out = await withTransaction(this.pool, async (client) => {
      const runs: EnqueuedRun[] = [];
      for (const stack of [...new Set(stacks)].sort()) runs.push(await this.enqueue(client, stack, cause));
      return runs;
    });
    this.jobsSent();
    return out;
  }

  /**
   * Claims a run for a worker serving `regions`: queued -> running, or takes over a running run
   * whose worker died. A run of another region is never claimed (the claim's UPDATE filters on
   * region); one whose job reached this worker on a queue not its region's (a job sent before
   * region routing) gets a new job on its region's queue instead.
   *
   * With the job's `stacks` (StackRunJob), a queued run free to start is claimed in one round trip
   * (oneTrip.ts, with the claims and finishes made at the same moment: groupCommit.ts), recording
   * `head` as its commit when it applies the head; anything else, and a job without them, goes
   * through the transaction below.
   */
  async start(runId: string, jobId: string, worker: string, runner: string, regions: readonly string[], fast?: { stacks?: readonly string[]; head?: string }): Promise<StartDecision> {
    if (fast?.stacks && fast.stacks.length > 0 && /^[0-9a-f-]{36}$/i.test(runId) && /^[0-9a-f-]{36}$/i.test(jobId)) {
      const claimed = await this.trips.run(claimItem<RunRow>(
        {
          runId, jobId, stacks: fast.stacks, worker, runner, regions, ...(fast.head ? { head: fast.head } : {}), startedAt: new Date().toISOString(),
          ...(this.opts.pinPrograms ? { pin: true } : {}),
        },
        RUN_STATE_CHANNEL,
      ));
      if (claimed) return { kind: "start", run: toRecord(claimed.row), attempt: claimed.row.attempts, recovering: false, tenants: claimed.tenants };
    }
    const decision = await withTransaction(this.pool, async (client): Promise<StartDecision | { kind: "rerouted"; reason: string }> => {
      const stacks = await this.lockRunStacks(client, runId);
      if (!stacks) return { kind: "skip", reason: `run ${runId} does not exist` };
      const { rows } = await client.query<RunRow>("SELECT * FROM runs WHERE id = $1 FOR UPDATE", [runId]);
      const run = rows[0]!;
      if (run.job_id !== jobId) return { kind: "skip", reason: `job ${jobId} no longer owns run ${runId}` };
      if (run.region === null || !regions.includes(run.region)) {
        const where = run.region ?? "an unknown region";
        if (run.region !== null && run.job_queue !== stackRunQueue(run.region) && (run.state === "queued" || run.state === "running")) {
          await this.sendJob(client, runId);
          return { kind: "rerouted", reason: `run ${runId} is in ${where}, not served here (${regions.join(", ") || "none"}); its job moved to ${stackRunQueue(run.region)}` };
        }
        return { kind: "skip", reason: `run ${runId} is in ${where}, not served here (${regions.join(", ") || "none"})` };
      }
      let recovering = false;
      if (run.state === "queued") {
        if (await this.anyBusy(client, stacks)) {
          // Its job is spent: the run gets a new one when what holds its stacks finishes (kickNext).
          await client.query("UPDATE runs SET job_id = NULL WHERE id = $1", [runId]);
          return { kind: "skip", reason: `stack ${stacks.join(" or ")} already has a running run` };
        }
        const hold = await this.held(client, run.operation, stacks);
        if (hold) {
          await client.query("UPDATE runs SET job_id = NULL WHERE id = $1", [runId]);
          return { kind: "skip", reason: describeHold(hold) };
        }
      } else if (run.state === "running") {
        const stale = run.heartbeat_at === null || Date.now() - run.heartbeat_at.getTime() > this.opts.heartbeatTimeoutSeconds * 1000;
        if (run.worker !== null && !stale) return { kind: "skip", reason: `run ${runId} is alive on ${run.worker}` };
        recovering = true;
      } else {
        return { kind: "skip", reason: `run ${runId} already ${run.state}` };
      }
      const attempt = run.attempts + 1;
      const entry: AttemptRecord = { attempt, worker, startedAt: new Date().toISOString() };
      // The region filter is in the claim itself: whatever the checks above say, a run of a
      // region this worker does not serve is not updated.
      const updated = await client.query<RunRow>(
        `UPDATE runs SET state = 'running', attempts = $2, worker = $3, runner = $4, heartbeat_at = now(), handover_due_at = NULL,
           started_at = COALESCE(started_at, now()),
           attempt_log = (SELECT COALESCE(jsonb_agg(CASE WHEN e->>'outcome' IS NULL THEN e || '{"outcome":"lost","message":"worker stopped sending heartbeats"}'::jsonb ELSE e END), '[]'::jsonb)
                          FROM jsonb_array_elements(attempt_log) e) || $5::jsonb
         WHERE id = $1 AND region = ANY($6::text[]) RETURNING *`,
        [runId, attempt, worker, runner, JSON.stringify([entry]), regions],
      );
      if (!updated.rows[0]) return { kind: "skip", reason: `run ${runId} is in ${run.region}, not served here (${regions.join(", ")})` };
      await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, runId]);
      return { kind: "start", run: toRecord(updated.rows[0]), attempt, recovering };
    });
    if (decision.kind === "rerouted") {
      this.jobsSent();
      return { kind: "skip", reason: decision.reason };
    }
    return decision;
  }

  /**
   * Fills the region of runs that have none (queued before region routing, of stacks the
   * migration could not place by name: dedicated stacks) from the repository. Runs whose region
   * stays unknown are left as they are and counted in tenancy_runs_unserved (region "unknown").
   */
  async backfillRegions(): Promise<{ filled: number; unknown: string[] }> {
    const { rows } = await this.pool.query<{ stack: string }>("SELECT DISTINCT stack FROM runs WHERE region IS NULL ORDER BY stack");
    let filled = 0;
    const unknown: string[] = [];
    for (const { stack } of rows) {
      let region: string;
      try {
        region = this.regionOf(stack);
      } catch (err) {
        if (!(err instanceof StackRegionError)) throw err;
        unknown.push(stack);
        continue;
      }
      const r = await this.pool.query("UPDATE runs SET region = $2 WHERE stack = $1 AND region IS NULL", [stack, region]);
      filled += r.rowCount ?? 0;
    }
    return { filled, unknown };
  }

  /** Records the commit a run applies. */
  async setCommit(runId: string, commit: string): Promise<void> {
    await this.pool.query("UPDATE runs SET commit_sha = $2 WHERE id = $1", [runId, commit]);
  }

  /** Records the CLI process an attempt just started (AttemptRecord.cli of its entry); only while the worker owns the attempt. */
  async recordCli(runId: string, worker: string, attempt: number, cli: CliProcess): Promise<void> {
    await this.pool.query(
      `UPDATE runs SET attempt_log = jsonb_set(attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text, 'cli'], $4::jsonb)
        WHERE id = $1 AND worker = $2 AND attempts = $3 AND state = 'running' AND jsonb_array_length(attempt_log) > 0`,
      [runId, worker, attempt, JSON.stringify(cli)],
    );
  }

  /** Refreshes the heartbeat; `lost` when another worker has taken the run over. */
  async heartbeat(runId: string, worker: string): Promise<{ lost: boolean; cancelRequested: boolean }> {
    const { rows } = await this.pool.query<{ cancel_requested_at: Date | null }>(
      "UPDATE runs SET heartbeat_at = now() WHERE id = $1 AND worker = $2 AND state = 'running' RETURNING cancel_requested_at",
      [runId, worker],
    );
    if (rows.length === 0) return { lost: true, cancelRequested: false };
    return { lost: false, cancelRequested: rows[0]!.cancel_requested_at !== null };
  }

  async appendEvents(runId: string, attempt: number, events: readonly unknown[]): Promise<void> {
    if (events.length === 0) return;
    // One statement: the rows and the notification (sent when it commits, after the rows are visible).
    await this.pool.query(
      `WITH added AS (INSERT INTO run_events (run_id, attempt, event)
         SELECT $1, $2, e FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(e, n) ORDER BY n)
       SELECT pg_notify($4, $1::text)`,
      [runId, attempt, JSON.stringify(events), RUN_EVENTS_CHANNEL],
    );
  }

  /**
   * running -> succeeded | failed, only by the worker that owns the run. Hands the stack to its
   * queued run, if any. Returns false when the worker no longer owned the run. Given the `run`
   * (its stacks), an outcome with no queued run waiting for the stacks is recorded in one round
   * trip (oneTrip.ts), with the claims and finishes made at the same moment (groupCommit.ts);
   * otherwise, or when that changed nothing, in the transaction below.
   */
  async finish(
    runId: string, worker: string, result: { state: "succeeded" | "failed"; output: unknown; error?: string },
    run?: Pick<RunRecord, "stack" | "operation" | "options">,
  ): Promise<boolean> {
    const closing = () => ({ endedAt: new Date().toISOString(), outcome: result.state, ...(result.error ? { message: result.error } : {}) });
    const fast = run
      ? await this.trips.run(finishItem({
          runId, worker, stacks: runStacks(run.stack, run.operation, typeof run.options.source === "string" ? run.options.source : null),
          state: result.state, output: result.output, ...(result.error !== undefined ? { error: result.error } : {}), done: closing(),
        }, RUN_STATE_CHANNEL))
      : false;
    const done = fast || await withTransaction(this.pool, async (client) => {
      const stacks = await this.lockRunStacks(client, runId);
      if (!stacks) return false;
      const done = closing();
      const { rowCount } = await client.query(
        `UPDATE runs SET state = $3, output = $4::jsonb, error = $5, finished_at = now(), heartbeat_at = NULL, handover_due_at = NULL,
           attempt_log = CASE WHEN jsonb_array_length(attempt_log) = 0 THEN attempt_log
                              ELSE jsonb_set(attempt_log, ARRAY[(jsonb_array_length(attempt_log) - 1)::text], (attempt_log -> -1) || $6::jsonb) END
         WHERE id = $1 AND worker = $2 AND state = 'running'`,
        [runId, worker, result.state, JSON.stringify(result.output ?? null), result.error ?? null, JSON.stringify(done)],
      );
      if (!rowCount) return false;
      for (const stack of stacks) await this.kickNext(client, stack);
      await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, runId]);
      return true;
    });
    if (done) {
      // Only the transaction may have given queued runs their jobs.
      if (!fast) this.jobsSent();
      for (const l of this.finishedListeners) l(runId);
    }
    return done;
  }

  /**
   * Gives a job to the queued runs `stack` was holding back: its own, and state moves out of it,
   * each when none of the stacks it needs is busy.
   */
  private async kickNext(client: Queryable, stack: string): Promise<void> {
    const next = await client.query<{ id: string; stack: string; operation: RunOperation; source: string | null }>(
      `SELECT id, stack, operation, CASE WHEN operation = 'move' THEN options->>'source' END AS source FROM runs
        WHERE state = 'queued' AND job_id IS NULL AND (stack = $1 OR (operation = 'move' AND options->>'source' = $1)) ORDER BY created_at`,
      [stack],
    );
    for (const row of next.rows) {
      if (!(await this.anyBusy(client, [row.stack, ...(row.source ? [row.source] : [])])) && !(await this.held(client, row.operation, [row.stack]))) await this.sendJob(client, row.id);
    }
  }

  /** The first hold keeping a run of `operation` on `stacks` from starting (holds.ts), if any. */
  private async held(client: Queryable, operation: RunOperation, stacks: readonly string[]): Promise<StackHold | undefined> {
    return holdApplies(operation) ? (await heldStacks(client, stacks))[0] : undefined;
  }

  /**
   * Holds `stacks` for `holder` (holds.ts): no update, destroy or drift check of them starts until
   * `release`. Idempotent. Returns the held runs already running, which the holder waits for.
   */
  async hold(stacks: readonly string[], holder: string, reason: string): Promise<RunRecord[]> {
    return withTransaction(this.pool, async (client) => {
      const sorted = [...new Set(stacks)].sort();
      for (const stack of sorted) await this.lockStack(client, stack);
      await insertHolds(client, sorted, holder, reason);
      const { rows } = await client.query<RunRow>("SELECT * FROM runs WHERE state = 'running' AND operation <> 'move' AND stack = ANY($1::text[]) ORDER BY created_at", [sorted]);
      return rows.map(toRecord);
    });
  }

  /** Releases every hold of `holder` and gives the runs they kept waiting their jobs. Returns the stacks released. */
  async release(holder: string): Promise<string[]> {
    const released = await withTransaction(this.pool, async (client) => {
      const stacks = await stacksHeldBy(client, holder);
      for (const stack of stacks) await this.lockStack(client, stack);
      await deleteHolds(client, holder);
      for (const stack of stacks) await this.kickNext(client, stack);
      return stacks;
    });
    this.jobsSent();
    return released;
  }

  /** The holds on `stacks`. */
  async holdsOn(stacks: readonly string[]): Promise<StackHold[]> {
    return heldStacks(this.pool, stacks);
  }

  /**
   * Runs whose worker stopped sending heartbeats (killed, host lost) get a fresh job, which a live
   * worker picks up and resumes (attempt + 1), at once or, after IMMEDIATE_TAKEOVERS lost
   * attempts, after runTakeoverDelaySeconds; it is never failed for it. A run handed over that way
   * (worker NULL, handover_due_at when its job is due) whose job was fetched but not claimed within
   * the timeout is handed over again: the process that fetched the job may have died before
   * claiming the run, leaving the job active until its expiry (hours). A job not yet fetched is
   * left to wait (HANDOVER_NOT_FETCHED).
   */
  async reapStale(): Promise<ReapedRun[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT r.id FROM runs r WHERE r.state = 'running' AND ${SILENT_FOR_TIMEOUT} AND ${HANDOVER_NOT_FETCHED}`,
      [this.opts.heartbeatTimeoutSeconds],
    );
    const reaped: ReapedRun[] = [];
    for (const { id } of rows) {
      const did = await withTransaction(this.pool, async (client): Promise<ReapedRun | false> => {
        const pre = await client.query<{ stack: string }>("SELECT stack FROM runs WHERE id = $1", [id]);
        await this.lockStack(client, pre.rows[0]!.stack);
        const cur = await client.query<RunRow>(
          `SELECT * FROM runs r WHERE r.id = $2 AND r.state = 'running' AND ${SILENT_FOR_TIMEOUT} AND ${HANDOVER_NOT_FETCHED} FOR UPDATE`,
          [this.opts.heartbeatTimeoutSeconds, id],
        );
        const run = cur.rows[0];
        if (!run) return false;
        await this.cancelJob(client, run);
        // worker NULL marks the run orphaned; the new job's worker takes it over. After
        // IMMEDIATE_TAKEOVERS lost attempts the job waits (runTakeoverDelaySeconds);
        // handover_due_at says when, so this handover is not reaped again before. heartbeat_at
        // keeps the dead worker's last heartbeat.
        const delay = runTakeoverDelaySeconds(run.attempts, this.opts.heartbeatTimeoutSeconds);
        await client.query("UPDATE runs SET worker = NULL, handover_due_at = now() + make_interval(secs => $2) WHERE id = $1", [id, delay]);
        await this.sendJob(client, id, delay);
        await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, id]);
        return { id, lostAttempts: run.attempts, delaySeconds: delay };
      });
      if (did) reaped.push(did);
    }
    reaped.push(...(await this.resendUnclaimed()));
    if (reaped.length > 0) this.jobsSent();
    return reaped;
  }

  /**
   * Queued runs whose job was fetched (pg-boss `active`) longer than the heartbeat timeout ago and
   * never claimed: the process that fetched it died between the fetch and the claim (a kill right
   * after a commit queued the run: the job is fetched at once). Without this the run stays queued
   * until the job expires (runExpireHours), and every run of its stack waits behind it. The run
   * gets a new job; the old one is cancelled, and a claim through it is refused (start() checks
   * that the job still owns the run), so a live but slow fetcher cannot start it twice.
   */
  private async resendUnclaimed(): Promise<ReapedRun[]> {
    const unclaimed = `r.state = 'queued' AND EXISTS (SELECT 1 FROM pgboss.job j WHERE j.name = r.job_queue AND j.id = r.job_id
      AND j.state = 'active' AND j.started_on < now() - make_interval(secs => $1))`;
    const { rows } = await this.pool.query<{ id: string }>(`SELECT r.id FROM runs r WHERE ${unclaimed}`, [this.opts.heartbeatTimeoutSeconds]);
    const resent: ReapedRun[] = [];
    for (const { id } of rows) {
      const did = await withTransaction(this.pool, async (client): Promise<ReapedRun | false> => {
        const pre = await client.query<{ stack: string }>("SELECT stack FROM runs WHERE id = $1", [id]);
        await this.lockStack(client, pre.rows[0]!.stack);
        const cur = await client.query<RunRow>(`SELECT * FROM runs r WHERE r.id = $2 AND ${unclaimed} FOR UPDATE`, [this.opts.heartbeatTimeoutSeconds, id]);
        const run = cur.rows[0];
        if (!run) return false;
        await this.cancelJob(client, run);
        await this.sendJob(client, id);
        await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, id]);
        return { id, lostAttempts: 0, delaySeconds: 0, unclaimedJob: true };
      });
      if (did) resent.push(did);
    }
    return resent;
  }

  /** Cancels a queued run at once; asks the worker of a running run to cancel it. */
  async requestCancel(runId: string): Promise<RunRecord | undefined> {
    return withTransaction(this.pool, async (client) => {
      const pre = await client.query<{ stack: string }>("SELECT stack FROM runs WHERE id = $1", [runId]);
      if (!pre.rowCount) return undefined;
      await this.lockStack(client, pre.rows[0]!.stack);
      const { rows } = await client.query<RunRow>("SELECT * FROM runs WHERE id = $1 FOR UPDATE", [runId]);
      const run = rows[0]!;
      if (run.state === "queued") {
        await this.cancelJob(client, run);
        await client.query(
          "UPDATE runs SET state = 'failed', cancel_requested_at = now(), finished_at = now(), error = 'cancelled before it started' WHERE id = $1",
          [runId],
        );
      } else if (run.state === "running") {
        await client.query("UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, now()) WHERE id = $1", [runId]);
      }
      await client.query("SELECT pg_notify($1, $2)", [RUN_STATE_CHANNEL, runId]);
      const after = await client.query<RunRow>("SELECT * FROM runs WHERE id = $1", [runId]);
      return toRecord(after.rows[0]!);
    });
  }
}
