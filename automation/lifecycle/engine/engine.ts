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
import { lockKey } from "../../db/tx.ts";
import { DEFAULT_LIFECYCLE_CONFIG, type LifecycleConfig } from "../config.ts";
import type { LifecyclePorts, RunContext } from "../ports.ts";

/** A workflow's kind: the engine knows only the definitions it is given (workflows/registry.ts). */
export type WorkflowKind = string;
export type WorkflowState = "pending" | "running" | "waiting" | "succeeded" | "failed" | "cancelled";
export const OPEN_STATES: readonly WorkflowState[] = ["pending", "running", "waiting"];

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** `value` as the JSON a step output holds (through JSON, so Dates become strings). */
export function json(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

export interface WorkflowRecord {
  id: string;
  kind: WorkflowKind;
  tenantId: string;
  params: JsonObject;
  state: WorkflowState;
  currentStep: string | null;
  wakeAt: Date | null;
  attempts: number;
  lastError: string | null;
  note: string | null;
  requestedBy: string | null;
  /** The internal API key that last retried it (POST /api/workflows/:id/retry). */
  retriedByApiKey: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export interface BackupInput {
  env: string;
  kind: "schema-dump" | "rds-snapshot" | "object-copy";
  location: string;
  bytes?: number;
  sha256?: string;
  detail?: JsonObject;
}

export interface BackupRecord extends Required<Omit<BackupInput, "bytes" | "sha256">> {
  id: string;
  workflowId: string;
  tenantId: string;
  bytes: number | null;
  sha256: string | null;
  recordedAt: Date;
}

export interface StepRecord {
  step: string;
  ordinal: number;
  output: JsonObject;
  completedAt: Date;
}

export type StepResult =
  | { kind: "done"; output?: JsonObject; backups?: readonly BackupInput[] }
  | { kind: "wait"; until: Date; reason: string };

export const done = (output?: JsonObject, backups?: readonly BackupInput[]): StepResult => ({
  kind: "done",
  ...(output ? { output } : {}),
  ...(backups ? { backups } : {}),
});
export const waitUntil = (until: Date, reason: string): StepResult => ({ kind: "wait", until, reason });

export interface StepContext {
  workflow: WorkflowRecord;
  ports: LifecyclePorts;
  config: LifecycleConfig;
  /** Outputs of the steps completed so far, by step name. */
  outputs: ReadonlyMap<string, JsonObject>;
  /** The backups recorded by this workflow, read from the database (never from memory). */
  backups(): Promise<BackupRecord[]>;
  /** Another workflow of this engine (e.g. the upgrade a rollback undoes). */
  workflowById(id: string): Promise<WorkflowRecord | undefined>;
  stepsOf(id: string): Promise<StepRecord[]>;
  runContext(reason: string): RunContext;
  log(fields: Record<string, unknown>, message: string): void;
  /** Aborted when the engine abandons this attempt (its policy's timeout); long steps should stop. */
  signal: AbortSignal;
  /** A named point inside the step (EngineHooks.atPoint): where a test may stand for kill -9 (ProcessDeath). */
  point?(name: string): Promise<void>;
}

/**
 * How the engine treats one step's attempts (declared beside the step, per kind of step:
 * workflows/policies.ts). Without one: no timeout, TENANCY_LIFECYCLE_MAX_ATTEMPTS attempts,
 * backoffMs between them.
 */
export interface StepPolicy {
  /** An attempt running longer is abandoned (its signal aborted) and recorded as a failed attempt. */
  timeoutMs?: number;
  /** Attempts before the workflow fails; capped by the configured maxAttempts (the operator's ceiling). */
  maxAttempts?: number;
  /** Delay before the next attempt after the n-th failure: initialMs * 2^(n-1), at most maxMs. */
  backoff?: { initialMs: number; maxMs: number };
}

export interface StepDef {
  name: string;
  run(ctx: StepContext): Promise<StepResult>;
  policy?: StepPolicy;
}

/** The attempt ran past its policy's timeout and was abandoned (a failed attempt, retried per policy). */
export class StepTimeoutError extends Error {}

export interface SupersedeRule {
  /** The open workflow kind this one may replace. */
  kind: WorkflowKind;
  /** Allowed only while the open workflow has neither started nor completed this step (or any later one). */
  before: string;
}

export interface WorkflowDef<K extends WorkflowKind = WorkflowKind> {
  kind: K;
  steps: readonly StepDef[];
  supersedes?: readonly SupersedeRule[];
  /**
   * What the workflow does to the tenant's schema (schemaMigrations/guard.ts): `moves` it to
   * another database (refused while the schema is mid-migration; its schemas wait in a fleet
   * migration while it is open), or `restores` it (no refusal, its schemas wait too).
   * @default - leaves the schema where it is
   */
  schema?: "moves" | "restores";
  /**
   * Runs once when the workflow fails for good (before its state is written), to release what
   * must not outlive it (the upgrade's replication slots). Must be idempotent; its error is
   * logged and does not change the outcome.
   */
  onFailed?(ctx: StepContext, error: string): Promise<void>;
  /**
   * Runs when an operator cancels the workflow (`cancel`), under the tenant's lock and before the
   * state is written: what a failure would release must not outlive a cancel either (a write
   * window left open by a killed process, the stacks' holds, the slots). Must be idempotent; when
   * it throws, the cancel is refused and the workflow is left as it was.
   */
  onCancelled?(ctx: StepContext, note: string): Promise<void>;
}

/**
 * Thrown only by test hooks (EngineHooks) to stand for the process dying (kill -9) at that point:
 * steps' clean-up paths rethrow it untouched and the engine records nothing for it, as nothing
 * runs after a kill; the next `run` resumes the step.
 */
export class ProcessDeath extends Error {}

/** A refusal that retrying cannot fix (a guard, an invalid tenant file): the workflow fails at once. */
export class PermanentError extends Error {}
/** A request the engine refuses (another workflow under way, a superseding rule not met). */
export class WorkflowConflictError extends Error {}
/** The workflow id names no workflow (a WorkflowConflictError, so callers that catch those still do). */
export class WorkflowNotFoundError extends WorkflowConflictError {}

/** Whether a string can be a workflow id (a UUID, as `create` makes them); check before querying with it. */
export function isWorkflowId(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}

export interface EngineHooks {
  /** After a step's effects, before its row is written (a crash here re-runs the step). */
  afterEffects?(workflow: WorkflowRecord, step: string): void | Promise<void>;
  /** After a step's row is committed (a crash here resumes at the next step). */
  afterRecord?(workflow: WorkflowRecord, step: string): void | Promise<void>;
  /** At a named point inside a step (StepContext.point); throwing ProcessDeath there stands for kill -9 at that point. */
  atPoint?(workflow: WorkflowRecord, step: string, point: string): void | Promise<void>;
}

export interface RunOutcome {
  id: string;
  state: WorkflowState | "busy";
  step?: string | null;
  wakeAt?: Date | null;
  error?: string | null;
}

interface WorkflowRow {
  id: string;
  kind: WorkflowKind;
  tenant_id: string;
  params: JsonObject;
  state: WorkflowState;
  current_step: string | null;
  wake_at: Date | null;
  attempts: number;
  last_error: string | null;
  note: string | null;
  requested_by: string | null;
  retried_by_api_key: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

function toRecord(r: WorkflowRow): WorkflowRecord {
  return {
    id: r.id, kind: r.kind, tenantId: r.tenant_id, params: r.params, state: r.state, currentStep: r.current_step,
    wakeAt: r.wake_at, attempts: r.attempts, lastError: r.last_error, note: r.note, requestedBy: r.requested_by,
    retriedByApiKey: r.retried_by_api_key,
    createdAt: r.created_at, updatedAt: r.updated_at, finishedAt: r.finished_at,
  };
}

interface BackupRow {
  id: string; workflow_id: string; tenant_id: string; env: string; kind: BackupInput["kind"]; location: string;
  bytes: string | null; sha256: string | null; detail: JsonObject; recorded_at: Date;
}

function toBackup(r: BackupRow): BackupRecord {
  return {
    id: r.id, workflowId: r.workflow_id, tenantId: r.tenant_id, env: r.env, kind: r.kind, location: r.location,
    bytes: r.bytes === null ? null : Number(r.bytes), sha256: r.sha256, detail: r.detail, recordedAt: r.recorded_at,
  };
}

/** The advisory lock a tenant's workflows serialize on. */
export function tenantLockKey(tenantId: string): number {
  return lockKey(`saas-tenancy:lifecycle:${tenantId}`);
}

/** Retry delay after the n-th failed attempt of a step: 1, 2, 4, ... minutes, at most an hour. */
export function backoffMs(attempt: number): number {
  return Math.min(60, 2 ** Math.max(0, attempt - 1)) * 60_000;
}

/** The delay before the next attempt of a step with `policy` after its n-th failed attempt. */
export function retryDelayMs(policy: StepPolicy | undefined, attempt: number): number {
  if (!policy?.backoff) return backoffMs(attempt);
  return Math.min(policy.backoff.maxMs, policy.backoff.initialMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * Runs one attempt of `step`; with a timeout in its policy, abandons it when the time is up:
 * its signal is aborted (a step that honours it stops) and StepTimeoutError is thrown. JavaScript
 * cannot kill the abandoned promise: steps are idempotent, and their side effects go through
 * ports that take the signal or are safe to repeat.
 */
async function runAttempt(step: StepDef, ctx: Omit<StepContext, "signal">): Promise<StepResult> {
  const controller = new AbortController();
  const attempt = step.run({ ...ctx, signal: controller.signal });
  const timeoutMs = step.policy?.timeoutMs;
  if (timeoutMs === undefined) return attempt;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new StepTimeoutError(`step ${step.name} did not finish within ${timeoutMs / 1000} s; the attempt was abandoned`);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([attempt, timedOut]);
  } finally {
    clearTimeout(timer);
    // The abandoned attempt may still settle; its outcome is no longer wanted.
    attempt.catch(() => undefined);
  }
}

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
   * Cancels an open workflow that is not running right now. What it did stays done, except what its
   * definition's `onCancelled` releases (run first, holding the tenant's lock as a step does, so no
   * worker or request comes between; when it fails the cancel is refused and nothing changes).
   */
  async cancel(id: string, note: string): Promise<WorkflowRecord> {
    const wf = await this.get(id);
    if (!wf) throw new WorkflowNotFoundError(`no workflow ${id}`);
    const client = await this.pool.connect();
    const key = tenantLockKey(wf.tenantId);
    let locked = false;
    try {
      locked = (await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [key])).rows[0]?.ok === true;
      if (!locked) throw new WorkflowConflictError(`workflow ${id} is running a step right now; cancel it when the step has finished`);
      const current = (await this.get(id))!;
      if (!OPEN_STATES.includes(current.state)) throw new WorkflowConflictError(`workflow ${id} is already ${current.state}`);
      const def = this.def(current.kind);
      if (def.onCancelled) {
        const ctx = this.stepContext(current, current.currentStep ?? "cancel", await this.steps(id));
        try {
          await def.onCancelled({ ...ctx, signal: new AbortController().signal }, note);
        } catch (err) {
          if (err instanceof ProcessDeath) throw err;
          const why = err instanceof Error ? err.message : String(err);
          this.ports.log.error({ workflowId: id, tenantId: current.tenantId, kind: current.kind, error: why }, "cancel refused: the workflow's clean-up failed");
          throw new WorkflowConflictError(
            `cancel of ${current.kind} workflow ${id} refused: its clean-up failed (${why}); the workflow is left ${current.state}` +
              `${current.currentStep ? ` at ${current.currentStep}` : ""} (its next attempt undoes a write window left open first); fix the cause and cancel again`,
          );
        }
      }
      const { rows } = await client.query<WorkflowRow>(
        `UPDATE lifecycle_workflows SET state = 'cancelled', note = $2, updated_at = $3, finished_at = $3, wake_at = NULL
          WHERE id = $1 AND state = ANY($4::text[]) RETURNING *`,
        [id, note, this.now(), OPEN_STATES],
      );
      if (!rows[0]) throw new WorkflowConflictError(`workflow ${id} is already ${wf.state}`);
      return toRecord(rows[0]);
    } finally {
      if (locked) await client.query("SELECT pg_advisory_unlock($1)", [key]).catch(() => undefined);
      client.release();
    }
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
      return await this.runLocked(id, opts.force === true);
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

  private async runLocked(id: string, force: boolean): Promise<RunOutcome> {
    let wf = (await this.get(id))!;
    if (!OPEN_STATES.includes(wf.state)) return { id, state: wf.state, step: wf.currentStep, error: wf.lastError };
    if (!force && wf.wakeAt && wf.wakeAt > this.now()) return { id, state: wf.state, step: wf.currentStep, wakeAt: wf.wakeAt };
    const def = this.def(wf.kind);
    const completed = await this.steps(id);
    const outputs = new Map(completed.map((s) => [s.step, s.output]));
    await this.update(id, { state: "running", wake_at: null });
    const log = this.ports.log;

    for (const [ordinal, step] of def.steps.entries()) {
      if (outputs.has(step.name)) continue;
      wf = await this.update(id, { current_step: step.name });
      const ctx = this.stepContext(wf, step.name, outputs);
      let result: StepResult;
      try {
        log.info({ workflowId: id, tenantId: wf.tenantId, kind: wf.kind, step: step.name, attempt: wf.attempts + 1 }, "step started");
        result = await runAttempt(step, ctx);
      } catch (err) {
        if (err instanceof ProcessDeath) throw err;
        return this.failed(wf, step, err, ctx);
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
    const first = await this.get(id);
    if (!first) throw new WorkflowNotFoundError(`no workflow ${id}`);
    const tenantId = first.tenantId;
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const locked = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1) AS ok", [tenantLockKey(tenantId)]);
      if (!locked.rows[0]?.ok) {
        throw new WorkflowConflictError(`a workflow step for tenant ${tenantId} is running right now; retry ${id} when it has finished`);
      }
      const wf = toRecord((await client.query<WorkflowRow>("SELECT * FROM lifecycle_workflows WHERE id = $1 FOR UPDATE", [id])).rows[0]!);
      const what = `${wf.kind} workflow ${id} of tenant ${tenantId}`;
      if (wf.state !== "failed") {
        const why =
          wf.state === "succeeded" ? "it has finished; there is nothing to retry"
          : wf.state === "cancelled" ? `a cancelled workflow is not resumed${wf.note ? ` (${wf.note})` : ""}; request a new one`
          : `it is still under way${wf.currentStep ? ` (at ${wf.currentStep}${wf.lastError ? `, last error: ${wf.lastError}` : ""})` : ""}; the lifecycle worker retries its steps itself`;
        throw new WorkflowConflictError(`${what} is ${wf.state}, not failed: only a failed workflow can be retried; ${why}`);
      }
      const open = await client.query<WorkflowRow>(
        "SELECT * FROM lifecycle_workflows WHERE tenant_id = $1 AND id <> $2 AND state = ANY($3::text[])",
        [tenantId, id, OPEN_STATES],
      );
      if (open.rows[0]) {
        const o = toRecord(open.rows[0]);
        throw new WorkflowConflictError(
          `tenant ${tenantId} has another workflow under way: ${o.kind} ${o.id} (${o.state}${o.currentStep ? ` at ${o.currentStep}` : ""}); ` +
            `wait for it to finish or cancel it, then retry ${id}`,
        );
      }
      const later = await client.query<WorkflowRow>(
        `SELECT w.* FROM lifecycle_workflows w
          WHERE w.tenant_id = $1 AND w.id <> $2 AND w.created_at >= $3
            -- (>=: on a tie, count it; a spurious refusal is safer than resuming past a later workflow)
            AND NOT (w.state = 'cancelled' AND w.current_step IS NULL AND NOT EXISTS (SELECT 1 FROM lifecycle_steps s WHERE s.workflow_id = w.id))
          ORDER BY w.created_at DESC LIMIT 1`,
        [tenantId, id, wf.createdAt],
      );
      if (later.rows[0]) {
        const l = toRecord(later.rows[0]);
        throw new WorkflowConflictError(
          `tenant ${tenantId} has had a later workflow since ${what} failed: ${l.kind} ${l.id} (${l.state}, requested ${l.createdAt.toISOString()}); ` +
            `retrying would carry on from a tenant state this workflow no longer knows: request a new ${wf.kind} instead`,
        );
      }
      const note = `retried${opts.by ? ` by ${opts.by}` : ""} after: ${wf.lastError ?? "(no error recorded)"}`;
      const { rows } = await client.query<WorkflowRow>(
        `UPDATE lifecycle_workflows SET state = 'running', attempts = 0, wake_at = NULL, finished_at = NULL, note = $2, updated_at = $3,
                retried_by_api_key = $4
          WHERE id = $1 RETURNING *`,
        [id, note, this.now(), opts.apiKey ?? null],
      );
      await client.query("COMMIT");
      const out = toRecord(rows[0]!);
      this.ports.log.info({ workflowId: id, tenantId, kind: out.kind, step: out.currentStep, by: opts.by ?? null, lastError: out.lastError }, "failed workflow retried");
      return out;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      // The one-open-workflow index: a request that did not take the tenant's lock got there first.
      if ((err as { code?: string }).code === "23505") throw new WorkflowConflictError(`tenant ${tenantId} has another workflow under way; retry ${id} when it has finished`);
      throw err;
    } finally {
      client.release();
    }
  }
}
