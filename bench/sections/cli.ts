/**
 * 8. tenantctl start-up: wall time of `tenantctl validate` (the compiled CLI, as `npx tenantctl`
 * runs it) on the example fleet and on 1,000 synthetic tenants, against the process start-up floor
 * (`node -e 0`) measured in the same run, interleaved so each round shares the machine's load.
 * The TypeScript sources through tsx are measured too, for comparison.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PROJECT_DIR, writeSyntheticFleet } from "../lib/fleetGen.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize, type Summary } from "../lib/stats.ts";
import { PLAN_NODE_FLAGS } from "../../plan/nodeFlags.ts";

const BIN = join(PROJECT_DIR, "bin", "tenantctl.mjs");

const CPU_HOOK = join(PROJECT_DIR, "bench", "lib", "cpuAtExit.mjs");

interface Sample { wallMs: number; cpuMs: number }

/** Wall and CPU time of one process run, ms; throws unless it exits 0 with the expected stdout. */
function timed(args: readonly string[], cwd: string, cpuFile: string, expectOut: RegExp, env: NodeJS.ProcessEnv = {}): Sample {
  const t0 = performance.now();
  // The binary with its own flags (its shebang: plan/nodeFlags.ts), as `npx tenantctl` runs it.
  const flags = args[0] === BIN ? PLAN_NODE_FLAGS : [];
  const r = spawnSync(process.execPath, [...flags, "--import", CPU_HOOK, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, TENANTCTL_FROM_SOURCE: "", BENCH_CPU_FILE: cpuFile, ...env },
  });
  const wallMs = performance.now() - t0;
  if (r.status !== 0 || !expectOut.test(r.stdout)) throw new Error(`${args.join(" ")} in ${cwd}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  const cpu = JSON.parse(readFileSync(cpuFile, "utf8")) as { user: number; system: number };
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export async function cliStartup(runs: number, log: (s: string) => void): Promise<Section> {
  // Measure the current sources: rebuild dist/cli first (bin/tenantctl.mjs would otherwise run
  // the sources through tsx, silently, when one changed since the last build).
  log("cli start-up: npm run build");
  const build = spawnSync(process.execPath, [join(PROJECT_DIR, "bin", "build-cli.mjs")], { encoding: "utf8" });
  if (build.status !== 0) throw new Error(`bin/build-cli.mjs failed:\n${build.stderr}`);
  const fleet = writeSyntheticFleet({ pooled: 1000, cells: 10, dedicated: 0 });
  try {
    const cpuFile = join(fleet.dir, "cpu.json");
    const figures = ["floor", "examples", "synthetic", "source"] as const;
    const wall = Object.fromEntries(figures.map((f) => [f, [] as number[]])) as Record<(typeof figures)[number], number[]>;
    const cpu = Object.fromEntries(figures.map((f) => [f, [] as number[]])) as Record<(typeof figures)[number], number[]>;
    // One unmeasured round warms the file cache and V8's code cache (as any second start would be).
    const rounds = runs + 1;
    for (let i = 0; i < rounds; i++) {
      log(`cli start-up: round ${i + 1}/${rounds}${i === 0 ? " (warm-up)" : ""}`);
      const samples = {
        floor: timed(["-e", "0"], PROJECT_DIR, cpuFile, /^$/),
        examples: timed([BIN, "validate"], PROJECT_DIR, cpuFile, /^ok: 9 tenants, /),
        synthetic: timed([BIN, "validate"], fleet.dir, cpuFile, /^ok: 1000 tenants, /),
        source: timed([BIN, "validate"], PROJECT_DIR, cpuFile, /^ok: 9 tenants, /, { TENANTCTL_FROM_SOURCE: "1" }),
      };
      if (i === 0) continue;
      for (const f of figures) {
        wall[f].push(samples[f].wallMs);
        cpu[f].push(samples[f].cpuMs);
      }
    }
    const w = Object.fromEntries(figures.map((f) => [f, summarize(wall[f])])) as Record<(typeof figures)[number], Summary>;
    const c = Object.fromEntries(figures.map((f) => [f, summarize(cpu[f])])) as Record<(typeof figures)[number], Summary>;
    const overFloor = w.examples.median - w.floor.median;
    const cpuNote = (f: (typeof figures)[number]) => `CPU ${round(c[f].median, 0)} ms`;
    return {
      name: "cliStartup",
      data: { wall: w, cpu: c, examplesOverFloorMs: overFloor, examplesCpuOverFloorMs: c.examples.median - c.floor.median, loadAverage1m: loadavg()[0] },
      rows: [
        ["node -e 0 (start-up floor)", fmtSummary(w.floor, "ms"), `${cpuNote("floor")}; Node ${process.versions.node}; load average ${round(loadavg()[0] ?? 0, 1)}`],
        ["tenantctl validate, 9 example tenants", fmtSummary(w.examples, "ms"), `${cpuNote("examples")}; compiled dist/cli; ${round(overFloor, 0)} ms over the floor`],
        ["tenantctl validate, 1,000 tenants", fmtSummary(w.synthetic, "ms"), `${cpuNote("synthetic")}; synthetic fleet, 10 cells`],
        ["tenantctl validate, 9 examples, from source", fmtSummary(w.source, "ms"), `${cpuNote("source")}; TENANTCTL_FROM_SOURCE=1: tsx compiles the sources at run time`],
      ],
      targets: [target("tenantctl validate of the examples over the node -e 0 floor (medians)", overFloor, "ms", "<=", 500)],
    };
  } finally {
    rmSync(fleet.dir, { recursive: true, force: true });
  }
}
