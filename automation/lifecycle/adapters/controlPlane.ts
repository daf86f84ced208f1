/**
 * The lifecycle ports satisfied by the control plane's own modules (docs/lifecycle.md):
 *
 * - FleetRepo  -> GitWriter.change(): validated with the tenantctl model, committed on the main
 *   branch (route "main": the workflow is the authority that asked for the change, so no pull
 *   request), cause `workflow` with the workflow id cited in the commit. The writer also queues
 *   runs of the stacks a change touches; the workflows do not rely on those runs and ask for
 *   the runs they need (below), which join or follow them on the per-stack queue.
 * - StackRunner -> RunStore: a run queued on the per-stack queue (never overlapping another run of
 *   the stack) and waited for; `destroy` with a ProtectionRelease becomes a destroy run with
 *   `unprotect` (the local runner runs `pulumi state unprotect --all --yes` through the same
 *   PulumiCommand first) and the release kept with the run for audit. `moveState` waits until the
 *   source stack has no queued or running run, then queues a move run on the destination stack
 *   (so it never overlaps another run of the destination) and reads the outcome from the run's
 *   output.summary.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import type { GitWriter } from "../../git/writer.ts";
import { RunConflictError, stateMoveSummaryOf, type EnqueuedRun, type RunCause, type RunRecord, type RunState } from "../../runs/store.ts";
import type { StackHold } from "../../runs/holds.ts";
import {
  InvalidChangeError,
  type FleetChange,
  type FleetRepo,
  type ProtectionRelease,
  type RunContext,
  type RunOutcome,
  type StackRunner,
  type StateMove,
  type StateMoveOutcome,
} from "../ports.ts";

export class GitWriterFleetRepo implements FleetRepo {
  readonly root: string;
  constructor(private readonly writer: GitWriter) {
    this.root = resolve(writer.repoDir);
  }

  async read(path: string): Promise<string | undefined> {
    const abs = resolve(this.root, path);
    if (!abs.startsWith(this.root + sep)) throw new Error(`${path} is outside the repository`);
    return existsSync(abs) ? readFileSync(join(abs), "utf8") : undefined;
  }

  async commit(change: FleetChange): Promise<string | undefined> {
    const { value, results } = await this.writer.change((draft) =>
      draft.stage({
        tenantId: change.tenantId,
        summary: change.summary,
        files: change.files,
        cause: { source: "workflow", ids: [change.workflowId], actor: "lifecycle" },
        route: "main",
      }),
    );
    if (value.kind === "unchanged") return undefined;
    const result = value.kind === "rejected" ? value.result : results.find((r) => r.changeId === value.changeId);
    if (!result) throw new Error(`the git writer returned no result for change ${value.kind === "staged" ? value.changeId : ""}`);
    if (result.state === "rejected") throw new InvalidChangeError(result.problems);
    return result.commit;
  }
}

/** What the runner needs of the control plane's RunStore. */
export interface RunQueue {
  enqueueAll(stacks: readonly string[], cause: RunCause): Promise<EnqueuedRun[]>;
  waitFor(runId: string, opts?: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal }): Promise<RunRecord>;
  list(filter?: { stacks?: readonly string[]; states?: readonly RunState[]; limit?: number }): Promise<RunRecord[]>;
  hold(stacks: readonly string[], holder: string, reason: string): Promise<RunRecord[]>;
  release(holder: string): Promise<string[]>;
  holdsOn(stacks: readonly string[]): Promise<StackHold[]>;
}

export interface RunWaitOptions {
  /** Longest wait for one run (an RDS creation takes tens of minutes). Default 3 h. */
  timeoutMs?: number;
  pollMs?: number;
  /**
   * How many times a run that conflicts with the stack's queued run (RunConflictError) is asked
   * for again, each time after the stack's in-flight runs have ended. Default 5.
   */
  conflictRetries?: number;
  /** Aborts every wait (the control plane is stopping); the step fails and is retried later. */
  signal?: AbortSignal;
}

