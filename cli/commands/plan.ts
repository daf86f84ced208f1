import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { parsedFiles, requireFleet } from "../../infra/model/fleet.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { fleetDirs, type DirOptions } from "../options.ts";
import { planBaseCommand, type FleetPlanner } from "../affected/planBase.ts";
import { dropSpareWorker, planStacks, startSpareWorker } from "../../plan/planStacks.ts";
import { planProgress } from "../plan/progress.ts";
import { attachFindings, checkNetwork, NETWORK_POLICY } from "../../plan/network/check.ts";
import { networkSummary } from "./networkCheck.ts";
import { declaredPeersOf } from "../../plan/network/declared.ts";
import { formatViolation, hasMandatory, summaryTable } from "../plan/summary.ts";

export interface PlanCommandOptions extends DirOptions {
  stack?: string[];
  all?: boolean;
  json?: string;
  parallel?: string;
  /** Compare with this git revision (cli/affected/planBase.ts); default stacks: the affected ones. */
  base?: string;
  /** With --base: write the pull-request comment here. */
  markdown?: string;
}

export async function planCommand(opts: PlanCommandOptions, io: Io): Promise<number> {
  if (opts.base !== undefined) return planWithBase(opts, opts.base, io);
  const fleet = requireFleet(fleetDirs(opts));
  if (opts.markdown) throw new UsageError("--markdown needs --base REF: the comment shows what merging changes against REF");
  if (opts.all && opts.stack?.length) throw new UsageError("use either --stack NAME ... or --all, not both");
  const names = opts.all ? [...fleet.stacks.keys()] : (opts.stack ?? []);
  if (names.length === 0) throw new UsageError("choose the stacks: --stack NAME (repeatable) or --all");
  for (const n of names) {
    if (!fleet.stacks.has(n)) {
      throw new UsageError(`unknown stack ${n}: no stacks/Pulumi.${n}.yaml; known stacks: ${[...fleet.stacks.keys()].join(", ")}`);
    }
  }
  const parallel = opts.parallel === undefined ? undefined : Number(opts.parallel);
  if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1)) throw new UsageError(`--parallel ${opts.parallel}: expected a positive integer`);
  const progress = planProgress(names, io);
  const doc = await planStacks(fleet, names, { onProgress: progress.onProgress, ...(parallel ? { parallel } : {}) }).finally(
    () => progress.done,
  );
  await progress.done;
  let network: string | undefined;
  if (opts.all) {
    // The network properties hold only over the whole fleet (platform hubs and every spoke):
    // checked after rendering everything, findings become mandatory violations of their stack.
    const report = checkNetwork(doc.stacks, declaredPeersOf(fleet));
    doc.stacks = attachFindings(doc.stacks, report.findings);
    network = networkSummary(report);
  }
  io.out(summaryTable(doc));
  for (const s of doc.stacks) for (const v of s.violations) io.out(v.policy === NETWORK_POLICY ? v.message : formatViolation(v));
  if (network) io.out(network);
  if (opts.json) {
    const path = resolve(opts.json);
    writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
    io.err(`wrote ${path}`);
  }
  return hasMandatory(doc) ? EXIT.problems : EXIT.ok;
}

/**
 * The planner of `plan --base` (`parallel`: --parallel). An in-memory fleet renders in this
 * process, or beside the head's render in a worker that receives it (plan/fleetTransfer.ts); a
 * plan that is not beside another has no use for the spare worker.
 */
export function basePlanner(parallel?: number): FleetPlanner {
  return (f, names, o) => {
    if (!o?.beside) dropSpareWorker();
    const n = parallel ? { parallel } : {};
    return planStacks(f, names, o?.beside ? { fork: true, sendFleet: true, ...n } : o?.inMemory ? { parallel: 1 } : n);
  };
}

/**
 * Whether `plan --base` renders the base beside the head: only when TENANTCTL_PLAN_BASE_CONCURRENT
 * is set, on two cores or more. Measured on the shared 2-core machine at load 8 to 14 it lost
 * (the worker's start-up and its cold render cost more CPU than the second render it takes off
 * this process: BENCHMARKS.md, plan-base-scale), so one render after the other stays the default.
 */
export function concurrentBaseWanted(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): boolean {
  return cores > 1 && Boolean(env.TENANTCTL_PLAN_BASE_CONCURRENT);
}

/**
 * `plan --base`. With concurrentBaseWanted, the base's render runs in a worker beside the head's
 * (cli/affected/planBase.ts, concurrentBase), started before the fleet loads so that its own
 * start-up overlaps the load.
 */
async function planWithBase(opts: PlanCommandOptions, base: string, io: Io): Promise<number> {
  const n = opts.parallel === undefined ? undefined : Number(opts.parallel);
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new UsageError(`--parallel ${opts.parallel}: expected a positive integer`);
  const concurrentBase = concurrentBaseWanted();
  if (concurrentBase) startSpareWorker();
  try {
    // The parsed files are kept: the base fleet reuses every file git says is unchanged.
    const cache = parsedFiles();
    const fleet = requireFleet(fleetDirs(opts), cache);
    return await planBaseCommand(fleet, { ...opts, base }, io, basePlanner(n), cache, { concurrentBase });
  } finally {
    dropSpareWorker();
  }
}
