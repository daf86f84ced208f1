/**
 * 10. Control-plane overhead per run (`run-overhead`): what the control plane itself adds around
 * each run, from the moment a worker has a job in hand (dequeued) to the runner's start, and from
 * the runner's end to the finish recorded in PostgreSQL; median and p99 with W = 1, 8, 32 workers.
 * The runner is a timer (no CPU, no Automation API): only the control plane's own work is between
 * the timestamps. Baselines measured in the same run on the same pool: one `SELECT 1` round trip,
 * and one committed single-row UPDATE (a round trip plus the WAL flush of a commit: the least any
 * durable state change costs, and a claim and a finish are each one).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { ControlPlane } from "../../automation/controlPlane.ts";
import type { RunContext, Runner, RunOutcome } from "../../automation/runs/runner.ts";
import { loadPlatform } from "../../infra/model/platform.ts";
import { benchConfig, devNullLogger, makeBenchRepo } from "../lib/controlPlane.ts";
import { round, target, type Section } from "../lib/report.ts";
import { percentile, summarize } from "../lib/stats.ts";
import { postgresCpuNs, withPostgres } from "./controlPlane.ts";

const RUNS_PER_SAMPLE = 200;
const RUN_MS = 50;
/** W values measured; `BENCH_OVERHEAD_WORKERS=32` (a comma list) measures only those (a profile of one W). */
const WORKER_COUNTS = (process.env.BENCH_OVERHEAD_WORKERS ?? "1,8,32").split(",").map((w) => {
  const n = Number(w.trim());
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`BENCH_OVERHEAD_WORKERS: "${w}" is not a worker count from 1 to 64 (TENANCY_MAX_PARALLEL_RUNS' range); give a comma list such as 8,32`);
  return n;
});

/** Sleeps RUN_MS and stamps when the runner was entered and left, per run id. */
class StampRunner implements Runner {
  readonly kind = "local" as const;
  readonly started = new Map<string, number>();
  readonly ended = new Map<string, number>();
  async up(ctx: RunContext): Promise<RunOutcome> {
    this.started.set(ctx.runId, performance.now());
    await sleep(RUN_MS, undefined, { signal: ctx.signal });
    this.ended.set(ctx.runId, performance.now());
    return { summary: null, outputs: {}, concurrentUpdateRetries: 0, stdoutTail: "" };
  }
  destroy(ctx: RunContext): Promise<RunOutcome> {
    return this.up(ctx);
  }
  async moveState(): Promise<never> {
    throw new Error("the run-overhead benchmark moves no state");
  }
  async preview(): Promise<never> {
    throw new Error("the run-overhead benchmark checks no drift");
  }
}

interface OverheadSample {
  workers: number;
  startMs: number[];
  finishMs: number[];
  baselineMs: number;
  commitBaselineMs: number;
  /** Where the time goes, per run (ms): the parts of startMs and finishMs. */
  parts: Record<Part, number[]>;
  /** Waits for one of the pool's connections (ms), per trip (the query of the claims and finishes committed together). */
  poolWait: number[];
  /** A trip's query alone, from a connection in hand to its answer (ms). */
  statement: number[];
  /** Trips of claims and finishes (RunStore.trips: groupCommit.ts): how many, and the items they carried. */
  trips: { trips: number; items: number; largest: number; retried: number };
  /** The event loop's delay over the sample (ms; perf_hooks monitorEventLoopDelay, 1 ms resolution). */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** The machine's 1-minute load average when the sample ended (os.loadavg; the host is shared). */
  load: number;
  /**
   * Time per run over the sample (ms): PostgreSQL's processes on a CPU (postgresCpuNs), this
   * process's event loop busy (performance.eventLoopUtilization: not waiting for I/O, which counts
   * time its thread waited for a CPU) and all its threads on a CPU (process.cpuUsage). The CPU
   * times are what a busy machine stretches least, unlike the latencies: what an A/B comparison of
   * a change reads.
   */
  cpuPerRunMs: { postgres: number; nodeMain: number; nodeAll: number };
}

