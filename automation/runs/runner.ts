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
 * `stack.cancel()`. Both also move resources' state between stacks (`pulumi state move`, see
 * moveStateThrough), which touches no cloud resource and runs no program.
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
import { renameStackInUrn } from "../../infra/model/handover.ts";
import type { DeploymentsSettings } from "../config.ts";
import type { Logger } from "../log.ts";
import type { StateMoveSummary } from "./store.ts";

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

  /**
   * Reads both stacks with the Automation API (LocalWorkspace.exportStack) and moves through the
   * same PulumiCommand, in the checkout (the project directory: Pulumi needs it when the
   * destination has no secrets manager yet). A destination that does not exist yet is created
   * empty (the upgrade moves the tenant's key into its dedicated stack before that stack's first
   * update); the source must exist.
   */
  async moveState(ctx: RunContext, move: StateMoveRequest): Promise<StateMoveRunOutcome> {
    const pulumiCommand = await this.cli();
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

// --- state moves -------------------------------------------------------------------------------

/** What a state move needs of a Pulumi CLI. */
export interface StateMoveCli {
  /** The name the CLI knows `stack` by (local: as is; Pulumi Cloud: `org/project/stack`). */
  stackName(stack: string): string;
  /** `pulumi stack export` of the stack so named (Automation API: { version, deployment }). */
  exportStack(name: string): Promise<unknown>;
  /** Selects the stack so named, creating it (empty) when it does not exist. */
  ensureStack(name: string): Promise<void>;
  /** Runs `pulumi <args>`; rejects with the Automation API's CommandError when it exits non-zero. */
  run(args: string[]): Promise<{ stdout: string }>;
}

/** A resource of an exported deployment, as far as a move cares. */
interface StateResource {
  urn: string;
  type: string;
  parent?: string;
}

const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

/** The resources of `pulumi stack export` output (deployment.resources, absent for an empty stack). */
function resourcesOf(exported: unknown, stack: string): StateResource[] {
  const bad = (what: string) => new Error(`the export of stack ${stack} is not a Pulumi deployment (${what}); is the CLI a Pulumi CLI?`);
  if (typeof exported !== "object" || exported === null || !("deployment" in exported)) throw bad("no deployment");
  const deployment: unknown = exported.deployment;
  if (typeof deployment !== "object" || deployment === null) throw bad("deployment is not an object");
  const resources: unknown = "resources" in deployment ? deployment.resources : undefined;
  if (resources === undefined || resources === null) return [];
  if (!Array.isArray(resources)) throw bad("deployment.resources is not a list");
  return resources.map((r: unknown, i) => {
    if (typeof r !== "object" || r === null) throw bad(`resource ${i} is not an object`);
    const { urn, type, parent } = r as Record<string, unknown>;
    if (typeof urn !== "string" || typeof type !== "string") throw bad(`resource ${i} has no urn or type`);
    return { urn, type, ...(typeof parent === "string" && parent !== "" ? { parent } : {}) };
  });
}

/** The stack segment of a URN (`urn:pulumi:<stack>::<project>::...`, the shape renameStackInUrn rewrites), or undefined. */
function stackOfUrn(urn: string): string | undefined {
  return /^urn:pulumi:([^:]+)::./.exec(urn)?.[1];
}

/**
 * `pulumi state move --source <source> --dest <ctx.stack> --yes <urn>...`, idempotently:
 *
 * 1. Reads both stacks' states and sorts each URN asked for: in the source -> to move; else its
 *    renamed URN (renameStackInUrn) in the destination -> alreadyMoved; else missing. A URN in
 *    the source whose renamed URN is already in the destination (a move that stopped between
 *    saving the destination and the source), a provider (Pulumi refuses to move providers) or the
 *    root stack resource (it would take every resource with it) stops the run before anything is
 *    changed.
 * 2. Runs the CLI only when something is to move (it fails on "no resources found to move"),
 *    retrying while a stack is locked (ConcurrentUpdateError). The CLI is not interrupted once
 *    started: Pulumi saves the destination, then the source, and stopping it between the two
 *    leaves the resources in both stacks.
 * 3. Reads both states again and checks that every moved URN, and every child that moved with
 *    it, has left the source and is in the destination under its renamed URN.
 */
export async function moveStateThrough(ctx: RunContext, move: StateMoveRequest, retry: RetryOptions, cli: StateMoveCli): Promise<StateMoveRunOutcome> {
  const source = move.source;
  const dest = ctx.stack;
  const where = `state move of run ${ctx.runId} from ${source} to ${dest}`;
  if (move.urns.length === 0) throw new Error(`${where}: no URNs given; name the resources to move`);
  if (source === dest) throw new Error(`${where}: the source and destination are the same stack`);
  const foreign = move.urns.filter((urn) => stackOfUrn(urn) !== source);
  if (foreign.length > 0) {
    throw new Error(`${where}: not URNs of the source stack (urn:pulumi:${source}::<project>::<type>::<name>): ${foreign.join(", ")}`);
  }
  const urns = [...new Set(move.urns)];

  const read = async (stack: string): Promise<Map<string, StateResource>> => {
    let exported: unknown;
    try {
      exported = await cli.exportStack(cli.stackName(stack));
    } catch (err) {
      throw new Error(`${where}: reading the state of stack ${cli.stackName(stack)} failed: ${firstLine(err)}; the stack must exist (its first \`pulumi up\` has run) and be readable by this control plane`);
    }
    return new Map(resourcesOf(exported, stack).map((r) => [r.urn, r]));
  };
  try {
    await cli.ensureStack(cli.stackName(dest));
  } catch (err) {
    throw new Error(`${where}: the destination stack ${cli.stackName(dest)} could not be selected or created: ${firstLine(err)}`);
  }
  const [before, destBefore] = [await read(source), await read(dest)];

  const toMove: string[] = [];
  const alreadyMoved: string[] = [];
  const missing: string[] = [];
  const inBoth: string[] = [];
  for (const urn of urns) {
    const renamed = renameStackInUrn(urn, dest);
    if (before.has(urn)) (destBefore.has(renamed) ? inBoth : toMove).push(urn);
    else if (destBefore.has(renamed)) alreadyMoved.push(urn);
    else missing.push(urn);
  }
  if (inBoth.length > 0) {
    throw new Error(
      `${where}: ${inBoth.length} resource(s) are in both stacks (an earlier move saved ${dest} but not ${source}?): ${inBoth.join(", ")}. ` +
        `Check with \`pulumi stack --show-urns\` on both stacks; once ${dest} is known to hold them, remove them from ${source} with \`pulumi state delete --stack ${cli.stackName(source)} <urn>\` and retry`,
    );
  }
  const refused = toMove.filter((urn) => before.get(urn)!.type.startsWith("pulumi:providers:") || before.get(urn)!.type === ROOT_STACK_TYPE);
  if (refused.length > 0) {
    throw new Error(`${where}: providers and the root stack resource cannot be listed (Pulumi copies providers along with the resources that use them): ${refused.join(", ")}`);
  }

  // The children Pulumi moves along (transitively), for the record and the check afterwards.
  const children: string[] = [];
  const moving = new Set(toMove);
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of before.values()) {
      if (!moving.has(r.urn) && r.parent !== undefined && moving.has(r.parent)) {
        moving.add(r.urn);
        children.push(r.urn);
        grew = true;
      }
    }
  }

  const summary: StateMoveSummary = { kind: "state-move", source, dest, moved: toMove, alreadyMoved, missing, ...(children.length > 0 ? { children } : {}) };
  if (toMove.length === 0) {
    ctx.log.info({ source, dest, alreadyMoved: alreadyMoved.length, missing: missing.length }, "state move: nothing left to move; the CLI was not run");
    return { summary, outputs: {}, concurrentUpdateRetries: 0, stdoutTail: "" };
  }

  const args = ["state", "move", "--source", cli.stackName(source), "--dest", cli.stackName(dest), "--yes", ...toMove];
  let retries = 0;
  let stdout = "";
  for (;;) {
    if (ctx.signal.aborted) throw new RunCancelledError(`${where} cancelled before the move: ${String(ctx.signal.reason ?? "aborted")}`);
    try {
      stdout = (await cli.run(args)).stdout;
      break;
    } catch (err) {
      if (err instanceof ConcurrentUpdateError && retries < retry.retries) {
        const delay = Math.round(retry.baseMs * 2 ** retries * (1 + Math.random() * 0.25));
        retries++;
        ctx.log.warn({ source, dest, attempt: retries, delayMs: delay }, "a stack of the move is locked by another update (ConcurrentUpdateError); retrying");
        await sleep(delay, ctx.signal);
        continue;
      }
      throw new Error(`${where} failed: ${firstLine(err)}`);
    }
  }
  ctx.onOutput(stdout);

  const [after, destAfter] = [await read(source), await read(dest)];
  const misplaced = [...toMove, ...children].flatMap((urn) => {
    const problems = [
      ...(after.has(urn) ? [`still in ${source}`] : []),
      ...(destAfter.has(renameStackInUrn(urn, dest)) ? [] : [`not in ${dest} as ${renameStackInUrn(urn, dest)}`]),
    ];
    return problems.length > 0 ? [`${urn} (${problems.join(", ")})`] : [];
  });
  if (misplaced.length > 0) {
    throw new Error(
      `${where}: the CLI reported success but ${misplaced.length} resource(s) are not where the move puts them: ${misplaced.join("; ")}. ` +
        `Inspect both stacks (\`pulumi stack --show-urns\`, \`pulumi stack export\`) before retrying`,
    );
  }
  ctx.log.info({ source, dest, moved: toMove.length, children: children.length, alreadyMoved: alreadyMoved.length, missing: missing.length }, "state move done and checked");
  return { summary, outputs: {}, concurrentUpdateRetries: retries, stdoutTail: stdout.slice(-TAIL) };
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
      throw new Error(`the Pulumi CLI on PATH is not usable for the state move of run ${ctx.runId}: ${firstLine(err)}; install it (TENANCY_PULUMI_ROOT is prepended to PATH)`);
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
