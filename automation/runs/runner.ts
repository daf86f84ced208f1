/**
 * How a stack update runs. One interface (the run contract, automation/runs/contract.ts), two
 * implementations:
 *
 *  - LocalAutomationRunner (default): Automation API LocalWorkspace on this host, in a git
 *    worktree of the commit being applied, with the project's CrossGuard pack (`policy/`).
 *  - DeploymentsRunner: Pulumi Deployments through RemoteWorkspace; Pulumi Cloud clones the
 *    repository at the commit and runs the update; events stream back the same way.
 *
 * Both run `up` (or `destroy`, for offboarding), retry with exponential backoff while another
 * update holds the stack (ConcurrentUpdateError), and turn an abort of the run's signal into
 * `stack.cancel()`. Both also move resources' state between stacks (`pulumi state move`, see
 * moveStateThrough), which touches no cloud resource and runs no program.
 */
import { rmSync } from "node:fs";
import { basename, resolve } from "node:path";
import {
  ConcurrentUpdateError,
  LocalWorkspace,
  PulumiCommand,
  RemoteWorkspace,
  type EngineEvent,
  type RemoteStack,
  type UpdateSummary,
} from "@pulumi/pulumi/automation/index.js";
import { driftFromEvents } from "../drift/events.ts";
import type {
  DestroyOptions, DriftCheckRunOutcome, RetryOptions, RunContext, Runner, RunOutcome, StateMoveRequest, StateMoveRunOutcome,
} from "./contract.ts";
import { trackedCommand } from "./cliProcess.ts";
import { firstLine, RunCancelledError, RunTakenOverError, signalPerCommand, sleep, TAIL } from "./support.ts";
import { moveStateThrough } from "./stateMove.ts";

export { RunCancelledError, RunTakenOverError };

export type { EngineEvent };
export type {
  DestroyOptions, DriftCheckRunOutcome, DriftCheckSummary, RetryOptions, RunContext, Runner, RunOutcome, StateMoveRequest, StateMoveRunOutcome,
} from "./contract.ts";

/** Runs a preview, collecting its events into the drift summary (the events still reach ctx.onEvent). */
async function driftCheck(
  ctx: RunContext,
  stack: CancellableStack,
  retry: RetryOptions,
  preview: (onEvent: (e: EngineEvent) => void) => Promise<{ changeSummary: Record<string, number> }>,
): Promise<DriftCheckRunOutcome> {
  const events: EngineEvent[] = [];
  let changeSummary: Record<string, number> = {};
  const outcome = await withRetries(ctx, stack, retry, async () => {
    events.length = 0;
    const res = await preview((e) => {
      events.push(e);
      ctx.onEvent(e);
    });
    changeSummary = { ...res.changeSummary };
    return {};
  });
  return { ...outcome, summary: { kind: "drift-check", changeSummary, resources: driftFromEvents(events) } };
}





interface CancellableStack {
  cancel(): Promise<void>;
}

interface OperationResult {
  summary?: UpdateSummary;
  outputs?: Record<string, unknown>;
}

/** The shared retry/cancel loop around one `up` or `destroy`. */
async function withRetries(
  ctx: RunContext,
  stack: CancellableStack,
  retry: RetryOptions,
  operation: () => Promise<OperationResult>,
): Promise<RunOutcome> {
  let stdout = "";
  const onOutput = ctx.onOutput;
  ctx = { ...ctx, onOutput: (t) => { stdout = (stdout + t).slice(-TAIL); onOutput(t); } };
  if (ctx.recovering) {
    // A killed CLI leaves its update in progress (Pulumi Cloud) or the stack locked; cancel it.
    try {
      await stack.cancel();
      ctx.log.warn({ stack: ctx.stack }, "cancelled the update left behind by a worker that died");
    } catch (err) {
      ctx.log.info({ stack: ctx.stack, detail: firstLine(err) }, "no update of a dead worker to cancel");
    }
  }
  const onAbort = () => {
    // A taken-over attempt only stops its own command (the signal); see RunTakenOverError.
    if (ctx.signal.reason instanceof RunTakenOverError) return;
    stack.cancel().catch((err: unknown) => ctx.log.info({ detail: firstLine(err) }, "stack.cancel() after abort"));
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await operation();
        return { summary: res.summary ?? null, outputs: res.outputs ?? {}, concurrentUpdateRetries: attempt, stdoutTail: stdout };
      } catch (err) {
        if (ctx.signal.aborted) throw new RunCancelledError(`update of ${ctx.stack} cancelled: ${String(ctx.signal.reason ?? "aborted")}`);
        if (err instanceof ConcurrentUpdateError && attempt < retry.retries) {
          const delay = Math.round(retry.baseMs * 2 ** attempt * (1 + Math.random() * 0.25));
          ctx.log.warn({ stack: ctx.stack, attempt: attempt + 1, delayMs: delay }, "stack is locked by another update (ConcurrentUpdateError); retrying");
          await sleep(delay, ctx.signal);
          continue;
        }
        throw err;
      }
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
  }
}

