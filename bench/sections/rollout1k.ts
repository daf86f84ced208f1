/**
 * 14. A 1,000-stack rollout in 4 rings through the control plane (`rollout-1k`, BENCHMARKS.md):
 * the real rollout engine and ticker, run queue, run workers, git checkout per run and the
 * Automation API's LocalWorkspace driving the Pulumi CLI test double (nothing is deployed), which
 * runs on a worker thread of its own as a real CLI runs in a process of its own, so the figures are
 * the control plane's and not the double's. Each stack's update takes a duration sampled uniformly
 * from 30-120 s, compressed COMPRESSION times in the CLI double; bake times are compressed the same
 * way. Baseline, computed in the same run from the same durations: the ideal wall time for the
 * waves' parallelism and bake times (greedy slots in the engine's stack order, zero overhead). Then
 * the same rollout with the canary's update failing: how many stacks of later waves were updated
 * (target 0).
 *
 * Compression x10 by default (BENCHMARKS.md §14 says why): nothing of a run but its update's sleep
 * is compressed, so the factor multiplies the per-run costs' share of the wall time; at x10 updates
 * (3-12 s) stay longer than those costs, as real ones (30-120 s) are, and that share is ten times
 * what the same costs would be at real durations. BENCH_ROLLOUT_COMPRESSION=100 is the stress case (updates
 * of 0.3-1.2 s, 32 of them ending every second or so: the control plane's throughput on this machine).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlPlane } from "../../automation/controlPlane.ts";
import type { PlannedWave } from "../../infra/model/rings.ts";
import type { FakePulumiCommand } from "../../test/automation/support/fakePulumi.ts";
import { FakePulumiThread } from "../../test/automation/support/fakePulumiThread.ts";
import { benchConfig, devNullLogger, makeBenchRepo } from "../lib/controlPlane.ts";
import { round, target, type Section } from "../lib/report.ts";
import { percentile } from "../lib/stats.ts";
import { withPostgres } from "./controlPlane.ts";

const COMPRESSION = Number(process.env.BENCH_ROLLOUT_COMPRESSION ?? 10);
const MIN_S = 30;
const MAX_S = 120;
/** Rings as in the example Pulumi.yaml (bake minutes, parallelism, budget), sized for 1,000 stacks. */
const RINGS = [
  { ring: "non-prod", count: 100, parallelism: 16, bakeMinutes: 10, failureBudgetPercent: 0 },
  { ring: "canary", count: 4, parallelism: 4, bakeMinutes: 30, failureBudgetPercent: 0 },
  { ring: "prod-10", count: 90, parallelism: 16, bakeMinutes: 30, failureBudgetPercent: 10 },
  { ring: "prod-rest", count: 806, parallelism: 32, bakeMinutes: 0, failureBudgetPercent: 5 },
] as const;
/** BENCH_ROLLOUT_STACKS scales every ring (default 1,000 stacks, the issue's figure) for a quick look. */
const STACKS = Number(process.env.BENCH_ROLLOUT_STACKS ?? 1000);
const ringCount = (n: number) => Math.max(1, Math.round((n * STACKS) / 1000));
/** Run workers (TENANCY_MAX_PARALLEL_RUNS): the widest wave's parallelism. BENCH_ROLLOUT_WORKERS overrides it for a diagnosis. */
const WORKERS = Number(process.env.BENCH_ROLLOUT_WORKERS ?? 32);
const REGION = "us-east-1";

/** A seeded generator (mulberry32): the same durations in every run of the bench. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function plan(): { waves: PlannedWave[]; durationMs: Record<string, number> } {
  const rnd = random(19);
  const durationMs: Record<string, number> = {};
  let n = 0;
  const waves = RINGS.map((r, index) => {
    const stacks = Array.from({ length: ringCount(r.count) }, () => `shared-prod-bench-${String(n++).padStart(4, "0")}`).sort();
    for (const s of stacks) durationMs[s] = Math.round(((MIN_S + rnd() * (MAX_S - MIN_S)) * 1000) / COMPRESSION);
    return { index, ring: r.ring, parallelism: r.parallelism, bakeMs: (r.bakeMinutes * 60_000) / COMPRESSION, failureBudgetPercent: r.failureBudgetPercent, stacks };
  });
  return { waves, durationMs };
}

/** Greedy slots in stack order, no overhead: the wave's makespan. */
function idealWaveMs(wave: PlannedWave, durationMs: Record<string, number>): number {
  const slots = new Array<number>(wave.parallelism).fill(0);
  for (const s of wave.stacks) {
    const i = slots.indexOf(Math.min(...slots));
    slots[i] = slots[i]! + durationMs[s]!;
  }
  return Math.max(...slots);
}

