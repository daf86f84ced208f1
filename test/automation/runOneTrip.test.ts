/**
 * A run's claim and finish in one round trip (automation/runs/oneTrip.ts) on live PostgreSQL with
 * pg-boss and the real RunStore: the statements sent to the server are counted. The common case is
 * one statement each (the claim also records the head and reads the tenants); every case the one
 * statement does not decide (a hold, a job that no longer owns its run, a job without its stacks, a
 * queued run waiting for the stack) takes the transaction and ends as before. Claims and finishes
 * asked for at once share a statement per trip (groupCommit.ts splits a burst across a few trips),
 * still one run of a stack at a time.
 */
import type { Pool, PoolClient } from "pg";
import type { PgBoss } from "pg-boss";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { lockKey } from "../../automation/db/tx.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { createLogger } from "../../automation/log.ts";
import { startBoss, type StackRunJob } from "../../automation/queue.ts";
import { claimItem, finishItem, tripSql } from "../../automation/runs/oneTrip.ts";
import { stackRunQueue } from "../../automation/runs/regions.ts";
import { RUN_STATE_CHANNEL, RunStore } from "../../automation/runs/store.ts";
import { platformStackName } from "../../infra/model/naming.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { countPoolStatements, type PoolStatements } from "../support/poolStatements.ts";

const REGION = "us-east-1";
const QUEUE = stackRunQueue(REGION);
const HEAD = "0123456789abcdef0123456789abcdef01234567";
const WORKER = "test-worker";

let server: TestPostgres;
let pool: Pool;
let boss: PgBoss;
let store: RunStore;
/** Counts the statements sent through the pool's clients (installed before the first one: every one). */
let sent: PoolStatements;

beforeAll(async () => {
  server = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  await server?.stop();
});
beforeEach(async () => {
  const url = await server.newDatabase();
  pool = createPool(url);
  sent = countPoolStatements(pool);
  await migrate(pool);
  boss = await startBoss(url, { runExpireHours: 3, regions: [REGION] }, createLogger("silent"));
  store = new RunStore(pool, boss, { runExpireHours: 3, heartbeatTimeoutSeconds: 30, regions: [REGION], regionOf: () => REGION });
});
afterEach(async () => {
  await boss?.stop({ graceful: false, close: true });
  await pool?.end();
});

/** The queue's next job (what a worker's dispatcher hands it). */
async function fetchJob(): Promise<{ id: string; data: StackRunJob }> {
  const [job] = await boss.fetch<StackRunJob>(QUEUE);
  if (!job) throw new Error(`no job on ${QUEUE}`);
  return { id: job.id, data: job.data };
}

/** Counts the statements `fn` sends. */
const counted = <T>(fn: () => Promise<T>) => sent.counted(fn);

async function row(runId: string) {
  return (await pool.query<{ state: string; attempts: number; worker: string | null; commit_sha: string | null; job_id: string | null; attempt_log: unknown[] }>(
    "SELECT state, attempts, worker, commit_sha, job_id, attempt_log FROM runs WHERE id = $1", [runId],
  )).rows[0]!;
}