/**
 * When a previous attempt of this run died (ctx.recovering) after its update finished but before
 * the run was recorded, the stack's last update is that attempt's: same message (run id and
 * commit), succeeded. It is not applied a second time; its summary becomes the run's. Any other
 * last update (another run's, a newer commit, failed, still in progress) and the update runs.
 */
async function appliedByEarlierAttempt(
  ctx: RunContext,
  stack: { history(pageSize?: number, page?: number): Promise<UpdateSummary[]> },
  message: string,
): Promise<UpdateSummary | undefined> {
  if (!ctx.recovering) return undefined;
  let last: UpdateSummary | undefined;
  try {
    [last] = await stack.history(1, 1);
  } catch (err) {
    ctx.log.info({ stack: ctx.stack, detail: firstLine(err) }, "stack history unreadable; running the update");
    return undefined;
  }
  if (last?.message !== message || last.result !== "succeeded") return undefined;
  ctx.log.warn({ stack: ctx.stack, version: last.version }, "the update of the attempt that died had already succeeded; not applying it again");
  return last;
}

export interface LocalRunnerOptions extends RetryOptions {
  /**
   * The CLI the Automation API drives. Default: PulumiCommand.get() on `pulumiRoot` (its
   * bin/pulumi) or the `pulumi` on PATH. Tests pass an implementation of PulumiCommand.
   */
  pulumiCommand?: PulumiCommand;
  pulumiRoot?: string;
  /** Policy pack directory relative to the checkout. */
  policyPackDir?: string;
  envVars?: Record<string, string>;
}

export class LocalAutomationRunner implements Runner {
  readonly kind = "local" as const;
  private command?: Promise<PulumiCommand>;

  constructor(private readonly opts: LocalRunnerOptions) {}

  private cli(): Promise<PulumiCommand> {
    if (this.opts.pulumiCommand) return Promise.resolve(this.opts.pulumiCommand);
    this.command ??= PulumiCommand.get(this.opts.pulumiRoot ? { root: this.opts.pulumiRoot } : {}).catch((err: unknown) => {
      this.command = undefined;
      const where = this.opts.pulumiRoot ? `${this.opts.pulumiRoot}/bin/pulumi (TENANCY_PULUMI_ROOT)` : "`pulumi` on PATH (TENANCY_PULUMI_ROOT is not set)";
      throw new Error(`the Pulumi CLI is not usable at ${where}: ${firstLine(err)}; install it or point TENANCY_PULUMI_ROOT at an installation`);
    });
    return this.command;
  }

  /**
   * The CLI for one attempt: a real CLI (PulumiCommand) starts each command in a process group of
   * its own and reports it to ctx.onCliProcess (automation/runs/cliProcess.ts).
   */
  private async attemptCli(ctx: RunContext): Promise<PulumiCommand> {
    const cli = await this.cli();
    return cli instanceof PulumiCommand && ctx.onCliProcess ? trackedCommand(cli, ctx.onCliProcess) : cli;
  }