/** A CLI double that stamps, per run directory, its first and last command and its `up`. */
class StampedPulumi {
  readonly stamps = new Map<string, { first: number; last: number; upStart?: number; upEnd?: number; commands: number }>();
  constructor(private readonly inner: Pick<FakePulumiThread, "command" | "version" | "run">) {}
  get command() {
    return this.inner.command;
  }
  get version() {
    return this.inner.version;
  }
  async run(args: string[], cwd: string, env: Record<string, string>, onOutput?: (d: string) => void, onError?: (d: string) => void, signal?: AbortSignal) {
    const key = /run-([0-9a-f-]{36})-/.exec(cwd)?.[1] ?? cwd;
    const t = Date.now();
    const st = this.stamps.get(key) ?? { first: t, last: t, commands: 0 };
    st.commands++;
    this.stamps.set(key, st);
    const up = args[0] === "up";
    if (up) st.upStart = t;
    try {
      return await this.inner.run(args, cwd, env, onOutput, onError, signal);
    } finally {
      st.last = Date.now();
      if (up) st.upEnd = st.last;
    }
  }
}

/** Medians (ms) of the phases of a run, from the run records and the CLI double's stamps. */
export interface PhaseBreakdown {
  /** rollout stack started (run queued) -> run claimed by a worker (runs.started_at). */
  queuedToClaimed: number;
  /** of which: queued -> the run's pg-boss job fetched by a worker (pgboss.job started_on). */
  queuedToFetched: number;
  /** of which: job fetched -> run claimed (RunStore.start's transaction). */
  fetchedToClaimed: number;
  /** claimed -> first CLI command (checkout, composing, Automation API workspace). */
  claimedToFirstCommand: number;
  /** first CLI command -> `up` starts (the commands before it: version, stack select, config...). */
  firstCommandToUp: number;
  /** `up` itself beyond the stack's simulated duration: the CLI double's own time (not the control plane's). */
  upBeyondDuration: number;
  /** `up` ends -> last CLI command ends. */
  upToLastCommand: number;
  /** last CLI command -> run finished recorded (runs.finished_at). */
  lastCommandToFinished: number;
  /** run finished -> the rollout records the stack's outcome (rollout_stacks.finished_at). */
  finishedToRecorded: number;
  /** run finished -> its pg-boss job completed (pgboss.job completed_on): the worker slot is free just before (the run's checkout released). */
  finishedToSlotFree: number;
  /** CLI commands per run (median). */
  commandsPerRun: number;
}

interface RolloutOutcome {
  state: string;
  wallMs: number;
  /** From the start to the end of the canary wave's last run (recorded). */
  canaryDoneMs: number | undefined;
  /** Per run: recorded duration in the rollout (started -> finished) minus the simulated update. */
  overheadMs: number[];
  /** Per run: runs table, queued -> finished, minus the simulated update (the run queue's share). */
  runOverheadMs: number[];
  laterWavesTouched: number;
  haltReason: string | null;
  phases: PhaseBreakdown | undefined;
  /** The rollout ticks (each after a run's end, or at the interval): how many, and their duration's median and p99 (ms). */
  ticks: { n: number; median: number; p99: number };
  /**
   * Per wave: its first stack started -> its last outcome recorded (the wave's runs, without its
   * bake), and the gap from the previous wave's last outcome to this wave's first start beyond the
   * previous wave's bake time (the engine notices a bake's end at a tick), ms.
   */
  waveSpans: { spanMs: number; gapBeyondBakeMs: number | null }[];
}

