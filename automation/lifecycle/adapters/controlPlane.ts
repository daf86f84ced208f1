/**
 * The lifecycle ports satisfied by the control plane's own modules (issue 8):
 *
 * - FleetRepo  -> GitWriter.change(): validated with the tenantctl model, committed on the main
 *   branch (route "main": the workflow is the authority that asked for the change, so no pull
 *   request), cause `workflow` with the workflow id cited in the commit. The writer also queues
 *   runs of the stacks a change touches; the workflows do not rely on those runs and ask for
 *   the runs they need (below), which join or follow them on the per-stack queue.
 * - StackRunner -> RunStore: a run queued on the per-stack queue (never overlapping another run of
 *   the stack) and waited for; `destroy` with a ProtectionRelease becomes a destroy run with
 *   `unprotect` (the local runner runs `pulumi state unprotect --all --yes` through the same
 *   PulumiCommand first) and the release kept with the run for audit.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import type { GitWriter } from "../../git/writer.ts";
import { RunConflictError, type EnqueuedRun, type RunCause, type RunRecord, type RunState } from "../../runs/store.ts";
import { InvalidChangeError, type FleetChange, type FleetRepo, type ProtectionRelease, type RunContext, type RunOutcome, type StackRunner } from "../ports.ts";

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

/** The run could not be queued: the stack kept having a queued run of the other operation. */
export class RunConflictGaveUpError extends Error {}

export class RunStoreStackRunner implements StackRunner {
  constructor(private readonly runs: RunQueue, private readonly wait: RunWaitOptions = {}) {}

  private waitOpts() {
    return { timeoutMs: this.wait.timeoutMs ?? 3 * 3600 * 1000, pollMs: this.wait.pollMs ?? 1000, ...(this.wait.signal ? { signal: this.wait.signal } : {}) };
  }

  private async await(runId: string, stack: string, what: string): Promise<RunOutcome> {
    const run = await this.runs.waitFor(runId, this.waitOpts());
    if (run.state !== "succeeded") throw new Error(`${what} of ${stack} failed (run ${run.id}): ${run.error ?? "no error recorded"}`);
    return { runId: run.id };
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
}
