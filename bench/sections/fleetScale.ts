/**
 * 12-13. The PR path and `plan --all` at fleet scale (BENCHMARKS.md): `tenantctl plan --base` for a
 * change that adds one pooled tenant, in synthetic fleets of 1,000 and 10,000 tenants (cells of
 * 100, dedicated tenants one in ten where the address plan allows it), and `tenantctl plan --all`
 * of the 10,000-tenant fleet: wall time and peak memory of the whole process tree (the renderer
 * workers included). Each command runs as the PR workflow runs it (`npx tenantctl plan ...`: the
 * compiled CLI, bin/tenantctl.mjs, rebuilt first), in a fresh process, in a git repository holding
 * the fleet; its own CPU time comes from bench/lib/cpuAtExit.mjs. The 1,000-tenant figure is the
 * baseline of the 10,000 one, measured in the same run. The load average is recorded with each
 * figure: on the shared machine the wall time is mostly the other processes'.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MAX_SYNTHETIC_DEDICATED, PROJECT_DIR, writePooled, writeSyntheticFleet, type SyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { sampleTreeRss } from "../lib/treeRss.ts";
import { PLAN_NODE_FLAGS } from "../../plan/nodeFlags.ts";

const BIN = join(PROJECT_DIR, "bin", "tenantctl.mjs");
const CPU_HOOK = join(PROJECT_DIR, "bench", "lib", "cpuAtExit.mjs");

const CELL_SIZE = 100;

interface Shape { tenants: number; pooled: number; cells: number; dedicated: number }

export function fleetShape(tenants: number): Shape {
  const dedicated = Math.min(Math.round(tenants / 10), MAX_SYNTHETIC_DEDICATED);
  const pooled = tenants - dedicated;
  return { tenants, pooled, cells: Math.ceil(pooled / CELL_SIZE), dedicated };
}

const git = (dir: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GIT_AUTHOR_NAME: "Bench", GIT_AUTHOR_EMAIL: "bench@bench.invalid", GIT_COMMITTER_NAME: "Bench", GIT_COMMITTER_EMAIL: "bench@bench.invalid" },
  }).trim();

/** The synthetic fleet committed (base), then one pooled tenant added in the first cell and committed (head). */
function fleetRepo(shape: Shape): SyntheticFleet & { base: string } {
  const fleet = writeSyntheticFleet({ pooled: shape.pooled, cells: shape.cells, dedicated: shape.dedicated });
  git(fleet.dir, "init", "--quiet", "--initial-branch=main");
  git(fleet.dir, "add", "--all");
  git(fleet.dir, "commit", "--quiet", "-m", "synthetic fleet");
  const base = git(fleet.dir, "rev-parse", "HEAD");
  writePooled(fleet.dir, "newcomer", "standard", "use1-01");
  git(fleet.dir, "add", "--all");
  git(fleet.dir, "commit", "--quiet", "-m", "one pooled tenant joins");
  return { ...fleet, base };
}

/** The compiled CLI from the current sources (bin/tenantctl.mjs would run the sources through tsx if one changed since the build). */
function buildCli(log: (s: string) => void): void {
  log("tenantctl: npm run build");
  const build = spawnSync(process.execPath, [join(PROJECT_DIR, "bin", "build-cli.mjs")], { encoding: "utf8" });
  if (build.status !== 0) throw new Error(`bin/build-cli.mjs failed:\n${build.stderr}`);
}

const load1 = () => round(loadavg()[0]!, 1);

/**
 * `node bin/tenantctl.mjs plan ARGS` in `dir`: wall time from outside, the process's own CPU time
 * (user + system, its renderer workers and git not included), exit code, the first mandatory
 * violations (exit 1 on a synthetic fleet is its quota policies, not a failure to plan), and with
 * `treeRss` the peak memory of the process tree.
 */