describe("a run's claim and finish in one round trip", { timeout: 60_000 }, () => {
  it("claims a queued run in one statement (head recorded, tenants read, state notified) and records its finish in one", async () => {
    const changeId = "7d3f0c2e-0000-4000-8000-000000000019";
    await pool.query(
      "INSERT INTO changes (id, tenant_id, summary, source, route, state, paths) VALUES ($1, 'acme', 'test change', 'api', 'main', 'committed', '{}')",
      [changeId],
    );
    const [queued] = await store.enqueueAll(["shared-prod-use1-01"], { reason: "test", changeId });
    const job = await fetchJob();
    expect(job.data).toEqual({ runId: queued!.runId, stacks: ["shared-prod-use1-01"] });

    const listener = await pool.connect();
    const notified: string[] = [];
    listener.on("notification", (n) => notified.push(n.payload ?? ""));
    await listener.query(`LISTEN ${RUN_STATE_CHANNEL}`);
    try {
      const claim = await counted(() => store.start(queued!.runId, job.id, WORKER, "local", [REGION], { stacks: job.data.stacks!, head: HEAD }));
      expect(claim.statements).toHaveLength(1);
      expect(claim.value).toMatchObject({ kind: "start", attempt: 1, recovering: false, tenants: ["acme"] });
      expect(claim.value.kind === "start" && claim.value.run).toMatchObject({ state: "running", commit: HEAD, attempts: 1, changeIds: [changeId] });
      const claimed = await row(queued!.runId);
      expect(claimed).toMatchObject({ state: "running", attempts: 1, worker: WORKER, commit_sha: HEAD });
      expect(claimed.attempt_log).toEqual([{ attempt: 1, worker: WORKER, startedAt: expect.any(String) }]);

      const run = claim.value.kind === "start" ? claim.value.run : undefined;
      const finish = await counted(() => store.finish(queued!.runId, WORKER, { state: "succeeded", output: { commit: HEAD, note: "it's done \\ 'quoted'" } }, run));
      expect(finish.statements).toHaveLength(1);
      expect(finish.value).toBe(true);
      const done = (await pool.query<{ state: string; output: unknown; attempt_log: { outcome?: string }[]; finished_at: Date | null }>(
        "SELECT state, output, attempt_log, finished_at FROM runs WHERE id = $1", [queued!.runId],
      )).rows[0]!;
      expect(done.state).toBe("succeeded");
      expect(done.output).toEqual({ commit: HEAD, note: "it's done \\ 'quoted'" });
      expect(done.attempt_log.map((a) => a.outcome)).toEqual(["succeeded"]);
      expect(done.finished_at).not.toBeNull();
      // The claim and the finish each told the listeners.
      await expect.poll(() => notified.filter((id) => id === queued!.runId).length).toBe(2);

      // A second finish of the same run (it is no longer running) changes nothing and says so.
      expect(await store.finish(queued!.runId, WORKER, { state: "failed", output: null, error: "late" }, run)).toBe(false);
      expect((await row(queued!.runId)).state).toBe("succeeded");
    } finally {
      await listener.query(`UNLISTEN ${RUN_STATE_CHANNEL}`);
      listener.release();
    }
  });

  it("records a pinned run's commit later, not the head it was given (negative control of the head)", async () => {
    const client = await pool.connect();
    let runId: string;
    try {
      await client.query("BEGIN");
      runId = (await store.enqueue(client, "shared-prod-use1-01", { reason: "rollout", programCommit: "feedfacefeedfacefeedfacefeedfacefeedface" })).runId;
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const job = await fetchJob();
    const claim = await counted(() => store.start(runId, job.id, WORKER, "local", [REGION], { stacks: job.data.stacks!, head: HEAD }));
    expect(claim.statements).toHaveLength(1);
    expect((await row(runId)).commit_sha).toBeNull();
  });

  it("records the program in force in the claim itself when the store pins: the stack's last update's program, a platform stack the head (negative control: a store that does not pin)", async () => {
    const program = "feedfacefeedfacefeedfacefeedfacefeedface";
    const platform = platformStackName(REGION);
    // The stack's last successful update applied `program` (inForce.ts, rule 3: no rollout ever succeeded).
    await pool.query(
      `INSERT INTO runs (stack, operation, options, state, change_ids, reasons, api_keys, region, program_commit, commit_sha, finished_at)
       VALUES ('shared-prod-use1-01', 'up', '{}', 'succeeded', '{}', '{an earlier update}', '{}', $1, $2, $2, now())`,
      [REGION, program],
    );
    const pinning = new RunStore(pool, boss, { runExpireHours: 3, heartbeatTimeoutSeconds: 30, regions: [REGION], regionOf: () => REGION, pinPrograms: true });
    const queued = await pinning.enqueueAll(["shared-prod-use1-01", platform, "shared-prod-use1-02"], { reason: "test" });
    const jobs = await boss.fetch<StackRunJob>(QUEUE, { batchSize: 3 });
    const jobOf = (runId: string) => jobs.find((j) => j.data.runId === runId)!;
    const runOf = (stack: string) => queued.find((q) => q.stack === stack)!.runId;
    const [shared, plat, plain] = [runOf("shared-prod-use1-01"), runOf(platform), runOf("shared-prod-use1-02")];
    const claim = (s: RunStore, runId: string) => s.start(runId, jobOf(runId).id, WORKER, "local", [REGION], { stacks: jobOf(runId).data.stacks!, head: HEAD });
    const pinned = await counted(() => Promise.all([claim(pinning, shared), claim(pinning, plat)]));
    expect(pinned.statements).toHaveLength(1);
    expect(pinned.value.map((d) => d.kind === "start" && d.run.programCommit)).toEqual([program, HEAD]);
    expect((await pool.query("SELECT program_commit, commit_sha FROM runs WHERE id = $1", [shared])).rows[0]).toEqual({ program_commit: program, commit_sha: HEAD });
    // The same claim through a store that does not pin records the head only.
    const unpinned = await claim(store, plain);
    expect(unpinned.kind === "start" && unpinned.run).toMatchObject({ programCommit: null, commit: HEAD });
  });

  it("reads the claimed and the finished run by its id: the rows a claim and a finish read grow neither with the queue nor with the history, at most with the running runs (negative control: a scan of the queue)", async () => {
    // The session's plans are made first, on a small table, and kept while the history grows: generic
    // plans, as PL/pgSQL's become after a session's fifth call, made before any statistics exist
    // (a new database) and kept for the session as the tables grow (the run-overhead bench's case).
    const client = await pool.connect();
    try {
      await measureRowsRead(client);
    } finally {
      await client.query("RESET plan_cache_mode");
      client.release();
    }
  });

  async function measureRowsRead(client: PoolClient): Promise<void> {
    await client.query("SET plan_cache_mode = force_generic_plan");
    await client.query("SELECT tenancy_program_in_force('shared-prod-use1-000', $1, 'platform-')", [HEAD]);
    const stacks = Array.from({ length: 300 }, (_, i) => `shared-prod-use1-${String(i).padStart(3, "0")}`);
    await store.enqueueAll(stacks, { reason: "test" });
    // A history: 3 finished updates of every stack.
    await pool.query(
      `INSERT INTO runs (stack, operation, options, state, change_ids, reasons, api_keys, region, commit_sha, finished_at)
       SELECT s, 'up', '{}', 'succeeded', '{}', '{an earlier update}', '{}', $1, $2, now() - make_interval(mins => g) FROM unnest($3::text[]) s, generate_series(1, 3) g`,
      [REGION, HEAD, stacks],
    );
    const jobs = await boss.fetch<StackRunJob>(QUEUE, { batchSize: 41 });
    // Rows of runs read by `sql` (sequential scans and index fetches): the backend's counters before
    // and after it, in one transaction (they may still hold its earlier transactions' counts).
    const counter = async () => Number((await client.query<{ n: string }>(
      "SELECT COALESCE(sum(seq_tup_read + COALESCE(idx_tup_fetch, 0)), 0) AS n FROM pg_stat_xact_user_tables WHERE relname = 'runs'",
    )).rows[0]!.n);
    const readIn = async (sql: string): Promise<{ rows: number; answers: unknown }> => {
      await client.query("BEGIN");
      try {
        const before = await counter();
        const answers = await client.query(sql);
        const rows = (await counter()) - before;
        await client.query("COMMIT");
        return { rows, answers };
      } catch (err) {
        await client.query("ROLLBACK");
        throw err;
      }
    };
    // 40 runs running, 260 queued: the 41st claim, then a finish.
    await Promise.all(jobs.slice(0, 40).map((j) => store.start(j.data.runId, j.id, WORKER, "local", [REGION], { stacks: j.data.stacks!, head: HEAD })));
    const last = jobs[40]!;
    const claim = claimItem({ runId: last.data.runId, jobId: last.id, stacks: last.data.stacks!, worker: WORKER, runner: "local", regions: [REGION], head: HEAD, pin: true, startedAt: new Date().toISOString() }, RUN_STATE_CHANNEL);
    // The run itself, its stack's last update (the pin) and, depending on the planner's choice
    // for the busy check, the running runs (at most the slots): not the 259 queued, not the 900 finished.
    const claimed = await readIn(tripSql([claim]).sql);
    expect(claimed.rows).toBeLessThanOrEqual(40 + 4);
    expect((await row(last.data.runId)).state).toBe("running");
    const finish = finishItem({ runId: last.data.runId, worker: WORKER, stacks: last.data.stacks!, state: "succeeded", output: null, done: { outcome: "succeeded" } }, RUN_STATE_CHANNEL);
    const finished = await readIn(tripSql([finish]).sql);
    expect(finished.rows).toBeLessThanOrEqual(40 + 4);
    expect((await row(last.data.runId)).state).toBe("succeeded");
    // Negative control: the counter counts; a scan of the region's queue reads every queued run.
    expect((await readIn(`SELECT count(*) FROM runs WHERE state = 'queued' AND region = '${REGION}' AND stack <> ''`)).rows).toBeGreaterThanOrEqual(259);
    expect((await readIn(`SELECT count(*) FROM runs WHERE stack LIKE 'shared-prod-use1-0%'`)).rows).toBeGreaterThanOrEqual(400);
  }

  it("leaves a held stack's run to the transaction, which skips it naming the hold", async () => {
    const [queued] = await store.enqueueAll(["shared-prod-use1-01"], { reason: "test" });
    const job = await fetchJob();
    await store.hold(["shared-prod-use1-01"], "5b0c7a9e-0000-4000-8000-000000000019", "a switch's write window (test)");
    const claim = await counted(() => store.start(queued!.runId, job.id, WORKER, "local", [REGION], { stacks: job.data.stacks!, head: HEAD }));
    expect(claim.value.kind).toBe("skip");
    expect(claim.value.kind === "skip" && claim.value.reason).toContain("is held by lifecycle workflow 5b0c7a9e-0000-4000-8000-000000000019");
    expect(claim.statements.length).toBeGreaterThan(1);
    expect(await row(queued!.runId)).toMatchObject({ state: "queued", attempts: 0, job_id: null, commit_sha: null });
  });

  it("leaves a job that no longer owns its run, and a job without its stacks, to the transaction", async () => {
    const [a, b] = await store.enqueueAll(["shared-prod-use1-01", "shared-staging-use1-01"], { reason: "test" });
    const first = await fetchJob();
    const second = await fetchJob();
    const jobOf = (runId: string) => (first.data.runId === runId ? first : second);
    // Another job's id: the run is not claimed.
    const wrong = await counted(() => store.start(a!.runId, jobOf(b!.runId).id, WORKER, "local", [REGION], { stacks: jobOf(a!.runId).data.stacks!, head: HEAD }));
    expect(wrong.value).toEqual({ kind: "skip", reason: `job ${jobOf(b!.runId).id} no longer owns run ${a!.runId}` });
    expect(wrong.statements.length).toBeGreaterThan(1);
    // The job's stacks are not the run's (a job from another run, edited data): the transaction decides, and claims.
    const other = await counted(() => store.start(a!.runId, jobOf(a!.runId).id, WORKER, "local", [REGION], { stacks: ["shared-staging-use1-01"], head: HEAD }));
    expect(other.value).toMatchObject({ kind: "start", attempt: 1 });
    expect(other.statements.length).toBeGreaterThan(1);
    // A job sent before jobs carried their stacks: the transaction claims it, without a head.
    const legacy = await counted(() => store.start(b!.runId, jobOf(b!.runId).id, WORKER, "local", [REGION]));
    expect(legacy.value).toMatchObject({ kind: "start", attempt: 1 });
    expect(legacy.statements.length).toBeGreaterThan(1);
    expect((await row(b!.runId)).commit_sha).toBeNull();
  });

  it("finishes through the transaction when a queued run waits for the stack, which then gets its job", async () => {
    const [first] = await store.enqueueAll(["shared-prod-use1-01"], { reason: "first" });
    const job = await fetchJob();
    const claim = await store.start(first!.runId, job.id, WORKER, "local", [REGION], { stacks: job.data.stacks!, head: HEAD });
    if (claim.kind !== "start") throw new Error(`not claimed: ${claim.reason}`);
    const [second] = await store.enqueueAll(["shared-prod-use1-01"], { reason: "second, while the first runs" });
    expect(await row(second!.runId)).toMatchObject({ state: "queued", job_id: null });
    const finish = await counted(() => store.finish(first!.runId, WORKER, { state: "succeeded", output: null }, claim.run));
    expect(finish.value).toBe(true);
    expect(finish.statements.length).toBeGreaterThan(1);
    expect((await row(second!.runId)).job_id).not.toBeNull();
    expect((await row(first!.runId)).state).toBe("succeeded");
  });
});

describe("claims and finishes made at the same moment, committed together (groupCommit.ts)", { timeout: 60_000 }, () => {
  it("claims the runs of 8 stacks asked for at once in two trips of 4 (groupCommit.ts splits a burst), each one statement, and finishes them the same way, each run told to the listeners", async () => {
    const stacks = Array.from({ length: 8 }, (_, i) => `shared-prod-use1-0${i + 1}`);
    const queued = await store.enqueueAll(stacks, { reason: "test" });
    const jobs = await boss.fetch<StackRunJob>(QUEUE, { batchSize: 8 });
    expect(jobs).toHaveLength(8);
    const listener = await pool.connect();
    const notified: string[] = [];
    listener.on("notification", (n) => notified.push(n.payload ?? ""));
    await listener.query(`LISTEN ${RUN_STATE_CHANNEL}`);
    try {
      const trips = store.trips.stats.trips;
      const claims = await counted(() => Promise.all(jobs.map((j) => store.start(j.data.runId, j.id, WORKER, "local", [REGION], { stacks: j.data.stacks!, head: HEAD }))));
      // Two statements of four claims each (each alone: eight), each with the locks of its own stacks, sorted.
      expect(claims.statements).toHaveLength(2);
      expect(store.trips.stats.trips - trips).toBe(2);
      const stackOfRun = new Map(queued.map((q) => [q.runId, q.stack]));
      for (const statement of claims.statements) {
        // The runs a statement claims, by the ids in its VALUES rows (the claims reach the batcher in
        // the order their callers get there, not necessarily the jobs' order).
        const own = [...statement.matchAll(/\(\d+, '([0-9a-f-]{36})'::uuid/g)].map((m) => stackOfRun.get(m[1]!)!);
        expect(own.every((st) => st !== undefined)).toBe(true);
        const locks = [...statement.matchAll(/pg_advisory_xact_lock\((-?\d+)\)/g)].map((m) => Number(m[1]));
        expect(locks).toEqual([...own].sort().map((s) => lockKey(`stack:${s}`) | 0));
        // After the locks, one statement claims the four (oneTrip.ts, TripItem.group), each its own run.
        expect(statement.split(";\n").filter((st) => st.includes("tenancy_claim_run("))).toHaveLength(1);
        expect([...statement.matchAll(/\(\d+, '[0-9a-f-]{36}'::uuid/g)]).toHaveLength(4);
      }
      expect(claims.value.map((d) => d.kind === "start" && d.run.id)).toEqual(jobs.map((j) => j.data.runId));
      expect(claims.value.map((d) => d.kind)).toEqual(Array(8).fill("start"));
      for (const { runId } of queued) expect(await row(runId)).toMatchObject({ state: "running", attempts: 1, worker: WORKER, commit_sha: HEAD });

      const runs = claims.value.map((d) => (d.kind === "start" ? d.run : undefined)!);
      const finishes = await counted(() => Promise.all(runs.map((r) => store.finish(r.id, WORKER, { state: "succeeded", output: { n: r.stack } }, r))));
      expect(finishes.statements).toHaveLength(2);
      for (const statement of finishes.statements) expect(statement.split(";\n").filter((st) => st.includes("tenancy_finish_run("))).toHaveLength(1);
      expect(finishes.value).toEqual(Array(8).fill(true));
      for (const r of runs) expect(await row(r.id)).toMatchObject({ state: "succeeded", worker: WORKER });
      // Each run's claim and finish reached the listeners.
      for (const { runId } of queued) await expect.poll(() => notified.filter((id) => id === runId).length).toBe(2);
    } finally {
      await listener.query(`UNLISTEN ${RUN_STATE_CHANNEL}`);
      listener.release();
    }
  });

  it("still runs one run of a stack at a time when two runs of it are claimed in one trip", async () => {
    // An update of the source stack and a state move out of it: both get jobs (neither is running).
    const client = await pool.connect();
    let up: string;
    let move: string;
    try {
      await client.query("BEGIN");
      up = (await store.enqueue(client, "shared-prod-use1-02", { reason: "update of the source" })).runId;
      move = (await store.enqueue(client, "shared-prod-use1-01", { reason: "move", operation: "move", options: { source: "shared-prod-use1-02", urns: ["urn:pulumi:x::y::z"] } })).runId;
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const jobs = await boss.fetch<StackRunJob>(QUEUE, { batchSize: 2 });
    expect(jobs).toHaveLength(2);
    const trips = store.trips.stats.trips;
    const decisions = await Promise.all(jobs.map((j) => store.start(j.data.runId, j.id, WORKER, "local", [REGION], { stacks: j.data.stacks!, head: HEAD })));
    // Both claims went in one trip; the stack they share let one of them start.
    expect(store.trips.stats.trips - trips).toBe(1);
    expect(decisions.filter((d) => d.kind === "start")).toHaveLength(1);
    const skipped = decisions.find((d) => d.kind === "skip");
    expect(skipped?.kind === "skip" && skipped.reason).toMatch(/already has a running run/);
    const states = [(await row(up!)).state, (await row(move!)).state].sort();
    expect(states).toEqual(["queued", "running"]);
  });
});