export const DEFAULT_CONFLICT_RETRIES = 5;

/**
 * The run could not be queued: the stack kept having a queued run of the other operation, or (a
 * state move) the source stack's runs did not end.
 */
export class RunConflictGaveUpError extends Error {}

export class RunStoreStackRunner implements StackRunner {
  constructor(private readonly runs: RunQueue, private readonly wait: RunWaitOptions = {}) {}

  private waitOpts() {
    return { timeoutMs: this.wait.timeoutMs ?? 3 * 3600 * 1000, pollMs: this.wait.pollMs ?? 1000, ...(this.wait.signal ? { signal: this.wait.signal } : {}) };
  }

  private async await(runId: string, stack: string, what: string): Promise<RunOutcome> {
    const run = await this.finished(runId, `${what} of ${stack}`);
    return { runId: run.id };
  }

  /** The run once it has succeeded; `what` (e.g. "update of <stack>") names it when it failed. */
  private async finished(runId: string, what: string): Promise<RunRecord> {
    const run = await this.runs.waitFor(runId, this.waitOpts());
    if (run.state !== "succeeded") throw new Error(`${what} failed (run ${run.id}): ${run.error ?? "no error recorded"}`);
    return run;
  }

  /**
   * Queues the run; on RunConflictError waits until every queued or running run of the stack has
   * ended (whatever their outcome: this run's own result is what counts) and tries again.
   */
  private async enqueue(stack: string, cause: RunCause, what: string): Promise<EnqueuedRun> {
    const retries = this.wait.conflictRetries ?? DEFAULT_CONFLICT_RETRIES;
    const waitedFor: string[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        const [queued] = await this.runs.enqueueAll([stack], cause);
        return queued!;
      } catch (err) {
        if (!(err instanceof RunConflictError)) throw err;
        if (attempt >= retries) {
          throw new RunConflictGaveUpError(
            `${what} of ${stack} could not be queued: after waiting ${retries} time(s) for the stack's other runs (${waitedFor.join(", ") || "none"}), ` +
              `it still conflicts: ${err.message}. Let the stack's runs finish (GET /api/tenants/:id lists them) and the workflow retries this step`,
          );
        }
        const inFlight = await this.runs.list({ stacks: [stack], states: ["queued", "running"] });
        for (const run of inFlight) {
          waitedFor.push(run.id);
          try {
            await this.runs.waitFor(run.id, this.waitOpts());
          } catch (waitErr) {
            throw new RunConflictGaveUpError(
              `${what} of ${stack} could not be queued: it conflicts with the stack's ${run.state} ${run.operation} run ${run.id}, which did not end in time (${(waitErr as Error).message})`,
            );
          }
        }
      }
    }
  }

  async up(stack: string, ctx: RunContext): Promise<RunOutcome> {
    const queued = await this.enqueue(stack, { reason: `${ctx.reason} (lifecycle workflow ${ctx.workflowId})` }, "update");
    return this.await(queued.runId, stack, "update");
  }

  async destroy(stack: string, ctx: RunContext, release?: ProtectionRelease): Promise<RunOutcome> {
    if (release && release.stack !== stack) throw new Error(`a protection release for ${release.stack} does not cover ${stack}`);
    const queued = await this.enqueue(stack, {
      reason: `${ctx.reason} (lifecycle workflow ${ctx.workflowId})`,
      operation: "destroy",
      options: release
        ? { unprotect: true, release: { kind: release.kind, workflowId: release.workflowId, backupId: release.backupId, gracePeriodEndedAt: release.gracePeriodEndedAt } }
        : {},
    }, "destroy");
    return this.await(queued.runId, stack, "destroy");
  }

  /**
   * The move is queued on the destination stack, so the queue keeps it apart from the
   * destination's other runs. The source is only waited for: until it has no queued or running
   * run (an update of the source in flight during the move could write the moved resources
   * back into the source's state when it saves its snapshot). A run of the source queued after
   * that wait is not held back by the move.
   */
  async moveState(move: StateMove, ctx: RunContext): Promise<StateMoveOutcome> {
    const { source, dest } = move;
    const what = `state move from ${source} to ${dest}`;
    if (!source || !dest) throw new Error(`${what}: both the source and the destination stack must be named`);
    if (source === dest) throw new Error(`${what}: the source and destination are the same stack; a move needs two stacks`);
    if (move.urns.length === 0) throw new Error(`${what}: no URNs given; name the resources to move (infra/model/handover.ts handoverUrns)`);
    const blank = move.urns.filter((u) => typeof u !== "string" || u.trim() === "");
    if (blank.length > 0) throw new Error(`${what}: ${blank.length} of the URNs given are empty`);

    await this.waitUntilIdle(source, what);
    const queued = await this.enqueue(dest, {
      reason: `${ctx.reason} (lifecycle workflow ${ctx.workflowId})`,
      operation: "move",
      options: { source, urns: [...move.urns] },
    }, "state move");
    const run = await this.finished(queued.runId, what);
    const summary = stateMoveSummaryOf(run);
    if (!summary) throw new Error(`${what}: run ${run.id} succeeded but recorded no move outcome in output.summary (was it run by a worker without moves?)`);
    return { runId: run.id, moved: summary.moved, alreadyMoved: summary.alreadyMoved, missing: summary.missing };
  }

  /**
   * Holds the stacks (RunStore.hold, automation/runs/holds.ts) and waits for their held runs already
   * running: each is waited for whatever its outcome (it ran before the hold; what matters is that it
   * is over).
   */
  async hold(stacks: readonly string[], ctx: RunContext): Promise<void> {
    const running = await this.runs.hold(stacks, ctx.workflowId, `${ctx.reason} (lifecycle workflow ${ctx.workflowId})`);
    for (const run of running) {
      try {
        await this.runs.waitFor(run.id, this.waitOpts());
      } catch (err) {
        throw new Error(`holding ${stacks.join(", ")}: the ${run.operation} run ${run.id} of ${run.stack}, running when the hold was taken, did not end in time (${(err as Error).message}); the hold stays until the workflow releases it`, { cause: err });
      }
    }
  }

  async release(ctx: RunContext): Promise<void> {
    await this.runs.release(ctx.workflowId);
  }

  /**
   * Waits until `stack` has no queued or running run; runs queued meanwhile are waited for too, a
   * bounded number of rounds. A queued run a hold keeps waiting is not waited for: it cannot start
   * before the release, nor while the move runs.
   */
  private async waitUntilIdle(stack: string, what: string): Promise<void> {
    const rounds = this.wait.conflictRetries ?? DEFAULT_CONFLICT_RETRIES;
    const waitedFor: string[] = [];
    for (let round = 0; ; round++) {
      const held = (await this.runs.holdsOn([stack])).length > 0;
      const inFlight = (await this.runs.list({ stacks: [stack], states: ["queued", "running"] })).filter((r) => r.state === "running" || !held || r.operation === "move");
      if (inFlight.length === 0) return;
      if (round >= rounds) {
        throw new RunConflictGaveUpError(
          `${what} could not start: after waiting ${rounds} time(s) for the runs of ${stack} (${waitedFor.join(", ")}), it still has ` +
            `${inFlight.map((r) => `a ${r.state} ${r.operation} run ${r.id}`).join(", ")}. Let the stack's runs finish and the workflow retries this step`,
        );
      }
      // Oldest first: a queued run starts after the running one.
      for (const run of [...inFlight].reverse()) {
        waitedFor.push(run.id);
        try {
          await this.runs.waitFor(run.id, this.waitOpts());
        } catch (waitErr) {
          throw new RunConflictGaveUpError(
            `${what} could not start: the source stack ${stack}'s ${run.state} ${run.operation} run ${run.id} did not end in time (${(waitErr as Error).message})`,
          );
        }
      }
    }
  }
}
