/**
 * The lifecycle engine's vocabulary: what a workflow definition, a step, its result and its policy
 * are, the records the engine keeps (workflows, steps, backups), the errors it answers with and
 * the hooks tests stand in with. The engine (engine.ts) runs definitions; workflows/* declare them.
 */
import type { LifecycleConfig } from "../config.ts";
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
  /**
   * When an operator asked to cancel it while a step was running (the step's process ends it
   * cancelled: engine/cancelWatch.ts); null otherwise. The note it will end with is kept beside it.
   */
  cancelRequestedAt: Date | null;
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
  /**
   * Aborted when the engine abandons this attempt (its policy's timeout) or, for an `interruptible`
   * step, when an operator cancels the workflow (engine/cancelWatch.ts); long steps should stop.
   */
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
  /**
   * An operator's cancel may stop a running attempt of this step: its signal is aborted and the
   * step stops promptly, leaving nothing its workflow's `onCancelled` does not release (the copy:
   * its COPY streams and sessions ended, the target transaction rolled back). Without it a cancel
   * waits for the attempt to end and takes effect before the next step.
   * @default false
   */
  interruptible?: boolean;
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
  /**
   * A cancel is refused once this step has completed (the upgrade's and the move's switch: the
   * tenant serves from its new place, and only the workflow's own clean-up removes the old copy
   * and the file's record of the change).
   * @default - cancellable while open
   */
  cancelUntil?: string;
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
  /** How often a running interruptible step's process reads its row for a cancel (default CANCEL_POLL_MS): tests isolate NOTIFY from polling. */
  cancelPollMs?: number;
}

export interface RunOutcome {
  id: string;
  state: WorkflowState | "busy";
  step?: string | null;
  wakeAt?: Date | null;
  error?: string | null;
}
