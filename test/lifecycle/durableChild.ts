/**
 * A process running the same three-step workflow (one, two, three) under the lifecycle engine or
 * under DBOS Transact, for the kill -9 comparison (dbosComparison.test.ts,
 * docs/durable-execution.md). Every step attempt inserts a row into durable_step_runs before it
 * finishes; with HANG set, step `two` prints "in two" after its insert and never finishes, so the
 * parent can SIGKILL the process mid-step. Without HANG the process resumes the workflow
 * (the engine: `run` on the tenant's open workflow; DBOS: recovery at launch) and prints "done".
 * Input (JSON in CHILD_INPUT): { system, databaseUrl, key, hang }.
 */
import { DBOS } from "@dbos-inc/dbos-sdk";
import { createPool } from "../../automation/db/database.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { done, WorkflowEngine, type StepDef } from "../../automation/lifecycle/engine/engine.ts";
import { requestOnlyPorts } from "../../automation/lifecycle/requestPorts.ts";

const input = JSON.parse(process.env.CHILD_INPUT ?? "{}") as { system: "engine" | "dbos"; databaseUrl: string; key: string; hang: boolean };
const pool = createPool(input.databaseUrl, 4);
const STEPS = ["one", "two", "three"] as const;

async function attempt(step: string): Promise<void> {
  await pool.query("INSERT INTO durable_step_runs (key, step) VALUES ($1, $2)", [input.key, step]);
  if (input.hang && step === "two") {
    process.stdout.write("in two\n");
    setInterval(() => undefined, 1_000); // keeps the process alive until it is killed
    await new Promise<never>(() => undefined);
  }
}

if (input.system === "engine") {
  const steps: StepDef[] = STEPS.map((name) => ({ name, run: async () => (await attempt(name), done()) }));
  const engine = new WorkflowEngine(pool, requestOnlyPorts(), [{ kind: "suspend", steps }], DEFAULT_LIFECYCLE_CONFIG);
  const wf = (await engine.openFor(input.key)) ?? (await engine.create("suspend", input.key, {}));
  const out = await engine.run(wf.id);
  process.stdout.write(`done ${out.state}\n`);
} else {
  const workflow = DBOS.registerWorkflow(
    async (): Promise<string> => {
      for (const name of STEPS) await DBOS.runStep(() => attempt(name), { name });
      return "succeeded";
    },
    { name: "threeSteps" },
  );
  DBOS.setConfig({ name: "tenancy-durable-child", systemDatabaseUrl: input.databaseUrl, systemDatabasePool: pool, logLevel: "error" });
  await DBOS.launch(); // recovers this executor's pending workflows
  const status = await DBOS.getWorkflowStatus(input.key);
  const handle = status ? DBOS.retrieveWorkflow<string>(input.key) : await DBOS.startWorkflow(workflow, { workflowID: input.key })();
  process.stdout.write(`done ${await handle.getResult()}\n`);
  await DBOS.shutdown();
}
await pool.end();
