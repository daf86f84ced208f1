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
import type { RunStore } from "../../runs/store.ts";
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

export interface RunWaitOptions {
  /** Longest wait for one run (an RDS creation takes tens of minutes). Default 3 h. */
  timeoutMs?: number;
  pollMs?: number;
}

export class RunStoreStackRunner implements StackRunner {
  constructor(private readonly runs: RunStore, private readonly wait: RunWaitOptions = {}) {}

  private async await(runId: string, stack: string, what: string): Promise<RunOutcome> {
    const run = await this.runs.waitFor(runId, { timeoutMs: this.wait.timeoutMs ?? 3 * 3600 * 1000, pollMs: this.wait.pollMs ?? 1000 });
    if (run.state !== "succeeded") throw new Error(`${what} of ${stack} failed (run ${run.id}): ${run.error ?? "no error recorded"}`);
    return { runId: run.id };
  }

  async up(stack: string, ctx: RunContext): Promise<RunOutcome> {
    const [queued] = await this.runs.enqueueAll([stack], { reason: `${ctx.reason} (lifecycle workflow ${ctx.workflowId})` });
    return this.await(queued!.runId, stack, "update");
  }

  async destroy(stack: string, ctx: RunContext, release?: ProtectionRelease): Promise<RunOutcome> {
    if (release && release.stack !== stack) throw new Error(`a protection release for ${release.stack} does not cover ${stack}`);
    const [queued] = await this.runs.enqueueAll([stack], {
      reason: `${ctx.reason} (lifecycle workflow ${ctx.workflowId})`,
      operation: "destroy",
      options: release
        ? { unprotect: true, release: { kind: release.kind, workflowId: release.workflowId, backupId: release.backupId, gracePeriodEndedAt: release.gracePeriodEndedAt } }
        : {},
    });
    return this.await(queued!.runId, stack, "destroy");
  }
}
