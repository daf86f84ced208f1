/**
 * `npm run bench [-- SECTION ...]`: runs the benchmarks, prints a table, writes bench/results.json.
 * Every figure is the median of BENCH_RUNS runs (default 5) with its spread; targets are recorded
 * as pass/fail against the figure. See BENCHMARKS.md. Tests never assert times.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { machineFacts } from "./lib/machine.ts";
import { printTable, writeResults, type Results, type Section } from "./lib/report.ts";
import { blastRadius, fleetPlan, planScaling, policyThroughput } from "./sections/plan.ts";
import { cliStartup } from "./sections/cli.ts";
import { networkReachability } from "./sections/network.ts";

type SectionFn = (runs: number, log: (s: string) => void) => Promise<Section>;

const SECTIONS: Record<string, SectionFn> = {
  "plan-scaling": planScaling,
  "fleet-plan": fleetPlan,
  "blast-radius": blastRadius,
  "policy-throughput": policyThroughput,
  "network-reachability": networkReachability,
  "cli-startup": cliStartup,
  "plan-base-scale": async (runs, log) => (await import("./sections/fleetScale.ts")).planBaseScale(runs, log),
  "plan-all-10k": async (runs, log) => (await import("./sections/fleetScale.ts")).planAll10k(runs, log),
  // Loaded on demand: the control plane (pg, pg-boss, fastify, the Automation API) only when asked for.
  "webhook-intake": async (runs, log) => (await import("./sections/controlPlane.ts")).webhookIntake(runs, log),
  // Loaded on demand: needs Chromium (the Debian package).
  "console-fleet-map": async (runs, log) => (await import("./sections/console.ts")).consoleFleetMap(runs, log),
  "rollout-1k": async (runs, log) => (await import("./sections/rollout1k.ts")).rollout1k(runs, log),
  "drift-throughput": async (runs, log) => (await import("./sections/driftThroughput.ts")).driftThroughput(runs, log),
  "run-overhead": async (runs, log) => (await import("./sections/runOverhead.ts")).runOverhead(runs, log),
  // Loaded on demand: two embedded PostgreSQL servers and the lifecycle workflow.
  cutover: async (runs, log) => (await import("./sections/cutover.ts")).cutover(runs, log),
  // Loaded on demand: one embedded PostgreSQL with 500 tenant schemas.
  "schema-migrations": async (runs, log) => (await import("./sections/schemaMigrations.ts")).schemaMigrations(runs, log),
  // Loaded on demand: DBOS Transact (a devDependency for this comparison only) registers at import.
  "durable-execution": async (runs, log) => (await import("./sections/durableExecution.ts")).durableExecution(runs, log),
};

const out = resolve(import.meta.dirname, "results.json");

// `npm run bench -- --summary`: the targets as bench/results.json holds them, each with when, at
// which commit and with how many runs its section was last measured; measures nothing.
if (process.argv.includes("--summary")) {
  if (!existsSync(out)) {
    console.error(`${out} does not exist: run \`npm run bench\` first`);
    process.exit(2);
  }
  const stored = JSON.parse(readFileSync(out, "utf8")) as Results & { measuredAt?: Record<string, { gitCommit: string; date: string; runs?: number }> };
  const when = (section: string | undefined) => {
    const at = section ? stored.measuredAt?.[section] : undefined;
    return at ? `${at.date.slice(0, 10)} ${at.gitCommit}${at.runs ? ` n=${at.runs}` : ""}` : "unknown";
  };
  const table = stored.targets.map((t) => [t.pass ? "pass" : "FAIL", t.section ?? "?", t.figure, `${t.value} ${t.unit}`, t.target, when(t.section)]);
  console.log(printTable(table, ["", "SECTION", "TARGET", "MEASURED", "WANTED", "MEASURED AT"]));
  process.exit(0);
}

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
  results.targets.push(...section.targets.map((t) => ({ ...t, section: section.name })));
  rows.push(...section.rows.map((r) => [name, ...r]));
}

const thisRun = [...results.targets];
// A run of some sections keeps the other sections' last figures (each section says when and at
// which commit it was measured), so measuring one section never erases the others.
// `runs` is per section: the file-wide `runsPerFigure` is only the last run's.
const measuredAt = Object.fromEntries(Object.keys(results.sections).map((s) => [s, { gitCommit: results.machine.gitCommit, date: results.machine.date, runs }]));
if (chosen.length > 0 && existsSync(out)) {
  const prior = JSON.parse(readFileSync(out, "utf8")) as Results & { measuredAt?: Record<string, unknown> };
  const figures = new Set(results.targets.map((t) => t.figure));
  const priorAt = prior.measuredAt ?? Object.fromEntries(Object.keys(prior.sections).map((s) => [s, { gitCommit: prior.machine.gitCommit, date: prior.machine.date }]));
  results.sections = { ...prior.sections, ...results.sections };
  results.targets = [...prior.targets.filter((t) => !figures.has(t.figure)), ...results.targets];
  Object.assign(results, { measuredAt: { ...priorAt, ...measuredAt } });
} else Object.assign(results, { measuredAt });
writeResults(out, results);
const m = results.machine;
console.log(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GiB, Node ${m.node}, commit ${m.gitCommit}`);
console.log(printTable(rows, ["SECTION", "FIGURE", "MEDIAN (SPREAD)", "NOTES"]));
console.log();
console.log(printTable(thisRun.map((t) => [t.pass ? "pass" : "FAIL", t.figure, `${t.value} ${t.unit}`, t.target]), ["", "TARGET", "MEASURED", "WANTED"]));
console.error(`[bench] wrote ${out}`);
