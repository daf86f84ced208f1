/**
 * 10-11. The PR path and `plan --all` at fleet scale (BENCHMARKS.md): `tenantctl plan --base` for a
 * change that adds one pooled tenant, in synthetic fleets of 1,000 and 10,000 tenants (cells of
 * 100, dedicated tenants one in ten where the address plan allows it), and `tenantctl plan --all`
 * of the 10,000-tenant fleet: wall time and peak memory of the whole process tree (the renderer
 * workers included). Each command runs as the CLI runs it, in a fresh process, in a git repository
 * holding the fleet. The 1,000-tenant figure is the baseline of the 10,000 one, measured in the
 * same run.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { runCase } from "../lib/child.ts";
import { MAX_SYNTHETIC_DEDICATED, writePooled, writeSyntheticFleet, type SyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";

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

interface PlanCaseResult { totalMs: number; cpuMs: number; code: number; stdoutLines: number; mandatory: number; firstMandatory: string[]; stderr: string[] }

async function planCase(dir: string, args: string[], treeRss: boolean): Promise<{ ms: number; cpuMs: number; treeMb: number | undefined; code: number; mandatory: string[] }> {
  const r = await runCase<PlanCaseResult>("tenantctlPlan.ts", [dir, ...args], {}, { treeRss });
  if (r.result.code !== 0 && r.result.code !== 1) throw new Error(`tenantctl plan ${args.join(" ")} in ${dir} exited ${r.result.code}: ${r.result.stderr.join(" / ")}`);
  return { ms: r.result.totalMs, cpuMs: r.result.cpuMs, treeMb: r.peakTreeRssMb, code: r.result.code, mandatory: r.result.firstMandatory };
}

/**
 * `plan --base` adding one pooled tenant, at 1,000 and 10,000 tenants, each against a plain
 * `plan --stack` of the same cell in the same fleet, measured in the same run (alternating, so
 * the load of the shared machine hits both alike): the plain plan is the floor (one load, one
 * render), and `--base` should add only the base render and the git reads.
 */
export async function planBaseScale(runs: number, log: (s: string) => void): Promise<Section> {
  const medians = new Map<string, number>();
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  for (const n of [1000, 10000]) {
    const shape = fleetShape(n);
    log(`plan --base: writing a fleet of ${n} tenants (${shape.pooled} pooled in ${shape.cells} cells, ${shape.dedicated} dedicated)`);
    const fleet = fleetRepo(shape);
    try {
      const withBase: number[] = [];
      const plain: number[] = [];
      const cpuBase: number[] = [];
      const cpuPlain: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await planCase(fleet.dir, ["--base", fleet.base], false);
        log(`plan --base at ${n} tenants, run ${i + 1}/${runs}: ${round(r.ms, 0)} ms, CPU ${round(r.cpuMs, 0)} ms (exit ${r.code})`);
        withBase.push(r.ms);
        cpuBase.push(r.cpuMs);
        data[`tenants_${n}_exit`] = { code: r.code, mandatory: r.mandatory };
        const p = await planCase(fleet.dir, ["--stack", fleet.cells[0]!], false);
        log(`plan --stack ${fleet.cells[0]} at ${n} tenants, run ${i + 1}/${runs}: ${round(p.ms, 0)} ms, CPU ${round(p.cpuMs, 0)} ms (exit ${p.code})`);
        plain.push(p.ms);
        cpuPlain.push(p.cpuMs);
      }
      const s = summarize(withBase);
      const b = summarize(plain);
      medians.set(`base_${n}`, s.median);
      medians.set(`plain_${n}`, b.median);
      const cs = summarize(cpuBase);
      const cb = summarize(cpuPlain);
      medians.set(`cpu_base_${n}`, cs.median);
      medians.set(`cpu_plain_${n}`, cb.median);
      data[`tenants_${n}`] = { shape, wallMs: s, plainPlanWallMs: b, ratioToPlain: s.median / b.median, cpuMs: cs, plainPlanCpuMs: cb, cpuRatioToPlain: cs.median / cb.median };
      rows.push([`plan --base, one pooled tenant joins, ${n} tenants`, fmtSummary(s, "ms"), `${shape.pooled} pooled in ${shape.cells} cells of ${CELL_SIZE}, ${shape.dedicated} dedicated`]);
      rows.push([`plan --stack ${fleet.cells[0]} (no base), ${n} tenants`, fmtSummary(b, "ms"), "baseline: the same cell planned alone, same fleet, same run"]);
      rows.push([`time ratio plan --base / plain plan, ${n} tenants`, round(s.median / b.median, 2).toString(), "medians of the two rows above"]);
      rows.push([`CPU time plan --base / plain plan, ${n} tenants`, `${round(cs.median, 0)} / ${round(cb.median, 0)} ms = ${round(cs.median / cb.median, 2)}`, "user + system of the plan process, medians"]);
    } finally {
      rmSync(fleet.dir, { recursive: true, force: true });
    }
  }
  const ratio = medians.get("base_10000")! / medians.get("base_1000")!;
  const toPlain = medians.get("base_10000")! / medians.get("plain_10000")!;
  data.ratio_10000_1000 = ratio;
  data.ratio_base_plain_10000 = toPlain;
  data.cpu_ratio_base_plain_10000 = medians.get("cpu_base_10000")! / medians.get("cpu_plain_10000")!;
  data.cpu_ratio_10000_1000 = medians.get("cpu_base_10000")! / medians.get("cpu_base_1000")!;
  rows.push(["time ratio plan --base 10,000 / 1,000 tenants", round(ratio, 2).toString(), "baseline: the 1,000-tenant figure, same run"]);
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
    const ms: number[] = [];
    const mb: number[] = [];
    let exit: unknown;
    for (let i = 0; i < runs; i++) {
      const r = await planCase(fleet.dir, ["--all"], true);
      exit = { code: r.code, mandatory: r.mandatory };
      log(`plan --all at 10,000 tenants, run ${i + 1}/${runs}: ${round(r.ms / 1000, 1)} s, peak ${round(r.treeMb ?? 0, 0)} MiB (exit ${r.code})`);
      ms.push(r.ms);
      mb.push(r.treeMb ?? 0);
    }
    const wall = summarize(ms);
    const mem = summarize(mb);
    return {
      name: "planAll10k",
      data: { shape, exit, wallMs: wall, peakTreeRssMb: mem, memory: "sum of the RSS of the plan process and its renderer workers, sampled every 200 ms from outside (bench/lib/treeRss.ts)" },
      rows: [
        [`plan --all, ${shape.tenants} tenants (${shape.cells + shape.dedicated} stacks)`, fmtSummary(wall, "ms"), `${shape.pooled} pooled in ${shape.cells} cells, ${shape.dedicated} dedicated`],
        ["plan --all, 10,000 tenants: peak memory (process tree)", fmtSummary(mem, "MiB"), "plan process + renderer workers, sampled every 200 ms"],
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
