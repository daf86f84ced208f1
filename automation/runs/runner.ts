/**
 * How a stack update runs. One interface, two implementations:
 *
 *  - LocalAutomationRunner (default): Automation API LocalWorkspace on this host, in a git
 *    worktree of the commit being applied, with the project's CrossGuard pack (`policy/`).
 *  - DeploymentsRunner: Pulumi Deployments through RemoteWorkspace; Pulumi Cloud clones the
 *    repository at the commit and runs the update; events stream back the same way.
 *
 * Both run `up` (or `destroy`, for offboarding), retry with exponential backoff while another
 * update holds the stack (ConcurrentUpdateError), and turn an abort of the run's signal into
 * `stack.cancel()`.
 */
import { resolve } from "node:path";
import {
  ConcurrentUpdateError,
  LocalWorkspace,
  PulumiCommand,
  RemoteWorkspace,
  type EngineEvent,
  type UpdateSummary,
} from "@pulumi/pulumi/automation/index.js";
import type { DeploymentsSettings } from "../config.ts";
import type { Logger } from "../log.ts";

export type { EngineEvent };

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
  onEvent(event: EngineEvent): void;
  onOutput(text: string): void;
  log: Logger;
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

export interface Runner {
  readonly kind: "local" | "deployments";
  up(ctx: RunContext): Promise<RunOutcome>;
  destroy(ctx: RunContext, opts: DestroyOptions): Promise<RunOutcome>;
}

export class RunCancelledError extends Error {}

export interface RetryOptions {
  retries: number;
  baseMs: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveSleep, reject) => {
    if (signal.aborted) return reject(new RunCancelledError("cancelled while waiting to retry"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolveSleep();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new RunCancelledError("cancelled while waiting to retry"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

const TAIL = 8_000;

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

/** The useful line of an error; for a CLI CommandError ("code: ..\n stdout: ..\n stderr: .."), its stderr. */
function firstLine(err: unknown): string {
  const text = String((err as Error)?.message ?? err);
  const stderr = /\n stderr: ([\s\S]*?)(?:\n err\?: |$)/.exec(text)?.[1];
  const from = stderr && stderr.trim() !== "" ? stderr : text;
  return from.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
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

  private async stack(ctx: RunContext) {
    const pulumiCommand = await this.cli();
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
    return withRetries(ctx, stack, this.opts, () =>
      stack.destroy({ onEvent: ctx.onEvent, onOutput: ctx.onOutput, signal: ctx.signal, message: this.message(ctx) }),
    );
  }
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

  async up(ctx: RunContext): Promise<RunOutcome> {
    const stack = await this.remoteStack(ctx);
    return withRetries(ctx, stack, this.opts, () => stack.up({ onEvent: ctx.onEvent, onOutput: ctx.onOutput }));
  }

  async destroy(ctx: RunContext, opts: DestroyOptions): Promise<RunOutcome> {
    if (opts.unprotect) {
      throw new Error(`lifting protect is not possible through Pulumi Deployments; run the offboarding destroy of ${ctx.stack} with TENANCY_RUNNER=local`);
    }
    const stack = await this.remoteStack(ctx);
    return withRetries(ctx, stack, this.opts, () => stack.destroy({ onEvent: ctx.onEvent, onOutput: ctx.onOutput }));
  }
}