  private async stack(ctx: RunContext) {
    const pulumiCommand = signalPerCommand(await this.attemptCli(ctx));
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: ctx.stack, workDir: ctx.workDir },
      { pulumiCommand, ...(this.opts.envVars ? { envVars: this.opts.envVars } : {}) },
    );
    return { stack, pulumiCommand };
  }

  private message(ctx: RunContext): string {
    return `saas-tenancy control plane: run ${ctx.runId} at ${ctx.commit.slice(0, 12)}`;
  }

  async up(ctx: RunContext): Promise<RunOutcome> {
    const { stack } = await this.stack(ctx);
    const earlier = await appliedByEarlierAttempt(ctx, stack, this.message(ctx));
    if (earlier) return { summary: earlier, outputs: await stack.outputs(), concurrentUpdateRetries: 0, stdoutTail: "" };
    const policyPack = resolve(ctx.workDir, this.opts.policyPackDir ?? "policy");
    return withRetries(ctx, stack, this.opts, () =>
      stack.up({ policyPacks: [policyPack], onEvent: ctx.onEvent, onOutput: ctx.onOutput, signal: ctx.signal, message: this.message(ctx) }),
    );
  }

  async destroy(ctx: RunContext, opts: DestroyOptions): Promise<RunOutcome> {
    const { stack, pulumiCommand } = await this.stack(ctx);
    if (opts.unprotect) {
      // The Automation API has no unprotect; run it through the same CLI, the way LocalWorkspace
      // runs its own commands (PulumiCommand.run is the method its typings mark internal).
      const cli = pulumiCommand as unknown as { run(args: string[], cwd: string, env: Record<string, string>): Promise<{ stdout: string }> };
      await cli.run(["state", "unprotect", "--all", "--yes", "--stack", ctx.stack], ctx.workDir, { ...this.opts.envVars });
      ctx.log.warn({ stack: ctx.stack }, "lifted protect on every resource of the stack before destroying it");
    }
    const earlier = await appliedByEarlierAttempt(ctx, stack, this.message(ctx));
    if (earlier) return { summary: earlier, outputs: {}, concurrentUpdateRetries: 0, stdoutTail: "" };
    return withRetries(ctx, stack, this.opts, () =>
      stack.destroy({ onEvent: ctx.onEvent, onOutput: ctx.onOutput, signal: ctx.signal, message: this.message(ctx) }),
    );
  }

  async preview(ctx: RunContext): Promise<DriftCheckRunOutcome> {
    const { stack } = await this.stack(ctx);
    return driftCheck(ctx, stack, this.opts, (onEvent) =>
      stack.preview({ refresh: true, onEvent, onOutput: ctx.onOutput, signal: ctx.signal, message: this.message(ctx) }),
    );
  }

  /**
   * Reads both stacks with the Automation API (LocalWorkspace.exportStack) and moves through the
   * same PulumiCommand, in the checkout (the project directory: Pulumi needs it when the
   * destination has no secrets manager yet). A destination that does not exist yet is created
   * empty (the upgrade moves the tenant's key into its dedicated stack before that stack's first
   * update); the source must exist.
   */
  async moveState(ctx: RunContext, move: StateMoveRequest): Promise<StateMoveRunOutcome> {
    const pulumiCommand = await this.attemptCli(ctx);
    const envVars = { ...this.opts.envVars };
    const ws = await LocalWorkspace.create({ workDir: ctx.workDir, pulumiCommand, envVars });
    return moveStateThrough(ctx, move, this.opts, {
      stackName: (stack) => stack,
      exportStack: (stack) => ws.exportStack(stack),
      ensureStack: (stack) => selectOrCreate(ws, stack),
      run: (args) => asRunnable(pulumiCommand).run(args, ctx.workDir, envVars),
    });
  }
}

/** `pulumi stack select`, else `pulumi stack init` (the stack did not exist). */
async function selectOrCreate(ws: LocalWorkspace, name: string): Promise<void> {
  try {
    await ws.selectStack(name);
  } catch {
    await ws.createStack(name);
  }
}

/** PulumiCommand.run, the method LocalWorkspace runs its own commands with (its typings mark it internal). */
function asRunnable(cli: PulumiCommand): { run(args: string[], cwd: string, env: Record<string, string>): Promise<{ stdout: string }> } {
  return cli as unknown as { run(args: string[], cwd: string, env: Record<string, string>): Promise<{ stdout: string }> };
}

/** Where Pulumi Deployments runs the updates (TENANCY_DEPLOYMENTS_*, composed by automation/config.ts). */
export interface DeploymentsSettings {
  /** Pulumi Cloud organization: stacks are `<org>/<project>/<stack>`. */
  org: string;
  project: string;
  /** Git URL Pulumi Deployments clones; the control plane's commits must be pushed there. */
  repoUrl: string;
  /** Directory of Pulumi.yaml inside the repository, when not the root. */
  projectPath?: string;
}

export interface DeploymentsRunnerOptions extends RetryOptions {
  settings: DeploymentsSettings;
  /** Environment variables for the remote run (e.g. AWS_REGION); secrets as { secret }. */
  envVars?: Record<string, string | { secret: string }>;
}

/**
 * Pulumi Deployments. The CLI (PATH; TENANCY_PULUMI_ROOT is prepended to PATH at start-up) asks
 * Pulumi Cloud to run `up` on the pushed commit; PULUMI_ACCESS_TOKEN authenticates it. The policy
 * pack is applied by the organization's policy group in Pulumi Cloud, not passed per run.
 */
export class DeploymentsRunner implements Runner {
  readonly kind = "deployments" as const;

  constructor(private readonly opts: DeploymentsRunnerOptions) {}

