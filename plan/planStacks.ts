import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import nodeModule from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Fleet, FleetDirs } from "../infra/model/fleet.ts";
import { renderStack } from "./render/render.ts";
import type { PlanDocument, PlannedStack, RenderedStack, Violation } from "./types.ts";
import { analyzeStack } from "./analyze.ts";
import { fleetData, type FleetData } from "./fleetTransfer.ts";

/** Runs the policy pack over one rendered stack. */
export type Analyzer = (stack: RenderedStack) => Promise<Violation[]>;

export type PlanProgress =
  | { kind: "start"; stack: string }
  | { kind: "done"; stack: string; resources: number; violations: number }
  | { kind: "failed"; stack: string; message: string };

export interface PlanOptions {
  /** Default: the real policy pack through its analyzer handlers (plan/analyze.ts). */
  analyze?: Analyzer;
  /** Worker processes; default min(cores, stacks). 1 renders in this process (unless `fork`). */
  parallel?: number;
  /**
   * Render in worker processes even with one worker: for a long-lived process (the control
   * plane) whose event loop must not stall for a render and whose own state the mock runtime
   * must not touch.
   */
  fork?: boolean;
  /**
   * Workers receive `fleet` over IPC (plan/fleetTransfer.ts) instead of loading it from its
   * directory: for a fleet that exists only in memory (the base of `plan --base`).
   */
  sendFleet?: boolean;
  onProgress?: (p: PlanProgress) => void;
}

import { PlanError } from "./planError.ts";

export { PlanError };

/** The real pack, configured from the fleet's platform settings (as --policy-pack-config would). */
export function fleetAnalyzer(fleet: Fleet): Analyzer {
  const { appName, domain, environments, awsAccountId } = fleet.platform;
  return (stack) => analyzeStack(stack, { settings: { appName, domain, environments: [...environments], awsAccountId } });
}

/** Renders and checks one stack in this process. */
export async function planOne(fleet: Fleet, name: string, analyze: Analyzer): Promise<PlannedStack> {
  // fastPromises: the SDK's per-promise stack traces only feed its exit-time leak report.
  const rendered = await renderStack(fleet, name, { fastPromises: true });
  return { ...rendered, violations: await analyze(rendered) };
}

/**
 * Renders each stack under the mock runtime and runs the policy pack on it. The mock runtime is
 * process-wide, so parallelism is one worker process per core, each rendering its share of the
 * stacks one at a time. Results come back in the order of `names`.
 */
export async function planStacks(fleet: Fleet, names: readonly string[], opts: PlanOptions = {}): Promise<PlanDocument> {
  const parallel = Math.max(1, Math.min(opts.parallel ?? availableParallelism(), names.length));
  const progress = opts.onProgress ?? (() => {});
  if ((parallel === 1 && !opts.fork) || opts.analyze) {
    const analyze = opts.analyze ?? fleetAnalyzer(fleet);
    const stacks: PlannedStack[] = [];
    for (const name of names) {
      progress({ kind: "start", stack: name });
      try {
        const planned = await planOne(fleet, name, analyze);
        progress({ kind: "done", stack: name, resources: planned.resources.length, violations: planned.violations.length });
        stacks.push(planned);
      } catch (err) {
        progress({ kind: "failed", stack: name, message: (err as Error).message });
        throw new PlanError(name, (err as Error).message);
      }
    }
    return { stacks };
  }
  const d = fleet.dirs;
  const absolute = { projectDir: resolve(d.projectDir), tenantsDir: resolve(d.tenantsDir), stacksDir: resolve(d.stacksDir) };
  // Cloned once, sent to each worker with its first stack.
  const data = opts.sendFleet ? fleetData(fleet) : undefined;
  return { stacks: await planInWorkers(data ? { fleet: data } : { dirs: absolute }, names, parallel, progress) };
}

/** Where a worker takes the fleet from: its directory, or the data sent (with the first stack only). */
type FleetSource = { dirs: Required<FleetDirs> } | { fleet: FleetData };
export type WorkerRequest = { stack: string } & (FleetSource | { sameFleet: true });
export type WorkerReply = { stack: string; ok: true; planned: PlannedStack } | { stack: string; ok: false; message: string };

