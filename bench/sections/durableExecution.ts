/**
 * 8. Durable execution (`durable-execution`): the per-step overhead of the lifecycle engine
 * (automation/lifecycle/engine/engine.ts) against DBOS Transact (`@dbos-inc/dbos-sdk`, a
 * devDependency for this comparison only, docs/durable-execution.md), in the same run on one
 * embedded PostgreSQL: the same workflow of STEPS no-op steps, WORKFLOWS times, one after another.
 * Figure: a workflow's wall time from start to recorded end divided by its steps, median over the
 * workflows. Baseline measured in the same run: one `SELECT 1` round trip on the same server.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { DBOS } from "@dbos-inc/dbos-sdk";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { done, WorkflowEngine, type StepDef, type WorkflowDef } from "../../automation/lifecycle/engine/engine.ts";
import { requestOnlyPorts } from "../../automation/lifecycle/requestPorts.ts";
import { fmtSummary, round, type Section } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { withPostgres } from "./controlPlane.ts";

const STEPS = 20;
const WORKFLOWS = 50;

/** Per-step milliseconds of each of WORKFLOWS runs of the engine's STEPS-step workflow. */
async function engineSample(databaseUrl: string): Promise<{ perStepMs: number[]; selectMs: number }> {
  const pool = createPool(databaseUrl, 4);
  try {
    await migrate(pool);
    const steps: StepDef[] = Array.from({ length: STEPS }, (_, i) => ({ name: `noop.${i}`, run: async () => done() }));
    // The kind must be one lifecycle_workflows allows; the steps are the benchmark's own.
    // The kind must be one lifecycle_workflows allows; the steps are the benchmark's own.
    const def: WorkflowDef = { kind: "suspend", steps };
    const engine = new WorkflowEngine(pool, requestOnlyPorts(), [def], DEFAULT_LIFECYCLE_CONFIG);
    const perStepMs: number[] = [];
    for (let i = 0; i < WORKFLOWS; i++) {
      const t = performance.now();
      const wf = await engine.create("suspend", `bench-de-${randomUUID().slice(0, 8)}`, {});
      const out = await engine.run(wf.id);
      if (out.state !== "succeeded") throw new Error(`engine workflow ${wf.id} ended ${out.state}: ${out.error ?? ""}`);
      perStepMs.push((performance.now() - t) / STEPS);
    }
    const base: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      await pool.query("SELECT 1");
      base.push(performance.now() - t);
    }
    return { perStepMs, selectMs: summarize(base).median };
  } finally {
    await pool.end();
  }
}

// DBOS registers workflows once per process, before launch.
const noopStep = async (): Promise<null> => null;
const dbosNoop = DBOS.registerWorkflow(
  async (): Promise<number> => {
    for (let i = 0; i < STEPS; i++) await DBOS.runStep(noopStep, { name: `noop.${i}` });
    return STEPS;
  },
  { name: "benchNoop" },
);

/** Per-step milliseconds of each of WORKFLOWS runs of the same workflow under DBOS. */
async function dbosSample(databaseUrl: string): Promise<number[]> {
  const pool = createPool(databaseUrl, 4);
  DBOS.setConfig({ name: "tenancy-bench", systemDatabaseUrl: databaseUrl, systemDatabasePool: pool, logLevel: "error" });
  await DBOS.launch();
  try {
    const perStepMs: number[] = [];
    for (let i = 0; i < WORKFLOWS; i++) {
      const t = performance.now();
      const handle = await DBOS.startWorkflow(dbosNoop)();
      const n = await handle.getResult();
      if (n !== STEPS) throw new Error(`DBOS workflow ${handle.workflowID} returned ${n}`);
      perStepMs.push((performance.now() - t) / STEPS);
    }
    return perStepMs;
  } finally {
    await DBOS.shutdown();
    await pool.end();
  }
}

export async function durableExecution(runs: number, log: (s: string) => void): Promise<Section> {
  return withPostgres(async (newDatabase) => {
    const engine: number[] = [];
    const dbos: number[] = [];
    const select: number[] = [];
    for (let i = 0; i < runs; i++) {
      const e = await engineSample(await newDatabase(`bench_de_engine_${i}`));
      const d = await dbosSample(await newDatabase(`bench_de_dbos_${i}`));
      const em = summarize(e.perStepMs).median;
      const dm = summarize(d).median;
      log(`durable execution ${i + 1}/${runs}: engine ${round(em, 2)} ms/step, DBOS ${round(dm, 2)} ms/step, SELECT 1 ${round(e.selectMs, 3)} ms`);
      engine.push(em);
      dbos.push(dm);
      select.push(e.selectMs);
    }
    const es = summarize(engine);
    const ds = summarize(dbos);
    const ss = summarize(select);
    const what = `${WORKFLOWS} workflows x ${STEPS} no-op steps, one at a time`;
    return {
      name: "durable-execution",
      data: { steps: STEPS, workflows: WORKFLOWS, engineMsPerStep: es, dbosMsPerStep: ds, selectOneMs: ss },
      rows: [
        ["lifecycle engine: per-step overhead", fmtSummary(es, "ms"), what],
        ["DBOS Transact 5.3.0: per-step overhead", fmtSummary(ds, "ms"), what],
        ["baseline: SELECT 1 round trip", fmtSummary(ss, "ms"), "same server, same run"],
      ],
      // A comparison, not a target: the decision it feeds is in docs/durable-execution.md.
      targets: [],
    };
  });
}
