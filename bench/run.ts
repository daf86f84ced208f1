/**
 * `npm run bench [-- SECTION ...]`: runs the benchmarks, prints a table, writes bench/results.json.
 * Every figure is the median of BENCH_RUNS runs (default 5) with its spread; targets are recorded
 * as pass/fail against the figure. See BENCHMARKS.md. Tests never assert times.
 */
import { resolve } from "node:path";
import { machineFacts } from "./lib/machine.ts";
import { printTable, writeResults, type Results, type Section } from "./lib/report.ts";
import { blastRadius, fleetPlan, planScaling, policyThroughput } from "./sections/plan.ts";

type SectionFn = (runs: number, log: (s: string) => void) => Promise<Section>;

const SECTIONS: Record<string, SectionFn> = {
  "plan-scaling": planScaling,
  "fleet-plan": fleetPlan,
  "blast-radius": blastRadius,
  "policy-throughput": policyThroughput,
  // Loaded on demand: the control plane (pg, pg-boss, fastify, the Automation API) only when asked for.
  "webhook-intake": async (runs, log) => (await import("./sections/controlPlane.ts")).webhookIntake(runs, log),
  "fleet-rollout": async (runs, log) => (await import("./sections/controlPlane.ts")).fleetRollout(runs, log),
};

const runs = Number(process.env.BENCH_RUNS ?? 5);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`BENCH_RUNS=${process.env.BENCH_RUNS}: expected a positive integer`);
  process.exit(2);
}
const chosen = process.argv.slice(2);
for (const c of chosen) {
  if (!(c in SECTIONS)) {
    console.error(`unknown section "${c}"; sections: ${Object.keys(SECTIONS).join(", ")}`);
    process.exit(2);
  }
}
const names = chosen.length > 0 ? chosen : Object.keys(SECTIONS);
const log = (s: string) => console.error(`[bench] ${s}`);

const results: Results = { machine: machineFacts(), runsPerFigure: runs, sections: {}, targets: [] };
const rows: string[][] = [];
for (const name of names) {
  const section = await SECTIONS[name]!(runs, log);
  results.sections[section.name] = section.data;
  results.targets.push(...section.targets);
  rows.push(...section.rows.map((r) => [name, ...r]));
}

const out = resolve(import.meta.dirname, "results.json");
writeResults(out, results);
const m = results.machine;
console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GiB, Node ${m.node}, commit ${m.gitCommit}`);
console.log(printTable(rows, ["SECTION", "FIGURE", "MEDIAN (SPREAD)", "NOTES"]));
console.log();
console.log(printTable(results.targets.map((t) => [t.pass ? "pass" : "FAIL", t.figure, `${t.value} ${t.unit}`, t.target]), ["", "TARGET", "MEASURED", "WANTED"]));
console.error(`[bench] wrote ${out}`);