// The compiled CLI (bin/build-cli.mjs) defines TENANTCTL_COMPILED_WORKER: its compiled worker,
// relative to this file, forked without tsx. Under tsx it is not defined: worker.ts with tsx.
declare const TENANTCTL_COMPILED_WORKER: string | undefined;
const COMPILED_WORKER = typeof TENANTCTL_COMPILED_WORKER === "string" ? TENANTCTL_COMPILED_WORKER : undefined;
const WORKER = fileURLToPath(new URL(COMPILED_WORKER ?? "./worker.ts", import.meta.url));
// Not PLAN_NODE_FLAGS: a worker renders many stacks in turn and keeps V8's young generation
// (plan/nodeFlags.ts says why); execArgv given here replaces the parent's, shebang flags included.
const WORKER_EXEC_ARGV = COMPILED_WORKER ? [] : ["--import", "tsx"];
/**
 * Workers start in this package's directory: `--import tsx` resolves from the working directory,
 * and a fleet elsewhere has no node_modules. Fleet paths reach the worker absolute.
 */
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));

interface Worker {
  child: ChildProcess;
  /** What it wrote to stderr so far (the end of it explains a crash). */
  stderr(): string;
  exited: boolean;
}

/**
 * The worker shares this process's on-disk compile cache (bin/tenantctl.mjs enables it): without
 * it every worker compiled the SDK again (about 0.3 s of CPU each). Node keeps the cache in a
 * per-version directory below the one it was enabled with, which is what a child is given.
 */
function workerEnv(): NodeJS.ProcessEnv {
  const dir = nodeModule.getCompileCacheDir?.();
  return dir && !process.env.NODE_COMPILE_CACHE ? { ...process.env, NODE_COMPILE_CACHE: dirname(dir) } : process.env;
}

function forkWorker(): Worker {
  const child = fork(WORKER, [], {
    cwd: PACKAGE_DIR, env: workerEnv(), execArgv: WORKER_EXEC_ARGV, serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const w: Worker = { child, stderr: () => stderr, exited: false };
  child.once("exit", () => (w.exited = true));
  return w;
}

let spare: Worker | undefined;

/**
 * Starts one renderer worker now, for the next plan in worker processes to take: its start-up
 * (the program, the SDK and the policy pack, about a second of CPU) overlaps with what this
 * process does meanwhile (`plan --base` loading the fleet and asking git). Release it with
 * dropSpareWorker when no plan may need it any more. Returns its process id.
 */
export function startSpareWorker(): number | undefined {
  spare ??= forkWorker();
  return spare.child.pid;
}

/** Ends the spare worker if no plan took it (it exits when its channel closes). */
export function dropSpareWorker(): void {
  if (spare?.child.connected) spare.child.disconnect();
  spare = undefined;
}

function takeWorker(): Worker {
  const w = spare;
  spare = undefined;
  return w && !w.exited && w.child.connected ? w : forkWorker();
}

async function planInWorkers(
  source: FleetSource,
  names: readonly string[],
  parallel: number,
  progress: (p: PlanProgress) => void,
): Promise<PlannedStack[]> {
  const results = new Map<string, PlannedStack>();
  const queue = [...names];
  let failure: PlanError | undefined;
  const runWorker = () =>
    new Promise<void>((resolve) => {
      const worker = takeWorker();
      const child = worker.child;
      let current: string | undefined;
      let first = true;
      const next = () => {
        current = failure ? undefined : queue.shift();
        if (current === undefined) {
          child.disconnect();
          return;
        }
        progress({ kind: "start", stack: current });
        child.send({ stack: current, ...(first || "dirs" in source ? source : { sameFleet: true as const }) } satisfies WorkerRequest);
        first = false;
      };
      child.on("message", (msg: WorkerReply) => {
        if (msg.ok) {
          results.set(msg.stack, msg.planned);
          progress({ kind: "done", stack: msg.stack, resources: msg.planned.resources.length, violations: msg.planned.violations.length });
        } else {
          progress({ kind: "failed", stack: msg.stack, message: msg.message });
          failure ??= new PlanError(msg.stack, msg.message);
        }
        next();
      });
      child.on("exit", (code) => {
        if (current !== undefined && !results.has(current) && !failure) {
          failure = new PlanError(current, `renderer process exited with code ${code}: ${worker.stderr().trim().split("\n").slice(-3).join(" ")}`);
        }
        resolve();
      });
      next();
    });
  await Promise.all(Array.from({ length: parallel }, runWorker));
  if (failure) throw failure;
  return names.map((n) => results.get(n)!);
}
