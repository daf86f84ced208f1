/**
 * Region routing of stack runs on a live PostgreSQL (docs/control-plane.md, "Region routing"):
 * a run carries its stack's region, its job goes to that region's queue, a worker claims only
 * runs of the regions it serves, and a region nobody serves is visible (tenancy_runs_unserved).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../../automation/controlPlane.ts";
import { createPool } from "../../automation/db/database.ts";
import { loadMigrations, migrate } from "../../automation/db/migrate.ts";
import { withTransaction } from "../../automation/db/tx.ts";
import { DriftScheduler } from "../../automation/drift/scheduler.ts";
import { createLogger } from "../../automation/log.ts";
import { runStorePort } from "../../automation/rollouts/runPort.ts";
import { startHarness, testConfig, waitFor, type Harness } from "./support/harness.ts";
import { FakePulumiCommand } from "./support/fakePulumi.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
});

const EU_CELL = "shared-prod-euw1-01";
const US_DEDICATED = "dedicated-acme-prod";
const EU_DEDICATED = "dedicated-delta-health-prod";

interface Row {
  id: string;
  stack: string;
  region: string | null;
  state: string;
  job_id: string | null;
  job_queue: string | null;
  worker: string | null;
}
const row = async (h: Harness, id: string): Promise<Row> =>
  (await h.cp.db.pool.query<Row>("SELECT id, stack, region, state, job_id, job_queue, worker FROM runs WHERE id = $1", [id])).rows[0]!;
const jobState = async (h: Harness, id: string) =>
  (await h.cp.db.pool.query<{ name: string; state: string }>("SELECT name, state FROM pgboss.job WHERE id = $1", [id])).rows[0];
const finished = (h: Harness, id: string) =>
  waitFor(`run ${id} to finish`, async () => {
    const r = await row(h, id);
    return r.state === "succeeded" || r.state === "failed" ? r : undefined;
  }, 30_000);
const metric = async (h: Harness, series: string) => {
  const text = await (await fetch(`${h.metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a worker serving only us-east-1", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pg, config: { workerRegions: ["us-east-1"] } });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it("runs the us-east-1 stack and never takes the eu-west-1 one, which stays queued and counted unserved", async () => {
    const [us, eu] = await h.cp.runs.enqueueAll([EU_CELL, US_DEDICATED], { reason: "test: one run per region" }); // sorted by stack
    expect(eu!.stack).toBe(EU_CELL);
    const euRun = await row(h, eu!.runId);
    expect({ region: euRun.region, job_queue: euRun.job_queue }).toEqual({ region: "eu-west-1", job_queue: "stack-run-eu-west-1" });
    expect((await row(h, us!.runId)).job_queue).toBe("stack-run-us-east-1");
    expect((await h.cp.runs.get(eu!.runId))?.region).toBe("eu-west-1");

    const usDone = await finished(h, us!.runId);
    expect(usDone.state).toBe("succeeded");
    expect(usDone.worker).toBe(h.cp.runWorker.workerId);
    // Several polls of the worker later (0.5 s each), the eu-west-1 run and its job are untouched.
    await sleep(2_000);
    const still = await row(h, eu!.runId);
    expect({ state: still.state, worker: still.worker, job_id: still.job_id }).toEqual({ state: "queued", worker: null, job_id: euRun.job_id });
    expect(await jobState(h, euRun.job_id!)).toEqual({ name: "stack-run-eu-west-1", state: "created" });

    const unserved = await h.cp.runs.unserved();
    expect(unserved.map((u) => ({ region: u.region, queued: u.queued }))).toEqual([{ region: "eu-west-1", queued: 1 }]);
    expect(await metric(h, 'tenancy_runs_unserved{region="eu-west-1"}')).toBe(1);
    expect(await metric(h, 'tenancy_runs_unserved{region="us-east-1"}')).toBe(0);
    expect(await metric(h, 'tenancy_queue_depth{queue="stack-run-eu-west-1"}')).toBe(1);

    // The claim itself filters on region: the same job offered to a us-east-1 claim is refused,
    // and the run is left exactly as it was.
    const refused = await h.cp.runs.start(eu!.runId, euRun.job_id!, "probe", "local", ["us-east-1"]);
    expect(refused).toEqual({ kind: "skip", reason: `run ${eu!.runId} is in eu-west-1, not served here (us-east-1)` });
    const after = await row(h, eu!.runId);
    expect({ state: after.state, worker: after.worker, job_id: after.job_id }).toEqual({ state: "queued", worker: null, job_id: euRun.job_id });

    // Negative control: the same claim with the region filter lifted (eu-west-1 served) takes it.
    const taken = await h.cp.runs.start(eu!.runId, euRun.job_id!, "probe", "local", ["us-east-1", "eu-west-1"]);
    expect(taken.kind).toBe("start");
    expect(await h.cp.runs.finish(eu!.runId, "probe", { state: "failed", output: null, error: "test: claimed by the probe" })).toBe(true);
    expect(await metric(h, 'tenancy_runs_unserved{region="eu-west-1"}')).toBe(0);
  }, 60_000);

  it("a worker for eu-west-1 that starts later takes the run that waited for it", async () => {
    const [eu] = await h.cp.runs.enqueueAll([EU_CELL], { reason: "test: waits for an eu-west-1 worker" });
    await sleep(1_500);
    expect((await row(h, eu!.runId)).state).toBe("queued");
    expect(await metric(h, 'tenancy_runs_unserved{region="eu-west-1"}')).toBe(1);

    const dataDir = mkdtempSync(join(tmpdir(), "tenancy-euw1-"));
    const euWorker = await ControlPlane.create(
      testConfig({ databaseUrl: h.config.databaseUrl!, repoDir: h.repo.dir, dataDir, workerRegions: ["eu-west-1"] }),
      { log: createLogger("silent"), pulumiCommand: new FakePulumiCommand({ stateDir: h.stateDir }).asPulumiCommand(), pollingIntervalSeconds: 0.5 },
    );
    try {
      await euWorker.start({ runs: true });
      const done = await finished(h, eu!.runId);
      expect({ state: done.state, worker: done.worker }).toEqual({ state: "succeeded", worker: euWorker.runWorker.workerId });
      expect(await metric(h, 'tenancy_runs_unserved{region="eu-west-1"}')).toBe(0);
      const workers = (await h.cp.db.pool.query<{ worker_id: string; regions: string[] }>("SELECT worker_id, regions FROM run_workers ORDER BY worker_id")).rows;
      expect(workers).toEqual(
        [
          { worker_id: h.cp.runWorker.workerId, regions: ["us-east-1"] },
          { worker_id: euWorker.runWorker.workerId, regions: ["eu-west-1"] },
        ].sort((a, b) => (a.worker_id < b.worker_id ? -1 : 1)),
      );
    } finally {
      await euWorker.stop(0);
      rmSync(dataDir, { recursive: true, force: true });
    }
    // A stopped worker leaves run_workers.
    expect((await h.cp.db.pool.query("SELECT worker_id FROM run_workers")).rows).toEqual([{ worker_id: h.cp.runWorker.workerId }]);
  }, 90_000);

  it("a job of an eu-west-1 run found on the queue of before region routing moves to its region's queue, not run here", async () => {
    const legacy = await withTransaction(h.cp.db.pool, async (c) => {
      const { rows } = await c.query<{ id: string }>(
        "INSERT INTO runs (stack, operation, state, reasons, region) VALUES ($1, 'up', 'queued', ARRAY['test: queued before region routing'], 'eu-west-1') RETURNING id",
        [EU_DEDICATED],
      );
      const id = rows[0]!.id;
      const jobId = await h.cp.boss.send("stack-run", { runId: id });
      await c.query("UPDATE runs SET job_id = $2, job_queue = 'stack-run' WHERE id = $1", [id, jobId]);
      return { id, jobId: jobId! };
    });
    const moved = await waitFor("the legacy job to be rerouted", async () => {
      const r = await row(h, legacy.id);
      return r.job_queue === "stack-run-eu-west-1" ? r : undefined;
    });
    expect({ state: moved.state, worker: moved.worker }).toEqual({ state: "queued", worker: null });
    expect(moved.job_id).not.toBe(legacy.jobId);
    expect(await jobState(h, moved.job_id!)).toEqual({ name: "stack-run-eu-west-1", state: "created" });
    await h.cp.runs.requestCancel(legacy.id);
    expect(await jobState(h, moved.job_id!)).toEqual({ name: "stack-run-eu-west-1", state: "cancelled" });
  }, 60_000);

  it("rollouts and drift checks queue their runs with the stack's region", async () => {
    const port = runStorePort(h.cp.runs);
    const { runId: rolloutRun } = await withTransaction(h.cp.db.pool, (c) => port.enqueue(c, EU_DEDICATED, { reason: "test: rollout wave 1", programCommit: h.repo.git("rev-parse", "HEAD").trim() }));
    expect((await row(h, rolloutRun)).region).toBe("eu-west-1");
    await h.cp.runs.requestCancel(rolloutRun);

    const drift = new DriftScheduler(h.cp.db.pool, h.cp.runs, () => ["shared-prod-use1-02"], { periodMs: 1, concurrency: 1 });
    const queued = await waitFor("a drift check to be queued", async () => {
      const stacks = await drift.tick();
      return stacks.length > 0 ? stacks : undefined;
    });
    expect(queued).toEqual(["shared-prod-use1-02"]);
    const { rows } = await h.cp.db.pool.query<{ region: string; job_queue: string }>(
      "SELECT region, job_queue FROM runs WHERE stack = 'shared-prod-use1-02' AND operation = 'preview'",
    );
    expect(rows).toEqual([{ region: "us-east-1", job_queue: "stack-run-us-east-1" }]);
  }, 60_000);

  it("refuses to queue a run of a stack outside the platform regions, naming it", async () => {
    await expect(h.cp.runs.enqueueAll(["shared-prod-apse2-01"], { reason: "test" })).rejects.toThrow(
      "the region of stack shared-prod-apse2-01 is unknown: stacks/Pulumi.shared-prod-apse2-01.yaml has no aws:region and cell apse2-01 has no region code of us-east-1, eu-west-1; its run cannot be routed to a region's worker",
    );
  });
});

describe("a worker serving every region (the single-process quick start)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ pg });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it("takes the runs of both regions", async () => {
    expect(h.cp.runWorker.regions).toEqual(["us-east-1", "eu-west-1"]);
    const [eu, us] = await h.cp.runs.enqueueAll([EU_CELL, US_DEDICATED], { reason: "test: both regions" });
    for (const run of [eu!, us!]) {
      const done = await finished(h, run.runId);
      expect({ state: done.state, worker: done.worker }).toEqual({ state: "succeeded", worker: h.cp.runWorker.workerId });
    }
    expect(await h.cp.runs.unserved()).toEqual([]);
  }, 60_000);
});

describe("migration 004 on runs queued before region routing", () => {
  it("backfills the region from the stack name, and the control plane fills dedicated stacks from the repository", async () => {
    const url = await pg.newDatabase();
    const pool = createPool(url);
    try {
      await migrate(pool, loadMigrations().filter((m) => m.version !== 4));
      await pool.query(
        `INSERT INTO runs (stack, state, job_id) VALUES
           ('platform-eu-west-1', 'succeeded', NULL), ('shared-prod-use1-02', 'failed', NULL), ('shared-staging-use1-01', 'queued', gen_random_uuid()),
           ('shared-prod-apse2-01', 'succeeded', NULL), ('dedicated-acme-prod', 'succeeded', NULL), ('dedicated-nobody-prod', 'failed', NULL)`,
      );
      expect(await migrate(pool)).toEqual([4]);
      const after = (await pool.query<{ stack: string; region: string | null; job_queue: string | null }>("SELECT stack, region, job_queue FROM runs ORDER BY stack")).rows;
      expect(after).toEqual([
        { stack: "dedicated-acme-prod", region: null, job_queue: null },
        { stack: "dedicated-nobody-prod", region: null, job_queue: null },
        { stack: "platform-eu-west-1", region: "eu-west-1", job_queue: null },
        { stack: "shared-prod-apse2-01", region: "ap-southeast-2", job_queue: null },
        { stack: "shared-prod-use1-02", region: "us-east-1", job_queue: null },
        { stack: "shared-staging-use1-01", region: "us-east-1", job_queue: "stack-run" },
      ]);
    } finally {
      await pool.end();
    }
    // Starting the control plane fills what the repository knows (acme's tenant file) and
    // leaves a stack no file places unrouted.
    const h = await startHarness({ pg, config: { databaseUrl: url, workerRegions: ["us-east-1"] }, start: { runs: false } });
    try {
      const regions = (await h.cp.db.pool.query<{ stack: string; region: string | null }>("SELECT stack, region FROM runs WHERE stack LIKE 'dedicated-%' ORDER BY stack")).rows;
      expect(regions).toEqual([
        { stack: "dedicated-acme-prod", region: "us-east-1" },
        { stack: "dedicated-nobody-prod", region: null },
      ]);
    } finally {
      await h.close();
    }
  }, 120_000);
});
