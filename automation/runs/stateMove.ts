/**
 * `pulumi state move` for the control plane's move runs (both runners), made idempotent and
 * checked: see moveStateThrough.
 */
import { ConcurrentUpdateError } from "@pulumi/pulumi/automation/index.js";
import { renameStackInUrn } from "../../infra/model/handover.ts";
import type { RetryOptions, RunContext, StateMoveRequest, StateMoveRunOutcome } from "./contract.ts";
import type { StateMoveSummary } from "./store.ts";
import { firstLine, RunCancelledError, sleep, TAIL } from "./support.ts";

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
      throw new Error(`${where}: reading the state of stack ${cli.stackName(stack)} failed: ${firstLine(err)}; the stack must exist (its first \`pulumi up\` has run) and be readable by this control plane`, { cause: err });
    }
    return new Map(resourcesOf(exported, stack).map((r) => [r.urn, r]));
  };
  try {
    await cli.ensureStack(cli.stackName(dest));
  } catch (err) {
    throw new Error(`${where}: the destination stack ${cli.stackName(dest)} could not be selected or created: ${firstLine(err)}`, { cause: err });
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
  let stdout: string;
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
      throw new Error(`${where} failed: ${firstLine(err)}`, { cause: err });
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