/**
 * The parts of the start (dequeued -> claim called -> claimed -> checkout called -> checked out ->
 * runner entered) and of the finish (runner left -> finish called -> recorded).
 */
const PARTS = ["beforeClaim", "claim", "claimToCheckout", "checkout", "checkoutToRunner", "beforeFinish", "finish"] as const;
type Part = (typeof PARTS)[number];

/** Whether a pool query is a trip of claims and finishes (oneTrip.ts), by its text. */
const isTrip = (text: unknown): boolean => typeof text === "string" && (text.includes("tenancy_claim_run(") || text.includes("tenancy_finish_run("));

async function measure(databaseUrl: string, repoDir: string, workers: number, postmaster: number): Promise<OverheadSample> {
  const dataDir = mkdtempSync(join(tmpdir(), "tenancy-bench-cp-"));
  const runner = new StampRunner();
  const region = loadPlatform(repoDir).regions[0]!;
  const cp = await ControlPlane.create(benchConfig({ databaseUrl, repoDir, dataDir, maxParallelRuns: workers, workerRegions: [region] }), { log: devNullLogger(), runner, regionOf: () => region });
  try {
    // The dispatcher calls the worker's handle() with each job as it is fetched (the job is in
    // hand: dequeued); the worker calls store.finish last.
    const dequeued = new Map<string, number>();
    const recorded = new Map<string, number>();
    const claimCalled = new Map<string, number>();
    const claimed = new Map<string, number>();
    const checkoutCalled = new Map<string, number>();
    const checkedOut = new Map<string, number>();
    const finishCalled = new Map<string, number>();
    const store = cp.runs;
    const worker = cp.runWorker;
    const handle = worker.handle.bind(worker);
    const finish = store.finish.bind(store);
    const start = store.start.bind(store);
    const checkout = cp.writer.checkout.bind(cp.writer);
    worker.handle = (jobId, data) => {
      dequeued.set(data.runId, performance.now());
      return handle(jobId, data);
    };
    store.start = async (runId, ...rest) => {
      claimCalled.set(runId, performance.now());
      const decision = await start(runId, ...rest);
      claimed.set(runId, performance.now());
      return decision;
    };
    cp.writer.checkout = async (name, ...rest) => {
      const runId = /^run-(.+)-\d+$/.exec(name)?.[1] ?? name;
      checkoutCalled.set(runId, performance.now());
      const c = await checkout(name, ...rest);
      checkedOut.set(runId, performance.now());
      return c;
    };
    store.finish = async (runId, ...rest) => {
      finishCalled.set(runId, performance.now());
      const ok = await finish(runId, ...rest);
      recorded.set(runId, performance.now());
      return ok;
    };
    // The pool's wait and the query's own time, per trip: pool.query as pg-pool does it (a
    // connection, the query, the connection released; on an error released with it), with the two
    // times taken apart.
    const poolWait: number[] = [];
    const statement: number[] = [];
    const pool = cp.db.pool;
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    (pool as unknown as { query: (...args: unknown[]) => Promise<unknown> }).query = async (...args: unknown[]) => {
      if (!isTrip(args[0]) || typeof args[args.length - 1] === "function") return query(...args);
      const t0 = performance.now();
      const client = await pool.connect();
      const t1 = performance.now();
      try {
        const res = await (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
        client.release();
        return res;
      } catch (err) {
        client.release(err as Error);
        throw err;
      } finally {
        poolWait.push(t1 - t0);
        statement.push(performance.now() - t1);
      }
    };
    const stacks = Array.from({ length: RUNS_PER_SAMPLE }, (_, i) => `bench-overhead-${String(i).padStart(3, "0")}`);
    const enqueued = await store.enqueueAll(stacks, { reason: "run overhead benchmark" });
    const base: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await cp.db.pool.query("SELECT 1");
      base.push(performance.now() - t);
    }
    const commits: number[] = [];
    // A regular table (a temporary one writes no WAL): created and dropped around the samples.
    await cp.db.pool.query("CREATE TABLE bench_commit_baseline (id int PRIMARY KEY, n int NOT NULL); INSERT INTO bench_commit_baseline VALUES (1, 0)");
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await cp.db.pool.query("UPDATE bench_commit_baseline SET n = n + 1 WHERE id = 1");
      commits.push(performance.now() - t);
    }
    await cp.db.pool.query("DROP TABLE bench_commit_baseline");
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const pg0 = postgresCpuNs(postmaster);
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    await cp.start({ runs: true });
    while (recorded.size < enqueued.length) await sleep(5);
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const pgNs = postgresCpuNs(postmaster) - pg0;
    loop.disable();
    const startMs: number[] = [];
    const finishMs: number[] = [];
    const parts = Object.fromEntries(PARTS.map((p) => [p, [] as number[]])) as Record<Part, number[]>;
    for (const { runId } of enqueued) {
      const at = [dequeued, claimCalled, claimed, checkoutCalled, checkedOut, runner.started, runner.ended, finishCalled, recorded].map((m) => m.get(runId));
      if (at.some((t) => t === undefined)) throw new Error(`run ${runId}: missing a timestamp`);
      const [d, cc, cd, kc, kd, s, e, fc, r] = at as number[];
      startMs.push(s! - d!);
      finishMs.push(r! - e!);
      parts.beforeClaim.push(cc! - d!);
      parts.claim.push(cd! - cc!);
      parts.claimToCheckout.push(kc! - cd!);
      parts.checkout.push(kd! - kc!);
      parts.checkoutToRunner.push(s! - kd!);
      parts.beforeFinish.push(fc! - e!);
      parts.finish.push(r! - fc!);
    }
    const ms = (ns: number) => round(ns / 1e6, 2);
    return {
      workers, startMs, finishMs, baselineMs: summarize(base).median, commitBaselineMs: summarize(commits).median, parts, poolWait, statement, trips: { ...store.trips.stats },
      eventLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
      load: round(loadavg()[0]!, 2),
      cpuPerRunMs: { postgres: round(pgNs / 1e6 / enqueued.length, 3), nodeMain: round(elu.active / enqueued.length, 3), nodeAll: round((cpu.user + cpu.system) / 1000 / enqueued.length, 3) },
    };
  } finally {
    await cp.stop(0).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runOverhead(runs: number, log: (s: string) => void): Promise<Section> {
  const repoDir = makeBenchRepo();
  try {
    return await withPostgres(async (newDatabase, server) => {
      const samples: OverheadSample[] = [];
      let n = 0;
      for (let i = 0; i < runs; i++) {
        for (const w of WORKER_COUNTS) {
          const s = await measure(await newDatabase(`bench_overhead_${n++}`), repoDir, w, server.pid);
          const med = (xs: number[]) => (xs.length > 0 ? round(percentile(xs, 50), 1) : NaN);
          log(
            `run overhead ${i + 1}/${runs}, ${w} workers: start median ${med(s.startMs)} ms, finish median ${med(s.finishMs)} ms; ` +
              `parts ${PARTS.map((p) => `${p} ${med(s.parts[p])}`).join(", ")}; trips ${s.trips.trips} of ${s.trips.items} items (largest ${s.trips.largest}): pool wait ${med(s.poolWait)}, query ${med(s.statement)}; ` +
              `event loop delay p50 ${s.eventLoopDelayMs.p50} p99 ${s.eventLoopDelayMs.p99} max ${s.eventLoopDelayMs.max}; ` +
              `a run: PostgreSQL CPU ${s.cpuPerRunMs.postgres} ms, event loop busy ${s.cpuPerRunMs.nodeMain} ms, Node CPU ${s.cpuPerRunMs.nodeAll} ms; load ${s.load}`,
          );
          samples.push(s);
        }
      }
      const rows: string[][] = [];
      const byWorkers: Record<string, unknown> = {};
      const targets = [];
      for (const w of WORKER_COUNTS) {
        const of = samples.filter((s) => s.workers === w);
        const all = (k: "startMs" | "finishMs") => of.flatMap((s) => s[k]);
        const fig = (k: "startMs" | "finishMs") => ({ median: round(percentile(all(k), 50), 2), p99: round(percentile(all(k), 99), 2), runs: all(k).length });
        const start = fig("startMs");
        const finish = fig("finishMs");
        const baseline = round(summarize(of.map((s) => s.baselineMs)).median, 3);
        const commitBaseline = round(summarize(of.map((s) => s.commitBaselineMs)).median, 3);
        const medianOf = (xs: number[]) => (xs.length > 0 ? round(percentile(xs, 50), 2) : null);
        const breakdown = {
          partsMedianMs: Object.fromEntries(PARTS.map((p) => [p, medianOf(of.flatMap((s) => s.parts[p]))])),
          tripPoolWaitMs: { median: medianOf(of.flatMap((s) => s.poolWait)), p99: round(percentile(of.flatMap((s) => s.poolWait), 99), 2) },
          tripQueryMs: { median: medianOf(of.flatMap((s) => s.statement)), p99: round(percentile(of.flatMap((s) => s.statement), 99), 2) },
          trips: of.reduce((n, s) => n + s.trips.trips, 0),
          itemsPerTrip: round(of.reduce((n, s) => n + s.trips.items, 0) / Math.max(1, of.reduce((n, s) => n + s.trips.trips, 0)), 2),
          largestTrip: Math.max(...of.map((s) => s.trips.largest)),
          cpuPerRunMs: Object.fromEntries((["postgres", "nodeMain", "nodeAll"] as const).map((k) => [k, round(summarize(of.map((s) => s.cpuPerRunMs[k])).median, 3)])),
          eventLoopDelayMs: {
            p50: round(summarize(of.map((s) => s.eventLoopDelayMs.p50)).median, 2),
            p99: round(summarize(of.map((s) => s.eventLoopDelayMs.p99)).median, 2),
            max: round(Math.max(...of.map((s) => s.eventLoopDelayMs.max)), 2),
          },
        };
        const load = of.map((s) => s.load);
        byWorkers[String(w)] = { dequeueToRunnerStartMs: start, runnerEndToRecordedFinishMs: finish, baselineSelect1Ms: baseline, baselineCommitMs: commitBaseline, loadAverage1m: load, breakdown };
        const notes = `baseline SELECT 1 ${baseline} ms, one-row UPDATE committed ${commitBaseline} ms, load ${Math.min(...load)} to ${Math.max(...load)}`;
        rows.push([`dequeue -> runner start, ${w} workers`, `median ${start.median} ms, p99 ${start.p99} ms (n=${start.runs})`, notes]);
        rows.push([`runner end -> recorded finish, ${w} workers`, `median ${finish.median} ms, p99 ${finish.p99} ms (n=${finish.runs})`, notes]);
        targets.push(target(`run overhead, dequeue -> runner start, ${w} workers (median)`, start.median, "ms", "<=", 10));
        targets.push(target(`run overhead, runner end -> recorded finish, ${w} workers (median)`, finish.median, "ms", "<=", 10));
      }
      return {
        name: "runOverhead",
        data: {
          setup: {
            runsPerSample: RUNS_PER_SAMPLE, runMs: RUN_MS, workerCounts: WORKER_COUNTS,
            runner: "a timer of RUN_MS per run (no CPU, no Automation API)",
            start: "from the worker handed the pg-boss job (RunWorker.handle entered, the dispatcher calls it as it fetches) to the runner entered: head read, claim (one round trip, with the claims and finishes asked for meanwhile: groupCommit.ts; it records the program in force), heartbeat set-up, checkout (an overlay of the commit's shared export)",
            finish: "from the runner returning to RunStore.finish resolved: event flush, finish (one round trip, grouped as the claim; a transaction when a queued run waits for the stack)",
            breakdown: "parts of the start (beforeClaim: head read; claim: waiting for the trip on its way and its own trip; checkout) and of the finish; per trip: the pool's wait and the query (its WAL flush included); the event loop's delay over the sample",
            baseline: "median of 50 SELECT 1 round trips on the same pool, same run",
            commitBaseline: "median of 50 committed single-row UPDATEs on the same pool, same run (synchronous_commit on)",
          },
          byWorkers,
        },
        rows,
        targets,
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}
