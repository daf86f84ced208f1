import { rmSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { runCase } from "../lib/child.ts";
import { writeSyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize, type Summary } from "../lib/stats.ts";

interface PlanCellResult { loadMs: number; renderMs: number; analyzeMs: number; totalMs: number; resources: number; violations: number }

async function planCellSamples(n: number, runs: number, mode: "fast" | "sdk"): Promise<{ total: Summary; render: Summary; analyze: Summary; process: Summary; rss: Summary; resources: number; violations: number }> {
  const fleet = writeSyntheticFleet({ pooled: n, cells: 1, dedicated: 0 });
  try {
    const totals: number[] = [];
    const renders: number[] = [];
    const analyzes: number[] = [];
    const processes: number[] = [];
    const rss: number[] = [];
    let last: PlanCellResult | undefined;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await runCase<PlanCellResult>("planCell.ts", [fleet.dir, fleet.cells[0]!, mode]);
      processes.push(performance.now() - t0);
      totals.push(r.result.totalMs);
      renders.push(r.result.renderMs);
      analyzes.push(r.result.analyzeMs);
      rss.push(r.peakRssMb);
      last = r.result;
    }
    return {
      total: summarize(totals), render: summarize(renders), analyze: summarize(analyzes), process: summarize(processes),
      rss: summarize(rss), resources: last!.resources, violations: last!.violations,
    };
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

/** 1. Plan scaling: one cell with 10, 100 and 1,000 pooled tenants. */
export async function planScaling(runs: number, log: (s: string) => void): Promise<Section> {
  const sizes = [10, 100, 1000];
  const data: Record<string, unknown> = {};
  const rows: string[][] = [];
  const medians = new Map<number, number>();
  let rss100 = 0;
  for (const n of sizes) {
    log(`plan scaling: ${n} tenants x ${runs}`);
    const s = await planCellSamples(n, runs, "fast");
    medians.set(n, s.total.median);
    if (n === 100) rss100 = s.rss.median;
    data[`tenants_${n}`] = s;
    rows.push([`plan 1 cell, ${n} tenants`, fmtSummary(s.total, "ms"), `render ${round(s.render.median, 0)} + policy ${round(s.analyze.median, 0)} ms; ${s.resources} resources; peak RSS ${round(s.rss.median, 0)} MiB; process ${round(s.process.median, 0)} ms`]);
  }
  // The same 100-tenant plan with the SDK's per-promise stack traces left on (measured in this run).
  log(`plan scaling: 100 tenants with SDK promise stack traces x ${runs}`);
  const sdk = await planCellSamples(100, runs, "sdk");
  data.tenants_100_sdkPromiseTraces = sdk;
  rows.push(["plan 1 cell, 100 tenants, SDK traces on", fmtSummary(sdk.total, "ms"), `x${round(sdk.total.median / medians.get(100)!, 2)} of the plan with them off`]);
  const ratio = medians.get(1000)! / medians.get(100)!;
  data.ratio_1000_100 = ratio;
  rows.push(["time ratio 1,000 / 100 tenants", round(ratio, 2).toString(), "same run"]);
  return {
    name: "planScaling",
    data,
    rows,
    targets: [
      target("plan 1 cell of 100 tenants: wall time (median)", medians.get(100)!, "ms", "<=", 2000),
      target("plan 1 cell of 100 tenants: peak RSS (median)", rss100, "MiB", "<=", 400),
      target("plan time ratio 1,000 / 100 tenants", ratio, "x", "<=", 10.5),
    ],
  };
}

interface FleetPlanResult { totalMs: number; stacks: number; resources: number; violations: number }

/** 2. Fleet plan: `plan --all` for 1,000 pooled tenants in 10 cells plus 100 dedicated tenants. */
export async function fleetPlan(runs: number, log: (s: string) => void): Promise<Section> {
  const fleet = writeSyntheticFleet({ pooled: 1000, cells: 10, dedicated: 100 });
  try {
    const totals: number[] = [];
    const rss: number[] = [];
    let last: FleetPlanResult | undefined;
    for (let i = 0; i < runs; i++) {
      log(`fleet plan: run ${i + 1}/${runs}`);
      const r = await runCase<FleetPlanResult>("fleetPlan.ts", [fleet.dir]);
      totals.push(r.result.totalMs);
      rss.push(r.peakRssMb);
      last = r.result;
    }
    const total = summarize(totals);
    return {
      name: "fleetPlan",
      data: { total, parentRss: summarize(rss), ...last },
      rows: [[`plan --all: ${last!.stacks} stacks, ${last!.resources} resources`, fmtSummary(total, "ms"), `${last!.violations} violations`]],
      targets: [target("plan --all, 1,000 pooled in 10 cells + 100 dedicated (median)", total.median / 1000, "s", "<=", 30)],
    };
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

interface ThroughputResult { resources: number; stacks: number; violations: number; perSecond: number[] }

/** 4. Policy throughput through the real analyzer handlers over the fleet. */
export async function policyThroughput(runs: number, log: (s: string) => void): Promise<Section> {
  const fleet = writeSyntheticFleet({ pooled: 1000, cells: 10, dedicated: 100 });
  try {
    log(`policy throughput: render the fleet once, analyze it ${runs} times`);
    const r = await runCase<ThroughputResult>("policyThroughput.ts", [fleet.dir, String(runs)]);
    const s = summarize(r.result.perSecond);
    return {
      name: "policyThroughput",
      data: { perSecond: s, resources: r.result.resources, stacks: r.result.stacks, violations: r.result.violations },
      rows: [[`policy pack over ${r.result.resources} resources in ${r.result.stacks} stacks`, fmtSummary(s, "res/s"), `${r.result.violations} violations`]],
      targets: [target("policy throughput (median)", s.median, "resources/s", ">=", 5000)],
    };
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}

interface BlastResult { n: number; layout: string; stacks: number; added: number; changed: number; deleted: number; touchedStackResources: number }

/** 3. Onboarding blast radius: counts, deterministic (one run each). */
export async function blastRadius(_runs: number, log: (s: string) => void): Promise<Section> {
  const rows: string[][] = [];
  const data: BlastResult[] = [];
  for (const n of [10, 100, 1000]) {
    for (const layout of ["cells", "single"] as const) {
      log(`blast radius: tenant ${n + 1} joins (${layout})`);
      const r = (await runCase<BlastResult>("blastRadius.ts", [String(n), layout, "50"])).result;
      data.push(r);
      rows.push([
        `tenant ${n + 1} joins, ${layout === "cells" ? `cells of 50 (${r.stacks} stacks)` : "one stack for all"}`,
        `+${r.added} ~${r.changed} -${r.deleted}`,
        `the touched stack holds ${r.touchedStackResources} resources for pulumi up to diff`,
      ]);
    }
  }
  const cells = data.filter((d) => d.layout === "cells");
  const constant = cells.every((d) => d.added === cells[0]!.added && d.changed === cells[0]!.changed && d.deleted === 0);
  return {
    name: "blastRadius",
    data,
    rows,
    targets: [target("resources added+changed by tenant N+1 is the same for N = 10, 100, 1,000 (1 = yes)", constant ? 1 : 0, "", ">=", 1)],
  };
}
