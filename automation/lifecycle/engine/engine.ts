/**
 * The workflow engine: a workflow is a named list of steps; each completed step is a row in
 * lifecycle_steps, written in one transaction with whatever the step records in this database
 * (its backups). Running a workflow runs the steps that have no row yet, in order, so a process
 * that dies anywhere resumes at the step it was in. Every step is written to be idempotent: it
 * may have done all or part of its work before the crash and is run again from its start.
 *
 * One worker per tenant at a time: `run` holds a session advisory lock on the tenant for as long
 * as it works (a dead worker's connection drops and frees it), and requests that would change
 * which workflow a tenant has take the same lock. Steps may ask to wait (grace period, retention,
 * a snapshot being created): the workflow is parked with `wake_at` and `runDue` picks it up.
 */
import { schemaMigrationRefusal } from "../../schemaMigrations/guard.ts";
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { crashPoint } from "../../crashPoints.ts";
import { DEFAULT_LIFECYCLE_CONFIG, type LifecycleConfig } from "../config.ts";
import type { LifecyclePorts } from "../ports.ts";
import { runAttempt, retryDelayMs } from "./attempt.ts";
import { cancelInterrupts, cancelWorkflow, finishRequestedCancel } from "./cancel.ts";
import { watchCancel } from "./cancelWatch.ts";
import {
  OPEN_STATES, PermanentError, ProcessDeath, WorkflowConflictError, WorkflowNotFoundError,
  type BackupRecord, type EngineHooks, type JsonObject, type RunOutcome, type StepContext, type StepDef, type StepRecord, type StepResult,
  type WorkflowDef, type WorkflowKind, type WorkflowRecord,
} from "./definitions.ts";
import { tenantLockKey, type EngineInternals } from "./internals.ts";
import { retryWorkflow } from "./retry.ts";
import { toBackup, toRecord, type BackupRow, type WorkflowRow } from "./rows.ts";

// The engine's vocabulary, its attempts and its lock, for the workflows and callers that import them from here.
export * from "./definitions.ts";
export { backoffMs, retryDelayMs } from "./attempt.ts";
export { tenantLockKey } from "./internals.ts";
export { CancelRefusedError, WorkflowBusyError, WorkflowFinishedError } from "./cancel.ts";
export { CANCEL_CHANNEL, WorkflowCancelRequested } from "./cancelWatch.ts";