  private remoteStack(ctx: RunContext) {
    const s = this.opts.settings;
    return RemoteWorkspace.createOrSelectStack(
      {
        stackName: `${s.org}/${s.project}/${ctx.stack}`,
        url: s.repoUrl,
        commitHash: ctx.commit,
        ...(s.projectPath ? { projectPath: s.projectPath } : {}),
      },
      { ...(this.opts.envVars ? { envVars: this.opts.envVars } : {}) },
    );
  }

  /**
   * Runs `fn` on the remote stack, then removes the directory RemoteWorkspace made for its
   * LocalWorkspace (`automation-*` in the temporary directory: RemoteWorkspace takes no workDir
   * and never removes it, one per run). The SDK keeps it on the RemoteStack's private `stack`
   * (@pulumi/pulumi automation/remoteStack.js); when that is not found the directory stays in the
   * process's temporary directory, which the control plane removes when it stops
   * (automation/tempDir.ts).
   */
  private async withRemoteStack<T>(ctx: RunContext, fn: (stack: RemoteStack) => Promise<T>): Promise<T> {
    const stack = await this.remoteStack(ctx);
    try {
      return await fn(stack);
    } finally {
      const dir = (stack as unknown as { stack?: { workspace?: { workDir?: unknown } } }).stack?.workspace?.workDir;
      if (typeof dir === "string" && basename(dir).startsWith("automation-")) rmSync(dir, { recursive: true, force: true });
      else ctx.log.warn({ stack: ctx.stack }, "the remote workspace's temporary directory was not found on the RemoteStack (SDK changed?); it is removed with the process's temporary directory");
    }
  }

  async up(ctx: RunContext): Promise<RunOutcome> {
    return this.withRemoteStack(ctx, (stack) => withRetries(ctx, stack, this.opts, () => stack.up({ onEvent: ctx.onEvent, onOutput: ctx.onOutput })));
  }

  async destroy(ctx: RunContext, opts: DestroyOptions): Promise<RunOutcome> {
    if (opts.unprotect) {
      throw new Error(`lifting protect is not possible through Pulumi Deployments; run the offboarding destroy of ${ctx.stack} with TENANCY_RUNNER=local`);
    }
    return this.withRemoteStack(ctx, (stack) => withRetries(ctx, stack, this.opts, () => stack.destroy({ onEvent: ctx.onEvent, onOutput: ctx.onOutput })));
  }

  /**
   * Not through Deployments: RemoteStack.preview takes no refresh option (RemotePreviewOptions in
   * @pulumi/pulumi has only onOutput and onEvent), and a preview without refresh compares the
   * program with the state, not with the cloud, so it cannot see drift.
   */
  async preview(ctx: RunContext): Promise<DriftCheckRunOutcome> {
    throw new Error(
      `drift check of ${ctx.stack}: Pulumi Deployments runs no refreshing preview through the Automation API; ` +
        "use Pulumi Cloud's drift detection for these stacks, or run the control plane with TENANCY_RUNNER=local",
    );
  }

  /**
   * Through the CLI on PATH, on this host, not through Deployments: Pulumi Deployments runs
   * programs (update, preview, refresh, destroy) and has no state-move operation, and
   * RemoteWorkspace has no state commands. None is needed: `pulumi state move` runs no program and
   * touches no cloud resource, it rewrites two stacks' states in the backend, and the CLI this
   * runner already drives is logged in to that backend (PULUMI_ACCESS_TOKEN). The stacks are
   * named fully (`org/project/stack`), as for the remote runs, so the working directory's project
   * does not decide which stacks are edited; it runs in the run's checkout, the project directory
   * Pulumi wants when the destination has no secrets manager yet. URNs keep the short stack name.
   * Environment variables of the remote runs (`envVars`) are not passed: they are for the
   * Deployments runner's cloud credentials, which a state move does not use.
   */
  async moveState(ctx: RunContext, move: StateMoveRequest): Promise<StateMoveRunOutcome> {
    const s = this.opts.settings;
    let pulumiCommand: PulumiCommand;
    try {
      pulumiCommand = await PulumiCommand.get();
    } catch (err) {
      throw new Error(`the Pulumi CLI on PATH is not usable for the state move of run ${ctx.runId}: ${firstLine(err)}; install it (TENANCY_PULUMI_ROOT is prepended to PATH)`, { cause: err });
    }
    const ws = await LocalWorkspace.create({ workDir: ctx.workDir, pulumiCommand });
    return moveStateThrough(ctx, move, this.opts, {
      stackName: (stack) => `${s.org}/${s.project}/${stack}`,
      exportStack: (name) => ws.exportStack(name),
      ensureStack: (name) => selectOrCreate(ws, name),
      run: (args) => asRunnable(pulumiCommand).run(args, ctx.workDir, {}),
    });
  }
}
