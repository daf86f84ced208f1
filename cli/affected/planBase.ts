/**
 * `tenantctl plan --base REF`: plans the affected stacks at REF (its own code, in a temporary git
 * worktree) and at the head (this checkout), and reports per stack what merging would change, the
 * policy results and the cost delta. REF's plan runs as REF's own `tenantctl plan --json` in a
 * child process, so program and policy changes in the branch show up as changes.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadFleet, type Fleet, type ParsedFiles } from "../../infra/model/fleet.ts";
import { placementChanges } from "../../infra/model/placementChanges.ts";
import { formatProblem, type Problem } from "../../infra/model/problems.ts";
import type { MockContext } from "../../plan/render/mockOutputs.ts";
import type { PlanDocument, PlannedStack } from "../../plan/types.ts";
import { costOfStack } from "../../plan/cost/cost.ts";
import { ASSUMPTION_NOTES, PRICES_AS_OF } from "../../plan/cost/prices.ts";
import { EXIT, ProblemsError, UsageError, type Io } from "../io.ts";
import { diffPlans, type StackDiff } from "../../plan/diff.ts";
import { renderMarkdown, type PlanReport, type StackCostDelta, type StackReport } from "../plan/markdown.ts";
import { table } from "../table.ts";
import { formatUsd } from "../../plan/cost/cost.ts";
import { affectedWithFleets } from "./affected.ts";
import { GitError, resolveCommit } from "./git.ts";
import { withWorktree } from "./worktree.ts";
import { PLAN_NODE_FLAGS } from "../../plan/nodeFlags.ts";

/**
 * Plans stacks of a fleet with the code of this checkout (planStacks, or a test double).
 * `inMemory`: the fleet exists only in memory (the base built from the working tree, see
 * cli/affected/affected.ts): a renderer worker cannot load it from its directory, it must receive
 * it. `beside`: the head is planned in this process at the same time (PlanAgainstBaseOptions
 * `concurrentBase`), so this plan must render in worker processes (the mock runtime is
 * process-wide).
 */
export type FleetPlanner = (fleet: Fleet, names: readonly string[], opts?: { inMemory?: boolean; beside?: boolean }) => Promise<PlanDocument>;

/** Plans stacks at another revision, given that revision's project directory. */
export type RevisionPlanner = (projectDirAtBase: string, names: readonly string[]) => Promise<PlanDocument | { unsupported: string }>;

export interface PlanAgainstBaseOptions {
  /** The head: this checkout's project directory (working tree). */
  projectDir: string;
  headFleet: Fleet;
  baseRef: string;
  /** Stacks to plan; default: the stacks `affected` finds between baseRef and the working tree. */
  names?: readonly string[];
  plan: FleetPlanner;
  /** Default: REF's own `tenantctl plan --json` in a child process (revisionPlanViaCli). */
  planBase?: RevisionPlanner;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
  /** The parsed files of headFleet's load (requireFleet with a cache): the base reuses them. */
  cache?: ParsedFiles;
  /**
   * Plan the in-memory base (same program, fleet files that differ) while the head is planned,
   * instead of one after the other: `plan` renders a `beside` plan in worker processes (the
   * CLI's does). The result is the same; on two cores the base's render no longer adds to the
   * head's. Default false (a planner rendering in this process must not run two at once).
   */
  concurrentBase?: boolean;
}

/**
 * Runs `node bin/tenantctl.mjs plan --stack ... --json FILE` of the revision checked out in
 * `projectDirAtBase`. Exit 0 or 1 (mandatory violations) with the JSON written is a plan; a
 * revision without the command is reported as unsupported, anything else is an error.
 */
