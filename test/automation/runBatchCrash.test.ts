/**
 * A control plane killed in the middle of a batch of claims (automation/runs/dispatcher.ts) loses
 * no run: a child process fetches four queued runs' jobs in one statement and is killed
 * (TENANCY_CRASH_AT=run.started) as soon as the first of them is claimed, the others fetched and
 * claimed or not; another worker then takes every one of them over or claims it, and each stack is
 * updated, never two updates of one stack at once.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CRASH_ENV } from "../../automation/crashPoints.ts";
import { overlappingUpdates, stackState } from "./support/fakePulumi.ts";
import { startHarness, waitFor } from "./support/harness.ts";
import { startTestPostgres, type TestPostgres } from "./support/postgres.ts";
import { childBundle } from "../support/childBundle.ts";

const STACKS = ["platform-us-east-1", "shared-prod-use1-01", "shared-prod-use1-02", "shared-staging-use1-01"];

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  await pg?.stop();
});

interface RunRow {
  id: string;
  stack: string;
  state: string;
  attempts: number;
  attempt_log: { outcome?: string }[];
  job_id: string | null;
}

it("a batch's runs are all updated after the process that fetched them is killed mid-batch", { timeout: 180_000 }, async () => {
  // No run workers here until the child is dead.
  const h = await startHarness({ pg, start: { reconciler: false, runs: false } });
  // Queued before the child starts: its first fetch finds all four.
  const queued = await h.cp.runs.enqueueAll(STACKS, { reason: "test: four stacks at once" });
  const ids = queued.map((r) => r.runId);
  const child = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "support/runWorkerChild.ts"))], {
    env: {
      ...process.env,
      [CRASH_ENV]: "run.started",
      CHILD_INPUT: JSON.stringify({
        config: { databaseUrl: h.config.databaseUrl, repoDir: h.config.repoDir, dataDir: h.config.dataDir, heartbeatSeconds: 0.2, heartbeatTimeoutSeconds: 1.5, maxParallelRuns: 4 },
        fake: { stateDir: h.stateDir, eventDelayMs: 50 },
      }),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  try {
    const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once("exit", (code, signal) => r(signal ?? code)));
    expect(await exited).toBe("SIGKILL");
    expect(stderr).toContain("crash point run.started reached");

    // The child fetched the four jobs in one statement (one fetch time), then died at its first claim.
    const fetched = (await h.cp.db.pool.query<{ run_id: string; started_on: Date }>(
      "SELECT data->>'runId' AS run_id, started_on FROM pgboss.job WHERE data->>'runId' = ANY($1) AND started_on IS NOT NULL", [ids],
    )).rows;
    expect(fetched.map((j) => j.run_id).sort()).toEqual([...ids].sort());
    expect(new Set(fetched.map((j) => j.started_on.toISOString())).size).toBe(1);
    const before = (await h.cp.db.pool.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1)", [ids])).rows;
    expect(before.filter((r) => r.state === "running").length).toBeGreaterThanOrEqual(1);
    expect(before.every((r) => r.state === "running" || r.state === "queued")).toBe(true);

    await h.cp.runWorker.start();
    const done = await waitFor("every run of the batch to finish", async () => {
      const rows = (await h.cp.db.pool.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1) ORDER BY stack", [ids])).rows;
      return rows.every((r) => r.state === "succeeded" || r.state === "failed") ? rows : undefined;
    }, 120_000);
    expect(done.map((r) => [r.stack, r.state])).toEqual(STACKS.map((s) => [s, "succeeded"]));
    // A run the child had claimed is taken over (its attempt lost); one it had only fetched is claimed once.
    for (const r of done) {
      const was = before.find((b) => b.id === r.id)!;
      expect(r.attempt_log.map((a) => a.outcome)).toEqual(was.state === "running" ? ["lost", "succeeded"] : ["succeeded"]);
    }
    for (const s of STACKS) expect(stackState(h.stateDir, s)!.updates.length).toBe(1);
    expect(overlappingUpdates(h.stateDir)).toEqual([]);
  } finally {
    child.kill("SIGKILL");
    await h.close();
  }
});