async function planCase(
  dir: string, args: string[], treeRss: boolean, env: Record<string, string> = {},
): Promise<{ ms: number; cpuMs: number; childrenCpuMs: number | undefined; treeMb: number | undefined; code: number; mandatory: string[]; load: number }> {
  // Outside the fleet's repository: an untracked file there would be part of the change.
  const cpuFile = join(tmpdir(), `tenancy-bench-plan-cpu-${process.pid}.json`);
  rmSync(cpuFile, { force: true });
  const t0 = performance.now();
  // With the binary's own flags (its shebang: plan/nodeFlags.ts), as `npx tenantctl` runs it.
  const child = spawn(process.execPath, [...PLAN_NODE_FLAGS, "--import", CPU_HOOK, BIN, "plan", ...args], {
    cwd: dir,
    env: { ...process.env, TENANTCTL_FROM_SOURCE: "", TENANTCTL_PLAN_BASE_CONCURRENT: "", FORCE_COLOR: "0", BENCH_CPU_FILE: cpuFile, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const sampler = treeRss && child.pid !== undefined ? sampleTreeRss(child.pid) : undefined;
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((done, fail) => {
    child.on("error", fail);
    child.on("close", (c) => done(c ?? 70));
  });
  const ms = performance.now() - t0;
  const treeMb = sampler?.stop();
  if (code !== 0 && code !== 1) throw new Error(`tenantctl plan ${args.join(" ")} in ${dir} exited ${code}: ${stderr.trim().split("\n").slice(-5).join(" / ")}`);
  const cpu = JSON.parse(readFileSync(cpuFile, "utf8")) as { user: number; system: number; children?: { user: number; system: number } };
  rmSync(cpuFile, { force: true });
  const mandatory = stdout.split("\n").filter((l) => l.startsWith("mandatory "));
  const childrenCpuMs = cpu.children ? (cpu.children.user + cpu.children.system) / 1000 : undefined;
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, childrenCpuMs, treeMb, code, mandatory: mandatory.slice(0, 3), load: load1() };
}

/**
 * `plan --base` adding one pooled tenant, at 1,000 and 10,000 tenants, each against a plain
 * `plan --stack` of the same cell in the same fleet, measured in the same run (alternating, so
 * the load of the shared machine hits both alike): the plain plan is the floor (one load, one
 * render), and `--base` should add only the base render and the git reads. `--base` runs as it
 * does by default (base and head rendered one after the other in one process) and with
 * TENANTCTL_PLAN_BASE_CONCURRENT=1 (the base rendered in a worker beside the head's render), so
 * the figure of each is in the same run. CPU: the plan process alone, and the
 * process tree (the renderer worker and git included).
 */
export async function planBaseScale(runs: number, log: (s: string) => void): Promise<Section> {
  const medians = new Map<string, number>();
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  buildCli(log);
  const loads: number[] = [];
  for (const n of [1000, 10000]) {
    const shape = fleetShape(n);
    log(`plan --base: writing a fleet of ${n} tenants (${shape.pooled} pooled in ${shape.cells} cells, ${shape.dedicated} dedicated)`);
    const fleet = fleetRepo(shape);
    try {
      const withBase: number[] = [];
      const plain: number[] = [];
      const concurrent: number[] = [];
      const cpuBase: number[] = [];
      const cpuPlain: number[] = [];
      const cpuConcurrent: number[] = [];
      const treeBase: number[] = [];
      const treePlain: number[] = [];
      const treeConcurrent: number[] = [];
      const tree = (r: { cpuMs: number; childrenCpuMs: number | undefined }) => r.cpuMs + (r.childrenCpuMs ?? 0);
      for (let i = 0; i < runs; i++) {
        const r = await planCase(fleet.dir, ["--base", fleet.base], false);
        log(`plan --base at ${n} tenants, run ${i + 1}/${runs}: ${round(r.ms, 0)} ms, CPU ${round(r.cpuMs, 0)} ms, tree ${round(tree(r), 0)} ms (exit ${r.code}, load ${r.load})`);
        loads.push(r.load);
        withBase.push(r.ms);
        cpuBase.push(r.cpuMs);
        treeBase.push(tree(r));
        data[`tenants_${n}_exit`] = { code: r.code, mandatory: r.mandatory };
        const q = await planCase(fleet.dir, ["--base", fleet.base], false, { TENANTCTL_PLAN_BASE_CONCURRENT: "1" });
        log(`plan --base (concurrent) at ${n} tenants, run ${i + 1}/${runs}: ${round(q.ms, 0)} ms, CPU ${round(q.cpuMs, 0)} ms, tree ${round(tree(q), 0)} ms (exit ${q.code}, load ${q.load})`);
        loads.push(q.load);
        concurrent.push(q.ms);
        cpuConcurrent.push(q.cpuMs);
        treeConcurrent.push(tree(q));
        const p = await planCase(fleet.dir, ["--stack", fleet.cells[0]!], false);
        log(`plan --stack ${fleet.cells[0]} at ${n} tenants, run ${i + 1}/${runs}: ${round(p.ms, 0)} ms, CPU ${round(p.cpuMs, 0)} ms, tree ${round(tree(p), 0)} ms (exit ${p.code}, load ${p.load})`);
        loads.push(p.load);
        plain.push(p.ms);
        cpuPlain.push(p.cpuMs);
        treePlain.push(tree(p));
      }
      const s = summarize(withBase);
      const b = summarize(plain);
      const q = summarize(concurrent);
      const ts = summarize(treeBase);
      const tb = summarize(treePlain);
      const tq = summarize(treeConcurrent);
      medians.set(`concurrent_${n}`, q.median);
      medians.set(`base_${n}`, s.median);
      medians.set(`plain_${n}`, b.median);
      const cs = summarize(cpuBase);
      const cb = summarize(cpuPlain);
      medians.set(`cpu_base_${n}`, cs.median);
      medians.set(`cpu_plain_${n}`, cb.median);
      const cq = summarize(cpuConcurrent);
      data[`tenants_${n}`] = {
        shape, wallMs: s, plainPlanWallMs: b, ratioToPlain: s.median / b.median, cpuMs: cs, plainPlanCpuMs: cb, cpuRatioToPlain: cs.median / cb.median,
        treeCpuMs: ts, plainPlanTreeCpuMs: tb, treeCpuRatioToPlain: ts.median / tb.median,
        concurrent: { wallMs: q, ratioToPlain: q.median / b.median, cpuMs: cq, treeCpuMs: tq, treeCpuRatioToPlain: tq.median / tb.median },
      };
      rows.push([`plan --base, one pooled tenant joins, ${n} tenants`, fmtSummary(s, "ms"), `${shape.pooled} pooled in ${shape.cells} cells of ${CELL_SIZE}, ${shape.dedicated} dedicated`]);
      rows.push([`plan --stack ${fleet.cells[0]} (no base), ${n} tenants`, fmtSummary(b, "ms"), "baseline: the same cell planned alone, same fleet, same run"]);
      rows.push([`time ratio plan --base / plain plan, ${n} tenants`, round(s.median / b.median, 2).toString(), "medians of the two rows above"]);
      rows.push([`CPU time plan --base / plain plan, ${n} tenants`, `${round(cs.median, 0)} / ${round(cb.median, 0)} ms = ${round(cs.median / cb.median, 2)}`, "user + system of the plan process, medians"]);
      rows.push([`CPU time of the process tree plan --base / plain plan, ${n} tenants`, `${round(ts.median, 0)} / ${round(tb.median, 0)} ms = ${round(ts.median / tb.median, 2)}`, "the renderer worker and git included, medians"]);
      rows.push([`plan --base, the base rendered in a worker beside the head (TENANTCTL_PLAN_BASE_CONCURRENT=1), ${n} tenants`, fmtSummary(q, "ms"), `ratio to the plain plan ${round(q.median / b.median, 2)}; process tree CPU ${round(tq.median, 0)} ms`]);
    } finally {
      rmSync(fleet.dir, { recursive: true, force: true });
    }
  }
  const ratio = medians.get("base_10000")! / medians.get("base_1000")!;
  const toPlain = medians.get("base_10000")! / medians.get("plain_10000")!;
  data.ratio_10000_1000 = ratio;
  data.ratio_base_plain_10000 = toPlain;
  data.ratio_concurrent_plain_10000 = medians.get("concurrent_10000")! / medians.get("plain_10000")!;
  data.cpu_ratio_base_plain_10000 = medians.get("cpu_base_10000")! / medians.get("cpu_plain_10000")!;
  data.cpu_ratio_10000_1000 = medians.get("cpu_base_10000")! / medians.get("cpu_base_1000")!;
  const cpuRatio = medians.get("cpu_base_10000")! / medians.get("cpu_base_1000")!;
  data.loadAverage1m = { min: Math.min(...loads), max: Math.max(...loads), samples: loads };
  rows.push(["time ratio plan --base 10,000 / 1,000 tenants", round(ratio, 2).toString(), "baseline: the 1,000-tenant figure, same run"]);
  rows.push(["CPU time ratio plan --base 10,000 / 1,000 tenants", round(cpuRatio, 2).toString(), "user + system of the plan process, medians"]);
  rows.push(["load average (1 min) at the end of each command", `${Math.min(...loads)} to ${Math.max(...loads)}`, "2 cores shared with the other sessions"]);
  return {
    name: "planBaseScale",
    data,
    rows,
    targets: [
      target("plan --base, one pooled tenant joins a fleet of 10,000 tenants (median)", medians.get("base_10000")! / 1000, "s", "<=", 10),
      target("plan --base time ratio 10,000 / 1,000 tenants", ratio, "x", "<=", 1.5),
      target("plan --base / plain plan of the same cell, 10,000 tenants, same run", toPlain, "x", "<=", 1.5),
    ],
  };
}

/** `plan --all` of the 10,000-tenant fleet: wall time and peak memory of the process tree. */
export async function planAll10k(runs: number, log: (s: string) => void): Promise<Section> {
  const shape = fleetShape(10000);
  log(`plan --all: writing a fleet of 10,000 tenants (${shape.pooled} pooled in ${shape.cells} cells, ${shape.dedicated} dedicated)`);
  const fleet = fleetRepo(shape);
  try {
    buildCli(log);
    const ms: number[] = [];
    const mb: number[] = [];
    const cpu: number[] = [];
    const loads: number[] = [];
    let exit: unknown;
    for (let i = 0; i < runs; i++) {
      const r = await planCase(fleet.dir, ["--all"], true);
      exit = { code: r.code, mandatory: r.mandatory };
      const treeCpu = r.cpuMs + (r.childrenCpuMs ?? 0);
      log(`plan --all at 10,000 tenants, run ${i + 1}/${runs}: ${round(r.ms / 1000, 1)} s, CPU ${round(treeCpu / 1000, 1)} s, peak ${round(r.treeMb ?? 0, 0)} MiB (exit ${r.code}, load ${r.load})`);
      cpu.push(treeCpu);
      loads.push(r.load);
      ms.push(r.ms);
      mb.push(r.treeMb ?? 0);
    }
    const wall = summarize(ms);
    const mem = summarize(mb);
    const treeCpu = summarize(cpu);
    return {
      name: "planAll10k",
      data: { shape, exit, wallMs: wall, cpuMsProcessTree: treeCpu, peakTreeRssMb: mem, loadAverage1m: loads, memory: "sum of the RSS of the plan process and its renderer workers, sampled every 200 ms from outside (bench/lib/treeRss.ts)" },
      rows: [
        [`plan --all, ${shape.tenants} tenants (${shape.cells + shape.dedicated} stacks)`, fmtSummary(wall, "ms"), `${shape.pooled} pooled in ${shape.cells} cells, ${shape.dedicated} dedicated`],
        ["plan --all, 10,000 tenants: CPU time (process tree)", fmtSummary(treeCpu, "ms"), "user + system of the plan process and the children it waited for (workers, git)"],
        ["plan --all, 10,000 tenants: peak memory (process tree)", fmtSummary(mem, "MiB"), "plan process + renderer workers, sampled every 200 ms"],
        ["load average (1 min) at the end of each run", loads.join(", "), "2 cores shared with the other sessions"],
      ],
      targets: [
        target("plan --all of 10,000 tenants: wall time (median)", wall.median / 1000, "s", "<=", 180),
        target("plan --all of 10,000 tenants: peak memory of the process tree (median)", mem.median / 1024, "GiB", "<=", 4),
      ],
    };
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}
