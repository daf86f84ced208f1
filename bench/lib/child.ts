import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sampleTreeRss } from "./treeRss.ts";
import { PLAN_NODE_FLAGS } from "../../plan/nodeFlags.ts";

const PRELOAD = fileURLToPath(new URL("./preloadDeferTypescript.ts", import.meta.url));

export interface ChildResult<T> {
  /** What the child measured itself (its own wall time of the measured work, in ms). */
  result: T;
  /** Peak resident set of the child process, MiB (getrusage maxrss). */
  peakRssMb: number;
  /** With `treeRss`: peak of the child and its descendants together, MiB (bench/lib/treeRss.ts). */
  peakTreeRssMb?: number;
}

/**
 * Runs a benchmark case in a fresh Node process (tsx), so each sample starts cold and its peak
 * RSS is its own. The case module posts `{ result, maxRssKb }` over IPC when done.
 */
export function runCase<T>(caseFile: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, opts: { treeRss?: boolean } = {}): Promise<ChildResult<T>> {
  const path = fileURLToPath(new URL(`../cases/${caseFile}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = fork(path, [...args], {
      // Every case stands for a plan of the tenantctl binary: its flags (plan/nodeFlags.ts), and
      // its deferred TypeScript compiler (plan/render/deferTypescript.ts).
      execArgv: [...PLAN_NODE_FLAGS, "--import", "tsx", "--import", PRELOAD],
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    let reply: { result: T; maxRssKb: number } | undefined;
    const sampler = opts.treeRss && child.pid !== undefined ? sampleTreeRss(child.pid) : undefined;
    let treePeak: number | undefined;
    child.on("message", (m: { result: T; maxRssKb: number }) => {
      reply = m;
      treePeak = sampler?.stop();
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      treePeak ??= sampler?.stop();
      if (code !== 0 || !reply) reject(new Error(`bench case ${caseFile} ${args.join(" ")} exited with code ${code}`));
      else resolve({ result: reply.result, peakRssMb: reply.maxRssKb / 1024, ...(treePeak !== undefined ? { peakTreeRssMb: treePeak } : {}) });
    });
  });
}

/** Called by a case module when it is done. */
export function reply<T>(result: T): void {
  process.send!({ result, maxRssKb: process.resourceUsage().maxRSS }, () => process.exit(0));
}