export const revisionPlanViaCli: RevisionPlanner = async (projectDirAtBase, names) => {
  const bin = join(projectDirAtBase, "bin", "tenantctl.mjs");
  if (!existsSync(bin)) return { unsupported: "it has no bin/tenantctl.mjs" };
  const dir = mkdtempSync(join(tmpdir(), "tenantctl-baseplan-"));
  const out = join(dir, "plan.json");
  try {
    // With the flags its shebang would give it (an older revision's binary is run with this revision's).
    const args = [...PLAN_NODE_FLAGS, bin, "plan", ...names.flatMap((n) => ["--stack", n]), "--json", out, "--project", projectDirAtBase];
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((done) => {
      execFile(process.execPath, args, { cwd: projectDirAtBase, maxBuffer: 256 * 1024 * 1024, env: { ...process.env, FORCE_COLOR: "0" } }, (err, _stdout, stderr) => {
        const exit = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 70) : 0;
        done({ code: exit, stderr });
      });
    });
    if ((code === 0 || code === 1) && existsSync(out)) return JSON.parse(readFileSync(out, "utf8")) as PlanDocument;
    if (code === 2 && /unknown (command|option)/i.test(stderr)) return { unsupported: "its tenantctl has no `plan --json`" };
    const tail = stderr.trim().split("\n").slice(-5).join("\n");
    throw new ProblemsError([`tenantctl: plan of the base revision failed (exit ${code}):`, ...tail.split("\n")]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

function mockContext(fleet: Fleet | undefined, stack: string): MockContext | undefined {
  const file = fleet?.stacks.get(stack);
  return fleet && file ? { region: file.region, accountId: fleet.platform.awsAccountId, stack } : undefined;
}

/** Plans both sides and diffs them. Throws UsageError for a bad ref, ProblemsError when the base cannot be planned. */
export async function planAgainstBase(opts: PlanAgainstBaseOptions): Promise<{ report: PlanReport; head: PlanDocument; placementChanges: Problem[] }> {
  const log = opts.log ?? (() => {});
  // Placement edits of existing pooled tenants (infra/model/placementChanges.ts): planned like any
  // change, so the comment shows what they would do, and refused by the command.
  let placement: Problem[] | undefined;
  let baseCommit: string;
  let reasons = new Map<string, string[]>();
  const notes: string[] = [];
  let names: string[];
  // The base fleet in memory when the program is the same at both revisions: the head's plus the
  // fleet files that differ (affectedWithFleets), rendered with this checkout's code. No worktree,
  // no second load of the files that did not change.
  let inMemoryBase: Fleet | undefined;
  try {
    baseCommit = await resolveCommit(opts.projectDir, opts.baseRef);
    const fleets = await affectedWithFleets(opts.projectDir, opts.baseRef, undefined, { head: opts.headFleet, baseCommit, ...(opts.cache ? { cache: opts.cache } : {}) });
    const affected = fleets.result;
    if (affected.programPaths.length === 0) inMemoryBase = fleets.head ? fleets.base : opts.headFleet;
    if (opts.names) names = [...opts.names];
    else {
      placement = affected.placementChanges;
      names = affected.stacks;
      reasons = new Map(affected.details.map((d) => [d.name, d.reasons]));
      notes.push(...affected.warnings);
    }
  } catch (err) {
    if (err instanceof GitError) throw new UsageError(err.message);
    throw err;
  }

  let baseFleet: Fleet | undefined;
  let baseDoc: PlanDocument = { stacks: [] };
  let baseNames: string[] = [];
  let headDoc: PlanDocument | undefined;
  const headNames = names.filter((n) => opts.headFleet.stacks.has(n));
  if (names.length > 0 && inMemoryBase) {
    baseFleet = inMemoryBase;
    baseNames = names.filter((n) => inMemoryBase.stacks.has(n));
    const unknown = names.filter((n) => !baseNames.includes(n) && !opts.headFleet.stacks.has(n));
    if (unknown.length) throw new UsageError(`unknown stack ${unknown.join(", ")}: no stack file at ${opts.baseRef} nor in the working tree`);
    if (inMemoryBase === opts.headFleet) {
      // Same program, same fleet files: the base renders exactly as the head.
      log(`planning ${headNames.length} stack${headNames.length === 1 ? "" : "s"} (no fleet or program file differs from ${opts.baseRef})`);
      headDoc = headNames.length ? await opts.plan(opts.headFleet, headNames) : { stacks: [] };
      baseDoc = headDoc;
    } else if (baseNames.length > 0) {
      const c = opts.cache?.counts;
      const files = c ? `, fleet files parsed ${c.parsed} in all, ${c.reused} reused from the working tree` : "";
      log(`planning ${baseNames.length} stack${baseNames.length === 1 ? "" : "s"} at ${opts.baseRef} (${baseCommit.slice(0, 7)}): same program, the fleet files that differ read from git${files}`);
      if (opts.concurrentBase && headNames.length > 0) {
        log(`planning ${headNames.length} stack${headNames.length === 1 ? "" : "s"} at the working tree (at the same time)`);
        [baseDoc, headDoc] = await Promise.all([
          opts.plan(inMemoryBase, baseNames, { inMemory: true, beside: true }),
          opts.plan(opts.headFleet, headNames),
        ]);
      } else baseDoc = await opts.plan(inMemoryBase, baseNames, { inMemory: true });
    }
  } else if (names.length > 0) {
    await withWorktree(opts.projectDir, baseCommit, async (dir) => {
      baseFleet = loadFleet({ projectDir: dir }).fleet;
      baseNames = names.filter((n) => existsSync(join(dir, "stacks", `Pulumi.${n}.yaml`)) || existsSync(join(dir, "stacks", `Pulumi.${n}.yml`)));
      const unknown = names.filter((n) => !baseNames.includes(n) && !opts.headFleet.stacks.has(n));
      if (unknown.length) throw new UsageError(`unknown stack ${unknown.join(", ")}: no stack file at ${opts.baseRef} nor in the working tree`);
      if (baseNames.length === 0) return;
      log(`planning ${baseNames.length} stack${baseNames.length === 1 ? "" : "s"} at ${opts.baseRef} (${baseCommit.slice(0, 7)}) in a temporary worktree`);
      const planned = await (opts.planBase ?? revisionPlanViaCli)(dir, baseNames);
      if ("unsupported" in planned) {
        if (!baseFleet) throw new ProblemsError([`tenantctl: cannot plan ${opts.baseRef}: ${planned.unsupported}, and its fleet does not load with this code`]);
        notes.push(`${opts.baseRef} was rendered with this branch's program and policies because ${planned.unsupported}: program changes do not show as changes`);
        baseDoc = await opts.plan(baseFleet, baseNames);
      } else baseDoc = planned;
    });
  }

  if (!headDoc) {
    log(`planning ${headNames.length} stack${headNames.length === 1 ? "" : "s"} at the working tree`);
    headDoc = headNames.length ? await opts.plan(opts.headFleet, headNames) : { stacks: [] };
  }

  const byName = (doc: PlanDocument) => new Map<string, PlannedStack>(doc.stacks.map((s) => [s.name, s]));
  const before = byName(baseDoc);
  const after = byName(headDoc);
  const stacks: StackReport[] = [];
  for (const name of names) {
    const b = before.get(name);
    const a = after.get(name);
    if (!a && !b) continue;
    const mock = a ? mockContext(opts.headFleet, name) : mockContext(baseFleet, name);
    const diff: StackDiff = diffPlans(b, a, mock ? { mock } : {});
    const regionOf = (fleet: Fleet | undefined) => fleet?.stacks.get(name)?.region ?? opts.headFleet.stacks.get(name)?.region ?? opts.headFleet.platform.regions[0]!;
    const cb = b ? costOfStack(b, regionOf(baseFleet)) : undefined;
    const ca = a ? costOfStack(a, regionOf(opts.headFleet)) : undefined;
    const cost: StackCostDelta = {
      ...(cb ? { before: cb.monthlyUsd } : {}),
      ...(ca ? { after: ca.monthlyUsd } : {}),
      unverified: [cb, ca].some((c) => c?.lines.some((l) => l.unverified)),
      unpriced: (ca ?? cb)?.unpriced.length ?? 0,
    };
    stacks.push({ ...diff, reasons: reasons.get(name) ?? [], cost });
  }
  notes.push(
    `Cost: on-demand list prices of ${PRICES_AS_OF} (plan/cost/prices.ts); * includes figures marked unverified there; † some resources have no price. ${ASSUMPTION_NOTES.slice(1, 3).join("; ")}.`,
    "Rendered offline under Pulumi's mock runtime: computed values are stand-ins, and nothing was deployed; the preview job runs the real `pulumi preview` when credentials are configured.",
  );
  const report: PlanReport = {
    base: { ref: opts.baseRef, commit: baseCommit },
    head: { ref: "HEAD", ...(await headCommit(opts.projectDir)) },
    stacks,
    notes,
  };
  placement ??= baseFleet ? placementChanges(baseFleet, opts.headFleet, opts.baseRef) : [];
  return { report, head: headDoc, placementChanges: placement };
}

async function headCommit(projectDir: string): Promise<{ commit?: string }> {
  try {
    return { commit: await resolveCommit(projectDir, "HEAD") };
  } catch {
    return {};
  }
}

/** The text the command prints: one row per stack, then every replacement, deletion and data-loss warning. */
export function renderText(report: PlanReport): string {
  const rows = report.stacks.map((s) => [
    s.stack,
    s.status,
    `+${s.counts.create} ~${s.counts.update} ±${s.counts.replace} -${s.counts.delete}`,
    String(s.violations.after.filter((v) => v.level === "mandatory").length),
    String(s.violations.introduced.length),
    s.cost ? formatUsd((s.cost.after ?? 0) - (s.cost.before ?? 0), true) : "",
  ]);
  const lines = [table(["STACK", "STATUS", "CHANGES", "MANDATORY", "NEW VIOLATIONS", "COST/MONTH"], rows)];
  for (const s of report.stacks) {
    for (const w of s.warnings) lines.push(`${s.stack}: ${w}`);
    for (const r of s.resources) {
      if (r.action === "update" && r.warnings.length === 0) continue;
      lines.push(`${s.stack}: ${r.action} ${r.type} ${r.name}${r.reasons.length ? ` (${r.reasons.join("; ")})` : ""}`);
      for (const w of r.warnings) lines.push(`  ${w}`);
    }
  }
  return lines.join("\n");
}

export interface PlanBaseCommandOptions {
  base: string;
  markdown?: string;
  json?: string;
  stack?: string[];
  all?: boolean;
}

/**
 * The `--base` half of `tenantctl plan`, called by cli/commands/plan.ts. Exit code as plan:
 * 1 when the head has a mandatory violation, or changes an existing pooled tenant's placement
 * (one problem line each on stderr, after the plan).
 */
export async function planBaseCommand(
  fleet: Fleet, opts: PlanBaseCommandOptions, io: Io, plan: FleetPlanner, cache?: ParsedFiles, how: Pick<PlanAgainstBaseOptions, "concurrentBase"> = {},
): Promise<number> {
  if (opts.all && opts.stack?.length) throw new UsageError("use either --stack NAME ... or --all, not both");
  const names = opts.all ? [...fleet.stacks.keys()] : opts.stack?.length ? opts.stack : undefined;
  const { report, head, placementChanges: moved } = await planAgainstBase({
    projectDir: fleet.dirs.projectDir, headFleet: fleet, baseRef: opts.base, plan, log: (l) => io.err(l),
    ...(names ? { names } : {}), ...(cache ? { cache } : {}), ...how,
  });
  io.out(renderText(report));
  if (opts.markdown) {
    const path = resolve(opts.markdown);
    writeFileSync(path, renderMarkdown(report));
    io.err(`wrote ${path}`);
  }
  if (opts.json) {
    const path = resolve(opts.json);
    writeFileSync(path, `${JSON.stringify(head, null, 2)}\n`);
    io.err(`wrote ${path}`);
  }
  for (const p of moved) io.err(formatProblem(p));
  return moved.length > 0 || head.stacks.some((s) => s.violations.some((v) => v.level === "mandatory")) ? EXIT.problems : EXIT.ok;
}
