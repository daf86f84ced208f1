/**
 * What a run is, as the control plane records it (the runs table) and hands it around: its states,
 * operations and options, its attempts, the record read back from a row (toRecord), what a state
 * move asks for and reports, the decisions of a claim, and the channels run changes are notified
 * on. RunStore (store.ts) writes these; everything that shows or waits for runs reads them.
 */
import type { CliProcess } from "./cliProcess.ts";

export const RUN_STATES = ["queued", "running", "succeeded", "failed"] as const;
export type RunState = (typeof RUN_STATES)[number];
/** The error of a queued drift check that gave way to an update of its stack (see enqueue). */
export const SUPERSEDED_PREVIEW = "superseded by an update";
/** NOTIFY channels: a run's events were appended / a run changed state. Payload: the run id. */
export const RUN_EVENTS_CHANNEL = "tenancy_run_events";
export const RUN_STATE_CHANNEL = "tenancy_run_state";

export interface AttemptRecord {
  attempt: number;
  worker: string;
  startedAt: string;
  endedAt?: string;
  outcome?: "succeeded" | "failed" | "lost";
  message?: string;
  /** The attempt's latest Pulumi CLI process (local runner): a takeover ends it first if it still runs. */
  cli?: CliProcess;
}

/**
 * up: `pulumi up`; destroy: `pulumi destroy` (offboarding); move: `pulumi state move` of
 * `options.urns` from `options.source` into the run's stack (migration 002); preview: a drift check,
 * `pulumi preview --refresh`, which changes nothing (migration 201).
 */
export type RunOperation = "up" | "destroy" | "move" | "preview";

export interface RunOptions {
  /** destroy only: lift `protect` on every resource of the stack first (offboarding). */
  unprotect?: boolean;
  /** Why protection may be lifted (kept with the run for audit). */
  release?: Record<string, unknown>;
  /** move only: the stack the resources leave (the run's own stack is the destination). */
  source?: string;
  /** move only: URNs in `source` (their children move with them). */
  urns?: string[];
}

/**
 * What a move run reports, in the run record's `output.summary` (where an up keeps the update
 * summary the CLI reported): each URN asked for in exactly one of moved, alreadyMoved, missing.
 */
export interface StateMoveSummary {
  kind: "state-move";
  source: string;
  dest: string;
  /** Moved by this run. */
  moved: string[];
  /** Not in the source, in the destination under the renamed URN (an earlier move). */
  alreadyMoved: string[];
  /** In neither stack. */
  missing: string[];
  /** Not asked for: children of `moved` that moved with them (Pulumi's rule), when there were any. */
  children?: string[];
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/** The move a run record asks for; throws, naming the run, when its options do not hold one. */
export function stateMoveOf(run: Pick<RunRecord, "id" | "stack" | "operation" | "options">): { source: string; urns: string[] } {
  const { source, urns } = run.options;
  if (run.operation !== "move" || typeof source !== "string" || source === "" || !isStringArray(urns) || urns.length === 0) {
    throw new Error(
      `run ${run.id} of ${run.stack} is not a state move with a source and URNs (operation ${run.operation}, options ${JSON.stringify(run.options)}); ` +
        "queue moves with operation \"move\" and options { source, urns }",
    );
  }
  return { source, urns };
}

/** The outcome a finished move run recorded (output.summary), or undefined when it holds none. */
export function stateMoveSummaryOf(run: Pick<RunRecord, "output">): StateMoveSummary | undefined {
  const output = run.output;
  if (typeof output !== "object" || output === null || !("summary" in output)) return undefined;
  const s: unknown = output.summary;
  if (typeof s !== "object" || s === null) return undefined;
  const r = s as Record<string, unknown>;
  if (r.kind !== "state-move" || typeof r.source !== "string" || typeof r.dest !== "string") return undefined;
  if (!isStringArray(r.moved) || !isStringArray(r.alreadyMoved) || !isStringArray(r.missing)) return undefined;
  const children = isStringArray(r.children) ? { children: r.children } : {};
  return { kind: "state-move", source: r.source, dest: r.dest, moved: r.moved, alreadyMoved: r.alreadyMoved, missing: r.missing, ...children };
}

export interface RunRecord {
  id: string;
  stack: string;
  /** The stack's region: only a worker serving it may run it (null: a run older than region routing whose stack no file names). */
  region: string | null;
  operation: RunOperation;
  options: RunOptions;
  state: RunState;
  runner: string | null;
  changeIds: string[];
  reasons: string[];
  /** The internal API keys whose requests this run serves (docs/security.md). */
  apiKeys: string[];
  commit: string | null;
  /** The program revision the run applies (a rollout's commit, or the program in force for its stack recorded when the run starts: automation/rollouts/inForce.ts); null: not pinned (queued, or no pin configured: the head as it is). */
  programCommit: string | null;
  attempts: number;
  attemptLog: AttemptRecord[];
  cancelRequested: boolean;
  output: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The last heartbeat of the worker that runs it (or ran it, when it died). */
  heartbeatAt: string | null;
  /** A run whose worker died: when its handover to another worker is due (null once claimed). */
  handoverDueAt: string | null;
}

export interface EnqueuedRun {
  runId: string;
  stack: string;
  /** True when the change joined a run that was already queued for the stack. */
  coalesced: boolean;
}

export interface RunCause {
  changeId?: string;
  reason: string;
  /** The internal API key that asked (by name). */
  apiKey?: string;
  /** Default up. */
  operation?: RunOperation;
  options?: RunOptions;
  /**
   * Apply the program of this commit (with the head's tenant and stack files) instead of the
   * head's program: a rollout's runs (docs/rollouts.md). Absent: the head as it is.
   */
  programCommit?: string;
}

/** A stack already has a queued run of the other operation; retry once it has started. */
export class RunConflictError extends Error {}

export type StartDecision =
  | {
      kind: "start"; run: RunRecord; attempt: number; recovering: boolean;
      /** The tenants of the run's changes, when the claim read them (oneTrip.ts). */
      tenants?: string[];
    }
  | { kind: "skip"; reason: string };

export interface RunEventRow {
  id: string;
  attempt: number;
  at: string;
  event: unknown;
}

/** A row of the runs table as pg returns it (`SELECT *`). */
export interface RunRow {
  id: string;
  stack: string;
  region: string | null;
  job_queue: string | null;
  operation: RunOperation;
  options: RunOptions;
  state: RunState;
  runner: string | null;
  change_ids: string[];
  reasons: string[];
  api_keys: string[];
  commit_sha: string | null;
  program_commit: string | null;
  attempts: number;
  attempt_log: AttemptRecord[];
  cancel_requested_at: Date | null;
  output: unknown;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  heartbeat_at: Date | null;
  handover_due_at: Date | null;
  job_id: string | null;
  worker: string | null;
}

export function toRecord(r: RunRow): RunRecord {
  const iso = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: r.id,
    stack: r.stack,
    region: r.region,
    operation: r.operation,
    options: r.options,
    state: r.state,
    runner: r.runner,
    changeIds: r.change_ids,
    reasons: r.reasons,
    apiKeys: r.api_keys,
    commit: r.commit_sha,
    programCommit: r.program_commit,
    attempts: r.attempts,
    attemptLog: r.attempt_log,
    cancelRequested: r.cancel_requested_at !== null,
    output: r.output,
    error: r.error,
    createdAt: r.created_at.toISOString(),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
    heartbeatAt: iso(r.heartbeat_at),
    handoverDueAt: iso(r.handover_due_at),
  };
}
