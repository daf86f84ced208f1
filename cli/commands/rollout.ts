/**
 * `tenantctl rollout start|status|pause|resume|abort`: rollouts of a program, policy or platform
 * change through the control plane (docs/rollouts.md). `start --follow` waits for
 * the end and exits 0 only when every stack succeeded: what a deploy pipeline runs.
 */
import { execFileSync } from "node:child_process";
import { controlPlaneClient, type ControlPlaneClient } from "../controlPlane/client.ts";
import { EXIT, UsageError, type Io } from "../io.ts";
import { table } from "../table.ts";

interface StackView { stack: string; state: string; attempts: number; runId: string | null; error: string | null }
interface RolloutView {
  rollout: { id: string; name: string; commit: string; state: string; wave: number; haltReason: string | null; waves: unknown[] };
  waves: { index: number; ring: string; parallelism: number; failureBudgetPercent: number; counts: Record<string, number>; stacks: StackView[] }[];
}

export interface RolloutOptions {
  name?: string;
  commit?: string;
  supersede?: boolean;
  follow?: boolean;
  project?: string;
  /** Milliseconds between polls with --follow. @default 5000 */
  pollMs?: number;
}

const ENDED = new Set(["succeeded", "aborted", "superseded"]);

function printView(v: RolloutView, io: Io): void {
  const r = v.rollout;
  io.out(`rollout ${r.id} "${r.name}" at ${r.commit.slice(0, 12)}: ${r.state}${r.state === "running" || r.state === "paused" ? `, wave ${r.wave + 1} of ${v.waves.length}` : ""}`);
  if (r.haltReason) io.out(`halted: ${r.haltReason}`);
  const rows = v.waves.map((w) => [String(w.index + 1), w.ring, String(w.stacks.length), String(w.counts.succeeded ?? 0), String(w.counts.running ?? 0), String(w.counts.failed ?? 0), String(w.counts.pending ?? 0)]);
  io.out(table(["wave", "ring", "stacks", "succeeded", "running", "failed", "pending"], rows));
  for (const s of v.waves.flatMap((w) => w.stacks).filter((s) => s.state === "failed")) io.out(`failed: ${s.stack} (run ${s.runId}): ${s.error ?? "failed"}`);
}

async function follow(client: ControlPlaneClient, id: string, io: Io, pollMs: number): Promise<RolloutView> {
  let last = "";
  for (;;) {
    const v = await client.request<RolloutView>("GET", `/api/rollouts/${id}`);
    const line = `${v.rollout.state} wave ${v.rollout.wave + 1}: ${v.waves.map((w) => `${w.ring} ${w.counts.succeeded ?? 0}/${w.stacks.length}`).join(", ")}`;
    if (line !== last) io.err(line);
    last = line;
    if (ENDED.has(v.rollout.state) || v.rollout.state === "halted") return v;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function rolloutCommand(action: string, id: string | undefined, opts: RolloutOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const client = controlPlaneClient(env);
  if (action === "start") {
    if (!opts.name) throw new UsageError("rollout start needs --name (what the change is, e.g. the pull request title)");
    const commit = opts.commit ?? execFileSync("git", ["rev-parse", "HEAD"], { cwd: opts.project ?? process.cwd(), encoding: "utf8" }).trim();
    const v = await client.request<RolloutView>("POST", "/api/rollouts", { name: opts.name, commit, ...(opts.supersede ? { supersede: true } : {}) });
    printView(v, io);
    if (!opts.follow) return EXIT.ok;
    const end = await follow(client, v.rollout.id, io, opts.pollMs ?? 5000);
    printView(end, io);
    return end.rollout.state === "succeeded" ? EXIT.ok : EXIT.problems;
  }
  if (action === "status") {
    if (!id) {
      const { rollouts } = await client.request<{ rollouts: RolloutView["rollout"][] }>("GET", "/api/rollouts");
      io.out(table(["id", "state", "commit", "name"], rollouts.map((r) => [r.id, r.state, r.commit.slice(0, 12), r.name])));
      return EXIT.ok;
    }
    printView(await client.request<RolloutView>("GET", `/api/rollouts/${id}`), io);
    return EXIT.ok;
  }
  if (action === "pause" || action === "resume" || action === "abort") {
    if (!id) throw new UsageError(`rollout ${action} needs the rollout id (tenantctl rollout status lists them)`);
    printView(await client.request<RolloutView>("POST", `/api/rollouts/${id}/${action}`), io);
    return EXIT.ok;
  }
  throw new UsageError(`unknown rollout action "${action}"; one of start, status, pause, resume, abort`);
}
