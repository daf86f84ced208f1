/**
 * kill -9 mid-step, the lifecycle engine against DBOS Transact (docs/durable-execution.md): a
 * child process runs the same three-step workflow (durableChild.ts), is SIGKILLed while step
 * `two` is in flight (after its effect, before it finished), and a new process resumes it. Both
 * must end the workflow succeeded with `one` run once (its completion was recorded) and `two` run
 * again (at-least-once per step: a step's effects must be idempotent under either engine).
 * Also: a DBOS queue partitioned by stack with partitionConcurrency 1 serializes runs of one stack
 * as the runs table's advisory locks do, while other stacks run beside them.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { DBOS } from "@dbos-inc/dbos-sdk";
import { once } from "node:events";
import { resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { childBundle } from "../support/childBundle.ts";

let server: PgServer;
let pool: pg.Pool;
let databaseUrl: string;

beforeAll(async () => {
  server = await startPostgres();
  const admin = await server.createRdsLikeAdmin();
  const database = await server.createDatabase("durable_cmp", admin);
  databaseUrl = `postgres://${encodeURIComponent(admin.user)}:${encodeURIComponent(admin.password)}@${server.host}:${server.port}/${database}`;
  pool = createPool({ host: server.host, port: server.port, user: admin.user, password: admin.password, database }, 2);
  await migrate(pool);
  await pool.query("CREATE TABLE durable_step_runs (seq bigserial PRIMARY KEY, key text NOT NULL, step text NOT NULL)");
});

afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

/** Runs durableChild.ts; with `hang`, SIGKILLs it once step two is in flight. Returns its stdout. */
async function child(system: "engine" | "dbos", key: string, hang: boolean): Promise<{ stdout: string; signal: NodeJS.Signals | null; code: number | null }> {
  const p = spawn(process.execPath, [await childBundle(resolve(import.meta.dirname, "durableChild.ts"))], {
    env: { ...process.env, CHILD_INPUT: JSON.stringify({ system, databaseUrl, key, hang }) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  p.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    if (hang && stdout.includes("in two\n")) p.kill("SIGKILL");
  });
  const [code, signal] = (await once(p, "exit")) as [number | null, NodeJS.Signals | null];
  if (!hang && code !== 0) throw new Error(`${system} child exited ${code}: ${stderr}`);
  return { stdout, signal, code };
}

async function stepRuns(key: string): Promise<string[]> {
  const { rows } = await pool.query<{ step: string }>("SELECT step FROM durable_step_runs WHERE key = $1 ORDER BY seq", [key]);
  return rows.map((r) => r.step);
}

describe("kill -9 mid-step: lifecycle engine and DBOS Transact (live PostgreSQL)", () => {
  for (const system of ["engine", "dbos"] as const) {
    it(`${system}: the killed step runs again, the finished one does not`, async () => {
      const key = `cmp-${system}`;
      const killed = await child(system, key, true);
      expect(killed).toMatchObject({ signal: "SIGKILL", stdout: "in two\n" });
      expect(await stepRuns(key)).toEqual(["one", "two"]);
      const resumed = await child(system, key, false);
      expect(resumed.stdout).toBe("done succeeded\n");
      expect(await stepRuns(key)).toEqual(["one", "two", "two", "three"]);
    }, 30_000);
  }

  for (const system of ["engine", "dbos"] as const) {
    it(`negative control, ${system}: a run that is not killed runs every step once`, async () => {
      expect(await child(system, `clean-${system}`, false)).toMatchObject({ stdout: "done succeeded\n", code: 0 });
      expect(await stepRuns(`clean-${system}`)).toEqual(["one", "two", "three"]);
    }, 30_000);
  }

  it("DBOS keeps its own schema beside ours (created and migrated by DBOS.launch)", async () => {
    const { rows } = await pool.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'dbos' ORDER BY 1");
    expect(rows.map((r) => r.table_name)).toEqual([
      "application_versions", "dbos_migrations", "event_dispatch_kv", "notifications", "operation_outputs", "queues", "streams",
      "workflow_events", "workflow_events_history", "workflow_input", "workflow_output", "workflow_schedules", "workflow_status",
    ]);
  });

  it("DBOS: a queue partitioned by stack with partitionConcurrency 1 runs one stack's runs one at a time, other stacks alongside", async () => {
    const spans: { stack: string; start: number; end: number }[] = [];
    const run = DBOS.registerWorkflow(
      async (stack: string): Promise<void> => {
        const start = Date.now();
        await DBOS.runStep(() => sleep(300), { name: "up" });
        spans.push({ stack, start, end: Date.now() });
      },
      { name: "stackRun" },
    );
    const dbosPool = createPool(databaseUrl, 4);
    DBOS.setConfig({ name: "tenancy-queue-cmp", systemDatabaseUrl: databaseUrl, systemDatabasePool: dbosPool, logLevel: "error" });
    await DBOS.launch();
    try {
      const queue = await DBOS.registerQueue("stack-runs", { partitionConcurrency: 1, minPollingIntervalMs: 50 });
      const handles = await Promise.all(
        ["a", "a", "a", "b"].map((stack) => DBOS.startWorkflow(run, { queueName: queue.name, enqueueOptions: { queuePartitionKey: stack } })(stack)),
      );
      for (const h of handles) await h.getResult();
    } finally {
      await DBOS.shutdown();
      await dbosPool.end();
    }
    const a = spans.filter((s) => s.stack === "a").sort((x, y) => x.start - y.start);
    const b = spans.find((s) => s.stack === "b")!;
    expect(a).toHaveLength(3);
    for (let i = 1; i < a.length; i++) expect(a[i]!.start).toBeGreaterThanOrEqual(a[i - 1]!.end);
    // Negative control: stack b is not held behind stack a.
    expect(b.start).toBeLessThan(a[2]!.start);
  }, 30_000);
});