export class WorkflowEngine {
  private readonly defs: ReadonlyMap<WorkflowKind, WorkflowDef>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ports: LifecyclePorts,
    defs: readonly WorkflowDef[],
    private readonly config: LifecycleConfig = DEFAULT_LIFECYCLE_CONFIG,
    private readonly hooks: EngineHooks = {},
  ) {
    this.defs = new Map(defs.map((d) => [d.kind, d]));
  }

  private def(kind: WorkflowKind): WorkflowDef {
    const d = this.defs.get(kind);
    if (!d) throw new Error(`no workflow definition for kind ${JSON.stringify(kind)}; this engine runs ${[...this.defs.keys()].join(", ")}`);
    return d;
  }

  private now(): Date {
    return this.ports.clock.now();
  }

  // --- reading --------------------------------------------------------------------------------

  async get(id: string): Promise<WorkflowRecord | undefined> {
    const { rows } = await this.pool.query<WorkflowRow>("SELECT * FROM lifecycle_workflows WHERE id = $1", [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async openFor(tenantId: string): Promise<WorkflowRecord | undefined> {
    const { rows } = await this.pool.query<WorkflowRow>(
      "SELECT * FROM lifecycle_workflows WHERE tenant_id = $1 AND state = ANY($2::text[])",
      [tenantId, OPEN_STATES],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(tenantId: string): Promise<WorkflowRecord[]> {
    const { rows } = await this.pool.query<WorkflowRow>("SELECT * FROM lifecycle_workflows WHERE tenant_id = $1 ORDER BY created_at, id", [tenantId]);
    return rows.map(toRecord);
  }

  async steps(id: string): Promise<StepRecord[]> {
    const { rows } = await this.pool.query<{ step: string; ordinal: number; output: JsonObject; completed_at: Date }>(
      "SELECT step, ordinal, output, completed_at FROM lifecycle_steps WHERE workflow_id = $1 ORDER BY ordinal",
      [id],
    );
    return rows.map((r) => ({ step: r.step, ordinal: r.ordinal, output: r.output, completedAt: r.completed_at }));
  }

  async backups(filter: { workflowId: string } | { tenantId: string }): Promise<BackupRecord[]> {
    const [col, value] = "workflowId" in filter ? ["workflow_id", filter.workflowId] : ["tenant_id", filter.tenantId];
    const { rows } = await this.pool.query<BackupRow>(`SELECT * FROM lifecycle_backups WHERE ${col} = $1 ORDER BY id`, [value]);
    return rows.map(toBackup);
  }

  // --- requests -------------------------------------------------------------------------------

  /**
   * Records a new workflow (state pending). Refused while the tenant has another open workflow,
   * unless this kind may supersede it now (its rule's step not yet reached); the superseded
   * workflow is then cancelled in the same transaction.
   */
  async create(kind: WorkflowKind, tenantId: string, params: JsonObject, requestedBy?: string): Promise<WorkflowRecord> {
    const def = this.def(kind);
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const locked = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [tenantLockKey(tenantId)]);
      if (!locked.rows[0]?.ok) {
        throw new WorkflowConflictError(`a workflow step for tenant ${tenantId} is running right now; ask again when it has finished`);
      }
      const now = this.now();
      const open = await client.query<WorkflowRow>(
        "SELECT * FROM lifecycle_workflows WHERE tenant_id = $1 AND state = ANY($2::text[]) FOR UPDATE",
        [tenantId, OPEN_STATES],
      );
      const prior = open.rows[0] ? toRecord(open.rows[0]) : undefined;
      const id = randomUUID();
      if (def.schema === "moves") {
        const refusal = await schemaMigrationRefusal(client, tenantId, `the ${kind}`);
        if (refusal) throw new WorkflowConflictError(refusal);
      }
      if (prior) {
        const rule = def.supersedes?.find((r) => r.kind === prior.kind);
        if (!rule) {
          throw new WorkflowConflictError(
            `tenant ${tenantId} already has a workflow under way: ${prior.kind} ${prior.id} (${prior.state}${prior.currentStep ? ` at ${prior.currentStep}` : ""}); ` +
              `wait for it to finish or cancel it`,
          );
        }
        const reached = await this.reached(client, prior, rule.before);
        if (reached) {
          throw new WorkflowConflictError(
            `${kind} of tenant ${tenantId} is no longer possible: its ${prior.kind} workflow ${prior.id} has reached step ${reached} (allowed only before ${rule.before})`,
          );
        }
        await client.query(
          "UPDATE lifecycle_workflows SET state = 'cancelled', note = $2, updated_at = $3, finished_at = $3, wake_at = NULL WHERE id = $1",
          [prior.id, `superseded by ${kind} workflow ${id}`, now],
        );
      }
      const { rows } = await client.query<WorkflowRow>(
        `INSERT INTO lifecycle_workflows (id, kind, tenant_id, params, state, requested_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6) RETURNING *`,
        [id, kind, tenantId, JSON.stringify(params), requestedBy ?? null, now],
      );
      await client.query("COMMIT");
      return toRecord(rows[0]!);
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The first step at or after `boundary` that `wf` has started or completed, if any. */
  private async reached(client: pg.ClientBase, wf: WorkflowRecord, boundary: string): Promise<string | undefined> {
    const steps = this.def(wf.kind).steps.map((s) => s.name);
    const from = steps.indexOf(boundary);
    if (from < 0) throw new Error(`workflow ${wf.kind} has no step ${boundary}`);
    const after = new Set(steps.slice(from));
    if (wf.currentStep && after.has(wf.currentStep)) return wf.currentStep;
    const { rows } = await client.query<{ step: string }>("SELECT step FROM lifecycle_steps WHERE workflow_id = $1", [wf.id]);
    return rows.map((r) => r.step).find((s) => after.has(s));
  }

  /**
   * Cancels an open workflow. Between steps at once: what it did stays done, except what its
   * definition's `onCancelled` releases (run first, holding the tenant's lock as a step does, so no
   * worker or request comes between; when it fails the cancel is refused and nothing changes); the
   * record returned is `cancelled`. While a step runs (in any process): the request is recorded
   * and the record returned is still open with `cancelRequestedAt`; the process running the step
   * stops it when it is interruptible, or lets it end, and then ends the workflow the same way.
   */
  async cancel(id: string, note: string): Promise<WorkflowRecord> {
    return cancelWorkflow(this.internals(), id, note);
  }

  /** For a workflow whose cancel is recorded while a step runs: whether that step is stopped (true) or left to end (false). */
  cancelInterrupts(wf: WorkflowRecord): boolean {
    return cancelInterrupts(this.internals(), wf);
  }

  // --- running --------------------------------------------------------------------------------

  /** Runs every open workflow that is due (pending, retry time reached, or wait over). */
  async runDue(): Promise<RunOutcome[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      "SELECT id FROM lifecycle_workflows WHERE state = ANY($1::text[]) AND (wake_at IS NULL OR wake_at <= $2) ORDER BY created_at",
      [OPEN_STATES, this.now()],
    );
    const out: RunOutcome[] = [];
    for (const { id } of rows) out.push(await this.run(id));
    return out;
  }

  /**
   * Runs a workflow's remaining steps until it finishes, waits or fails. Returns `busy` when
   * another worker holds the tenant. A workflow parked until later is left alone unless `force`.
   */
  async run(id: string, opts: { force?: boolean } = {}): Promise<RunOutcome> {
    const first = await this.get(id);
    if (!first) throw new WorkflowNotFoundError(`no workflow ${id}`);
    const lock = await this.pool.connect();
    const key = tenantLockKey(first.tenantId);
    let locked = false;
    try {
      locked = (await lock.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [key])).rows[0]?.ok === true;
      if (!locked) return { id, state: "busy" };
      return await this.runLocked(id, opts.force === true, lock);
    } finally {
      if (locked) await lock.query("SELECT pg_advisory_unlock($1)", [key]).catch(() => undefined);
      lock.release();
    }
  }

  private async update(id: string, set: Record<string, unknown>): Promise<WorkflowRecord> {
    const keys = Object.keys(set);
    const assignments = keys.map((k, i) => `${k} = $${i + 2}`).join(", ");
    const { rows } = await this.pool.query<WorkflowRow>(
      `UPDATE lifecycle_workflows SET ${assignments}, updated_at = $${keys.length + 2} WHERE id = $1 RETURNING *`,
      [id, ...keys.map((k) => set[k]), this.now()],
    );
    return toRecord(rows[0]!);
  }

  /** What a step of `wf` (or its clean-up) runs with, but its signal. */
  private stepContext(wf: WorkflowRecord, step: string, outputs: Map<string, JsonObject> | readonly StepRecord[]): Omit<StepContext, "signal"> {
    const id = wf.id;
    const log = this.ports.log;
    return {
      workflow: wf,
      ports: this.ports,
      config: this.config,
      outputs: outputs instanceof Map ? outputs : new Map(outputs.map((s) => [s.step, s.output])),
      backups: () => this.backups({ workflowId: id }),
      workflowById: (other) => this.get(other),
      stepsOf: (other) => this.steps(other),
      runContext: (reason) => ({ workflowId: id, tenant: wf.tenantId, reason: `${wf.kind} ${step}: ${reason}` }),
      log: (fields, message) => log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step, ...fields }, message),
      point: async (name) => {
        await this.hooks.atPoint?.(wf, step, name);
      },
    };
  }

  /** `lock` holds the tenant's lock and is otherwise idle: a running interruptible step LISTENs on it for a cancel. */
  private async runLocked(id: string, force: boolean, lock: pg.ClientBase): Promise<RunOutcome> {
    let wf = (await this.get(id))!;
    if (!OPEN_STATES.includes(wf.state)) return { id, state: wf.state, step: wf.currentStep, error: wf.lastError };
    // Cancelled while a step ran in a process that died before it finished the cancel: never resumed.
    if (wf.cancelRequestedAt) {
      const cancelled = await finishRequestedCancel(this.internals(), wf);
      if (cancelled) return cancelled;
    }
    if (!force && wf.wakeAt && wf.wakeAt > this.now()) return { id, state: wf.state, step: wf.currentStep, wakeAt: wf.wakeAt };
    const def = this.def(wf.kind);
    const completed = await this.steps(id);
    const outputs = new Map(completed.map((s) => [s.step, s.output]));
    await this.update(id, { state: "running", wake_at: null });
    const log = this.ports.log;

    for (const [ordinal, step] of def.steps.entries()) {
      if (outputs.has(step.name)) continue;
      wf = await this.update(id, { current_step: step.name });
      // A cancel recorded while the previous step ran (it could not be interrupted) takes effect here.
      if (wf.cancelRequestedAt) {
        const cancelled = await finishRequestedCancel(this.internals(), wf);
        if (cancelled) return cancelled;
      }
      const ctx = this.stepContext(wf, step.name, outputs);
      const current = wf;
      const watch = step.interruptible ? await watchCancel(lock, this.pool, id, () => this.hooks.atPoint?.(current, step.name, "cancel.learned"), this.hooks.cancelPollMs) : undefined;
      let result: StepResult;
      try {
        log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: step.name, attempt: wf.attempts + 1 }, "step started");
        result = await runAttempt(step, ctx, watch?.signal);
      } catch (err) {
        if (err instanceof ProcessDeath) throw err;
        if (watch?.died) throw watch.died;
        // Stopped by the cancel, or failed while one was asked: the workflow ends cancelled, not failed.
        const now = await this.get(id);
        if (now?.cancelRequestedAt) {
          log.warn({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: step.name, error: err instanceof Error ? err.message : String(err) }, "step stopped: its workflow was cancelled");
        }
        const cancelled = now?.cancelRequestedAt ? await finishRequestedCancel(this.internals(), now) : undefined;
        return cancelled ?? this.failed(wf, step, err, ctx);
      } finally {
        await watch?.stop();
      }
      if (watch?.died) throw watch.died;
      if (result.kind === "wait") {
        const now = (await this.get(id))!;
        const cancelled = now.cancelRequestedAt ? await finishRequestedCancel(this.internals(), now) : undefined;
        if (cancelled) return cancelled;
      }
      if (result.kind === "wait") {
        wf = await this.update(id, { state: "waiting", wake_at: result.until, note: result.reason, attempts: 0, last_error: null });
        log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: step.name, until: result.until.toISOString() }, `waiting: ${result.reason}`);
        return { id, state: "waiting", step: step.name, wakeAt: result.until };
      }
      crashPoint("lifecycle.step", step.name);
      await this.hooks.afterEffects?.(wf, step.name);
      const output = result.output ?? {};
      const client = await this.pool.connect();
      try {
        await client.query("BEGIN");
        const now = this.now();
        for (const b of result.backups ?? []) {
          await client.query(
            `INSERT INTO lifecycle_backups (workflow_id, tenant_id, env, kind, location, bytes, sha256, detail, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [id, wf.tenantId, b.env, b.kind, b.location, b.bytes ?? null, b.sha256 ?? null, JSON.stringify(b.detail ?? {}), now],
          );
        }
        await client.query(
          "INSERT INTO lifecycle_steps (workflow_id, step, ordinal, output, completed_at) VALUES ($1, $2, $3, $4, $5)",
          [id, step.name, ordinal, JSON.stringify(output), now],
        );
        await client.query("UPDATE lifecycle_workflows SET attempts = 0, last_error = NULL, note = NULL, updated_at = $2 WHERE id = $1", [id, now]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
      outputs.set(step.name, output);
      log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: step.name }, "step completed");
      await this.hooks.afterRecord?.(wf, step.name);
    }
    const finished = this.now();
    wf = await this.update(id, { state: "succeeded", current_step: null, finished_at: finished });
    log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind }, "workflow succeeded");
    return { id, state: "succeeded", step: null };
  }

  private async failed(wf: WorkflowRecord, stepDef: StepDef, err: unknown, ctx: Omit<StepContext, "signal">): Promise<RunOutcome> {
    const step = stepDef.name;
    const message = err instanceof Error ? err.message : String(err);
    const attempts = wf.attempts + 1;
    const maxAttempts = Math.min(stepDef.policy?.maxAttempts ?? this.config.maxAttempts, this.config.maxAttempts);
    const permanent = err instanceof PermanentError || attempts >= maxAttempts;
    const fields = { workflowId: wf.id, tenantId: wf.tenantId, kind: wf.kind, step, attempt: attempts, maxAttempts, error: message };
    const def = this.def(wf.kind);
    if (permanent && def.onFailed) {
      try {
        await def.onFailed({ ...ctx, signal: new AbortController().signal }, message);
      } catch (cleanupErr) {
        this.ports.log.error({ ...fields, cleanupError: (cleanupErr as Error).message }, "the workflow's clean-up after its failure failed");
      }
    }
    if (permanent) {
      const out = await this.update(wf.id, { state: "failed", attempts, last_error: message, finished_at: this.now() });
      this.ports.log.error(fields, "workflow failed; an operator must look at it (the step can be retried after fixing the cause)");
      return { id: wf.id, state: out.state, step, error: message };
    }
    const wakeAt = new Date(this.now().getTime() + retryDelayMs(stepDef.policy, attempts));
    await this.update(wf.id, { state: "running", attempts, last_error: message, wake_at: wakeAt });
    this.ports.log.warn({ ...fields, retryAt: wakeAt.toISOString() }, "step failed; it will be retried");
    return { id: wf.id, state: "running", step, wakeAt, error: message };
  }

  /** The step a run of this workflow starts at: the first one without a completed row (null: none left). */
  async resumeStep(wf: WorkflowRecord): Promise<string | null> {
    const completed = new Set((await this.steps(wf.id)).map((s) => s.step));
    return this.def(wf.kind).steps.find((s) => !completed.has(s.name))?.name ?? null;
  }
  /**
   * Puts a failed workflow back in the queue at the step it failed in (after the cause is fixed):
   * state running, attempts 0, due now; `last_error` is kept until the step completes. Refused,
   * naming why, unless the workflow is failed; while the tenant has another workflow under way;
   * and when a later workflow of the tenant has done anything since (a resume after a failed
   * offboarding, say): this one would carry on from a tenant state it no longer knows, so a new
   * request is needed instead. A later workflow cancelled before its first step changed nothing
   * and does not count. Takes the tenant's lock like `create`, so it cannot race a new request.
   */
  async retry(id: string, opts: { by?: string; apiKey?: string } = {}): Promise<WorkflowRecord> {
    return retryWorkflow(this.internals(), id, opts);
  }

  /** What cancel.ts and retry.ts use of this engine. */
  private internals(): EngineInternals {
    return {
      pool: this.pool,
      log: this.ports.log,
      now: () => this.now(),
      def: (kind) => this.def(kind),
      get: (id) => this.get(id),
      steps: (id) => this.steps(id),
      stepContext: (wf, step, completed) => this.stepContext(wf, step, completed),
    };
  }
}
