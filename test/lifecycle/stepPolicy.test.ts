/**
 * Per-step timeouts and retry policies of the lifecycle engine, on a live migrated PostgreSQL:
 * a hanging step is abandoned at its timeout and retried; a step failing on every attempt ends
 * the workflow failed with its error; a retry never repeats a finished step. Negative controls:
 * without a timeout the hanging step holds the workflow; without a policy the engine's default
 * attempts and backoff apply.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../automation/db/database.ts";
import { migrate } from "../../automation/db/migrate.ts";
import { DEFAULT_LIFECYCLE_CONFIG } from "../../automation/lifecycle/config.ts";
import { done, retryDelayMs, WorkflowEngine, type StepDef, type StepPolicy, type WorkflowDef } from "../../automation/lifecycle/engine/engine.ts";
import { requestOnlyPorts } from "../../automation/lifecycle/requestPorts.ts";
import { startPostgres, type PgServer } from "../support/postgres.ts";
import { FakeClock, START } from "./harness.ts";

let server: PgServer;
let pool: pg.Pool;

beforeAll(async () => {
  server = await startPostgres();
  const admin = await server.createRdsLikeAdmin();
  const database = await server.createDatabase("step_policy", admin);
  pool = createPool({ host: server.host, port: server.port, user: admin.user, password: admin.password, database }, 4);
  pool.on("error", () => undefined);
  await migrate(pool);
});

afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

/** A two-step workflow: `first` counts its runs, `second` does what the test says. */
function scenario(second: StepDef["run"], policy?: StepPolicy) {
  const clock = new FakeClock(START);
  const runs = { first: 0, second: 0 };
  const steps: StepDef[] = [
    { name: "first", run: async () => (runs.first++, done({ n: runs.first })) },
    { name: "second", run: async (ctx) => (runs.second++, second(ctx)), ...(policy ? { policy } : {}) },
  ];
  const def: WorkflowDef = { kind: "suspend", steps };
  const engine = new WorkflowEngine(pool, { ...requestOnlyPorts(), clock }, [def], { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 5 });
  return { clock, runs, engine, create: () => engine.create("suspend", `sp-${randomUUID().slice(0, 8)}`, {}) };
}

const POLICY: StepPolicy = { timeoutMs: 300, maxAttempts: 3, backoff: { initialMs: 10_000, maxMs: 15_000 } };

describe("per-step policies (live PostgreSQL)", () => {
  it("a step that hangs is abandoned at its timeout, its signal aborted, and retried; the finished step is not repeated", async () => {
    const signals: AbortSignal[] = [];
    const s = scenario(async (ctx) => {
      signals.push(ctx.signal);
      if (signals.length === 1) return new Promise(() => undefined); // hangs for ever
      return done({ ok: true });
    }, POLICY);
    const wf = await s.create();
    const started = Date.now();
    const first = await s.engine.run(wf.id);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(first).toEqual({
      id: wf.id, state: "running", step: "second", wakeAt: new Date(START.getTime() + 10_000),
      error: "step second did not finish within 0.3 s; the attempt was abandoned",
    });
    expect(signals[0]!.aborted).toBe(true);
    expect(await s.engine.get(wf.id)).toMatchObject({ attempts: 1, lastError: "step second did not finish within 0.3 s; the attempt was abandoned" });
    // Not due before its backoff...
    expect(await s.engine.run(wf.id)).toMatchObject({ state: "running", wakeAt: new Date(START.getTime() + 10_000) });
    s.clock.advance(10_000);
    expect(await s.engine.run(wf.id)).toEqual({ id: wf.id, state: "succeeded", step: null });
    expect(s.runs).toEqual({ first: 1, second: 2 });
    expect((await s.engine.steps(wf.id)).map((x) => [x.step, x.output])).toEqual([["first", { n: 1 }], ["second", { ok: true }]]);
  });

  it("negative control: without a timeout the hanging step holds the workflow", async () => {
    let release!: () => void;
    const s = scenario(() => new Promise((resolve) => (release = () => resolve(done({ late: true })))));
    const wf = await s.create();
    const running = s.engine.run(wf.id);
    const raced = await Promise.race([running, new Promise((r) => setTimeout(() => r("still running"), 1_000))]);
    expect(raced).toBe("still running");
    release();
    expect(await running).toEqual({ id: wf.id, state: "succeeded", step: null });
  });

  it("a step failing on every attempt ends the workflow failed after its policy's attempts, with the error and backoff recorded", async () => {
    const s = scenario(async () => {
      throw new Error("the cloud said no");
    }, POLICY);
    const wf = await s.create();
    const wakes: (Date | null | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      const out = await s.engine.run(wf.id, { force: true });
      expect(out).toMatchObject({ state: "running", step: "second", error: "the cloud said no" });
      wakes.push(out.wakeAt);
    }
    // 10 s after the first failure, then 20 s capped at 15 s.
    expect(wakes).toEqual([new Date(START.getTime() + 10_000), new Date(START.getTime() + 15_000)]);
    expect(await s.engine.run(wf.id, { force: true })).toEqual({ id: wf.id, state: "failed", step: "second", error: "the cloud said no" });
    expect(await s.engine.get(wf.id)).toMatchObject({ state: "failed", attempts: 3, lastError: "the cloud said no", currentStep: "second" });
    expect(s.runs).toEqual({ first: 1, second: 3 });
  });

  it("negative control: without a policy the engine's defaults apply (5 attempts, 1 minute first backoff)", async () => {
    const s = scenario(async () => {
      throw new Error("still no");
    });
    const wf = await s.create();
    const outs = [];
    for (let i = 0; i < 5; i++) outs.push(await s.engine.run(wf.id, { force: true }));
    expect(outs.map((o) => o.state)).toEqual(["running", "running", "running", "running", "failed"]);
    expect(outs[0]!.wakeAt).toEqual(new Date(START.getTime() + 60_000));
    expect(retryDelayMs(undefined, 3)).toBe(4 * 60_000);
  });

  it("the configured maxAttempts caps a policy's attempts (the operator's ceiling)", async () => {
    const s = scenario(async () => {
      throw new Error("no");
    }, { ...POLICY, maxAttempts: 10 });
    const capped = new WorkflowEngine(pool, { ...requestOnlyPorts(), clock: s.clock }, [{ kind: "suspend", steps: [
      { name: "only", run: async () => { throw new Error("no"); }, policy: { maxAttempts: 10 } },
    ] }], { ...DEFAULT_LIFECYCLE_CONFIG, maxAttempts: 2 });
    const wf = await capped.create("suspend", `sp-${randomUUID().slice(0, 8)}`, {});
    expect((await capped.run(wf.id, { force: true })).state).toBe("running");
    expect((await capped.run(wf.id, { force: true })).state).toBe("failed");
  });
});
