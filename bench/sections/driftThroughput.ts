/**
 * 13. Drift detection throughput (`drift-throughput`, BENCHMARKS.md): the real DriftScheduler
 * ticking every second over STACKS stacks, all due at once, with CONCURRENCY checks at a time on as
 * many run workers, through the Automation API's LocalWorkspace and the Pulumi CLI test double on a
 * worker thread of its own, as a real CLI runs in its own process (nothing is read from a cloud),
 * which reports drift for one stack in ten. Each check
 * takes a duration sampled from 30-120 s, compressed COMPRESSION times in the double. Figures:
 * stacks checked per minute (and per hour uncompressed), and the scheduler's own time per tick.
 * Baseline in the same run: the same previews queued at once on the run queue, no scheduler, same
 * workers.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlPlane } from "../../automation/controlPlane.ts";
import { DriftScheduler } from "../../automation/drift/scheduler.ts";
import type { FakePulumiCommand } from "../../test/automation/support/fakePulumi.ts";
import { FakePulumiThread } from "../../test/automation/support/fakePulumiThread.ts";
import { benchConfig, devNullLogger, makeBenchRepo } from "../lib/controlPlane.ts";
import { round, type Section } from "../lib/report.ts";
import { percentile } from "../lib/stats.ts";
import { withPostgres } from "./controlPlane.ts";

const STACKS = Number(process.env.BENCH_DRIFT_STACKS ?? 200);
const CONCURRENCY = 8;
const COMPRESSION = Number(process.env.BENCH_ROLLOUT_COMPRESSION ?? 100);
const TICK_MS = 1000;
const REGION = "us-east-1";

function fleet(): { stacks: string[]; durationMs: Record<string, number>; drift: Record<string, { tenant: string; diffs: string[] }[]> } {
  const stacks = Array.from({ length: STACKS }, (_, i) => `shared-prod-drift-${String(i).padStart(4, "0")}`);
  const durationMs: Record<string, number> = {};
  const drift: Record<string, { tenant: string; diffs: string[] }[]> = {};
  stacks.forEach((s, i) => {
    // Deterministic spread over 30-120 s (a multiplicative hash of the index).
    durationMs[s] = Math.round(((30 + ((i * 2654435761) % 91)) * 1000) / COMPRESSION);
    if (i % 10 === 0) drift[s] = [{ tenant: `t${i}`, diffs: ["tags"] }];
  });
  return { stacks, durationMs, drift };
}

interface Sample { wallMs: number; tickMs: number[]; verdicts: Record<string, number> }

async function once(databaseUrl: string, repoDir: string, mode: "scheduler" | "queue"): Promise<Sample> {
  const { stacks, durationMs, drift } = fleet();
  const dataDir = mkdtempSync(join(tmpdir(), "tenancy-bench-drift-"));
  const fake = new FakePulumiThread({ stateDir: join(dataDir, "pulumi-state"), durationMs, drift });
  const cp = await ControlPlane.create(
    benchConfig({ databaseUrl, repoDir, dataDir, maxParallelRuns: CONCURRENCY, workerRegions: [REGION] }),
    { log: devNullLogger(), pulumiCommand: fake as unknown as ReturnType<FakePulumiCommand["asPulumiCommand"]>, regionOf: () => REGION, pollingIntervalSeconds: 0.5 },
  );
  try {
    await cp.start({ runs: true });
    const t0 = performance.now();
    const tickMs: number[] = [];
    const verdicts: Record<string, number> = {};
    if (mode === "scheduler") {
      // Every stack due at once (rows written due now); the period is long, so none is checked twice.
      const scheduler = new DriftScheduler(cp.db.pool, cp.runs, () => stacks, { periodMs: 3_600_000_000, concurrency: CONCURRENCY });
      await cp.db.pool.query(
        "INSERT INTO stack_drift (stack, state, due_at) SELECT s, 'unchecked', now() FROM unnest($1::text[]) AS s ON CONFLICT (stack) DO NOTHING",
        [stacks],
      );
      for (;;) {
        const t = performance.now();
        await scheduler.tick();
        tickMs.push(performance.now() - t);
        const { rows } = await cp.db.pool.query<{ state: string; n: string }>("SELECT state, count(*) AS n FROM stack_drift GROUP BY state");
        const pending = rows.filter((r) => r.state === "unchecked" || r.state === "checking").reduce((a, r) => a + Number(r.n), 0);
        if (pending === 0) {
          for (const r of rows) verdicts[r.state] = Number(r.n);
          break;
        }
        await sleep(TICK_MS);
      }
    } else {
      const queued = await cp.runs.enqueueAll(stacks, { operation: "preview", reason: "drift benchmark baseline" });
      const ids = queued.map((q) => q.runId);
      for (;;) {
        const { rows } = await cp.db.pool.query<{ state: string; n: string }>("SELECT state, count(*) AS n FROM runs WHERE id = ANY($1::uuid[]) GROUP BY state", [ids]);
        if (rows.every((r) => r.state === "succeeded" || r.state === "failed")) {
          for (const r of rows) verdicts[r.state] = Number(r.n);
          break;
        }
        await sleep(50);
      }
    }
    return { wallMs: performance.now() - t0, tickMs, verdicts };
  } finally {
    await cp.stop(0).catch(() => undefined);
    await fake.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function driftThroughput(runs: number, log: (s: string) => void): Promise<Section> {
  const repoDir = makeBenchRepo();
  const { durationMs } = fleet();
  const idealMs = Object.values(durationMs).reduce((a, b) => a + b, 0) / CONCURRENCY;
  try {
    return await withPostgres(async (newDatabase) => {
      const sched: Sample[] = [];
      const base: Sample[] = [];
      let n = 0;
      for (let i = 0; i < runs; i++) {
        const s = await once(await newDatabase(`bench_drift_${n++}`), repoDir, "scheduler");
        log(`drift ${i + 1}/${runs}: scheduler ${round(s.wallMs / 1000, 1)} s for ${STACKS} stacks ${JSON.stringify(s.verdicts)}`);
        sched.push(s);
        const b = await once(await newDatabase(`bench_drift_${n++}`), repoDir, "queue");
        log(`drift ${i + 1}/${runs}: baseline (run queue only) ${round(b.wallMs / 1000, 1)} s ${JSON.stringify(b.verdicts)}`);
        base.push(b);
      }
      const perMin = (s: Sample) => STACKS / (s.wallMs / 60_000);
      const rate = percentile(sched.map(perMin), 50);
      const baseRate = percentile(base.map(perMin), 50);
      const ticks = sched.flatMap((s) => s.tickMs);
      const tick = { median: round(percentile(ticks, 50), 1), p99: round(percentile(ticks, 99), 1), n: ticks.length };
      const idealRate = STACKS / (idealMs / 60_000);
      return {
        name: "driftThroughput",
        data: {
          setup: { stacks: STACKS, concurrency: CONCURRENCY, compression: COMPRESSION, tickMs: TICK_MS, driftedEveryNth: 10, checkSeconds: [30, 120] },
          stacksPerMinute: rate, baselineStacksPerMinute: baseRate, idealStacksPerMinute: idealRate,
          tickMs: tick, verdicts: sched.map((s) => s.verdicts), baselineRuns: base.map((s) => s.verdicts),
        },
        rows: [
          [`drift checks, ${STACKS} stacks, concurrency ${CONCURRENCY}`, `${round(rate, 1)} stacks/min`, `ideal ${round(idealRate, 1)}/min for the compressed durations; verdicts ${JSON.stringify(sched[0]!.verdicts)}`],
          ["  baseline: the same previews queued at once (no scheduler)", `${round(baseRate, 1)} stacks/min`, `scheduler / baseline ${round((rate / baseRate) * 100, 1)}%`],
          ["drift scheduler: time per tick", `median ${tick.median} ms, p99 ${tick.p99} ms`, `n=${tick.n}, one tick a second`],
        ],
        // The issue sets no target for drift: the figures are reported against the baseline.
        targets: [],
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}