async function rolloutOnce(databaseUrl: string, repoDir: string, failCanary: boolean, log: (s: string) => void): Promise<RolloutOutcome> {
  const { waves, durationMs } = plan();
  const canary = waves[1]!.stacks[0]!;
  const dataDir = mkdtempSync(join(tmpdir(), "tenancy-bench-rollout-"));
  // The double runs on a thread of its own, as a real CLI runs in its own process: in the control
  // plane's process it loaded the fleet on the event loop every run waits on (BENCHMARKS.md §14).
  const double = new FakePulumiThread({ stateDir: join(dataDir, "pulumi-state"), durationMs, ...(failCanary ? { failures: { [canary]: "injected canary failure" } } : {}) });
  const fake = new StampedPulumi(double);
  const cp = await ControlPlane.create(
    benchConfig({ databaseUrl, repoDir, dataDir, maxParallelRuns: WORKERS, workerRegions: [REGION], heartbeatSeconds: 5 }),
    { log: devNullLogger(), pulumiCommand: fake as unknown as ReturnType<FakePulumiCommand["asPulumiCommand"]>, regionOf: () => REGION, pollingIntervalSeconds: 0.5 },
  );
  try {
    const commit = await cp.writer.head();
    // Times every tick (the ticker calls the engine's tick through this property).
    const engine = cp.rollouts.engine;
    const tick = engine.tick.bind(engine);
    const tickMs: number[] = [];
    engine.tick = async () => {
      const t = performance.now();
      try {
        await tick();
      } finally {
        tickMs.push(performance.now() - t);
      }
    };
    await cp.start({ runs: true });
    const t0 = performance.now();
    const r = await cp.rollouts.engine.start({ name: failCanary ? "bench 1k, canary fails" : "bench 1k", commit, waves });
    let last = "";
    for (;;) {
      const now = (await cp.rollouts.engine.get(r.id))!;
      const line = `${now.state} wave ${now.wave + 1}/${waves.length}`;
      if (line !== last) log(`rollout${failCanary ? " (canary fails)" : ""}: ${line} at ${round((performance.now() - t0) / 1000, 1)} s`);
      last = line;
      if (!["running", "waiting"].includes(now.state)) break;
      await sleep(50);
    }
    const wallMs = performance.now() - t0;
    const rollout = (await cp.rollouts.engine.get(r.id))!;
    const { rows } = await cp.db.pool.query<{ wave: number; stack: string; state: string; started: Date | null; finished: Date | null; rcreated: Date | null; rfinished: Date | null; rstarted: Date | null; run_id: string | null }>(
      `SELECT s.wave, s.stack, s.state, s.started_at AS started, s.finished_at AS finished, r.created_at AS rcreated, r.finished_at AS rfinished, r.started_at AS rstarted, s.run_id
         FROM rollout_stacks s LEFT JOIN runs r ON r.id = s.run_id WHERE s.rollout_id = $1`,
      [r.id],
    );
    const startedAt = new Date(rollout.createdAt).getTime();
    const canaryEnd = rows.filter((x) => x.wave === 1 && x.finished).map((x) => x.finished!.getTime());
    const done = rows.filter((x) => x.state === "succeeded" && x.started && x.finished && x.rcreated && x.rfinished);
    const jobs = await cp.db.pool.query<{ run_id: string; fetched: Date; completed: Date | null }>(
      "SELECT data->>'runId' AS run_id, min(started_on) AS fetched, max(completed_on) AS completed FROM pgboss.job WHERE name LIKE 'stack-run%' AND started_on IS NOT NULL GROUP BY 1",
    );
    const fetchedAt = new Map(jobs.rows.map((j) => [j.run_id, j.fetched.getTime()]));
    const completedAt = new Map(jobs.rows.flatMap((j) => (j.completed ? [[j.run_id, j.completed.getTime()] as const] : [])));
    const byWave = waves.map((w) => {
      const xs = rows.filter((x) => x.wave === w.index && x.run_id && x.started && fetchedAt.has(x.run_id)).map((x) => fetchedAt.get(x.run_id!)! - x.started!.getTime());
      return xs.length > 0 ? round(percentile(xs, 50), 1) : null;
    });
    log(`queued>job fetched by wave (medians, ms): ${byWave.join(" / ")}`);
    const runsOfLater = await cp.db.pool.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE stack = ANY($1)", [waves.slice(2).flatMap((w) => w.stacks)]);
    return {
      state: rollout.state,
      wallMs,
      canaryDoneMs: canaryEnd.length === waves[1]!.stacks.length ? Math.max(...canaryEnd) - startedAt : undefined,
      overheadMs: done.map((x) => x.finished!.getTime() - x.started!.getTime() - durationMs[x.stack]!),
      runOverheadMs: done.map((x) => x.rfinished!.getTime() - x.rcreated!.getTime() - durationMs[x.stack]!),
      laterWavesTouched: rows.filter((x) => x.wave >= 2 && x.state !== "pending").length + Number(runsOfLater.rows[0]!.n),
      haltReason: rollout.haltReason,
      phases: phasesOf(done, fake.stamps, durationMs, fetchedAt, completedAt),
      ticks: { n: tickMs.length, median: round(percentile(tickMs, 50), 1), p99: round(percentile(tickMs, 99), 1) },
      waveSpans: waves.flatMap((w) => {
        const mine = rows.filter((x) => x.wave === w.index && x.started && x.finished);
        if (mine.length < w.stacks.length) return [];
        const first = Math.min(...mine.map((x) => x.started!.getTime()));
        const last = Math.max(...mine.map((x) => x.finished!.getTime()));
        const before = rows.filter((x) => x.wave === w.index - 1 && x.finished).map((x) => x.finished!.getTime());
        const gap = w.index > 0 && before.length > 0 ? first - Math.max(...before) - waves[w.index - 1]!.bakeMs : null;
        return [{ spanMs: last - first, gapBeyondBakeMs: gap }];
      }),
    };
  } finally {
    await cp.stop(0).catch(() => undefined);
    await double.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function phaseText(p: PhaseBreakdown | undefined): string {
  if (!p) return "n/a";
  return `${p.queuedToClaimed} (${p.queuedToFetched} + ${p.fetchedToClaimed}) / ${p.claimedToFirstCommand} / ${p.firstCommandToUp} / ${p.upBeyondDuration} / ${p.upToLastCommand} / ${p.lastCommandToFinished} / ${p.finishedToRecorded} / ${p.finishedToSlotFree}; ${p.commandsPerRun} CLI commands a run`;
}

function phasesOf(
  rows: { stack: string; started: Date | null; finished: Date | null; rstarted: Date | null; rfinished: Date | null; run_id: string | null }[],
  stamps: StampedPulumi["stamps"],
  durationMs: Record<string, number>,
  fetchedAt: Map<string, number>,
  completedAt: Map<string, number>,
): PhaseBreakdown | undefined {
  const p: Record<keyof PhaseBreakdown, number[]> = {
    queuedToClaimed: [], queuedToFetched: [], fetchedToClaimed: [], claimedToFirstCommand: [], firstCommandToUp: [], upBeyondDuration: [], upToLastCommand: [], lastCommandToFinished: [], finishedToRecorded: [], finishedToSlotFree: [], commandsPerRun: [],
  };
  for (const r of rows) {
    const st = r.run_id ? stamps.get(r.run_id) : undefined;
    if (!st || st.upStart === undefined || st.upEnd === undefined || !r.rstarted) continue;
    p.queuedToClaimed.push(r.rstarted.getTime() - r.started!.getTime());
    const fetched = fetchedAt.get(r.run_id!);
    if (fetched !== undefined) {
      p.queuedToFetched.push(fetched - r.started!.getTime());
      p.fetchedToClaimed.push(r.rstarted.getTime() - fetched);
    }
    p.claimedToFirstCommand.push(st.first - r.rstarted.getTime());
    p.firstCommandToUp.push(st.upStart - st.first);
    p.upBeyondDuration.push(st.upEnd - st.upStart - durationMs[r.stack]!);
    p.upToLastCommand.push(st.last - st.upEnd);
    p.lastCommandToFinished.push(r.rfinished!.getTime() - st.last);
    p.finishedToRecorded.push(r.finished!.getTime() - r.rfinished!.getTime());
    const completed = completedAt.get(r.run_id!);
    if (completed !== undefined) p.finishedToSlotFree.push(completed - r.rfinished!.getTime());
    p.commandsPerRun.push(st.commands);
  }
  if (p.commandsPerRun.length === 0) return undefined;
  return Object.fromEntries(Object.entries(p).map(([k, xs]) => [k, round(percentile(xs, 50), 1)])) as unknown as PhaseBreakdown;
}

export async function rollout1k(runs: number, log: (s: string) => void): Promise<Section> {
  const { waves, durationMs } = plan();
  const idealWaves = waves.map((w) => idealWaveMs(w, durationMs));
  const idealMs = idealWaves.reduce((a, b) => a + b, 0) + waves.slice(0, -1).reduce((a, w) => a + w.bakeMs, 0);
  const idealCanaryMs = idealWaves[0]! + waves[0]!.bakeMs + idealWaves[1]!;
  const repoDir = makeBenchRepo();
  try {
    return await withPostgres(async (newDatabase) => {
      // The machine is shared: the 1-, 5- and 15-minute load averages before and after the rollouts go with the figures.
      const loadBefore = loadavg().map((x) => round(x, 1));
      const ok: RolloutOutcome[] = [];
      for (let i = 0; i < runs; i++) {
        const o = await rolloutOnce(await newDatabase(`bench_rollout1k_${i}`), repoDir, false, log);
        if (o.state !== "succeeded") throw new Error(`the 1,000-stack rollout ended ${o.state}: ${o.haltReason ?? ""}`);
        log(`rollout 1k ${i + 1}/${runs}: ${round(o.wallMs / 1000, 1)} s (ideal ${round(idealMs / 1000, 1)} s)`);
        ok.push(o);
      }
      const failed = await rolloutOnce(await newDatabase("bench_rollout1k_fail"), repoDir, true, log);
      const wall = percentile(ok.map((o) => o.wallMs), 50);
      const canary = percentile(ok.map((o) => o.canaryDoneMs ?? Number.NaN), 50);
      const over = ok.flatMap((o) => o.overheadMs);
      const runOver = ok.flatMap((o) => o.runOverheadMs);
      const fig = (xs: number[]) => ({ median: round(percentile(xs, 50), 1), p99: round(percentile(xs, 99), 1), n: xs.length });
      const overhead = fig(over);
      const runOverhead = fig(runOver);
      const excess = (wall / idealMs - 1) * 100;
      const c = (ms: number) => `${round(ms / 1000, 1)} s (${round((ms * COMPRESSION) / 60_000, 1)} min uncompressed)`;
      return {
        name: "rollout1k",
        data: {
          setup: {
            stacks: STACKS, rings: RINGS.map((r) => ({ ...r, count: ringCount(r.count) })), workers: WORKERS, compression: COMPRESSION, updateSeconds: [MIN_S, MAX_S],
            runner: "LocalAutomationRunner (Automation API LocalWorkspace) over the Pulumi CLI test double in process; the double sleeps the stack's compressed duration in `up`",
            polling: "a run's end pokes the rollout tick and its worker slot fetches at once; the 0.5 s interval (pg-boss polling of an idle queue, the rollout ticker) is not compressed and paces only what no run's end announces (a bake's end)",
            ideal: "baseline computed from the same durations: per wave, greedy slots of the wave's parallelism in stack order, plus the compressed bake times of every wave but the last; no per-run cost at all (queue, claim, checkout, the other CLI commands, finish, tick)",
          },
          loadAverage: { before: loadBefore, after: loadavg().map((x) => round(x, 1)) },
          idealMs, idealCanaryMs, wallMs: ok.map((o) => o.wallMs), canaryDoneMs: ok.map((o) => o.canaryDoneMs),
          overheadPerRunMs: overhead, runQueueOverheadPerRunMs: runOverhead, phasesMedianMs: ok.map((o) => o.phases), ticks: ok.map((o) => o.ticks), idealWaveMs: idealWaves, waveSpans: ok.map((o) => o.waveSpans),
          canaryFailure: { state: failed.state, laterWavesTouched: failed.laterWavesTouched, haltReason: failed.haltReason, wallMs: failed.wallMs },
        },
        rows: [
          ["rollout, 1,000 stacks in 4 rings: total", c(wall), `ideal ${c(idealMs)}: ${round(excess, 1)}% over; ${WORKERS} workers, compression x${COMPRESSION}`],
          ["rollout, 1,000 stacks: until the canary wave is done", c(canary), `ideal ${c(idealCanaryMs)}`],
          ["control-plane overhead per run (rollout start -> outcome recorded, minus the update)", `median ${overhead.median} ms, p99 ${overhead.p99} ms`, `n=${overhead.n}; includes the rollout tick after the run's end`],
          ["  of which the run queue (queued -> finished, minus the update)", `median ${runOverhead.median} ms, p99 ${runOverhead.p99} ms`, "checkout, Automation API and CLI double, store"],
          [
            "  per wave: first start -> last outcome recorded (ideal makespan)",
            (ok[0]?.waveSpans ?? []).map((x, i) => `${round(x.spanMs / 1000, 1)} s (${round(idealWaves[i]! / 1000, 1)} s)`).join(" / "),
            `runs only, bakes excluded; gap beyond the bake before waves 2-4: ${(ok[0]?.waveSpans ?? []).slice(1).map((x) => `${x.gapBeyondBakeMs} ms`).join(" / ")}`,
          ],
          ["  rollout ticks (after each run's end, or at the interval)", `median ${ok[0]?.ticks.median} ms, p99 ${ok[0]?.ticks.p99} ms`, `${ok[0]?.ticks.n} ticks`],
          ["  phases (medians, ms)", phaseText(ok[0]?.phases), "queued>claimed (queued>job fetched + fetched>claimed), claimed>1st CLI command, 1st>up, up beyond its simulated duration (the double), up end>last command, last>finished, finished>recorded by the rollout, finished>job completed (slot free)"],
          ["canary fails: stacks of later waves updated", String(failed.laterWavesTouched), `rollout ${failed.state}: ${(failed.haltReason ?? "").slice(0, 80)}`],
        ],
        targets: [
          target("rollout of 1,000 stacks in 4 rings: wall time over the ideal (median)", excess, "%", "<=", 5),
          target("rollout with a failing canary: stacks updated outside the failing wave", failed.laterWavesTouched, "", "<=", 0),
        ],
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}
