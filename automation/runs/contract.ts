/**
 * The run contract: what a runner (automation/runs/runner.ts: the local Automation-API runner and
 * Pulumi Deployments) is given for one run and what it reports back. The worker, the state move
 * and drift detection depend on this, not on a runner.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import type { DriftedResource } from "../drift/events.ts";
import type { Logger } from "../log.ts";
import type { CliProcess } from "./cliProcess.ts";
import type { StateMoveSummary } from "./store.ts";

export interface RunContext {
  runId: string;
  stack: string;
  /** Checkout of `commit` holding Pulumi.yaml (local runner). */
  workDir: string;
  commit: string;
  attempt: number;
  /** A previous attempt died mid-update: cancel whatever it left running/locked first. */
  recovering: boolean;
  signal: AbortSignal;
  onEvent: (event: EngineEvent) => void;
  onOutput: (text: string) => void;
  log: Logger;
  /**
   * Each Pulumi CLI process the local runner starts for this attempt, as soon as it exists (the
   * worker records it with the attempt: automation/runs/cliProcess.ts). Not called for a CLI
   * implementation passed in process (tests).
   */
  onCliProcess?: (p: CliProcess) => void;
}

export interface RunOutcome {
  /** The update summary the CLI reported (`pulumi stack history`). */
  summary: unknown;
  /** Stack outputs after an up; empty after a destroy. */
  outputs: Record<string, unknown>;
  /** How many ConcurrentUpdateError retries it took. */
  concurrentUpdateRetries: number;
  stdoutTail: string;
}

export interface DestroyOptions {
  /** Lift `protect` on every resource of the stack first (`pulumi state unprotect --all`). */
  unprotect: boolean;
}

/** A state move into the run's stack (ctx.stack is the destination). */
export interface StateMoveRequest {
  /** The stack the resources leave. */
  source: string;
  /** URNs in `source`; their children move with them (Pulumi's rule). */
  urns: readonly string[];
}

export interface StateMoveRunOutcome extends RunOutcome {
  /** The move's outcome; the worker stores it as the run's output.summary. */
  summary: StateMoveSummary;
}

export interface Runner {
  readonly kind: "local" | "deployments";
  up(ctx: RunContext): Promise<RunOutcome>;
  destroy(ctx: RunContext, opts: DestroyOptions): Promise<RunOutcome>;
  /** `pulumi state move` of `move.urns` from `move.source` into ctx.stack (moveStateThrough). */
  moveState(ctx: RunContext, move: StateMoveRequest): Promise<StateMoveRunOutcome>;
  /** A drift check: `pulumi preview --refresh`; changes nothing. Its summary is a DriftCheckSummary. */
  preview(ctx: RunContext): Promise<DriftCheckRunOutcome>;
}

/** What a drift check reports, in the run record's `output.summary`. */
export interface DriftCheckSummary {
  kind: "drift-check";
  /** The preview's change counts by op (same, update, ...). */
  changeSummary: Record<string, number>;
  /** Resources whose step is not a no-op after the refresh: the drift. */
  resources: DriftedResource[];
}

export interface DriftCheckRunOutcome extends RunOutcome {
  summary: DriftCheckSummary;
}

export interface RetryOptions {
  retries: number;
  baseMs: number;
}
